package ratelimit_test

import (
	"testing"

	"github.com/revocable/authserver/ratelimit"
)

func TestIPKey(t *testing.T) {
	cases := []struct{ in, want string }{
		{"192.0.2.10", "192.0.2.10"},
		{"::ffff:192.0.2.10", "192.0.2.10"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", "2001:db8:1:3::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"::1", "::/64"},
		{"", ""},
		{"not an ip", "not an ip"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			if got := ratelimit.IPKey(c.in); got != c.want {
				t.Fatalf("IPKey(%q) = %q, want %q", c.in, got, c.want)
			}
		})
	}
}
