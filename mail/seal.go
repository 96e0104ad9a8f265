package mail

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// sealer encrypts message bodies at rest with AES-256-GCM, under keys
// derived (HKDF) from the server secrets: the active one seals, and the
// previous ones still open what was sealed before a rotation.
type sealer struct {
	aeads []cipher.AEAD
}

func newSealer(keys [][]byte) (*sealer, error) {
	if len(keys) == 0 {
		return nil, errors.New("mail: no outbox key")
	}
	s := &sealer{}
	for _, k := range keys {
		if len(k) != 32 {
			return nil, fmt.Errorf("mail: outbox key must be 32 bytes, got %d", len(k))
		}
		b, err := aes.NewCipher(k)
		if err != nil {
			return nil, err
		}
		a, err := cipher.NewGCM(b)
		if err != nil {
			return nil, err
		}
		s.aeads = append(s.aeads, a)
	}
	return s, nil
}

// seal returns nonce || ciphertext; ad binds it to its row's kind, so a
// body cannot be moved to a message of another kind.
func (s *sealer) seal(plain, ad []byte) []byte {
	a := s.aeads[0]
	nonce := make([]byte, a.NonceSize(), a.NonceSize()+len(plain)+a.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic(err) // crypto/rand does not fail
	}
	return a.Seal(nonce, nonce, plain, ad)
}

var errUnseal = errors.New("mail: body cannot be decrypted with any server secret")

func (s *sealer) open(box, ad []byte) ([]byte, error) {
	for _, a := range s.aeads {
		if len(box) < a.NonceSize() {
			return nil, errUnseal
		}
		if p, err := a.Open(nil, box[:a.NonceSize()], box[a.NonceSize():], ad); err == nil {
			return p, nil
		}
	}
	return nil, errUnseal
}
