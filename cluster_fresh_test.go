package authserver_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/revocable/authserver/internal/redistest"
)

// TestClusterFreshTokensAccepted (issue 18, item 5): two instances
// behind a round-robin balancer. B holds the user's state in its cache;
// on A the user logs in again (single_device, multi_device,
// session_table: the login is new state) or changes the password (the
// signing key changes). At once, 1,000 requests with the new token
// alternate between A and B: none may be refused, with Redis (where the
// invalidation takes milliseconds) and without it (where it takes up to
// max_staleness). B's cached state refuses the token, sees that the token
// may be newer, and reads the state again once.
func TestClusterFreshTokensAccepted(t *testing.T) {
	const requests = 1000
	cases := []struct{ strategy, action string }{
		{"single_device", "login"},
		{"multi_device", "login"},
		{"session_table", "login"},
		{"password_key", "password-change"},
		{"single_device", "password-change"},
		{"multi_device", "refresh-supersedes"},
		{"session_table", "refresh-supersedes"},
	}
	onDrivers(t, func(t *testing.T, driver string) {
		rs := redistest.Start(t)
		for _, via := range []string{"redis", "outbox"} {
			for i, tc := range cases {
				t.Run(via+"/"+tc.strategy+"/"+tc.action, func(t *testing.T) {
					url := ""
					if via == "redis" {
						url = rs.URL()
					}
					cfg := clusterConfig(t, tc.strategy, 4*time.Second, url)
					cfg.JWT.RefreshSupersedesAccess = tc.action == "refresh-supersedes"
					p := startPair(t, driver, cfg, "")
					email := fmt.Sprintf("fresh%d@example.com", i)
					p.a.register(email)
					in := p.a.do(http.StatusOK, "POST", "/api/v1/auth/login", "", map[string]string{"email": email, "password": password, "device_name": "first"})
					first := login{token: in.str("access_token")}
					p.b.warm(first.token)
					var fresh string
					switch tc.action {
					case "refresh-supersedes":
						fresh = p.a.do(http.StatusOK, "POST", "/api/v1/auth/refresh", "",
							map[string]string{"refresh_token": in.str("refresh_token")}).str("access_token")
						// The superseded token is refused: the new one is
						// the only valid one of the login.
						if c := p.a.verify(first.token); c != http.StatusUnauthorized {
							t.Fatalf("A answered %d for the superseded token", c)
						}
					case "login":
						fresh = p.a.login(email, "second").token
					case "password-change":
						fresh = p.a.do(http.StatusOK, "PUT", "/api/v1/me/password", first.token,
							map[string]string{"current_password": password, "new_password": newPassword}).str("access_token")
					}
					refused := map[int]int{}
					for n := range requests {
						at := p.a
						if n%2 == 1 {
							at = p.b
						}
						if code := at.verify(fresh); code != http.StatusOK {
							refused[code]++
						}
					}
					total := 0
					for _, k := range refused {
						total += k
					}
					t.Logf("%s, %s: %d of %d alternating requests refused (%v)", via, tc.action, total, requests, refused)
					if total != 0 {
						t.Fatalf("a fresh token was refused %d times of %d (status: count %v)", total, requests, refused)
					}
				})
			}
		}
	})
}
