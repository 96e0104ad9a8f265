package strategy

import (
	"bytes"
	"testing"

	"github.com/revocable/authserver/models"
)

// TestUserKey pins what the per-user signing key depends on: each input
// that a revocation changes must change the key, and nothing else may.
func TestUserKey(t *testing.T) {
	secret := bytes.Repeat([]byte("s"), 32)
	base := models.User{ID: 7, PasswordHash: "$2a$04$abcdefghijklmnopqrstuv", KeySalt: []byte("0123456789abcdef")}
	k0, err := userKey(secret, "password_key", &base)
	if err != nil {
		t.Fatal(err)
	}
	if len(k0) != 32 {
		t.Fatalf("key length %d, want 32", len(k0))
	}
	again, _ := userKey(secret, "password_key", &base)
	if !bytes.Equal(k0, again) {
		t.Fatal("the key of an unchanged user changed")
	}
	tests := []struct {
		name     string
		secret   []byte
		strategy string
		change   func(u *models.User)
	}{
		{"password change", secret, "password_key", func(u *models.User) { u.PasswordHash += "x" }},
		{"key salt rotation (logout-all)", secret, "password_key", func(u *models.User) { u.KeySalt = []byte("fedcba9876543210") }},
		{"another user", secret, "password_key", func(u *models.User) { u.ID = 8 }},
		{"another server secret", bytes.Repeat([]byte("t"), 32), "password_key", func(*models.User) {}},
		// A strategy switch must not revive what the other one revoked.
		{"another strategy", secret, "session_table", func(*models.User) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := base
			tt.change(&u)
			k, err := userKey(tt.secret, tt.strategy, &u)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(k, k0) {
				t.Fatal("the key did not change")
			}
		})
	}
}

// TestCapabilities pins each strategy's capabilities, as the strategy table
// of docs/strategies.md states them. They are derived from the interfaces a
// strategy implements, so a method added or removed by accident shows here.
func TestCapabilities(t *testing.T) {
	all := Capabilities{true, true, true, true, true, true, true, true, false}
	want := map[string]Capabilities{
		"stateless":     {},
		"password_key":  {LogoutAllDevices: true, LogoutOtherDevices: true, RevokeOnPasswordChange: true, RevokeOnAccountDeletion: true},
		"single_device": {LogoutThisDevice: true, LogoutAllDevices: true, LogoutOtherDevices: true, ListDevices: true, RevokeDevice: true, RevokeOnPasswordChange: true, RevokeOnAccountDeletion: true},
		"multi_device":  all,
		"valid_date":    {LogoutAllDevices: true, LogoutOtherDevices: true, RevokeOnPasswordChange: true, RevokeOnAccountDeletion: true},
		"token_version": {LogoutAllDevices: true, LogoutOtherDevices: true, RevokeOnPasswordChange: true, RevokeOnAccountDeletion: true},
		"session_table": all,
	}
	if len(want) != len(Names()) {
		t.Fatalf("the table covers %d strategies, Names() has %d", len(want), len(Names()))
	}
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			s, err := Build(name, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if s.Name() != name {
				t.Fatalf("Build(%q).Name() = %q", name, s.Name())
			}
			if got := CapabilitiesOf(s); got != want[name] {
				t.Fatalf("capabilities\n got %+v\nwant %+v", got, want[name])
			}
		})
	}
	// With refreshes superseding access tokens, exactly the strategies
	// that track logins report it.
	for _, name := range Names() {
		s, err := Build(name, Options{Supersede: true})
		if err != nil {
			t.Fatal(err)
		}
		want := want[name].LogoutThisDevice
		if got := CapabilitiesOf(s).RefreshSupersedesAccess; got != want {
			t.Errorf("%s with supersede on: refresh_supersedes_access %v, want %v", name, got, want)
		}
	}
	if _, err := Build("nope", Options{}); err == nil {
		t.Fatal("an unknown strategy was built")
	}
}

// TestKeyIDIsStable: the kid of a secret is in every token issued, so it
// must not change between releases, or the instances on either side of a
// rolling upgrade would refuse each other's tokens.
func TestKeyIDIsStable(t *testing.T) {
	if got, want := KeyID([]byte("a secret of thirty-two bytes.....")), "8FasP_zmXJN8"; got != want {
		t.Fatalf("KeyID = %q, want %q as every release so far has made it", got, want)
	}
}
