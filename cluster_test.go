package authserver_test

// Revocation at stateless speed, on one instance and on many: the
// verification cache's guarantees, checked on several assembled servers
// that share a database (each through its own pool) and a Redis.
//
//   - On the instance that revoked, the token is rejected by the time the
//     revoking request has answered.
//   - Another instance rejects it within milliseconds through Redis, and
//     within cache.max_staleness through the outbox whatever happens to
//     Redis (down, hung, the subscription killed, the revoking instance
//     cut off from it).
//   - An instance that cannot read the outbox stops trusting its cache
//     after max_staleness and fails closed (503) when the database is
//     down too.
//   - A verification that read the database before a revocation never
//     puts the old state back into the cache.
//   - Tokens naming nobody cannot make the server read the database at
//     full rate, and a cache hit reads nothing.

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/revocable/authserver/internal/redistest"
	"github.com/revocable/authserver/strategy"
)

// outageStrategies are the strategies of the tests that break something:
// a key change (password_key) and one device's logout (session_table).
var outageStrategies = []string{"password_key", "session_table"}

// TestClusterRevocationViaRedis: every revocation of every strategy that
// can revoke is rejected on the instance that made it by the time the
// revoking request answers (its cache was warm), and on the other
// instance within milliseconds, through Redis: before that instance could
// have read the outbox (max_staleness 8s: it reads every 2 seconds, so that on a loaded machine a read rarely falls between the answer and the message).
func TestClusterRevocationViaRedis(t *testing.T) {
	onDrivers(t, func(t *testing.T, driver string) {
		rs := redistest.Start(t)
		for _, name := range revocable() {
			t.Run(name, func(t *testing.T) {
				p := startPair(t, driver, clusterConfig(t, name, 8*time.Second, rs.URL()), "")
				for i, rv := range revocations {
					if !rv.can(caps(name)) {
						continue
					}
					t.Run(rv.name, func(t *testing.T) {
						took := viaRedis(t, p.a, p.b, p.a.prepare(rv.name, fmt.Sprintf("redis%d@example.com", i)))
						t.Logf("B rejected %v after the revoking request answered", took)
					})
				}
			})
		}
	})
}

// TestClusterRevocationViaOutbox: without Redis, every revocation is
// rejected on the other instance within max_staleness, and never
// accepted again.
func TestClusterRevocationViaOutbox(t *testing.T) {
	onDrivers(t, func(t *testing.T, driver string) {
		for _, name := range revocable() {
			t.Run(name, func(t *testing.T) {
				p := startPair(t, driver, clusterConfig(t, name, 400*time.Millisecond, ""), "")
				for i, rv := range revocations {
					if !rv.can(caps(name)) {
						continue
					}
					t.Run(rv.name, func(t *testing.T) {
						took := withinBound(t, p.a, p.b, p.a.prepare(rv.name, fmt.Sprintf("outbox%d@example.com", i)))
						t.Logf("B rejected %v after the revoking request answered", took)
					})
				}
			})
		}
	})
}

