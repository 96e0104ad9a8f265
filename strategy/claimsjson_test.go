package strategy

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// stdClaims is Claims without its UnmarshalJSON: what encoding/json gives.
type stdClaims Claims

// claimsSeeds are the shapes a decoder meets: our tokens' claims, and
// hostile or odd ones.
var claimsSeeds = []string{
	`{"iss":"authserver","sub":"42","aud":["authserver"],"exp":1795917881,"iat":1795916981,"jti":"BsZiTyLNqqmstAcAEaYH0A","sid":"EHggWbeDwjIZtqDvvAw2qg"}`,
	`{"iss":"a","sub":"1","aud":"authserver","exp":1.5e9,"nbf":1700000000.25,"iat":"1700000000","ver":3,"iat_us":1700000000123456,"rid":"r"}`,
	`{}`,
	` { "sub" : "1" , "extra" : {"a":[1,2,{"b":"}"}]}, "n":null, "t":true } `,
	`{"sub":"a\"b\\u00e9","aud":["x","y\n"],"jti":null,"ver":null,"iat_us":null,"exp":null}`,
	`{"aud":[]}`, `{"aud":null}`, `{"aud":[1]}`, `{"aud":["a",null]}`, `{"aud":{"x":1}}`,
	`{"sub":1}`, `{"exp":"soon"}`, `{"ver":1.5}`, `{"iat_us":1e3}`, `{"ver":"1"}`,
	`{"sub":"1","sub":"2"}`, `{"Sub":"1"}`, `{"SUB":"1","sub":"2"}`, `{"s\u0075b":"1"}`,
	`[]`, `"x"`, `null`, `{"sub":"1"} {}`,
	`{"sid":"s","aal":"aal2","amr":["pwd","otp"]}`, `{"aal":null,"amr":null}`, `{"amr":[]}`,
	`{"amr":["pwd",null]}`, `{"amr":"pwd"}`, `{"amr":[1]}`, `{"aal":1}`, `{"amr":["a\u00e9"," b" ]}`,
	`{"AMR":["pwd"]}`, `{"aal":"aal1","aal":"aal2"}`, `{"amr":[["x"]]}`, `{"amr":{"a":"b"}}`,
}

// FuzzClaimsJSON: the fast decoder gives what encoding/json gives, or an
// error where encoding/json would have made a silent choice (a claim named
// twice, or in another letter case).
func FuzzClaimsJSON(f *testing.F) {
	for _, s := range claimsSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var fast Claims
		fastErr := json.Unmarshal(b, &fast)
		var std stdClaims
		stdErr := json.Unmarshal(b, &std)
		switch {
		case stdErr != nil && fastErr == nil:
			t.Fatalf("%q: encoding/json refuses it (%v), the fast decoder gives %+v", b, stdErr, fast)
		case stdErr == nil && fastErr != nil:
			if !strings.Contains(fastErr.Error(), "twice") && !strings.Contains(fastErr.Error(), "is not spelled") {
				t.Fatalf("%q: encoding/json gives %+v, the fast decoder fails: %v", b, std, fastErr)
			}
		case stdErr == nil && fastErr == nil:
			if !reflect.DeepEqual(Claims(std), fast) {
				t.Fatalf("%q:\n encoding/json %+v\n fast         %+v", b, std, fast)
			}
		}
	})
}

// TestClaimsJSONStricter: what the fast decoder refuses that encoding/json
// would have taken.
func TestClaimsJSONStricter(t *testing.T) {
	for _, b := range []string{`{"sub":"1","sub":"2"}`, `{"Sub":"1"}`, `{"exp":1,"exp":2}`} {
		var c Claims
		if err := json.Unmarshal([]byte(b), &c); err == nil {
			t.Errorf("%s: decoded to %+v, want an error", b, c)
		}
	}
}

func BenchmarkClaimsJSON(b *testing.B) {
	// Our tokens' claims, with the assurance every token carries.
	raw := []byte(claimsSeeds[0][:len(claimsSeeds[0])-1] + `,"aal":"aal2","amr":["pwd","otp"]}`)
	b.Run("fast", func(b *testing.B) {
		for b.Loop() {
			var c Claims
			if err := json.Unmarshal(raw, &c); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		for b.Loop() {
			var c stdClaims
			if err := json.Unmarshal(raw, &c); err != nil {
				b.Fatal(err)
			}
		}
	})
}
