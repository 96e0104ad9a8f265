package strategy

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/revocable/authserver/cache"
	"github.com/revocable/authserver/models"
	"github.com/revocable/authserver/models/dbtest"
)

// TestJoinerAfterRevocationRereads (issue 18, item 4): a verification
// whose shared fill read the user's state before a logout, and stored
// it, must not hand that state to a request that joined the flight after
// the logout answered: the revoking instance would accept the token it
// has just revoked. The fill is held after its Put (a test hook) while
// the logout commits and answers, then a second verification joins.
func TestJoinerAfterRevocationRereads(t *testing.T) {
	for _, driver := range dbtest.Drivers() {
		for _, name := range []string{"single_device", "multi_device", "session_table", "token_version"} {
			t.Run(driver+"/"+name, func(t *testing.T) {
				db := dbtest.Open(t, driver)
				c := cache.New[*State](cache.Options{MaxEntries: 16, MaxStaleness: time.Hour})
				c.Confirm(time.Now())
				svc, err := New(db, name, Config{
					Secret: []byte("joiner-test-secret-joiner-test-secret-0123"), Issuer: "test", Audience: "test",
					AccessTTL: time.Hour, RefreshTTL: time.Hour, Cache: c,
				})
				if err != nil {
					t.Fatal(err)
				}
				ctx := context.Background()
				now := time.Now().UTC()
				u := models.User{Email: "joiner@example.com", PasswordHash: "h", KeySalt: NewKeySalt(), CreatedAt: now, UpdatedAt: now, Revision: 1}
				if err := db.Create(&u).Error; err != nil {
					t.Fatal(err)
				}
				c.SeeUser(u.ID)
				tok, err := svc.Login(ctx, u.ID, "h", DeviceInfo{Name: "d"})
				if err != nil {
					t.Fatal(err)
				}
				filled, release := make(chan struct{}), make(chan struct{})
				first := true
				svc.afterFill = func() {
					if first {
						first = false
						close(filled)
						<-release
					}
				}
				leader := make(chan error, 1)
				go func() { _, err := svc.Verify(ctx, tok.AccessToken); leader <- err }()
				<-filled
				var revoke error
				if name == "token_version" {
					revoke = svc.LogoutAll(ctx, &Principal{UserID: u.ID, LoginID: tok.LoginID})
				} else {
					revoke = svc.Logout(ctx, &Principal{UserID: u.ID, LoginID: tok.LoginID})
				}
				if revoke != nil {
					t.Fatal(revoke)
				}
				// The revocation answered; this request arrives after it.
				joiner := make(chan error, 1)
				go func() { _, err := svc.Verify(ctx, tok.AccessToken); joiner <- err }()
				time.Sleep(100 * time.Millisecond) // let it join the flight
				close(release)
				// The verification that began before the logout is
				// concurrent with it: either answer is right.
				if err := <-leader; err != nil && !errors.Is(err, ErrTokenRevoked) {
					t.Fatalf("the verification that began before the logout: %v", err)
				}
				if err := <-joiner; !errors.Is(err, ErrTokenRevoked) {
					t.Fatalf("a verification that began after the logout answered got %v, want ErrTokenRevoked", err)
				}
			})
		}
	}
}
