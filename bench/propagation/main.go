// Command propagation measures how long after a revocation has answered
// on one instance another instance rejects the token.
//
// It assembles two servers, A and B, in this process on one database (each
// with its own connection pool) and, unless -no-redis, one Redis; each
// serves real HTTP on a loopback port and runs its own background work, as
// two serve processes would. It creates a user, then -n times: logs in on
// A, verifies on B until B answers 200 (so that B holds the user's state),
// revokes on A (logout-all under password_key, logout under the device
// strategies), and polls B as fast as it can until B answers 401. The time
// from the revoking response to B's first 401 is what it reports (it
// includes one loopback round trip of a verification).
//
// Without Redis, B learns each revocation at an outbox read, and the next
// round starts right after that read: the loop keeps step with B's reads,
// so every revocation comes just after one and waits nearly a whole read
// interval (max_staleness/4), the worst case of a healthy instance rather
// than the average (about half of it). Nothing here sleeps to break that
// step.
//
//	go run ./bench/propagation -driver mysql -dsn 'root@tcp(127.0.0.1:3306)/bench'
//	go run ./bench/propagation -no-redis
//
// Without -redis it starts a private redis-server (which must be
// installed) on a free loopback port and stops it at the end.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/revocable/authserver"
	"github.com/revocable/authserver/config"
	"github.com/revocable/authserver/models"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "propagation:", err)
		os.Exit(1)
	}
}

type options struct {
	driver, dsn, redis, strategy string
	noRedis                      bool
	n                            int
	maxStaleness                 time.Duration
}

func run() error {
	var o options
	flag.StringVar(&o.driver, "driver", "sqlite", "database driver: sqlite, mysql or postgres")
	flag.StringVar(&o.dsn, "dsn", "", "database DSN (sqlite: default a file in a temporary directory; mysql, postgres: required, an existing database)")
	flag.StringVar(&o.redis, "redis", "", "Redis URL; empty starts a private redis-server")
	flag.BoolVar(&o.noRedis, "no-redis", false, "run without Redis: the outbox alone carries revocations")
	flag.IntVar(&o.n, "n", 200, "number of revocations")
	flag.StringVar(&o.strategy, "strategy", "password_key", "revocation strategy (password_key revokes with logout-all, the others with logout)")
	flag.DurationVar(&o.maxStaleness, "max-staleness", config.Defaults().Cache.MaxStaleness, "cache.max_staleness of both instances")
	flag.Parse()
	if o.n < 1 {
		return errors.New("-n must be at least 1")
	}
	if o.noRedis && o.redis != "" {
		return errors.New("-redis and -no-redis exclude each other")
	}
	if o.dsn == "" {
		if o.driver != "sqlite" {
			return errors.New("-dsn is required for " + o.driver)
		}
		dir, err := os.MkdirTemp("", "propagation")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		o.dsn = filepath.Join(dir, "auth.db")
	}
	if !o.noRedis && o.redis == "" {
		url, stop, err := startRedis()
		if err != nil {
			return err
		}
		defer stop()
		o.redis = url
	}
	return measure(o)
}

// instance is one assembled server with its HTTP listener.
type instance struct {
	srv  *authserver.Server
	base string
}

