package routes_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"

	"github.com/revocable/authserver/strategy"
)

// BenchmarkVerifyHandler measures GET /api/v1/auth/verify through the
// whole router (middleware, cache, logging to a discarded handler), without
// the network, for a cached user of every strategy: the cost the
// throughput benchmark (bench/throughput.sh) sees per request, minus the
// socket.
//
//	go test -run '^$' -bench VerifyHandler -cpuprofile cpu.out ./routes/
func BenchmarkVerifyHandler(b *testing.B) {
	for _, name := range strategy.Names() {
		b.Run(name, func(b *testing.B) {
			e := newEnv(b, "sqlite", name)
			e.register(email(1))
			s := e.login(email(1), "laptop")
			h := e.handler
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				req := httptest.NewRequest("GET", "/api/v1/auth/verify", nil)
				req.RemoteAddr = "192.0.2.10:1234"
				req.Header.Set("Authorization", "Bearer "+s.access)
				for pb.Next() {
					w := httptest.NewRecorder()
					h.ServeHTTP(w, req)
					if w.Code != http.StatusOK {
						b.Fatalf("verify: %d %s", w.Code, w.Body)
					}
				}
			})
		})
	}
}

// BenchmarkYardstickHandler is bench/yardstick's handler in-process, the
// baseline of BenchmarkVerifyHandler: a plain Gin handler that checks an
// HS256 token with golang-jwt's strict parser.
func BenchmarkYardstickHandler(b *testing.B) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Subject: "1", Issuer: "authserver", Audience: jwt.ClaimStrings{"authserver"},
		IssuedAt: jwt.NewNumericDate(time.Now()), ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour)), ID: "yardstick",
	}).SignedString(secret)
	if err != nil {
		b.Fatal(err)
	}
	parser := jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithIssuer("authserver"),
		jwt.WithAudience("authserver"), jwt.WithExpirationRequired(), jwt.WithIssuedAt())
	r := gin.New()
	r.GET("/api/v1/auth/verify", func(c *gin.Context) {
		var claims jwt.RegisteredClaims
		if _, err := parser.ParseWithClaims(c.GetHeader("Authorization")[7:], &claims, func(*jwt.Token) (any, error) { return secret, nil }); err != nil {
			c.JSON(http.StatusUnauthorized, gin.H{"active": false})
			return
		}
		c.JSON(http.StatusOK, gin.H{"active": true, "sub": claims.Subject})
	})
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req := httptest.NewRequest("GET", "/api/v1/auth/verify", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		for pb.Next() {
			w := httptest.NewRecorder()
			r.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Fatalf("verify: %d", w.Code)
			}
		}
	})
}
