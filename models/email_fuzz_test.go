package models

import (
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/text/unicode/norm"
)

// FuzzEmailCanonical checks the canonical form of NormalizeEmail: what it
// returns is a fixed point (normalizing it again changes nothing), in NFC,
// lower-case, with an ASCII domain, at most 254 bytes; and the spellings
// of one address that it promises to merge (another normalization form,
// ASCII upper case, the Unicode form of the domain) give that same
// address. A spelling that escaped any of these would be a second account
// and a second brute-force budget for one mailbox.
func FuzzEmailCanonical(f *testing.F) {
	for _, s := range []string{
		"ceo@company.com", "CEO@Company.com", "ceo@compány.com", "ce\u0301o@company.com", "josé@example.com",
		"ann@bücher.de", "ANN@XN--BCHER-KVA.DE", "K@example.com", "ſ@example.com", "İ@x.com", "a@ü.com",
		"a@foo_bar.com", "a@例え.テスト", "a@EXAMPLE。COM", " x@y.z\t", "Ann <ann@example.com>", "ß@straße.de",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := NormalizeEmail(raw)
		if err != nil {
			return
		}
		at := strings.LastIndex(got, "@")
		switch {
		case !utf8.ValidString(got) || !norm.NFC.IsNormalString(got):
			t.Fatalf("NormalizeEmail(%q) = %q, not NFC UTF-8", raw, got)
		case len(got) > 254:
			t.Fatalf("NormalizeEmail(%q) = %q, over 254 bytes", raw, got)
		case at < 0 || !isASCII(got[at:]):
			t.Fatalf("NormalizeEmail(%q) = %q, domain not ASCII", raw, got)
		case strings.ToLower(got) != got:
			t.Fatalf("NormalizeEmail(%q) = %q, not lower-case", raw, got)
		}
		same := map[string]string{
			"itself":       got,
			"NFD":          norm.NFD.String(got),
			"ASCII upper":  asciiUpper(got),
			"surrounded":   " \t" + got + "\r\n",
			"NFD of input": norm.NFD.String(raw),
		}
		if u, err := idna.ToUnicode(got[at+1:]); err == nil {
			same["Unicode domain"] = got[:at+1] + u
		}
		for what, s := range same {
			if again, err := NormalizeEmail(s); err != nil || again != got {
				t.Fatalf("NormalizeEmail(%q) = %q, but its %s spelling %q gives %q, %v", raw, got, what, s, again, err)
			}
		}
	})
}

func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}
