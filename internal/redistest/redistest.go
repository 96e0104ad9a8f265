// Package redistest starts a private redis-server for one test, so that a
// test can kill it, pause it or cut its clients off and bring it back (to
// prove a fallback or a fail-closed path) without touching the Redis other
// tests or developers use. It is the Redis counterpart of models/dbtest.
package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// EnvServer names the variable that may hold the path of redis-server;
// without it the binary is looked up in PATH and at /usr/bin/redis-server.
const EnvServer = "AUTH_TEST_REDIS_SERVER"

// Server is one redis-server process on a loopback port of its own.
type Server struct {
	tb   testing.TB
	bin  string
	Addr string
	// args are added to every start (a replica's --replicaof).
	args []string
	// conf, when set, is a sentinel's configuration file: the server runs
	// as a sentinel, on the port the file names.
	conf string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// Start runs a redis-server with no persistence on a free loopback port and
// stops it when the test ends. Without a redis-server binary it skips the
// test, saying "Redis tests skipped" so that CI can refuse the skip.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s := &Server{tb: tb, bin: binary(tb), Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(tb)))}
	s.Restart()
	tb.Cleanup(s.Kill)
	return s
}

// binary is the redis-server to run; without one the test is skipped.
func binary(tb testing.TB) string {
	tb.Helper()
	bin := os.Getenv(EnvServer)
	if bin == "" {
		if p, err := exec.LookPath("redis-server"); err == nil {
			bin = p
		} else if _, err := os.Stat("/usr/bin/redis-server"); err == nil {
			bin = "/usr/bin/redis-server"
		}
	}
	if bin == "" {
		tb.Skipf("Redis tests skipped: no redis-server in PATH (set %s)", EnvServer)
	}
	return bin
}

func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Client returns a client of the server with short timeouts and no
// retries, the settings a server should use so that a dead Redis costs a
// request milliseconds, not the go-redis default of seconds.
func (s *Server) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{
		Addr:         s.Addr,
		DialTimeout:  200 * time.Millisecond,
		ReadTimeout:  200 * time.Millisecond,
		WriteTimeout: 200 * time.Millisecond,
		MaxRetries:   -1,
		// go-redis dials 5 times, 100ms apart, by default.
		DialerRetries: 1,
	})
	s.tb.Cleanup(func() { _ = c.Close() })
	return c
}

// Kill stops the server at once (SIGKILL: no goodbye to clients) and waits
// for the process to be gone. Killing a stopped server does nothing.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Restart starts the server again on the same port, empty, and waits until
// it answers PING.
func (s *Server) Restart() {
	s.tb.Helper()
	s.Kill()
	_, port, _ := net.SplitHostPort(s.Addr)
	cmd := exec.Command(s.bin, append([]string{"--port", port, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--protected-mode", "no", "--dir", s.tb.TempDir()}, s.args...)...)
	if s.conf != "" {
		cmd = exec.Command(s.bin, s.conf, "--sentinel")
	}
	// A replica stores what its master sends it in the working directory
	// (dump.rdb), even without save points: never the package's.
	cmd.Dir = s.tb.TempDir()
	if err := cmd.Start(); err != nil {
		s.tb.Fatalf("start redis-server: %v", err)
	}
	s.mu.Lock()
	s.cmd = cmd
	s.mu.Unlock()
	if err := s.waitReady(); err != nil {
		s.Kill()
		s.tb.Fatalf("redis-server on %s: %v", s.Addr, err)
	}
}

// waitReady polls PING until it answers: readiness of a process we just
// started, not a timing assertion.
func (s *Server) waitReady() error {
	c := redis.NewClient(&redis.Options{Addr: s.Addr, DialTimeout: 100 * time.Millisecond, MaxRetries: -1, DialerRetries: 1})
	defer c.Close()
	var err error
	for range 100 {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err = c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.Join(fmt.Errorf("no answer to PING after 100 tries"), err)
}

// URL is the redis.url of the server.
func (s *Server) URL() string { return "redis://" + s.Addr + "/0" }

// Do runs one command on the server, e.g. Do("CLIENT", "PAUSE", 3000) or
// Do("CLIENT", "KILL", "TYPE", "pubsub").
func (s *Server) Do(args ...any) error {
	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Do(ctx, args...).Err(); err != nil {
		return fmt.Errorf("redis %v: %w", args, err)
	}
	return nil
}

// Role is the server's replication role as ROLE names it: master, slave
// or sentinel.
func (s *Server) Role() (string, error) {
	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	role, err := c.Do(ctx, "ROLE").Slice()
	if err != nil {
		return "", fmt.Errorf("redis ROLE: %w", err)
	}
	if len(role) == 0 {
		return "", errors.New("redis ROLE: empty answer")
	}
	r, _ := role[0].(string)
	return r, nil
}
