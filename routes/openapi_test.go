package routes_test

// The OpenAPI document (package apidoc) against the router: it must be
// valid, name exactly the router's routes, and allow every answer that
// any routes test receives (env.send checks each one with checkAnswer).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/gin-gonic/gin"

	"github.com/revocable/authserver/apidoc"
	"github.com/revocable/authserver/config"
)

// Extensions of the document that mark operations the router registers
// only sometimes.
const (
	// xCondition names the setting that registers an operation
	// (demo.enabled).
	xCondition = "x-authserver-condition"
	// xPending marks an operation that another branch is adding; the
	// test fails once the router has it, so that the mark goes at merge.
	xPending = "x-authserver-pending"
)

// openAPI is the loaded document, shared by every test of the package.
type openAPI struct {
	doc    *openapi3.T
	router routers.Router
}

var loadOpenAPI = sync.OnceValues(func() (*openAPI, error) {
	b, err := apidoc.JSON()
	if err != nil {
		return nil, err
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(b)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("invalid: %w", err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	return &openAPI{doc: doc, router: router}, nil
})

// checkAnswer fails e's test unless the document allows the answer to hr:
// a documented status with its headers and body. A request that matches no
// documented operation must have got the 404 not_found error. A CORS
// preflight (answered by the CORS middleware on every path) must be an
// empty 204 naming the origin.
func (e *env) checkAnswer(hr *http.Request, out *resp) {
	e.t.Helper()
	api, err := loadOpenAPI()
	if err != nil {
		e.t.Errorf("the OpenAPI document: %v", err)
		return
	}
	if problem := api.check(hr, out); problem != "" {
		e.t.Errorf("%s %s answered %d %s: the OpenAPI document does not allow it: %s", hr.Method, hr.URL.Path, out.Code, out.Raw, problem)
	}
}

func (api *openAPI) check(hr *http.Request, out *resp) string {
	route, params, err := api.router.FindRoute(hr)
	preflight := hr.Method == http.MethodOptions && hr.Header.Get("Origin") != "" && hr.Header.Get("Access-Control-Request-Method") != ""
	if preflight && out.Code == http.StatusNoContent && (err != nil || route.Operation.Responses.Status(http.StatusNoContent) == nil) {
		if len(out.Raw) != 0 || out.Header.Get("Access-Control-Allow-Origin") == "" {
			return "a preflight answer must be empty and name the allowed origin"
		}
		return ""
	}
	if err != nil {
		// No documented operation: gin's NoRoute answer.
		if out.Code != http.StatusNotFound {
			return fmt.Sprintf("no documented operation (%v), and not the 404 of an unknown route", err)
		}
		return api.checkError(out, "not_found")
	}
	if hr.Method == http.MethodHead {
		// kin-openapi does not validate answers to HEAD.
		if route.Operation.Responses.Status(out.Code) == nil {
			return "status not documented"
		}
		return ""
	}
	opts := &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true, AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: hr, PathParams: params, Route: route, Options: opts},
		Status:                 out.Code,
		Header:                 out.Header,
		Options:                opts,
	}
	in.SetBodyBytes(out.Raw)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		return err.Error()
	}
	return ""
}

// checkError checks an error answer against the Error schema and its code.
func (api *openAPI) checkError(out *resp, code string) string {
	var v any
	if err := json.Unmarshal(out.Raw, &v); err != nil {
		return "the body is not JSON"
	}
	if err := api.doc.Components.Schemas["Error"].Value.VisitJSON(v); err != nil {
		return "not the Error schema: " + err.Error()
	}
	if got := out.errCode(); got != code {
		return fmt.Sprintf("code %q, want %q", got, code)
	}
	if out.Header.Get("X-Request-Id") == "" {
		return "no X-Request-Id"
	}
	return ""
}

// TestOpenAPIDocument: the document is valid OpenAPI 3, served at
// /api/v1/openapi.json as JSON, and its error codes are the ones the
// narrowed error schemas use.
func TestOpenAPIDocument(t *testing.T) {
	api, err := loadOpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, "sqlite", "password_key")
	r := e.do(http.StatusOK, req{method: "GET", path: "/api/v1/openapi.json"})
	want, err := apidoc.JSON()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.Raw, want) {
		t.Errorf("GET /api/v1/openapi.json is not the embedded document")
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	if r.str("openapi") == "" || api.doc.Paths.Len() == 0 {
		t.Errorf("the served document has no openapi version or no paths")
	}
	codes := api.doc.Components.Schemas["ErrorCode"].Value.Enum
	for name, s := range api.doc.Components.Schemas {
		if len(s.Value.AllOf) != 2 || s.Value.AllOf[0].Ref != "#/components/schemas/Error" {
			continue
		}
		narrowed := s.Value.AllOf[1].Value.Properties["error"].Value.Properties["code"].Value.Enum
		for _, c := range narrowed {
			if !slices.Contains(codes, c) {
				t.Errorf("schema %s narrows to %v, which is not in ErrorCode", name, c)
			}
		}
	}
}

