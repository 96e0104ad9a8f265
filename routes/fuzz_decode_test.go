package routes

// Fuzz targets for the two parsers every request body and every email goes
// through. `go test` runs their seeds as ordinary tests; .ci/fuzz runs each
// target for a while with -fuzz.

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"
)

// fuzzBodies are the hostile bodies of the API tests (api_test.go,
// refresh_test.go), plus a few shapes of JSON they do not try.
var fuzzBodies = []string{
	``,
	` `,
	`{}`,
	`null`,
	`"x"`,
	`[{"email":"a@example.com","password":"pw"}]`,
	`{"email":"a@example.com","password":"pw"`,
	`{"email":"a@example.com","password":"pw"}`,
	`{"email":"a@example.com","password":"pw","device_name":"laptop"}`,
	`{"email":"a@example.com","password":"pw","role":"admin"}`,
	`{"email":"a@example.com","password":"pw","email":"b@example.com"}`,
	`{"email":"a@example.com","password":"pw"}{}`,
	`{"email":"a@example.com","password":"pw"} x`,
	`{"email":1,"password":"pw"}`,
	`{"email":null}`,
	`{"email":"\u0000\ud800","password":"\"\\"}`,
	"{\"email\":\"\xff\xfe\"}",
	`{"EMAIL":"a@example.com"}`,
	`{"email":"a@example.com","Email":"b@example.com"}`,
	`{"password":"a","PASSWORD":"b"}`,
	"{\"password\":\"a\",\"pa\u017f\u017fword\":\"b\"}",
	"{\"token\":\"a\",\"to\u212aen\":\"b\"}",
	`{"refresh_token":"x"}`,
	`{"refresh_token":""}`,
	`{"refresh_token":1}`,
	`{"token":"x"}`,
	`refresh_token=x`,
	`{"pad":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`,
	`{"email":"a@example.com"   ,   "password" : "pw"  }  `,
	`{"":""}`,
	`{"email":"` + strings.Repeat("a", 300) + `"}`,
}

// FuzzDecodeBytes: the strict decoder never panics; it refuses with a 400
// invalid_request whose message is bounded; and what it accepts is a single
// valid JSON object that survives a re-encode and a second decode
// unchanged.
func FuzzDecodeBytes(f *testing.F) {
	for _, b := range fuzzBodies {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var got loginRequest
		err := decodeBytes(body, &got)
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || ae.Code != "invalid_request" {
				t.Fatalf("decodeBytes(%q) error %#v, want a 400 invalid_request", body, err)
			}
			if ae.Message == "" || len(ae.Message) > 300 {
				t.Fatalf("decodeBytes(%q): message of %d bytes, want 1..300", body, len(ae.Message))
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("decodeBytes accepted invalid JSON %q", body)
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(body, &obj); err != nil {
			t.Fatalf("decodeBytes accepted %q, which is not a JSON object: %v", body, err)
		}
		// encoding/json matches keys to fields without regard to case, so
		// "email" and "EMAIL" are the same field given twice.
		keys := make([]string, 0, len(obj))
		for k := range obj {
			for _, seen := range keys {
				if strings.EqualFold(k, seen) {
					t.Fatalf("decodeBytes accepted %q, which gives one field twice (%q, %q)", body, seen, k)
				}
			}
			keys = append(keys, k)
		}
		again, err := json.Marshal(got)
		if err != nil {
			t.Fatalf("re-encode %+v: %v", got, err)
		}
		var back loginRequest
		if err := decodeBytes(again, &back); err != nil {
			t.Fatalf("decodeBytes(%q) = %+v, whose encoding %q it refuses: %v", body, got, again, err)
		}
		if back != got {
			t.Fatalf("decodeBytes(%q) = %+v, but its encoding decodes to %+v", body, got, back)
		}
	})
}

// fuzzEmails are the addresses of the API tests, good and bad, plus
// spellings that stress the parser (quoting, comments, IP literals,
// Unicode whose case mapping changes its length).
var fuzzEmails = []string{
	"user1@example.com",
	"race@example.com",
	" RACE@example.com",
	"Race@Example.Com\t",
	"not-an-email",
	"a@localhost",
	"New <new@example.com>",
	strings.Repeat("a", 250) + "@example.com",
	strings.Repeat("a", 242) + "@example.com",
	"",
	" ",
	"@example.com",
	"a@",
	"a@@example.com",
	`"a b"@example.com`,
	`"a\"b"@example.com`,
	"a(comment)@example.com",
	"a@[127.0.0.1]",
	"a@example.com.",
	"a.@example.com",
	"a..b@example.com",
	"İ@example.com",
	"ǅ@example.com",
	"ß@example.com",
	"\u212a@example.com",
	"a@éxample.com",
	"a@example.com\x00",
	"a\r\n@example.com",
	"\xff@example.com",
}

// FuzzNormalizeEmail: an accepted address comes out trimmed, lower-case,
// at most 254 bytes, valid UTF-8 with an @ and a dot after it, and
// normalizing it again changes nothing; a refused one is a 400
// invalid_request.
func FuzzNormalizeEmail(f *testing.F) {
	for _, e := range fuzzEmails {
		f.Add(e)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := normalizeEmail(raw)
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || ae.Code != "invalid_request" {
				t.Fatalf("normalizeEmail(%q) error %#v, want a 400 invalid_request", raw, err)
			}
			return
		}
		switch {
		case got != strings.ToLower(got):
			t.Fatalf("normalizeEmail(%q) = %q, not lower-case", raw, got)
		case got != strings.TrimSpace(got):
			t.Fatalf("normalizeEmail(%q) = %q, not trimmed", raw, got)
		case len(got) > 254:
			t.Fatalf("normalizeEmail(%q) = %d bytes, over 254", raw, len(got))
		case !utf8.ValidString(got):
			t.Fatalf("normalizeEmail(%q) = %q, not valid UTF-8", raw, got)
		case !strings.Contains(got, "@") || !strings.Contains(got[strings.LastIndex(got, "@"):], "."):
			t.Fatalf("normalizeEmail(%q) = %q, no @ and dot", raw, got)
		}
		again, err := normalizeEmail(got)
		if err != nil || again != got {
			t.Fatalf("normalizeEmail(%q) = %q, but normalizing that gives %q, %v", raw, got, again, err)
		}
		// Surrounding space and ASCII case do not make another account.
		if isASCII(got) {
			if other, err := normalizeEmail(" " + strings.ToUpper(got) + "\t"); err != nil || other != got {
				t.Fatalf("normalizeEmail(%q) = %q, but its upper-case spelling gives %q, %v", raw, got, other, err)
			}
		}
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
