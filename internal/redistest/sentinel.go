package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Sentinels times, short so that a test sees a failover within seconds:
// a master is down after downAfter without an answer, and a failover that
// stalls is tried again after failoverTimeout.
const (
	downAfter       = 1000 * time.Millisecond
	failoverTimeout = 5 * time.Second
)

// Replicated is a Redis replicated under Sentinel, all on loopback: a
// master, one replica and three sentinels with a quorum of two, as a
// small production deployment runs it. Master and Replica keep their
// roles' names from the start; after a failover the replica is the
// master (MasterAddr says which is).
type Replicated struct {
	tb      testing.TB
	Name    string
	Master  *Server
	Replica *Server
	// Sentinels are the sentinel processes, in the order of Addrs.
	Sentinels []*Server
}

// StartReplicated starts the master, the replica and three sentinels
// monitoring them under name, and returns once the sentinels know the
// replica and each other (before that a failover could not happen).
//
// masterArgs are added to the master's command line: a test that must keep
// the sentinels from reconfiguring the old master after a failover, as a
// partition between them would, passes --rename-command CONFIG "" (the
// sentinels' reconfiguration is a MULTI with CONFIG REWRITE, which then
// aborts whole, so the old master neither becomes a replica nor drops its
// clients).
func StartReplicated(tb testing.TB, name string, masterArgs ...string) *Replicated {
	tb.Helper()
	master := &Server{tb: tb, bin: binary(tb), Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(tb))), args: masterArgs}
	master.Restart()
	tb.Cleanup(master.Kill)
	r := &Replicated{tb: tb, Name: name, Master: master}
	host, port, _ := net.SplitHostPort(r.Master.Addr)
	r.Replica = &Server{tb: tb, bin: r.Master.bin, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(tb))),
		args: []string{"--replicaof", host, port}}
	r.Replica.Restart()
	tb.Cleanup(r.Replica.Kill)
	dir := tb.TempDir()
	for i := range 3 {
		sp := freePort(tb)
		// A sentinel rewrites its configuration file: each gets its own.
		conf := filepath.Join(dir, fmt.Sprintf("sentinel%d.conf", i))
		body := fmt.Sprintf("port %d\nbind 127.0.0.1\nprotected-mode no\n"+
			"sentinel monitor %s %s %s 2\nsentinel down-after-milliseconds %s %d\n"+
			"sentinel failover-timeout %s %d\nsentinel parallel-syncs %s 1\n",
			sp, name, host, port, name, downAfter.Milliseconds(), name, failoverTimeout.Milliseconds(), name)
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			tb.Fatalf("write %s: %v", conf, err)
		}
		s := &Server{tb: tb, bin: r.Master.bin, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(sp)), conf: conf}
		s.Restart()
		tb.Cleanup(s.Kill)
		r.Sentinels = append(r.Sentinels, s)
	}
	r.await(30*time.Second, "the sentinels to know the replica and each other", func(ctx context.Context, sc *redis.SentinelClient) error {
		replicas, err := sc.Replicas(ctx, name).Result()
		if err != nil {
			return err
		}
		others, err := sc.Sentinels(ctx, name).Result()
		if err != nil {
			return err
		}
		if len(replicas) < 1 || len(others) < 2 {
			return fmt.Errorf("%d replicas and %d other sentinels known", len(replicas), len(others))
		}
		return nil
	})
	return r
}

// Addrs are the sentinels' addresses, as redis.sentinel.addrs lists them.
func (r *Replicated) Addrs() []string {
	out := make([]string, len(r.Sentinels))
	for i, s := range r.Sentinels {
		out[i] = s.Addr
	}
	return out
}

// MasterAddr is where the sentinels say the master is now.
func (r *Replicated) MasterAddr() string {
	r.tb.Helper()
	var addr string
	r.await(5*time.Second, "a sentinel to name the master", func(ctx context.Context, sc *redis.SentinelClient) error {
		a, err := sc.GetMasterAddrByName(ctx, r.Name).Result()
		if err == nil {
			addr = net.JoinHostPort(a[0], a[1])
		}
		return err
	})
	return addr
}

// AwaitMaster waits until every sentinel names a master other than old,
// and the new master says it is one, and returns its address.
func (r *Replicated) AwaitMaster(old string, within time.Duration) string {
	r.tb.Helper()
	var addr string
	r.await(within, "a new master after "+old, func(ctx context.Context, _ *redis.SentinelClient) error {
		for _, s := range r.Sentinels {
			sc := redis.NewSentinelClient(&redis.Options{Addr: s.Addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
			a, err := sc.GetMasterAddrByName(ctx, r.Name).Result()
			_ = sc.Close()
			if err != nil {
				return err
			}
			if addr = net.JoinHostPort(a[0], a[1]); addr == old {
				return errors.New("still the old master")
			}
		}
		c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
		defer c.Close()
		role, err := c.Do(ctx, "ROLE").Slice()
		if err != nil {
			return err
		}
		if len(role) == 0 || role[0] != "master" {
			return fmt.Errorf("%s answers ROLE %v", addr, role)
		}
		return nil
	})
	return addr
}

// Failover asks the sentinels for a failover now, with the master alive
// (SENTINEL FAILOVER): the master becomes a replica of the promoted one.
func (r *Replicated) Failover() {
	r.tb.Helper()
	sc := redis.NewSentinelClient(&redis.Options{Addr: r.Sentinels[0].Addr, MaxRetries: -1})
	defer sc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := sc.Failover(ctx, r.Name).Err(); err != nil {
		r.tb.Fatalf("SENTINEL FAILOVER %s: %v", r.Name, err)
	}
}

// Node is the master or the replica at addr.
func (r *Replicated) Node(addr string) *Server {
	r.tb.Helper()
	for _, s := range []*Server{r.Master, r.Replica} {
		if s.Addr == addr {
			return s
		}
	}
	r.tb.Fatalf("no node at %s", addr)
	return nil
}

// await polls cond with a client of the first sentinel that answers
// until it returns nil, and fails the test after within: readiness of
// processes the test started, not a timing assertion.
func (r *Replicated) await(within time.Duration, what string, cond func(context.Context, *redis.SentinelClient) error) {
	r.tb.Helper()
	deadline := time.Now().Add(within)
	var err error
	for time.Now().Before(deadline) {
		for _, s := range r.Sentinels {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			sc := redis.NewSentinelClient(&redis.Options{Addr: s.Addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
			err = cond(ctx, sc)
			_ = sc.Close()
			cancel()
			if err == nil {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	r.tb.Fatalf("waited %v for %s: %v", within, what, err)
}
