// Package remoteauth lets a resource server (any Go service that receives
// requests carrying an authserver access token) ask the auth server whether
// the token is still valid, on every request, through
// GET /api/v1/auth/verify. Asking, rather than checking the JWT locally, is
// what makes revocation work: a token taken back by logout, logout-all, a
// password change or account deletion is refused at once.
//
// A Verifier fails closed: when the auth server cannot be reached, times
// out, or answers anything but a clear yes (200) or no (401), the request
// is refused with 503, never let through. It keeps a bounded pool of
// connections to the auth server and bounds every exchange by a timeout.
// An optional positive cache trades revocation delay for fewer requests;
// it is off by default (see Config.CacheTTL).
//
// The core is net/http (Middleware, Verify); the Gin adapter is the
// subpackage ginauth, so that a net/http service does not link Gin.
//
// Name: remoteauth, not client, because it is what a resource server uses
// to authenticate requests against the remote auth server, and because
// "client" is the name of a variable in most programs that would import it.
package remoteauth

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// VerifyPath is the auth server's endpoint that Verify asks.
const VerifyPath = "/api/v1/auth/verify"

// Errors of Verify, to tell with errors.Is.
var (
	// ErrInvalidToken: the auth server answered that the token is not
	// valid (missing, malformed, expired, revoked), or the token was
	// malformed in a way that need not be asked. The request gets 401.
	ErrInvalidToken = errors.New("remoteauth: invalid token")
	// ErrUnavailable: no valid answer could be had (network error,
	// timeout, 5xx, an answer that is not the verify endpoint's). The
	// request gets 503: it is never let through. The error also wraps the
	// cause.
	ErrUnavailable = errors.New("remoteauth: auth server unavailable")
)

const (
	defaultTimeout   = 2 * time.Second
	defaultMaxConns  = 32
	defaultCacheSize = 10000
	// maxAnswer bounds what is read of the auth server's answer; a verify
	// answer is a few hundred bytes.
	maxAnswer = 64 << 10
	// maxTokenBytes is the server's own limit (strategy.MaxTokenBytes):
	// a longer token is refused without asking.
	maxTokenBytes = 4096
)

// Config configures a Verifier. Only URL is required.
type Config struct {
	// URL is the auth server's base URL, e.g. http://auth.internal:8080
	// (http or https, no query). VerifyPath is appended to its path.
	URL string
	// Timeout bounds one verification: connecting, sending, waiting for
	// the answer and reading it. Default 2s. When it passes the request
	// gets 503.
	Timeout time.Duration
	// MaxConns bounds the connections to the auth server; requests beyond
	// it wait for a free one, within Timeout. Up to MaxConns idle
	// connections are kept for reuse. Default 32.
	MaxConns int
	// CacheTTL turns on the positive cache when greater than zero: a
	// token the auth server accepted is accepted again without asking for
	// CacheTTL (never beyond the token's own expiry). CacheTTL is exactly
	// the revocation delay the cache adds: a token revoked at the auth
	// server keeps passing here for up to CacheTTL. Only valid answers are
	// cached, under a SHA-256 of the token, never the token itself.
	// Default 0: no cache, every request is asked.
	CacheTTL time.Duration
	// CacheSize bounds the cache's entries; the least recently used is
	// dropped first. Default 10000 when CacheTTL is set.
	CacheSize int
	// Transport carries the requests to the auth server, e.g. an
	// *http.Transport with a custom TLS configuration. Nil means a
	// transport sized by MaxConns and Timeout that uses no proxy from the
	// environment (tokens should not travel through one by accident).
	Transport http.RoundTripper
	// Log receives one line per request that failed closed, with the
	// cause; never a token. Nil means slog.Default().
	Log *slog.Logger
	// Now is the cache's clock; nil means time.Now.
	Now func() time.Time
}

// Verifier asks the auth server whether tokens are valid. It is safe for
// concurrent use; make one per auth server and share it.
type Verifier struct {
	verifyURL string
	client    *http.Client
	cache     *cache // nil when off
	log       *slog.Logger
	now       func() time.Time
}

