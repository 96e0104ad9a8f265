package authserver_test

// Redis Sentinel: instances on a replicated Redis (a master, a replica and
// three sentinels, all real processes on loopback) while the master dies
// or is moved. Propagation through Redis must follow the new master, the
// outbox bound must hold while it does not, and the rate limits shared
// through Redis must fall back to memory and come back.

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/revocable/authserver/config"
	"github.com/revocable/authserver/internal/redistest"
)

// deadSentinel is listed first in redis.sentinel.addrs: a sentinel that
// cannot be reached must not stop the client from asking the others.
const deadSentinel = "127.0.0.1:1"

// failoverWithin bounds how long the sentinels may take to promote the
// replica: down-after 1s, the election, and the promotion.
const failoverWithin = 30 * time.Second

func sentinelConfig(t testing.TB, name string, maxStaleness time.Duration, rs *redistest.Replicated) *config.Config {
	cfg := clusterConfig(t, name, maxStaleness, "")
	cfg.Redis.Sentinel = config.Sentinel{Master: rs.Name, Addrs: append([]string{deadSentinel}, rs.Addrs()...)}
	return cfg
}

// TestClusterSentinelFailover (max_staleness 4s, as in
// TestClusterRevocationViaRedis, so that an outbox read every second
// cannot beat Redis on a loaded machine): a revocation reaches the other instance
// through Redis before the failover; while the master is gone (killed, or
// demoted and cut off from the new master while it still answers) a
// revocation is rejected elsewhere within max_staleness through the
// outbox, valid tokens keep their 200 and no revoking request hangs; once
// the sentinels have promoted the replica, both subscriptions are made
// again on the new master and propagation is through Redis again.
//
// A demoted master is told by the sentinels to drop its clients, which
// moves the subscription. A master the sentinels cannot reach (a
// partition) is not: go-redis's failover client moves its pool to the new
// master but leaves a live subscription where it was, answering pings
// while it hears nothing. The link's heartbeat, published where publishes
// go and expected back on the subscription, is what moves it.
func TestClusterSentinelFailover(t *testing.T) {
	cases := []struct {
		name string
		// fail takes the master at old out of service and returns the
		// address of the master that replaces it.
		fail func(t *testing.T, rs *redistest.Replicated, old string) string
	}{
		{"master killed", func(t *testing.T, rs *redistest.Replicated, old string) string {
			rs.Node(old).Kill()
			return rs.AwaitMaster(old, failoverWithin)
		}},
		{"master demoted", func(t *testing.T, rs *redistest.Replicated, old string) string {
			rs.Failover()
			return rs.AwaitMaster(old, failoverWithin)
		}},
		{"master cut off from the sentinels", func(t *testing.T, rs *redistest.Replicated, old string) string {
			rs.Failover()
			addr := rs.AwaitMaster(old, failoverWithin)
			// The sentinels could not reconfigure the old master (its
			// CONFIG is renamed): it is still a master of its own, alive,
			// answering pings, and hears nothing published on the new one.
			if role, err := rs.Node(old).Role(); err != nil || role != "master" {
				t.Fatalf("the old master answers ROLE %q (%v); want master, so that the case is the partition", role, err)
			}
			return addr
		}},
	}
	args := map[string][]string{"master cut off from the sentinels": {"--rename-command", "CONFIG", ""}}
	onDrivers(t, func(t *testing.T, driver string) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				rs := redistest.StartReplicated(t, "main", args[tc.name]...)
				p := startPair(t, driver, sentinelConfig(t, "session_table", 4*time.Second, rs), "")
				took := viaRedis(t, p.a, p.b, p.a.prepare("logout", "before@example.com"))
				t.Logf("before: B rejected %v after the revoking request answered, through Redis", took)

				old := rs.MasterAddr()
				subA, subB := p.a.redisHealth().Resubscribes, p.b.redisHealth().Resubscribes
				failed := time.Now()
				master := tc.fail(t, rs, old)
				took = withinBound(t, p.a, p.b, p.a.prepare("logout", "during@example.com"))
				t.Logf("during: B rejected %v after the revoking request answered (bound %v)", took, p.b.bound())

				p.a.awaitSubscribed(subA)
				p.b.awaitSubscribed(subB)
				t.Logf("the subscriptions were made again %v after the master at %s went (new master %s)", time.Since(failed), old, master)
				took = viaRedis(t, p.a, p.b, p.a.prepare("logout", "after@example.com"))
				t.Logf("after: B rejected %v after the revoking request answered, through Redis", took)
			})
		}
	})
}

// TestClusterSentinelRateLimits: two instances share login_per_ip through
// the replicated Redis; while the master is down the limits fall back to
// each instance's memory (no request fails for it), and once the replica
// is promoted they are shared again.
func TestClusterSentinelRateLimits(t *testing.T) {
	const limit = 4
	rs := redistest.StartReplicated(t, "main")
	cfg := sentinelConfig(t, "stateless", time.Second, rs)
	cfg.RateLimit.LoginPerIP = fmt.Sprintf("%d/1m", limit)
	p := startPair(t, "sqlite", cfg, "")
	p.a.register("limits@example.com")
	ip := 0
	// shared reports whether limit logins from one new address, spread
	// over both instances, leave the next one refused on both: true only
	// when the instances count in one place.
	shared := func() bool {
		t.Helper()
		ip++
		addr := fmt.Sprintf("198.51.100.%d:4000", ip)
		for i := range limit {
			n := []*node{p.a, p.b}[i%2]
			if c := loginFrom(t, n, addr); c != http.StatusOK {
				t.Fatalf("%s: login %d of %d from %s got %d", n.name, i+1, limit, addr, c)
			}
		}
		return loginFrom(t, p.a, addr) == http.StatusTooManyRequests && loginFrom(t, p.b, addr) == http.StatusTooManyRequests
	}
	if !shared() {
		t.Fatal("before the failover the instances do not share login_per_ip")
	}

	old := rs.MasterAddr()
	rs.Node(old).Kill()
	// While the sentinels have not promoted the replica, every login gets
	// an answer of the limiter, from memory: 200 or 429, never an error.
	for i := range 3 * limit {
		n := []*node{p.a, p.b}[i%2]
		if c := loginFrom(t, n, "203.0.113.9:4000"); c != http.StatusOK && c != http.StatusTooManyRequests {
			t.Fatalf("%s: a login while the Redis master is down got %d", n.name, c)
		}
	}
	rs.AwaitMaster(old, failoverWithin)
	for deadline := time.Now().Add(failoverWithin); !shared(); time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the limits are not shared again %v after the failover", failoverWithin)
		}
	}
}

// loginFrom logs limits@example.com in on n from the client address addr
// and returns the status.
func loginFrom(t testing.TB, n *node, addr string) int {
	t.Helper()
	body := `{"email":"limits@example.com","password":"` + password + `"}`
	r := httptest.NewRequest("POST", "/api/v1/auth/login", strings.NewReader(body))
	r.RemoteAddr = addr
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	n.handler.ServeHTTP(w, r)
	return w.Code
}