func measure(o options) error {
	ctx := context.Background()
	gin.SetMode(gin.ReleaseMode)
	cfg := config.Defaults()
	cfg.Strategy = o.strategy
	cfg.Password.BcryptCost = 4 // logins are not what is measured
	cfg.Cookies.Secure = false
	cfg.Cache.MaxStaleness = o.maxStaleness
	cfg.NoLimits() // 2×n logins come from one address
	if !o.noRedis {
		cfg.Redis.URL = o.redis
		cfg.Redis.Prefix = "propagation-" + random(6) + ":"
	}
	secret := []byte(random(32))
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var nodes []*instance
	for range 2 {
		pool, err := models.Open(o.driver, o.dsn, models.Options{})
		if err != nil {
			return err
		}
		if sqlDB, err := pool.DB(); err == nil {
			defer sqlDB.Close()
		}
		srv, err := authserver.New(ctx, authserver.Options{Config: cfg, DB: pool, Secret: secret, Log: log})
		if err != nil {
			return err
		}
		defer srv.Stop()
		if err := srv.Start(ctx); err != nil {
			return err
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = hs.Serve(l) }()
		defer hs.Close()
		nodes = append(nodes, &instance{srv: srv, base: "http://" + l.Addr().String()})
	}
	a, b := nodes[0], nodes[1]
	if !o.noRedis {
		if err := wait(10*time.Second, func() bool {
			ha, hb := a.srv.FeedHealth().Redis, b.srv.FeedHealth().Redis
			return ha != nil && ha.Up && hb != nil && hb.Up
		}); err != nil {
			return fmt.Errorf("the instances did not subscribe to Redis at %s: %w", o.redis, err)
		}
	}

	c := &client{hc: &http.Client{Timeout: 10 * time.Second}}
	email := "propagation-" + random(6) + "@example.com"
	const pw = "propagation password"
	if _, err := c.call("POST", a.base+"/api/v1/auth/register", "", map[string]string{"email": email, "password": pw}, http.StatusCreated); err != nil {
		return err
	}
	revoke := "/api/v1/auth/logout"
	if o.strategy == "password_key" || o.strategy == "valid_date" || o.strategy == "token_version" {
		revoke = "/api/v1/auth/logout-all"
	}
	var took []time.Duration
	lateOnA := 0
	for i := range o.n {
		body, err := c.call("POST", a.base+"/api/v1/auth/login", "", map[string]string{"email": email, "password": pw, "device_name": "bench"}, http.StatusOK)
		if err != nil {
			return err
		}
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		if err := json.Unmarshal(body, &tok); err != nil || tok.AccessToken == "" {
			return fmt.Errorf("login %d: no token in %s", i, body)
		}
		if err := wait(10*time.Second, func() bool { return c.status(b.base, tok.AccessToken) == http.StatusOK }); err != nil {
			return fmt.Errorf("login %d: B never accepted the new token: %w", i, err)
		}
		// Once more, so that B holds the state it just read.
		if s := c.status(b.base, tok.AccessToken); s != http.StatusOK {
			return fmt.Errorf("login %d: B answered %d", i, s)
		}
		if _, err := c.call("POST", a.base+revoke, tok.AccessToken, nil, http.StatusNoContent); err != nil {
			return err
		}
		answered := time.Now()
		limit := 10*o.maxStaleness + 5*time.Second
		for {
			s := c.status(b.base, tok.AccessToken)
			if s == http.StatusUnauthorized {
				took = append(took, time.Since(answered))
				break
			}
			if s != http.StatusOK {
				return fmt.Errorf("revocation %d: B answered %d", i, s)
			}
			if time.Since(answered) > limit {
				return fmt.Errorf("revocation %d: B still accepts the token after %v", i, limit)
			}
		}
		if c.status(a.base, tok.AccessToken) != http.StatusUnauthorized {
			lateOnA++
		}
	}

	slices.Sort(took)
	redis := "off (outbox only)"
	if !o.noRedis {
		redis = "on"
	}
	fmt.Printf("Propagation of a revocation from A to B (%s, %s; Redis %s)\n", o.strategy, o.driver, redis)
	fmt.Printf("cache.max_staleness %v: each instance reads the outbox every %v\n", o.maxStaleness, max(o.maxStaleness/4, time.Millisecond))
	fmt.Println("time from A's revoking response to B's first 401, polling B as fast as possible:")
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "revocations\tp50\tp99\tmax\t")
	fmt.Fprintf(w, "%d\t%v\t%v\t%v\t\n", len(took), round(percentile(took, 50)), round(percentile(took, 99)), round(took[len(took)-1]))
	w.Flush()
	hb := b.srv.FeedHealth()
	fmt.Printf("B: %d outbox reads", hb.Reads)
	if hb.Redis != nil {
		fmt.Printf(", %d invalidations received through Redis", hb.Redis.Received)
	}
	fmt.Printf("; A still accepted the token after its own revocation answered: %d times\n", lateOnA)
	if o.noRedis {
		fmt.Println("(without Redis the loop keeps step with B's outbox reads: each revocation follows a read, so these are close to a whole read interval, the worst case)")
	}
	return nil
}

// percentile is the nearest-rank percentile of sorted d.
func percentile(d []time.Duration, p int) time.Duration {
	i := (p*len(d)+99)/100 - 1
	return d[max(0, min(i, len(d)-1))]
}

func round(d time.Duration) time.Duration {
	if d < time.Millisecond {
		return d.Round(time.Microsecond)
	}
	return d.Round(10 * time.Microsecond)
}

// client sends the requests.
type client struct{ hc *http.Client }

// call sends a request and returns the body, or an error unless the status
// is want.
func (c *client) call(method, url, token string, body any, want int) ([]byte, error) {
	var buf bytes.Buffer
	if body != nil {
		if err := json.NewEncoder(&buf).Encode(body); err != nil {
			return nil, err
		}
	}
	req, err := http.NewRequest(method, url, &buf)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out bytes.Buffer
	if _, err := out.ReadFrom(resp.Body); err != nil {
		return nil, err
	}
	if resp.StatusCode != want {
		return nil, fmt.Errorf("%s %s: status %d, want %d: %s", method, url, resp.StatusCode, want, out.Bytes())
	}
	return out.Bytes(), nil
}

// status is the status GET /api/v1/auth/verify gives token on the instance
// at base (0 when the request failed).
func (c *client) status(base, token string) int {
	req, err := http.NewRequest("GET", base+"/api/v1/auth/verify", nil)
	if err != nil {
		return 0
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0
	}
	var sink bytes.Buffer
	_, _ = sink.ReadFrom(resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// wait polls cond until it holds or within has passed.
func wait(within time.Duration, cond func() bool) error {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v", within)
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

func random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

// startRedis starts a private redis-server on a free loopback port, with
// nothing saved to disk, and returns its URL and how to stop it.
func startRedis() (string, func(), error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", nil, errors.New("no redis-server installed: pass -redis URL or -no-redis")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning")
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start redis-server: %w", err)
	}
	stop := func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	if err := wait(10*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	}); err != nil {
		stop()
		return "", nil, fmt.Errorf("redis-server on %s did not start: %w", addr, err)
	}
	return "redis://" + addr + "/0", stop, nil
}
