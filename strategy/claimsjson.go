package strategy

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// UnmarshalJSON decodes the claims of a token. It exists for speed: the
// parser decodes every token's claims before it verifies the signature,
// and encoding/json's reflection was the largest cost of a verification
// answered from the cache (profiled under load). It is called by
// json.Unmarshal, which has already checked that b is valid JSON.
//
// It gives what encoding/json gives (FuzzClaimsJSON compares the two),
// but it is stricter in two ways no token of ours can trip: a claim named
// twice, or named in another letter case ("Sub"), is an error rather than
// a silent choice.
func (c *Claims) UnmarshalJSON(b []byte) error {
	var out Claims
	d := claimsDecoder{b: b}
	var seen uint16
	if d.ws(); d.null() {
		// As encoding/json does with a null: nothing.
		return nil
	}
	if !d.eat('{') {
		return errors.New("claims: not a JSON object")
	}
	if d.ws(); d.eat('}') {
		return d.end(c, &out)
	}
	for {
		d.ws()
		rawKey, err := d.key()
		if err != nil {
			return err
		}
		if d.ws(); !d.eat(':') {
			return errors.New("claims: malformed object")
		}
		d.ws()
		bit, known := claimBits[string(rawKey)] // no allocation for the lookup
		key := ""
		if known {
			key = claimNames[bit]
		} else {
			key = string(rawKey)
			for name := range claimBits {
				if strings.EqualFold(name, key) {
					return fmt.Errorf("claims: %q is not spelled %q", key, name)
				}
			}
			if err := d.skip(); err != nil {
				return err
			}
		}
		if known {
			if seen&bit != 0 {
				return fmt.Errorf("claims: %q appears twice", key)
			}
			seen |= bit
			if err := d.claim(&out, key); err != nil {
				return fmt.Errorf("claims: %q: %w", key, err)
			}
		}
		d.ws()
		if d.eat(',') {
			continue
		}
		if d.eat('}') {
			return d.end(c, &out)
		}
		return errors.New("claims: malformed object")
	}
}

// claimBits numbers the claims Claims holds, to find one named twice.
var claimBits = map[string]uint16{
	"iss": 1 << 0, "sub": 1 << 1, "aud": 1 << 2, "exp": 1 << 3, "nbf": 1 << 4, "iat": 1 << 5,
	"jti": 1 << 6, "sid": 1 << 7, "ver": 1 << 8, "iat_us": 1 << 9, "rid": 1 << 10,
	"aal": 1 << 11, "amr": 1 << 12,
}

// claimNames is claimBits the other way round.
var claimNames = func() map[uint16]string {
	m := make(map[uint16]string, len(claimBits))
	for name, bit := range claimBits {
		m[bit] = name
	}
	return m
}()

// claimsDecoder reads valid JSON (json.Unmarshal checked it).
type claimsDecoder struct {
	b []byte
	i int
}

func (d *claimsDecoder) end(c, out *Claims) error {
	if d.ws(); d.i != len(d.b) {
		return errors.New("claims: data after the object")
	}
	*c = *out
	return nil
}

func (d *claimsDecoder) ws() {
	for d.i < len(d.b) && (d.b[d.i] == ' ' || d.b[d.i] == '\t' || d.b[d.i] == '\n' || d.b[d.i] == '\r') {
		d.i++
	}
}

func (d *claimsDecoder) eat(ch byte) bool {
	if d.i < len(d.b) && d.b[d.i] == ch {
		d.i++
		return true
	}
	return false
}

func (d *claimsDecoder) peek() byte {
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

// key reads an object key, raw when it has no escapes.
func (d *claimsDecoder) key() ([]byte, error) {
	if d.peek() != '"' {
		return nil, errors.New("claims: malformed object")
	}
	start := d.i + 1
	for j := start; j < len(d.b); j++ {
		switch d.b[j] {
		case '\\':
			s, err := d.str()
			return []byte(s), err
		case '"':
			d.i = j + 1
			return d.b[start:j], nil
		}
	}
	return nil, errors.New("unterminated string")
}

// str reads a string. One with escapes or bytes beyond ASCII is decoded
// by encoding/json, which also replaces invalid UTF-8 with U+FFFD.
func (d *claimsDecoder) str() (string, error) {
	if !d.eat('"') {
		return "", errors.New("not a string")
	}
	start, escaped := d.i, false
	for d.i < len(d.b) {
		switch c := d.b[d.i]; {
		case c >= 0x80:
			escaped = true
		case c == '\\':
			escaped = true
			d.i += 2
			continue
		case c == '"':
			raw := d.b[start:d.i]
			d.i++
			if !escaped {
				if s, ok := internedClaim(raw); ok {
					return s, nil
				}
				return string(raw), nil
			}
			var s string
			if err := json.Unmarshal(d.b[start-1:d.i], &s); err != nil {
				return "", err
			}
			return s, nil
		}
		d.i++
	}
	return "", errors.New("unterminated string")
}

// literal reads true, false, null or a number, raw.
func (d *claimsDecoder) literal() []byte {
	start := d.i
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return d.b[start:d.i]
		}
		d.i++
	}
	return d.b[start:d.i]
}

// null reads a null if there is one.
func (d *claimsDecoder) null() bool {
	if strings.HasPrefix(string(d.b[d.i:min(len(d.b), d.i+4)]), "null") {
		d.i += 4
		return true
	}
	return false
}