// TestClusterRedisOutage: Redis killed, or hung (CLIENT PAUSE ALL).
// Meanwhile verification keeps answering (valid tokens 200, nothing else),
// no request hangs (the publish is asynchronous and bounded), and a
// revocation on A is rejected on B within max_staleness through the
// outbox, with nothing received from Redis. When Redis is back, the
// subscriptions come back without restarting anything, and propagation
// is fast again.
func TestClusterRedisOutage(t *testing.T) {
	const pause = 6 * time.Second
	outages := []struct {
		name string
		// start breaks Redis; end returns when it may work again.
		start, end func(t *testing.T, rs *redistest.Server)
	}{
		{"killed", func(_ *testing.T, rs *redistest.Server) { rs.Kill() }, func(_ *testing.T, rs *redistest.Server) { rs.Restart() }},
		{"hung", func(t *testing.T, rs *redistest.Server) {
			if err := rs.Do("CLIENT", "PAUSE", pause.Milliseconds(), "ALL"); err != nil {
				t.Fatal(err)
			}
		}, func(*testing.T, *redistest.Server) {}},
	}
	onDrivers(t, func(t *testing.T, driver string) {
		for _, o := range outages {
			t.Run(o.name, func(t *testing.T) {
				rs := redistest.Start(t)
				var pairs []*pair
				for _, name := range outageStrategies {
					pairs = append(pairs, startPair(t, driver, clusterConfig(t, name, 2*time.Second, rs.URL()), ""))
				}
				subscribed := map[*node]uint64{}
				for _, p := range pairs {
					for _, n := range []*node{p.a, p.b} {
						subscribed[n] = n.redisHealth().Resubscribes
						n.resetSlowest()
					}
				}
				failed := pairs[0].a.redisHealth().PublishFailed
				broken := time.Now()
				o.start(t, rs)
				// The readiness check pings Redis under a 2s deadline:
				// it must answer within it, ready (the database is up).
				ready := make(chan string, 1)
				go func() {
					start := time.Now()
					r := pairs[0].a.send("GET", "/readyz", "", nil)
					if d := time.Since(start); r.code != http.StatusOK || d > 2*time.Second+slack {
						ready <- fmt.Sprintf("/readyz answered %d in %v with Redis %s; want 200 within its 2s deadline: %s", r.code, d, o.name, r.raw)
						return
					}
					ready <- ""
				}()
				for i, p := range pairs {
					received := p.b.redisHealth().Received
					alive := p.a.user(fmt.Sprintf("alive%d@example.com", i))
					took := withinBound(t, p.a, p.b, p.a.prepare(primary(p.name), fmt.Sprintf("down%d@example.com", i)), alive)
					t.Logf("%s: Redis %s: B rejected %v after the revoking request answered", p.name, o.name, took)
					if r := p.b.redisHealth().Received; r != received {
						t.Fatalf("%s: B received %d messages from a Redis that was %s", p.name, r-received, o.name)
					}
				}
				// Every publish gives up after its deadline (250ms): a
				// hung Redis holds no invalidation behind it. (After the
				// pause publishes succeed: a failure comes from the outage.)
				eventually(t, 2*time.Second, "A gives up publishing to Redis", func() bool {
					return pairs[0].a.redisHealth().PublishFailed > failed
				})
				if msg := <-ready; msg != "" {
					t.Fatal(msg)
				}
				if o.name == "hung" && time.Since(broken) >= pause {
					t.Fatalf("the checks outlasted the pause (%v): B may have heard from Redis", time.Since(broken))
				}
				for _, p := range pairs {
					p.a.checkSlowest(hangLimit)
					p.b.checkSlowest(hangLimit)
				}
				o.end(t, rs)
				for _, p := range pairs {
					p.a.awaitSubscribed(subscribed[p.a])
					p.b.awaitSubscribed(subscribed[p.b])
				}
				t.Logf("subscriptions back %v after Redis was %s", time.Since(broken), o.name)
				for i, p := range pairs {
					took := viaRedis(t, p.a, p.b, p.a.prepare(primary(p.name), fmt.Sprintf("back%d@example.com", i)))
					t.Logf("%s: Redis back: B rejected %v after the revoking request answered", p.name, took)
				}
			})
		}
	})
}

// TestClusterSubscriptionKilled: the subscriptions are killed (CLIENT KILL
// TYPE pubsub) just before each of a series of revocations on A; each is
// still rejected on B within max_staleness, and the subscriptions come
// back on their own.
func TestClusterSubscriptionKilled(t *testing.T) {
	onDrivers(t, func(t *testing.T, driver string) {
		rs := redistest.Start(t)
		var pairs []*pair
		for _, name := range outageStrategies {
			pairs = append(pairs, startPair(t, driver, clusterConfig(t, name, 600*time.Millisecond, rs.URL()), ""))
		}
		before := map[*node]uint64{}
		for _, p := range pairs {
			before[p.b] = p.b.redisHealth().Resubscribes
		}
		for round := range 3 {
			for i, p := range pairs {
				m := p.a.prepare(primary(p.name), fmt.Sprintf("kill%d-%d@example.com", round, i))
				revoke := m.revoke
				m.revoke = func() {
					if err := rs.Do("CLIENT", "KILL", "TYPE", "pubsub"); err != nil {
						t.Fatal(err)
					}
					revoke()
				}
				withinBound(t, p.a, p.b, m)
			}
		}
		for _, p := range pairs {
			p.b.awaitSubscribed(before[p.b])
		}
	})
}

