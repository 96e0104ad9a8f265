// Command zipfload drives an authserver with the tokens of seeded
// accounts (authserver dev seed --tokens FILE) and reports throughput and
// latency percentiles: the million-accounts benchmark of docs/scaling.md.
//
//	verify   GET /api/v1/auth/verify, each request with the access token
//	         of an account picked by Zipf(s) over all accounts of the file
//	         (rank r is account r*stride mod N, so hot accounts are spread
//	         over the ids); with -token, always that token (the yardstick).
//	login    POST /api/v1/auth/login of an account picked by Zipf(s).
//	refresh  POST /api/v1/auth/refresh: each connection rotates its own
//	         share of the seeded refresh tokens, keeping each successor.
//
//	go run ./bench/zipfload -mode verify -url http://127.0.0.1:8080 -tokens t.tsv -d 10s
//
// It is closed-loop: -c connections, each sending its next request when
// the previous answer arrives.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type account struct{ email, access, refresh string }

func main() {
	var (
		mode     = flag.String("mode", "verify", "verify, login or refresh")
		base     = flag.String("url", "http://127.0.0.1:8080", "server base URL")
		file     = flag.String("tokens", "", "tokens file of authserver dev seed")
		token    = flag.String("token", "", "verify: always this token (no file)")
		password = flag.String("password", "seed-password", "login: the seeded password")
		s        = flag.Float64("s", 1.1, "Zipf exponent (> 1)")
		conns    = flag.Int("c", 32, "connections")
		dur      = flag.Duration("d", 10*time.Second, "duration")
		warm     = flag.Duration("warm", 0, "run this long first, unmeasured")
		part     = flag.String("part", "0/1", "refresh: use only accounts i with i%n == k (k/n), so that runs do not present tokens an earlier run rotated")
		seed     = flag.Uint64("seed", 0, "random seed (0: from the clock, so that runs do not replay the same picks)")
	)
	flag.Parse()
	if *seed == 0 {
		*seed = uint64(time.Now().UnixNano())
	}
	var accts []account
	if *token == "" {
		var err error
		if accts, err = load(*file); err != nil {
			log.Fatal(err)
		}
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *conns, MaxConnsPerHost: *conns}}
	n := uint64(len(accts))
	stride := uint64(1)
	if n > 1 {
		stride = coprime(n)
	}
	// pick returns an account index by Zipf rank.
	newPick := func(w int) func() int {
		r := rand.New(rand.NewPCG(*seed, uint64(w)))
		z := rand.NewZipf(r, *s, 1, max(n, 1)-1)
		return func() int { return int(z.Uint64() * stride % max(n, 1)) }
	}
	// Each connection's refresh tokens: indices w, w+c, w+2c, ...
	refreshOf := make([][]string, *conns)
	if *mode == "refresh" {
		var k, m int
		if _, err := fmt.Sscanf(*part, "%d/%d", &k, &m); err != nil || m < 1 || k < 0 || k >= m {
			log.Fatalf("-part %q: want k/n with 0 <= k < n", *part)
		}
		j := 0
		for i, a := range accts {
			if i%m == k {
				refreshOf[j%*conns] = append(refreshOf[j%*conns], a.refresh)
				j++
			}
		}
	}
	run := func(d time.Duration) (lat []time.Duration, bad int64) {
		var (
			mu   sync.Mutex
			wg   sync.WaitGroup
			nbad atomic.Int64
		)
		end := time.Now().Add(d)
		for w := range *conns {
			wg.Go(func() {
				pick := newPick(w)
				var mine []time.Duration
				next := 0
				for time.Now().Before(end) {
					var req *http.Request
					switch *mode {
					case "verify":
						t := *token
						if t == "" {
							t = accts[pick()].access
						}
						req, _ = http.NewRequest(http.MethodGet, *base+"/api/v1/auth/verify", nil)
						req.Header.Set("Authorization", "Bearer "+t)
					case "login":
						b, _ := json.Marshal(map[string]string{"email": accts[pick()].email, "password": *password, "device_name": "zipfload"})
						req, _ = http.NewRequest(http.MethodPost, *base+"/api/v1/auth/login", bytes.NewReader(b))
						req.Header.Set("Content-Type", "application/json")
					case "refresh":
						own := refreshOf[w]
						if len(own) == 0 {
							return
						}
						next %= len(own)
						b, _ := json.Marshal(map[string]string{"refresh_token": own[next]})
						req, _ = http.NewRequest(http.MethodPost, *base+"/api/v1/auth/refresh", bytes.NewReader(b))
						req.Header.Set("Content-Type", "application/json")
					default:
						log.Fatalf("unknown mode %q", *mode)
					}
					start := time.Now()
					resp, err := client.Do(req)
					if err != nil {
						nbad.Add(1)
						continue
					}
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					mine = append(mine, time.Since(start))
					ok := resp.StatusCode == http.StatusOK
					if !ok {
						nbad.Add(1)
					}
					if *mode == "refresh" {
						// Keep the successor; a token that failed is
						// skipped, never retried.
						var out struct {
							Refresh string `json:"refresh_token"`
						}
						if ok && json.Unmarshal(body, &out) == nil && out.Refresh != "" {
							refreshOf[w][next] = out.Refresh
						}
						next++
					}
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			})
		}
		wg.Wait()
		return lat, nbad.Load()
	}
	if *warm > 0 {
		run(*warm)
	}
	lat, bad := run(*dur)
	slices.Sort(lat)
	q := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	fmt.Printf("mode=%s accounts=%d requests=%d non2xx=%d rps=%.0f p50=%s p90=%s p99=%s\n",
		*mode, len(accts), len(lat), bad, float64(len(lat))/dur.Seconds(),
		q(0.50).Round(time.Microsecond), q(0.90).Round(time.Microsecond), q(0.99).Round(time.Microsecond))
	if bad > 0 {
		os.Exit(1)
	}
}

// load reads the tokens file: user id, email, access, refresh per line.
func load(path string) ([]account, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []account
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for sc.Scan() {
		p := strings.Split(sc.Text(), "\t")
		if len(p) != 4 {
			return nil, fmt.Errorf("%s: line %d: want 4 tab-separated fields", path, len(out)+1)
		}
		out = append(out, account{email: p[1], access: p[2], refresh: p[3]})
	}
	if len(out) == 0 && sc.Err() == nil {
		return nil, fmt.Errorf("%s: no accounts", path)
	}
	return out, sc.Err()
}

// coprime returns a stride near n*0.618 with gcd(stride, n) = 1, so that
// r -> r*stride mod n is a permutation.
func coprime(n uint64) uint64 {
	gcd := func(a, b uint64) uint64 {
		for b != 0 {
			a, b = b, a%b
		}
		return a
	}
	for s := n*618/1000 | 1; ; s++ {
		if gcd(s, n) == 1 {
			return s
		}
	}
}