// New checks c and builds a Verifier.
func New(c Config) (*Verifier, error) {
	u, err := url.Parse(c.URL)
	switch {
	case c.URL == "":
		return nil, errors.New("remoteauth: Config.URL is required")
	case err != nil:
		return nil, fmt.Errorf("remoteauth: Config.URL: %w", err)
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("remoteauth: Config.URL %q: the scheme must be http or https", c.URL)
	case u.Host == "":
		return nil, fmt.Errorf("remoteauth: Config.URL %q has no host", c.URL)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("remoteauth: Config.URL %q: no user info, query or fragment", c.URL)
	case c.Timeout < 0:
		return nil, fmt.Errorf("remoteauth: Config.Timeout must not be negative, got %s", c.Timeout)
	case c.MaxConns < 0:
		return nil, fmt.Errorf("remoteauth: Config.MaxConns must not be negative, got %d", c.MaxConns)
	case c.CacheTTL < 0:
		return nil, fmt.Errorf("remoteauth: Config.CacheTTL must not be negative, got %s", c.CacheTTL)
	case c.CacheSize < 0:
		return nil, fmt.Errorf("remoteauth: Config.CacheSize must not be negative, got %d", c.CacheSize)
	}
	if c.Timeout == 0 {
		c.Timeout = defaultTimeout
	}
	if c.MaxConns == 0 {
		c.MaxConns = defaultMaxConns
	}
	if c.CacheSize == 0 {
		c.CacheSize = defaultCacheSize
	}
	if c.Transport == nil {
		c.Transport = newTransport(c.MaxConns, c.Timeout)
	}
	v := &Verifier{
		verifyURL: strings.TrimSuffix(u.String(), "/") + VerifyPath,
		client: &http.Client{
			Transport: c.Transport,
			Timeout:   c.Timeout,
			// A redirect is not an answer of the verify endpoint: fail
			// closed rather than send the token somewhere else.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		log: c.Log,
		now: c.Now,
	}
	if v.log == nil {
		v.log = slog.Default()
	}
	if v.now == nil {
		v.now = time.Now
	}
	if c.CacheTTL > 0 {
		v.cache = newCache(c.CacheTTL, c.CacheSize)
	}
	return v, nil
}

func newTransport(maxConns int, timeout time.Duration) *http.Transport {
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            d.DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           maxConns,
		MaxIdleConnsPerHost:    maxConns,
		MaxConnsPerHost:        maxConns,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    timeout,
		ResponseHeaderTimeout:  timeout,
		MaxResponseHeaderBytes: 16 << 10,
	}
}

// Close closes the idle connections to the auth server.
func (v *Verifier) Close() { v.client.CloseIdleConnections() }

// Caller is the verified caller of a request.
type Caller struct {
	// UserID is the user's id (the token's sub).
	UserID uint64
	// LoginID is the login the token belongs to (sid): one device or
	// session under the strategies that track them.
	LoginID string
	Claims  Claims
}

// Claims are the token's claims as the auth server reported them.
type Claims struct {
	Subject   string
	Issuer    string
	Audience  []string
	ExpiresAt time.Time
	IssuedAt  time.Time
	// ID is the token's jti.
	ID string
	// Strategy is the auth server's revocation strategy.
	Strategy string
	// AAL is the assurance level of the token's login: "aal1" with a
	// password, "aal2" with a second factor. An answer without one (an
	// auth server from before second factors) is aal1.
	AAL string
	// AMR lists how the login authenticated: ["pwd"], ["pwd","otp"],
	// ["pwd","recovery"].
	AMR []string
}

func (c *Caller) clone() *Caller {
	out := *c
	out.Claims.Audience = slices.Clone(c.Claims.Audience)
	out.Claims.AMR = slices.Clone(c.Claims.AMR)
	return &out
}

type callerKey struct{}

