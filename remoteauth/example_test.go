package remoteauth_test

import (
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/revocable/authserver/remoteauth"
)

// A net/http service whose /notes needs a valid token. One Verifier per
// auth server, shared by all handlers.
func Example() {
	v, err := remoteauth.New(remoteauth.Config{
		URL:     "http://127.0.0.1:8080", // the auth server
		Timeout: 2 * time.Second,         // then 503: fail closed
		// CacheTTL: 5 * time.Second,     // optional: up to 5s more before a revoked token is refused
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /notes", v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caller, _ := remoteauth.FromContext(r.Context())
		fmt.Fprintf(w, "the notes of user %d (login %s)\n", caller.UserID, caller.LoginID)
	})))
	log.Fatal(http.ListenAndServe(":9000", mux))
}
