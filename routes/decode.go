package routes

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
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
	body, err := readJSONBody(c)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return invalidRequest("the request body must be a JSON object")
	}
	return decodeBytes(body, dst)
}

// readJSONBody reads the body of a JSON endpoint. A body must come as
// Content-Type: application/json (parameters such as charset allowed):
// a cross-site HTML form can send only form types and text/plain, and a
// cross-origin fetch with application/json must pass a CORS preflight, so
// the check keeps other sites from posting JSON-shaped forms (login CSRF).
// A request without a body (logout, a refresh from the cookie) needs no
// Content-Type.
func readJSONBody(c *gin.Context) ([]byte, error) {
	if hasBody(c.Request) && !isJSON(c.Request.Header.Get("Content-Type")) {
		return nil, errUnsupportedMediaType
	}
	return readBody(c)
}

// hasBody reports whether a request announces a body: a non-zero
// Content-Length, or one unknown (chunked).
func hasBody(r *http.Request) bool {
	return r.ContentLength != 0 || len(r.TransferEncoding) > 0
}

// isJSON reports whether a Content-Type is application/json, whatever its
// parameters.
func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
}

// bodyDeadline bounds the reading of every request body, on every route:
// past server.body_timeout the connection's read fails and it is closed.
// Without it a route that never reads its body (verify) would leave the
// unread body to net/http, which drains it after the handler with no
// deadline at all, holding the connection and its descriptor for as long
// as the client keeps it open. Only requests that announce a body get the
// deadline: the server has no ReadTimeout because that would arm a timer
// on every request, the bodyless verifications (the hottest path) too.
// net/http resets the read deadline before reading the next request on
// the connection. A writer that cannot take a deadline (a test recorder,
// an application's wrapper) goes on without one.
func (s *server) bodyDeadline() gin.HandlerFunc {
	d := s.cfg.Server.BodyTimeout
	if d <= 0 {
		d = defaultBodyTimeout
	}
	return func(c *gin.Context) {
		if hasBody(c.Request) {
			_ = http.NewResponseController(c.Writer).SetReadDeadline(time.Now().Add(d))
		}
		c.Next()
	}
}

// defaultBodyTimeout is server.body_timeout's default, for a
// configuration not built by config.Load (an application's own).
const defaultBodyTimeout = 15 * time.Second

// readBody reads a body of at most maxBody bytes, under the deadline that
// bodyDeadline set.
func readBody(c *gin.Context) ([]byte, error) {
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
