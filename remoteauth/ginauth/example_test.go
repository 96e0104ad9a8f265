package ginauth_test

import (
	"log"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/revocable/authserver/remoteauth"
	"github.com/revocable/authserver/remoteauth/ginauth"
)

// A Gin service whose /api routes need a valid token.
func Example() {
	v, err := remoteauth.New(remoteauth.Config{URL: "http://127.0.0.1:8080"})
	if err != nil {
		log.Fatal(err)
	}
	r := gin.New()
	api := r.Group("/api", ginauth.Middleware(v))
	api.GET("/notes", func(c *gin.Context) {
		caller, _ := ginauth.Caller(c)
		c.JSON(http.StatusOK, gin.H{"user_id": caller.UserID, "login": caller.LoginID})
	})
	_ = r.Run(":9000")
}
