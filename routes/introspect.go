package routes

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/revocable/authserver/strategy"
)

// POST /api/v1/auth/introspect is RFC 7662 token introspection for
// resource servers that hold a client id and secret (introspection.clients)
// rather than sit behind a proxy. It answers what verify answers, in
// RFC 7662's words: an access token the running strategy accepts is
// active; every other token is {"active": false} and nothing else, so that
// the answer says nothing about why. A refresh token is active only to a
// client of introspection.refresh_token_clients. Errors are RFC 6749 §5.2
// bodies (oauthErrors). A database that cannot be read is
// 503, never "inactive": a client may cache "inactive" as "revoked" and
// sign its user out.

// introspectionClients is introspection.clients, parsed once: the SHA-256
// of each client's id and secret, so that every comparison is between
// equal lengths and takes the same time whatever the input.
type introspectionClients struct {
	clients []clientDigest
}

type clientDigest struct {
	id, secret [sha256.Size]byte
	// refresh is 1 when the client is in
	// introspection.refresh_token_clients.
	refresh int
}

// newIntrospectionClients parses "id:secret" entries; nil when there are
// none (the endpoint then answers 404). refreshIDs are the ids that may
// introspect refresh tokens.
func newIntrospectionClients(list, refreshIDs []string) (*introspectionClients, error) {
	if len(list) == 0 {
		return nil, nil
	}
	ic := &introspectionClients{}
	for i, entry := range list {
		id, secret, ok := strings.Cut(entry, ":")
		if !ok || id == "" || secret == "" {
			// Never echo the entry: it holds a secret.
			return nil, fmt.Errorf("introspection.clients[%d] must be id:secret", i)
		}
		cd := clientDigest{id: sha256.Sum256([]byte(id)), secret: sha256.Sum256([]byte(secret))}
		if slices.Contains(refreshIDs, id) {
			cd.refresh = 1
		}
		ic.clients = append(ic.clients, cd)
	}
	return ic, nil
}

// client is an authenticated introspection client.
type client struct {
	// refreshTokens: the client may learn that a refresh token is active.
	refreshTokens bool
}

// authenticate returns the configured client whose id and secret these
// are. Every client is compared, id and secret alike, with no early exit:
// neither the time taken nor the answer tells an unknown client from a
// wrong secret.
func (ic *introspectionClients) authenticate(id, secret string) (client, bool) {
	hid, hsecret := sha256.Sum256([]byte(id)), sha256.Sum256([]byte(secret))
	match, refresh := 0, 0
	for i := range ic.clients {
		c := &ic.clients[i]
		m := subtle.ConstantTimeCompare(hid[:], c.id[:]) & subtle.ConstantTimeCompare(hsecret[:], c.secret[:])
		match |= m
		refresh |= m & c.refresh
	}
	return client{refreshTokens: refresh == 1}, match == 1
}

// basicCredentials are the client id and secret of the Authorization
// header. RFC 6749 §2.3.1 has the client form-urlencode both before HTTP
// Basic encodes them, so they are decoded here: a secret with "+", "/" or
// "=" (base64-made secrets) arrives as "%2B", "%2F" and "%3D" from a
// standard OAuth client, and a "+" as sent stands for a space.
func basicCredentials(r *http.Request) (id, secret string, ok bool) {
	rawID, rawSecret, ok := r.BasicAuth()
	if !ok {
		return "", "", false
	}
	id, err := url.QueryUnescape(rawID)
	if err != nil {
		return "", "", false
	}
	secret, err = url.QueryUnescape(rawSecret)
	if err != nil {
		return "", "", false
	}
	return id, secret, true
}

// errInvalidClient is the answer to missing or wrong client credentials,
// with the Basic challenge (RFC 7662 §2.1, RFC 6749 §5.2).
var errInvalidClient = &apiError{
	Status: http.StatusUnauthorized, Code: "invalid_client",
	Message:   "client authentication failed: send a configured client id and secret with HTTP Basic",
	Challenge: `Basic realm="authserver"`,
}