// NewContext returns ctx carrying c.
func NewContext(ctx context.Context, c *Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// FromContext returns the caller that Middleware verified.
func FromContext(ctx context.Context) (*Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(*Caller)
	return c, ok && c != nil
}

// Verify asks the auth server whether token (the bare token, without
// "Bearer ") is valid. It returns the caller, or an error that is
// ErrInvalidToken or ErrUnavailable.
func (v *Verifier) Verify(ctx context.Context, token string) (*Caller, error) {
	if !wellFormed(token) {
		// Not a token the server could accept, and not one that may be
		// put in a header: refuse it here rather than fail on sending it.
		return nil, ErrInvalidToken
	}
	var key [sha256.Size]byte
	if v.cache != nil {
		key = sha256.Sum256([]byte(token))
		if c, ok := v.cache.get(key, v.now()); ok {
			return c, nil
		}
	}
	c, err := v.ask(ctx, token)
	if err != nil {
		return nil, err
	}
	if v.cache != nil {
		v.cache.put(key, c, v.now())
		// The cached Caller is shared; hand out a copy.
		return c.clone(), nil
	}
	return c, nil
}

// ask makes one request to the verify endpoint.
func (v *Verifier) ask(ctx context.Context, token string) (*Caller, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.verifyURL, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	resp, err := v.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	// Reading to the end (within the bound) lets the connection be reused.
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading the answer: %w", ErrUnavailable, err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return nil, ErrInvalidToken
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%w: the auth server answered %d", ErrUnavailable, resp.StatusCode)
	case len(body) > maxAnswer:
		return nil, fmt.Errorf("%w: the answer is larger than %d bytes", ErrUnavailable, maxAnswer)
	}
	return parse(body, resp.Header.Get("X-Auth-User-Id"))
}

// answer is the verify endpoint's 200, in the shape of RFC 7662.
type answer struct {
	Active   *bool    `json:"active"`
	Sub      string   `json:"sub"`
	Exp      int64    `json:"exp"`
	Iat      int64    `json:"iat"`
	Iss      string   `json:"iss"`
	Aud      audience `json:"aud"`
	Jti      string   `json:"jti"`
	Sid      string   `json:"sid"`
	Strategy string   `json:"strategy"`
	AAL      string   `json:"aal"`
	AMR      []string `json:"amr"`
}

// audience is aud, a string or an array of strings (RFC 7519 §4.1.3).
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*a = many
	return nil
}

// parse reads a 200 answer. Anything that is not a well-formed yes is not
// a yes: fail closed. The body is never quoted in errors.
func parse(body []byte, headerUser string) (*Caller, error) {
	var a answer
	if err := json.Unmarshal(body, &a); err != nil {
		return nil, fmt.Errorf("%w: the answer is not the verify endpoint's JSON", ErrUnavailable)
	}
	if a.Active == nil {
		return nil, fmt.Errorf("%w: the answer has no \"active\"", ErrUnavailable)
	}
	if !*a.Active {
		// RFC 7662: an inactive token.
		return nil, ErrInvalidToken
	}
	uid, err := strconv.ParseUint(a.Sub, 10, 64)
	if err != nil || uid == 0 {
		return nil, fmt.Errorf("%w: the answer has no valid \"sub\"", ErrUnavailable)
	}
	if headerUser != "" && headerUser != a.Sub {
		return nil, fmt.Errorf("%w: X-Auth-User-Id and \"sub\" disagree", ErrUnavailable)
	}
	if a.Exp <= 0 {
		return nil, fmt.Errorf("%w: the answer has no \"exp\"", ErrUnavailable)
	}
	if a.AAL == "" {
		a.AAL = "aal1"
	}
	return &Caller{
		UserID:  uid,
		LoginID: a.Sid,
		Claims: Claims{
			Subject: a.Sub, Issuer: a.Iss, Audience: []string(a.Aud),
			ExpiresAt: time.Unix(a.Exp, 0), IssuedAt: time.Unix(a.Iat, 0),
			ID: a.Jti, Strategy: a.Strategy, AAL: a.AAL, AMR: a.AMR,
		},
	}, nil
}

// wellFormed reports whether token is an RFC 6750 b64token of a sane
// length: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
// Anything else (spaces, control characters, CR/LF) is refused before it
// reaches a header.
func wellFormed(token string) bool {
	if token == "" || len(token) > maxTokenBytes {
		return false
	}
	body := strings.TrimRight(token, "=")
	if body == "" {
		return false
	}
	for i := 0; i < len(body); i++ {
		switch c := body[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '.', c == '_', c == '~', c == '+', c == '/':
		default:
			return false
		}
	}
	return true
}
