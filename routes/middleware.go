package routes

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/gin-gonic/gin"

	"github.com/revocable/authserver/audit"
	"github.com/revocable/authserver/strategy"
)

const principalKey = "authserver.principal"

// authenticate verifies the Bearer token under the running strategy and
// stores the caller for the handlers. Anything else answers 401.
func (s *server) authenticate() gin.HandlerFunc {
	return func(c *gin.Context) {
		if p, ok := s.verifyBearer(c); ok {
			c.Set(principalKey, p)
			c.Next()
		}
	}
}

// verifyBearer verifies the request's Bearer token, or answers the
// request with the error and returns false. Every verification of the API
// passes here (verify, the authenticated routes, Authenticate), so it is
// where verifications are counted.
func (s *server) verifyBearer(c *gin.Context) (*strategy.Principal, bool) {
	p, err := s.bearer(c)
	s.countVerification(err)
	if err != nil {
		s.writeError(c, err)
		return nil, false
	}
	return p, true
}

// bearer verifies the request's Bearer token.
func (s *server) bearer(c *gin.Context) (*strategy.Principal, error) {
	h := c.GetHeader("Authorization")
	if h == "" {
		return nil, errTokenMissing
	}
	scheme, raw, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return nil, strategy.ErrTokenInvalid
	}
	return s.tokens.Verify(c.Request.Context(), strings.TrimSpace(raw))
}

// principal is the caller that authenticate verified.
func principal(c *gin.Context) *strategy.Principal {
	p, _ := c.MustGet(principalKey).(*strategy.Principal)
	return p
}

// Caller returns the caller that the API's authentication verified for
// this request, if any.
func Caller(c *gin.Context) (*strategy.Principal, bool) {
	v, ok := c.Get(principalKey)
	if !ok {
		return nil, false
	}
	p, ok := v.(*strategy.Principal)
	return p, ok
}

type callerKey struct{}

// CallerFrom returns the caller that Authenticate stored in the request's
// context, for handlers that see only a context.
func CallerFrom(ctx context.Context) (*strategy.Principal, bool) {
	p, ok := ctx.Value(callerKey{}).(*strategy.Principal)
	return p, ok
}

// device describes the client of this request.
func (s *server) device(c *gin.Context, name string) strategy.DeviceInfo {
	return strategy.DeviceInfo{Name: name, UserAgent: c.Request.UserAgent(), IP: s.clientIP(c)}
}

// ctx is the context of a request that may change state: it carries what
// the audit trail records about the request.
func (s *server) ctx(c *gin.Context) context.Context {
	return audit.WithMeta(c.Request.Context(), audit.Meta{IP: s.clientIP(c), UserAgent: c.Request.UserAgent(), RequestID: requestID(c)})
}

const requestIDHeader = "X-Request-Id"

// requestContext gives the request its id: the one a trusted proxy sent,
// when it is short and plain, else a new one. The id is sent back in the
// X-Request-Id header, where requestID reads it from.
func (s *server) requestContext() gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.Request.Header.Get(requestIDHeader)
		if id == "" || !validRequestID(id) || !s.proxies.contains(c.RemoteIP()) {
			id = s.ids.next()
		}
		c.Writer.Header()[requestIDHeader] = []string{id}
		c.Next()
	}
}

// requestID is the id of the request.
func requestID(c *gin.Context) string {
	if v := c.Writer.Header()[requestIDHeader]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// validRequestID accepts at most 64 characters of [A-Za-z0-9._-].
func validRequestID(id string) bool {
	if len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		b := id[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '.' || b == '_' || b == '-') {
			return false
		}
	}
	return true
}

// idSource makes request ids: a random prefix per process and a counter,
// unique across instances and cheap on the request path.
type idSource struct {
	prefix string
	n      atomic.Uint64
}

func newIDSource() *idSource {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return &idSource{prefix: base64.RawURLEncoding.EncodeToString(b) + "-"}
}

func (s *idSource) next() string {
	return s.prefix + strconv.FormatUint(s.n.Add(1), 36)
}

// proxySet is server.trusted_proxies, parsed.
type proxySet struct {
	prefixes []netip.Prefix
}

func parseProxies(list []string) (*proxySet, error) {
	ps := &proxySet{}
	for _, p := range list {
		if !strings.Contains(p, "/") {
			a, err := netip.ParseAddr(p)
			if err != nil {
				return nil, err
			}
			ps.prefixes = append(ps.prefixes, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		pr, err := netip.ParsePrefix(p)
		if err != nil {
			return nil, err
		}
		ps.prefixes = append(ps.prefixes, pr.Masked())
	}
	return ps, nil
}

// remoteIPHeaders are where a trusted proxy puts the client's address, in
// the order gin reads them.
var remoteIPHeaders = []string{"X-Forwarded-For", "X-Real-IP"}

// clientIP is the client's address as server.trusted_proxies says: the
// peer's, unless the peer is a trusted proxy; then the nearest address in
// X-Forwarded-For (or X-Real-IP) that is not one, read as gin's ClientIP
// reads it. It does not ask gin, because gin follows the trusted proxies
// of the engine the API runs on, which, mounted (API.Mount), is the
// application's; and an engine left at gin's defaults trusts every peer,
// so that any client could name any address and escape every per-IP
// limit.
func (s *server) clientIP(c *gin.Context) string {
	peer := c.RemoteIP()
	if !s.proxies.contains(peer) {
		return peer
	}
	for _, h := range remoteIPHeaders {
		items := strings.Split(strings.Join(c.Request.Header.Values(h), ","), ",")
		for i := len(items) - 1; i >= 0; i-- {
			ip := strings.TrimSpace(items[i])
			if _, err := netip.ParseAddr(ip); err != nil {
				break
			}
			if i == 0 || !s.proxies.contains(ip) {
				return ip
			}
		}
	}
	return peer
}

// contains reports whether ip is one of the trusted proxies.
func (ps *proxySet) contains(ip string) bool {
	if len(ps.prefixes) == 0 {
		return false
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range ps.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