// introspectAnswer is an introspection response. An inactive token gets
// only {"active": false}: every other field is omitted.
type introspectAnswer struct {
	Active    bool     `json:"active"`
	Sub       string   `json:"sub,omitempty"`
	Exp       int64    `json:"exp,omitempty"`
	Iat       int64    `json:"iat,omitempty"`
	Iss       string   `json:"iss,omitempty"`
	Aud       []string `json:"aud,omitempty"`
	Jti       string   `json:"jti,omitempty"`
	TokenType string   `json:"token_type,omitempty"`
	Sid       string   `json:"sid,omitempty"`
	// AAL and AMR: the assurance of an access token's login.
	AAL string   `json:"aal,omitempty"`
	AMR []string `json:"amr,omitempty"`
}

func (s *server) introspect(c *gin.Context) error {
	if s.introspection == nil {
		return errNotFound
	}
	id, secret, ok := basicCredentials(c.Request)
	if !ok {
		return errInvalidClient
	}
	cl, ok := s.introspection.authenticate(id, secret)
	if !ok {
		return errInvalidClient
	}
	token, err := introspectionForm(c)
	if err != nil {
		return err
	}
	ctx := c.Request.Context()
	var a *introspectAnswer
	if strings.Count(token, ".") == 2 {
		a, err = s.introspectAccess(ctx, token)
	} else if cl.refreshTokens {
		a, err = s.introspectRefresh(ctx, token)
	}
	if err != nil {
		return err
	}
	if a == nil {
		a = &introspectAnswer{}
	}
	c.JSON(http.StatusOK, a)
	return nil
}

// introspectionForm reads the form body (bounded like every body) and
// returns its one token. token_type_hint is accepted and not needed: an
// access token is a JWT and a refresh token is not, so the token's shape
// says which it is (RFC 7662 lets the server look beyond the hint).
// Parameters in the URL are refused: tokens do not belong in URLs, which
// end up in logs.
func introspectionForm(c *gin.Context) (string, error) {
	if c.Request.URL.RawQuery != "" {
		return "", invalidRequest("send the parameters in the form body, not in the URL")
	}
	mt, _, err := mime.ParseMediaType(c.GetHeader("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return "", invalidRequest("the body must be application/x-www-form-urlencoded")
	}
	body, err := readBody(c)
	if err != nil {
		return "", err
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return "", invalidRequest("the form body is not valid application/x-www-form-urlencoded")
	}
	for _, name := range []string{"token", "token_type_hint"} {
		if len(form[name]) > 1 {
			return "", invalidRequest(fmt.Sprintf("parameter %q appears more than once", name))
		}
	}
	token := form.Get("token")
	if token == "" {
		return "", invalidRequest("the token parameter is required")
	}
	return token, nil
}

// introspectAccess checks an access token exactly as verify does; nil
// means inactive.
func (s *server) introspectAccess(ctx context.Context, token string) (*introspectAnswer, error) {
	p, err := s.tokens.Verify(ctx, token)
	if err != nil {
		if toAPI(err).Status == http.StatusUnauthorized {
			return nil, nil
		}
		return nil, err
	}
	cl := p.Claims
	return &introspectAnswer{
		Active: true, Sub: strconv.FormatUint(p.UserID, 10),
		Exp: cl.ExpiresAt.Unix(), Iat: cl.IssuedAt.Unix(),
		Iss: s.cfg.JWT.Issuer, Aud: []string{s.cfg.JWT.Audience}, Jti: cl.ID,
		TokenType: "Bearer", Sid: p.LoginID,
		AAL: strategy.AssuranceOf(cl).AAL, AMR: strategy.AssuranceOf(cl).AMR,
	}, nil
}

// introspectRefresh answers for a refresh token (strategy.Service.
// RefreshInfo) to a client of introspection.refresh_token_clients; nil
// means inactive. Every other client gets {"active": false}: a resource
// server that checks "active" (the usual RFC 7662 pattern) would accept a
// month-long refresh token as a bearer token, and using it that way never
// rotates it, so reuse detection never fires. token_type is omitted: it
// names an access token's type (RFC 6749 §5.1, "Bearer"), and a refresh
// token is not an access token of any type.
func (s *server) introspectRefresh(ctx context.Context, token string) (*introspectAnswer, error) {
	r, err := s.tokens.RefreshInfo(ctx, token)
	if err != nil || r == nil {
		return nil, err
	}
	return &introspectAnswer{
		Active: true, Sub: strconv.FormatUint(r.UserID, 10),
		Exp: r.ExpiresAt.Unix(), Iat: r.IssuedAt.Unix(), Iss: s.cfg.JWT.Issuer,
		Sid: r.LoginID,
	}, nil
}
