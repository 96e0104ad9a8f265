// Command yardstick is the stateless baseline the throughput benchmark
// compares every strategy with: a minimal Gin handler that checks an HS256
// token with golang-jwt's strict parser and answers a small JSON, with no
// lookup and no logging. It prints one token it accepts on its first line
// of output, then serves until killed.
//
//	go run ./bench/yardstick -addr 127.0.0.1:9000
package main

import (
	"crypto/rand"
	"flag"
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "listen address")
	flag.Parse()
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Subject: "1", Issuer: "authserver", Audience: jwt.ClaimStrings{"authserver"},
		IssuedAt: jwt.NewNumericDate(time.Now()), ExpiresAt: jwt.NewNumericDate(time.Now().Add(24 * time.Hour)),
		ID: "yardstick",
	}).SignedString(secret)
	if err != nil {
		log.Fatal(err)
	}
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithIssuer("authserver"), jwt.WithAudience("authserver"),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(),
	)
	keyFunc := func(*jwt.Token) (any, error) { return secret, nil }

	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.GET("/api/v1/auth/verify", func(c *gin.Context) {
		h := c.GetHeader("Authorization")
		if len(h) < 8 || h[:7] != "Bearer " {
			c.JSON(http.StatusUnauthorized, gin.H{"active": false})
			return
		}
		var claims jwt.RegisteredClaims
		if _, err := parser.ParseWithClaims(h[7:], &claims, keyFunc); err != nil {
			c.JSON(http.StatusUnauthorized, gin.H{"active": false})
			return
		}
		c.JSON(http.StatusOK, gin.H{"active": true, "sub": claims.Subject})
	})
	fmt.Println(tok)
	log.Fatal(http.ListenAndServe(*addr, r))
}