// TestOpenAPIRoutes: every route of the router is in the document and
// every operation of the document is a route, with the demo routes
// registered only with demo.enabled and operations marked pending (added
// on another branch) not registered yet.
func TestOpenAPIRoutes(t *testing.T) {
	api, err := loadOpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	for _, demo := range []bool{false, true} {
		t.Run(fmt.Sprintf("demo=%v", demo), func(t *testing.T) {
			e := newEnv(t, "sqlite", "password_key", func(c *config.Config) {
				c.Demo.Enabled = demo
				c.Introspection.Clients = []string{"rs:0123456789abcdef0123"}
			})
			engine, ok := e.handler.(*gin.Engine)
			if !ok {
				t.Fatalf("the handler is a %T, not a *gin.Engine", e.handler)
			}
			routes := map[string]bool{}
			for _, r := range engine.Routes() {
				routes[r.Method+" "+openAPIPath(r.Path)] = true
			}
			documented := map[string]bool{}
			for path, item := range api.doc.Paths.Map() {
				for method, op := range item.Operations() {
					key := method + " " + path
					switch {
					case op.Extensions[xPending] != nil:
						if routes[key] {
							t.Errorf("%s is registered: remove %s from it in apidoc/openapi.yaml", key, xPending)
						}
						delete(routes, key)
						continue
					case op.Extensions[xCondition] != nil:
						if op.Extensions[xCondition] != "demo.enabled" {
							t.Errorf("%s: unknown condition %v", key, op.Extensions[xCondition])
						}
						if !demo {
							continue
						}
					}
					documented[key] = true
				}
			}
			for key := range routes {
				if !documented[key] {
					t.Errorf("route %s is not in the OpenAPI document", key)
				}
			}
			for key := range documented {
				if !routes[key] {
					t.Errorf("the OpenAPI document has %s, which is not a route", key)
				}
			}
		})
	}
}

var ginParam = regexp.MustCompile(`[:*]([A-Za-z_]+)`)

// openAPIPath turns gin's /sessions/:id and /demo/*file into OpenAPI's
// /sessions/{id} and /demo/{file}.
func openAPIPath(p string) string { return ginParam.ReplaceAllString(p, "{$1}") }

// TestOpenAPIChecksAnswers: the answer check fails on what the document
// does not allow, so that passing tests mean something.
func TestOpenAPIChecksAnswers(t *testing.T) {
	api, err := loadOpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	jsonH := func(kv ...string) http.Header {
		return hdr(append([]string{"Content-Type", "application/json; charset=utf-8", "X-Request-Id", "abc-1", "Cache-Control", "no-store"}, kv...)...)
	}
	user := `{"user":{"id":"1","email":"a@example.com","created_at":"2026-01-01T00:00:00Z"}}`
	cases := []struct {
		name, method, path string
		code               int
		header             http.Header
		body               string
		ok                 bool
	}{
		{"a documented answer", "GET", "/api/v1/me", 200, jsonH(), user, true},
		{"an undocumented status", "GET", "/api/v1/me", 418, jsonH(), `{}`, false},
		{"an extra field", "GET", "/api/v1/me", 200, jsonH(), `{"user":{"id":"1","email":"a@example.com","created_at":"2026-01-01T00:00:00Z","password_hash":"x"}}`, false},
		{"no request id", "GET", "/api/v1/me", 200, hdr("Content-Type", "application/json", "Cache-Control", "no-store"), user, false},
		{"cacheable", "GET", "/api/v1/me", 200, hdr("Content-Type", "application/json", "X-Request-Id", "abc-1"), user, false},
		{"an error code this answer cannot carry", "GET", "/api/v1/me", 401, jsonH("WWW-Authenticate", `Bearer realm="authserver"`), `{"error":{"code":"email_taken","message":"m","request_id":"abc-1"}}`, false},
		{"an unknown error code", "POST", "/api/v1/auth/register", 400, jsonH(), `{"error":{"code":"oops","message":"m","request_id":"abc-1"}}`, false},
		{"429 without Retry-After", "POST", "/api/v1/auth/login", 429, jsonH(), `{"error":{"code":"rate_limited","message":"m","request_id":"abc-1"}}`, false},
		{"the 404 of an unknown route", "GET", "/api/v1/nope", 404, jsonH(), `{"error":{"code":"not_found","message":"m","request_id":"abc-1"}}`, true},
		{"an unknown route that answers", "GET", "/api/v1/nope", 200, jsonH(), `{}`, false},
		{"introspection, inactive with a claim", "POST", "/api/v1/auth/introspect", 200, jsonH(), `{"active":false,"sub":"1"}`, false},
		{"introspection, inactive", "POST", "/api/v1/auth/introspect", 200, jsonH(), `{"active":false}`, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hr := httptest.NewRequest(c.method, c.path, nil)
			problem := api.check(hr, &resp{Code: c.code, Header: c.header, Raw: []byte(c.body), Body: decodeObject(c.body)})
			if (problem == "") != c.ok {
				t.Errorf("check: %q, want ok=%v", problem, c.ok)
			}
		})
	}
}

func decodeObject(s string) map[string]any {
	var m map[string]any
	_ = json.NewDecoder(strings.NewReader(s)).Decode(&m)
	return m
}