// TestClusterRevokerCutOffFromRedis: A reaches Redis through a proxy, B
// directly. Cut the proxy: A can no longer publish (its publishes fail),
// while B's subscription stays healthy. A revocation
// on A is still rejected on B within max_staleness: a healthy
// subscription does not replace reading the outbox.
func TestClusterRevokerCutOffFromRedis(t *testing.T) {
	onDrivers(t, func(t *testing.T, driver string) {
		rs := redistest.Start(t)
		for _, name := range outageStrategies {
			t.Run(name, func(t *testing.T) {
				cut := startCutter(t, rs.Addr)
				p := startPair(t, driver, clusterConfig(t, name, 2*time.Second, rs.URL()), cut.URL())
				viaRedis(t, p.a, p.b, p.a.prepare(primary(name), "through@example.com"))
				m := p.a.prepare(primary(name), "cut@example.com")
				hb := p.b.redisHealth()
				failed := p.a.redisHealth().PublishFailed
				cut.Cut()
				eventually(t, 5*time.Second, "A notices it is cut off from Redis", func() bool { return !p.a.redisHealth().Up })
				took := withinBound(t, p.a, p.b, m)
				t.Logf("B rejected %v after the revoking request answered", took)
				// B's subscription stayed healthy all along: a design
				// that trusted it would never have read the outbox.
				if ha := p.b.redisHealth(); !ha.Up || ha.Resubscribes != hb.Resubscribes {
					t.Fatalf("B's subscription should have stayed up: %+v → %+v", hb, ha)
				}
				eventually(t, 5*time.Second, "A counts its failed publish", func() bool { return p.a.redisHealth().PublishFailed > failed })
			})
		}
	})
}

// TestClusterDatabaseLostByOneInstance: B's own pool is closed, without
// Redis. B may answer from its cache until max_staleness after its last
// good outbox read began, never after: then every verification is 503 (a
// token revoked on A meanwhile included), and /readyz says so. A, which
// still reaches the database, is unaffected.
//
// The same with Redis: B's subscription stays healthy while its database
// is gone, and a healthy subscription must not stand in for the outbox.
func TestClusterDatabaseLostByOneInstance(t *testing.T) {
	onDrivers(t, func(t *testing.T, driver string) {
		rs := redistest.Start(t)
		for _, v := range []struct{ prefix, redisURL string }{{"", ""}, {"redis/", rs.URL()}} {
			for _, name := range outageStrategies {
				t.Run(v.prefix+name, func(t *testing.T) {
					testDatabaseLostByOneInstance(t, driver, name, v.redisURL)
				})
			}
		}
	})
}

