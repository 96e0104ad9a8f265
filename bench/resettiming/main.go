// Command resettiming measures POST /api/v1/auth/password-reset for an
// email that has an account and for one that has none, interleaved in a
// random order on one server, and prints the median latency of each with
// their quartiles and a Mann-Whitney U test of the two samples: whether an
// attacker timing the answer can tell which addresses have accounts.
//
// The server must be running with the reset rate limits off (or high
// enough for -n requests per address); bench/reset-timing.sh starts one.
//
//	go run ./bench/resettiming -api http://127.0.0.1:8080/api/v1 -known ann@example.com
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"time"
)

func main() {
	api := flag.String("api", "http://127.0.0.1:8080/api/v1", "the API's base URL")
	known := flag.String("known", "", "an email that has an account (required)")
	unknown := flag.String("unknown", "nobody-here@example.com", "an email that has none")
	n := flag.Int("n", 400, "requests per email")
	warmup := flag.Int("warmup", 20, "requests per email first, not measured")
	gap := flag.Duration("gap", 20*time.Millisecond, "pause after each request, so that the reset made in the background is done before the next one")
	flag.Parse()
	if *known == "" {
		log.Fatal("-known is required")
	}
	client := &http.Client{Timeout: 10 * time.Second}
	send := func(email string) time.Duration {
		body := []byte(fmt.Sprintf(`{"email":%q}`, email))
		start := time.Now()
		resp, err := client.Post(*api+"/auth/password-reset", "application/json", bytes.NewReader(body))
		if err != nil {
			log.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		d := time.Since(start)
		if resp.StatusCode != http.StatusAccepted {
			log.Fatalf("reset of %s: status %d, want 202", email, resp.StatusCode)
		}
		time.Sleep(*gap)
		return d
	}
	emails := [2]string{*known, *unknown}
	for range *warmup {
		send(emails[0])
		send(emails[1])
	}
	var samples [2][]time.Duration
	for range *n {
		// Each pair in a random order, so that neither kind always
		// follows the other's background work.
		first := rand.IntN(2)
		for _, k := range []int{first, 1 - first} {
			samples[k] = append(samples[k], send(emails[k]))
		}
	}
	fmt.Printf("POST /auth/password-reset, %d requests per email, interleaved in random order, %s apart\n", *n, *gap)
	fmt.Println("| email | median (µs) | p25 (µs) | p75 (µs) |")
	fmt.Println("|---|---|---|---|")
	for k, name := range []string{"known", "unknown"} {
		fmt.Printf("| %s | %.1f | %.1f | %.1f |\n", name, us(quantile(samples[k], 0.5)), us(quantile(samples[k], 0.25)), us(quantile(samples[k], 0.75)))
	}
	diff := us(quantile(samples[0], 0.5)) - us(quantile(samples[1], 0.5))
	iqr := us(quantile(samples[1], 0.75)) - us(quantile(samples[1], 0.25))
	z, p := mannWhitney(samples[0], samples[1])
	fmt.Printf("median known - unknown: %+.1f µs (%.0f%% of the unknown email's interquartile range)\n", diff, 100*math.Abs(diff)/iqr)
	fmt.Printf("Mann-Whitney U: z = %.2f, two-sided p = %.3f (p above 0.05: no difference detected)\n", z, p)
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// quantile is the q-quantile of xs (nearest rank).
func quantile(xs []time.Duration, q float64) time.Duration {
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// mannWhitney is the Mann-Whitney U test of a against b, in its normal
// approximation with ties given their mean rank: z and the two-sided p.
func mannWhitney(a, b []time.Duration) (z, p float64) {
	type obs struct {
		v    time.Duration
		inA  bool
		rank float64
	}
	all := make([]obs, 0, len(a)+len(b))
	for _, v := range a {
		all = append(all, obs{v: v, inA: true})
	}
	for _, v := range b {
		all = append(all, obs{v: v})
	}
	slices.SortFunc(all, func(x, y obs) int { return int(x.v - y.v) })
	for i := 0; i < len(all); {
		j := i
		for j < len(all) && all[j].v == all[i].v {
			j++
		}
		for k := i; k < j; k++ {
			all[k].rank = float64(i+j+1) / 2
		}
		i = j
	}
	var ra float64
	for _, o := range all {
		if o.inA {
			ra += o.rank
		}
	}
	n1, n2 := float64(len(a)), float64(len(b))
	u := ra - n1*(n1+1)/2
	mean, sd := n1*n2/2, math.Sqrt(n1*n2*(n1+n2+1)/12)
	z = (u - mean) / sd
	return z, math.Erfc(math.Abs(z) / math.Sqrt2)
}
