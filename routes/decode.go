package routes

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/gin-gonic/gin"
)

// maxBody is the most any request body may carry.
const maxBody = 1 << 20

// decode reads the JSON body into dst strictly: at most 1 MiB, one JSON
// object, no unknown or duplicate fields, nothing after it. gin's binding
// accepts all of those, so it is not used.
func decode(c *gin.Context, dst any) error {
	body, err := readBody(c)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return invalidRequest("the request body must be a JSON object")
	}
	return decodeBytes(body, dst)
}

// bodyReadTimeout bounds the reading of a request body: a client that
// sends its body slowly cannot hold a handler. It is set here, on the
// requests that have a body, rather than as the server's ReadTimeout, which
// would re-arm a timer on every request, the bodyless verifications too.
const bodyReadTimeout = 15 * time.Second

func readBody(c *gin.Context) ([]byte, error) {
	// The deadline covers the body only: the headers are bounded by the
	// server's ReadHeaderTimeout. A writer that cannot take a deadline
	// (a test recorder) just reads without one.
	_ = http.NewResponseController(c.Writer).SetReadDeadline(time.Now().Add(bodyReadTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errTooLarge
		}
		return nil, invalidRequest("could not read the request body")
	}
	return body, nil
}

func decodeBytes(body []byte, dst any) error {
	if err := checkDuplicates(body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) && ute.Field != "" {
			return invalidRequest(fmt.Sprintf("field %q has the wrong type", ute.Field))
		}
		return invalidRequest("the request body is not valid JSON for this endpoint: " + jsonProblem(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return invalidRequest("unexpected data after the JSON object")
	}
	return nil
}

// jsonProblem keeps the part of a decoding error that helps the client
// (an unknown field's name, a syntax error's position) without echoing
// values.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	}
	msg := err.Error()
	if len(msg) > 120 {
		msg = msg[:120]
	}
	return msg
}

// checkDuplicates rejects a top-level object that names a field twice:
// encoding/json would silently keep the last one. Twice includes two
// spellings that differ in case ("email", "EMAIL", "paſſword" for
// "password"), because encoding/json matches names to fields that way.
func checkDuplicates(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil {
		return invalidRequest("the request body is not valid JSON")
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return invalidRequest("the request body must be a JSON object")
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return invalidRequest("the request body is not valid JSON")
		}
		key, _ := tok.(string)
		if seen[foldKey(key)] {
			return invalidRequest(fmt.Sprintf("field %q appears more than once", key))
		}
		seen[foldKey(key)] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return invalidRequest("the request body is not valid JSON")
		}
	}
	return nil
}

// foldKey maps a key to one spelling shared by every key that
// bytes.EqualFold, and so encoding/json's field matching, holds equal to
// it: each rune becomes the smallest rune of its case-folding orbit.
func foldKey(k string) string {
	return strings.Map(func(r rune) rune {
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			m = min(m, f)
		}
		return m
	}, k)
}