// skip reads any value.
func (d *claimsDecoder) skip() error {
	switch d.peek() {
	case '"':
		_, err := d.str()
		return err
	case '{', '[':
		depth := 0
		for d.i < len(d.b) {
			switch d.b[d.i] {
			case '"':
				if _, err := d.str(); err != nil {
					return err
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					d.i++
					return nil
				}
			}
			d.i++
		}
		return errors.New("unterminated value")
	default:
		d.literal()
		return nil
	}
}

// stringValue reads a string or null ("").
func (d *claimsDecoder) stringValue() (string, error) {
	if d.null() {
		return "", nil
	}
	if d.peek() != '"' {
		return "", errors.New("want a string")
	}
	return d.str()
}

// claim reads the value of claim key into out.
func (d *claimsDecoder) claim(out *Claims, key string) error {
	var err error
	switch key {
	case "iss":
		out.Issuer, err = d.stringValue()
	case "sub":
		out.Subject, err = d.stringValue()
	case "jti":
		out.ID, err = d.stringValue()
	case "sid":
		out.SID, err = d.stringValue()
	case "rid":
		out.RID, err = d.stringValue()
	case "aal":
		out.AAL, err = d.stringValue()
	case "amr":
		out.AMR, err = d.strings()
	case "aud":
		out.Audience, err = d.audience()
	case "exp":
		out.ExpiresAt, err = d.date()
	case "nbf":
		out.NotBefore, err = d.date()
	case "iat":
		out.IssuedAt, err = d.date()
	case "ver":
		if d.null() {
			out.Ver = nil
			return nil
		}
		v, err := d.int()
		if err != nil {
			return err
		}
		out.Ver = &v
	case "iat_us":
		if d.null() {
			return nil
		}
		out.IatMicros, err = d.int()
	}
	return err
}

// int reads an integer, as encoding/json does into an int64.
func (d *claimsDecoder) int() (int64, error) {
	if d.peek() == '"' {
		return 0, errors.New("want a number")
	}
	raw := d.literal()
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("want an integer, got %.20s", raw)
	}
	return n, nil
}

// date reads a NumericDate: whole seconds at once, anything else as
// golang-jwt reads it.
func (d *claimsDecoder) date() (*jwt.NumericDate, error) {
	if d.null() {
		return nil, nil
	}
	start := d.i
	if d.peek() == '"' {
		if _, err := d.str(); err != nil {
			return nil, err
		}
	} else {
		raw := d.literal()
		if n, err := strconv.ParseInt(string(raw), 10, 64); err == nil && jwt.TimePrecision == time.Second {
			return jwt.NewNumericDate(time.Unix(n, 0)), nil
		}
	}
	var nd jwt.NumericDate
	if err := nd.UnmarshalJSON(d.b[start:d.i]); err != nil {
		return nil, err
	}
	return &nd, nil
}

// audience reads aud: a string or an array of strings, as
// jwt.ClaimStrings does (anything else goes to jwt.ClaimStrings itself).
func (d *claimsDecoder) audience() (jwt.ClaimStrings, error) {
	if d.null() {
		return nil, nil
	}
	if d.peek() == '"' {
		s, err := d.str()
		return jwt.ClaimStrings{s}, err
	}
	start := d.i
	if d.eat('[') {
		var out jwt.ClaimStrings // an empty array gives nil, as in jwt.ClaimStrings
		for {
			d.ws()
			if d.eat(']') {
				return out, nil
			}
			if d.peek() != '"' {
				break
			}
			s, err := d.str()
			if err != nil {
				return nil, err
			}
			out = append(out, s)
			d.ws()
			if d.eat(',') {
				continue
			}
			if d.eat(']') {
				return out, nil
			}
			break
		}
		d.i = start
	}
	if err := d.skip(); err != nil {
		return nil, err
	}
	var cs jwt.ClaimStrings
	if err := cs.UnmarshalJSON(d.b[start:d.i]); err != nil {
		return nil, err
	}
	return cs, nil
}

// strings reads a []string as encoding/json does: plain strings at once,
// anything else (nulls in the array, escapes, other types) by
// encoding/json itself, so that the two cannot differ.
func (d *claimsDecoder) strings() ([]string, error) {
	if d.null() {
		return nil, nil
	}
	start := d.i
	if d.eat('[') {
		out := make([]string, 0, 2) // an empty array gives an empty slice, as in encoding/json
		for {
			d.ws()
			if d.eat(']') {
				return out, nil
			}
			if d.peek() != '"' {
				break
			}
			s, err := d.str()
			if err != nil {
				return nil, err
			}
			out = append(out, s)
			d.ws()
			if d.eat(',') {
				continue
			}
			if d.eat(']') {
				return out, nil
			}
			break
		}
		d.i = start
	}
	if err := d.skip(); err != nil {
		return nil, err
	}
	var out []string
	if err := json.Unmarshal(d.b[start:d.i], &out); err != nil {
		return nil, err
	}
	return out, nil
}

// internedClaim returns the values of aal and amr without allocating:
// every token carries them, and the verification path is the hottest of
// the server. (The switch on string(b) does not allocate.)
func internedClaim(b []byte) (string, bool) {
	switch string(b) {
	case AAL1:
		return AAL1, true
	case AAL2:
		return AAL2, true
	case AMRPassword:
		return AMRPassword, true
	case AMROTP:
		return AMROTP, true
	case AMRRecovery:
		return AMRRecovery, true
	}
	return "", false
}