func testDatabaseLostByOneInstance(t *testing.T, driver, name, redisURL string) {
	p := startPair(t, driver, clusterConfig(t, name, 600*time.Millisecond, redisURL), "")
	m := p.a.prepare(primary(name), "lost@example.com")
	alive := p.a.user("alive@example.com")
	tokens := append(append([]string{alive}, m.survivors...), m.victims...)
	for _, tok := range tokens {
		p.b.warm(tok)
	}
	sqlDB, err := p.b.pool.DB()
	if err != nil {
		t.Fatal(err)
	}
	if err := sqlDB.Close(); err != nil {
		t.Fatal(err)
	}
	m.revoke()
	type seen struct {
		at   time.Time
		code int
	}
	var answers []seen
	for {
		at := time.Now()
		for _, tok := range tokens {
			c := p.b.verify(tok)
			if c != http.StatusOK && c != http.StatusServiceUnavailable {
				t.Fatalf("B without its database answered %d; want 200 (from a trusted cache) or 503", c)
			}
			answers = append(answers, seen{at, c})
		}
		if at.After(p.b.srv.FeedHealth().LastRead.Add(p.b.maxStaleness() + 2*p.b.pollEvery())) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	end := p.b.srv.FeedHealth().LastRead.Add(p.b.maxStaleness())
	served, failed := 0, 0
	for _, a := range answers {
		switch {
		case a.code == http.StatusOK && !a.at.Before(end):
			t.Fatalf("B accepted a token %v after its last good outbox read began (max_staleness %v)",
				a.at.Sub(end)+p.b.maxStaleness(), p.b.maxStaleness())
		case a.code == http.StatusOK:
			served++
		default:
			failed++
		}
	}
	if served == 0 || failed == 0 {
		t.Fatalf("B answered %d from its cache and %d with 503; want both (the cache first, then failing closed)", served, failed)
	}
	if r := p.b.send("GET", "/readyz", "", nil); r.code != http.StatusServiceUnavailable {
		t.Fatalf("B's /readyz answered %d without its database; want 503", r.code)
	}
	if c := p.a.verify(alive); c != http.StatusOK {
		t.Fatalf("A: a valid token got %d", c)
	}
	if c := p.a.verify(m.victims[0]); c != http.StatusUnauthorized {
		t.Fatalf("A: the revoked token got %d", c)
	}
}

// TestClusterStaleFillRefused: a verification on A misses the cache and
// reads the user's state; it is held after the read and before it stores
// it (a GORM callback on A's handle that blocks only the statements of
// this request's context); meanwhile the user's password is reset on A
// (over HTTP, without a bearer token, so that the request does not wait
// for the held read). Released, the fill must be refused and the next
// verification rejected. Second variant: the revocation's tombstone is
// evicted before the release (one entry per shard), so only the ticket
// tells the fill is stale.
func TestClusterStaleFillRefused(t *testing.T) {
	variants := []struct {
		name    string
		entries int
	}{
		{"tombstone", 100000},
		{"tombstone evicted", 16},
	}
	onDrivers(t, func(t *testing.T, driver string) {
		for _, name := range outageStrategies {
			for _, v := range variants {
				t.Run(name+"/"+v.name, func(t *testing.T) {
					db := newDatabase(t, driver)
					cfg := clusterConfig(t, name, 2*time.Second, "")
					cfg.Cache.MaxEntries = v.entries
					a := startNode(t, "A", db, cfg)
					// Another instance registers and logs in, so that A
					// has not read the user's state yet.
					other := buildNode(t, "other", db, cfg)
					email := "raced@example.com"
					x := other.register(email)
					token := other.login(email, "laptop").token
					var y uint64
					var yToken string
					if v.entries == 16 {
						// Y shares X's shard: caching Y evicts X's tombstone.
						for i := range 16 {
							y = other.register(fmt.Sprintf("filler%d@example.com", i))
						}
						if y%16 != x%16 {
							t.Fatalf("user ids %d and %d do not share a shard", x, y)
						}
						yToken = other.login("filler15@example.com", "phone").token
					}
					a.do(http.StatusAccepted, "POST", "/api/v1/auth/password-reset", "", map[string]string{"email": email})
					reset := a.resetToken(email)
					if reset == "" {
						t.Fatal("no reset token was sent")
					}
					// A has read the outbox past the registrations and
					// logins, and will not read it again for a while.
					since := time.Now()
					eventually(t, 10*time.Second, "A reads the outbox", func() bool { return a.srv.FeedHealth().LastRead.After(since) })

					table := "users"
					if name == "session_table" {
						table = "sessions" // the last read of the state
					}
					h := newHold(table)
					t.Cleanup(func() {
						select {
						case <-h.released:
						default:
							close(h.released)
						}
					})
					held := make(chan int, 1)
					go func() {
						held <- a.sendCtx(h.context(context.Background()), "GET", "/api/v1/auth/verify", token, nil).code
					}()
					select {
					case <-h.reached:
					case <-time.After(10 * time.Second):
						t.Fatal("the verification never read the user's state")
					}
					refused := a.srv.CacheStats().Refused
					a.do(http.StatusNoContent, "POST", "/api/v1/auth/password-reset/confirm", "", map[string]string{"token": reset, "new_password": newPassword})
					if yToken != "" {
						if c := a.verify(yToken); c != http.StatusOK {
							t.Fatalf("verifying Y answered %d", c)
						}
					}
					close(h.released)
					if c := <-held; c != http.StatusOK {
						t.Fatalf("the held verification, which read before the reset, answered %d; want 200", c)
					}
					for range 3 {
						if c := a.verify(token); c != http.StatusUnauthorized {
							t.Fatalf("after the reset answered, A answered %d for the old token; want 401", c)
						}
					}
					if r := a.srv.CacheStats().Refused; r <= refused {
						t.Fatalf("the stale fill was not refused (refused %d → %d)", refused, r)
					}
				})
			}
		}
	})
}

// TestClusterUnknownUsers: tokens naming users who do not exist cannot
// make the server read the database at full rate; a deleted user's token
// is remembered as nobody's; a cache hit reads nothing.
func TestClusterUnknownUsers(t *testing.T) {
	onDrivers(t, func(t *testing.T, driver string) {
		for _, name := range outageStrategies {
			t.Run(name, func(t *testing.T) {
				p := startPair(t, driver, clusterConfig(t, name, 600*time.Millisecond, ""), "")
				a, b := p.a, p.b

				t.Run("flood", func(t *testing.T) {
					top := a.register("top@example.com")
					const n, workers = 1000, 8
					tokens := make([]string, n)
					for i := range tokens {
						tokens[i] = forge(t, top+1000+uint64(i)*7919)
					}
					codes := map[int]int{}
					var mu sync.Mutex
					reads := a.watch.users.Load()
					start := time.Now()
					var wg sync.WaitGroup
					for w := range workers {
						wg.Go(func() {
							local := map[int]int{}
							for i := w; i < n; i += workers {
								local[a.verify(tokens[i])]++
							}
							mu.Lock()
							defer mu.Unlock()
							for c, k := range local {
								codes[c] += k
							}
						})
					}
					wg.Wait()
					elapsed := time.Since(start)
					reads = a.watch.users.Load() - reads
					t.Logf("%d tokens of nobody in %v: %v, %d reads of users", n, elapsed, codes, reads)
					for c := range codes {
						if c != http.StatusUnauthorized && c != http.StatusServiceUnavailable {
							t.Fatalf("answers %v: want only 401 and 503", codes)
						}
					}
					// strategy.Service allows 20 lookups a second, 20 at once.
					if allowed := int64(21 + 20*elapsed.Seconds()); reads > allowed {
						t.Fatalf("%d reads of the users table in %v; the probe limiter allows %d", reads, elapsed, allowed)
					}
					if codes[http.StatusServiceUnavailable] == 0 {
						t.Fatalf("no 503 in %v: the flood was not limited", elapsed)
					}
				})

				t.Run("deleted user", func(t *testing.T) {
					email := "deleted@example.com"
					a.register(email)
					token := a.login(email, "laptop").token
					a.warm(token)
					b.warm(token)
					a.do(http.StatusNoContent, "DELETE", "/api/v1/me", token, map[string]string{"password": password})
					done := time.Now()
					if c := a.verify(token); c != http.StatusUnauthorized {
						t.Fatalf("A answered %d for the deleted user's token", c)
					}
					b.awaitRejected(token, done, b.bound())
					for _, n := range []*node{a, b} {
						reads := n.watch.users.Load()
						for range 100 {
							if c := n.verify(token); c != http.StatusUnauthorized {
								t.Fatalf("%s answered %d for the deleted user's token", n.name, c)
							}
						}
						if r := n.watch.users.Load() - reads; r > 2 {
							t.Fatalf("%s read the users table %d times for 100 verifications of a deleted user's token; want at most 2", n.name, r)
						}
					}
				})

				t.Run("hit reads nothing", func(t *testing.T) {
					token := a.user("hit@example.com")
					a.warm(token)
					const n = 200
					stmts, hits := a.watch.all.Load(), a.srv.CacheStats().Hits
					for range n {
						if c := a.verify(token); c != http.StatusOK {
							t.Fatalf("verify answered %d", c)
						}
					}
					if s := a.watch.all.Load() - stmts; s != 0 {
						t.Fatalf("%d verifications from the cache ran %d statements; want none", n, s)
					}
					if h := a.srv.CacheStats().Hits - hits; h != n {
						t.Fatalf("%d verifications, %d cache hits", n, h)
					}
				})
			})
		}
	})
}

// forge signs a token for user uid with a random key, under the kid of
// the active secret, so that the server must look the user up.
func forge(t testing.TB, uid uint64) string {
	t.Helper()
	now := time.Now()
	c := jwt.MapClaims{
		"sub": strconv.FormatUint(uid, 10), "iss": "authserver", "aud": []string{"authserver"},
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "sid": "forged", "jti": strconv.FormatUint(uid, 36),
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
	tok.Header["kid"] = strategy.KeyID(clusterSecret)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestClusterAdminProcess: a third process on the same database (built
// like the others, serving nothing, without Redis) revokes through the
// token service; A and B reject within max_staleness.
func TestClusterAdminProcess(t *testing.T) {
	onDrivers(t, func(t *testing.T, driver string) {
		for _, name := range outageStrategies {
			t.Run(name, func(t *testing.T) {
				db := newDatabase(t, driver)
				cfg := clusterConfig(t, name, 600*time.Millisecond, "")
				a, b := startNode(t, "A", db, cfg), startNode(t, "B", db, cfg)
				admin := buildNode(t, "admin", db, cfg)
				email := "admin@example.com"
				uid := a.register(email)
				first, second := a.login(email, "laptop"), a.login(email, "phone")
				for _, n := range []*node{a, b} {
					n.warm(first.token)
					n.warm(second.token)
				}
				victims, survivors := []string{first.token, second.token}, []string(nil)
				ctx := context.Background()
				var err error
				if caps(name).RevokeDevice {
					victims, survivors = []string{first.token}, []string{second.token}
					err = admin.srv.Tokens().RevokeDevice(ctx, &strategy.Principal{UserID: uid, LoginID: second.sid}, first.sid)
				} else {
					err = admin.srv.Tokens().LogoutAll(ctx, &strategy.Principal{UserID: uid, LoginID: second.sid})
				}
				if err != nil {
					t.Fatalf("the admin's revocation: %v", err)
				}
				done := time.Now()
				for _, n := range []*node{a, b} {
					took := n.awaitRejected(victims[0], done, n.bound(), survivors...)
					t.Logf("%s rejected %v after the admin's revocation", n.name, took)
					n.stayRejected(victims...)
				}
			})
		}
	})
}
