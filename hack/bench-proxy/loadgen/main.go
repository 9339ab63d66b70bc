// Command loadgen is bench-proxy's open-loop load generator and its
// response check.
//
//	loadgen check -url http://127.0.0.1:18080/1k [-h2] [-size 1024]
//	loadgen open  -url http://127.0.0.1:18080/1k [-h2] -rate 1000 -duration 10s -warmup 2s
//
// open sends requests on a fixed schedule whatever the responses do: each
// request is started by the scheduler in its own goroutine, so a slow
// response never delays the next request (wrk and h2load without a rate are
// closed-loop: a slow response holds back the next request of its connection
// and hides the very latency being measured). A request waits for a free
// connection of a bounded pool (-conns), and that wait counts in its latency.
//
// Latency runs from the moment a request is dispatched until its body is read
// whole. It does not start at the request's slot in the schedule: Go's timers
// on Linux wake with about a millisecond's granularity, and that scheduling
// error of the generator would swamp the sub-millisecond differences being
// measured. The scheduler's own lag is reported (lag_p99_us) so that a
// generator that could not keep the rate is visible.
//
// open prints one line of key=value pairs; times are in microseconds.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: loadgen check|open -url URL [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "check":
		err = check(os.Args[2:])
	case "open":
		err = open(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// client returns an HTTP client for loopback only, HTTP/1.1 with keep-alive
// or HTTP/2 with prior knowledge (h2c), with at most conns connections.
func client(h2 bool, conns int) *http.Client {
	t := &http.Transport{
		Proxy:               nil, // never an HTTP_PROXY from the environment
		DialContext:         loopbackDial,
		MaxConnsPerHost:     conns,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
		Protocols:           new(http.Protocols),
	}
	if h2 {
		t.Protocols.SetUnencryptedHTTP2(true)
	} else {
		t.Protocols.SetHTTP1(true)
	}
	return &http.Client{Transport: t, Timeout: 10 * time.Second}
}

// loopbackDial refuses every address that is not a loopback IP.
func loopbackDial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("refusing %s: the benchmark sends traffic to loopback only", addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// get does one request and reads the body whole; it fails unless the status
// is 200 and, when size >= 0, the body has size bytes.
func get(c *http.Client, url string, size int64) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	if size >= 0 && n != size {
		return fmt.Errorf("body of %d bytes, want %d", n, size)
	}
	return nil
}

func check(args []string) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	url := fs.String("url", "", "URL to GET")
	h2 := fs.Bool("h2", false, "HTTP/2 with prior knowledge (h2c)")
	size := fs.Int64("size", 1024, "expected body size in bytes; -1 for any")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c := client(*h2, 1)
	for i := 0; i < 3; i++ { // a second request reuses the connection
		if err := get(c, *url, *size); err != nil {
			return fmt.Errorf("GET %s (h2=%t): %w", *url, *h2, err)
		}
	}
	return nil
}

func open(args []string) error {
	fs := flag.NewFlagSet("open", flag.ContinueOnError)
	url := fs.String("url", "", "URL to GET")
	h2 := fs.Bool("h2", false, "HTTP/2 with prior knowledge (h2c)")
	size := fs.Int64("size", 1024, "expected body size in bytes; -1 for any")
	rate := fs.Float64("rate", 1000, "requests per second")
	duration := fs.Duration("duration", 10*time.Second, "how long to measure")
	warmup := fs.Duration("warmup", 2*time.Second, "how long to send at the same rate before measuring")
	conns := fs.Int("conns", 256, "most connections open at once (HTTP/1.1)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *rate <= 0 || *duration <= 0 {
		return errors.New("-rate and -duration must be positive")
	}
	c := client(*h2, *conns)
	interval := time.Duration(float64(time.Second) / *rate)
	skip := int(warmup.Seconds() * *rate)
	total := skip + int(duration.Seconds()**rate)

	lat := make([]time.Duration, total) // by request; written once each
	lag := make([]time.Duration, total)
	var errs atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < total; i++ {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		wg.Add(1)
		go func(i int, due time.Time) {
			defer wg.Done()
			t0 := time.Now()
			lag[i] = t0.Sub(due)
			if err := get(c, *url, *size); err != nil {
				errs.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
				lat[i] = -1
				return
			}
			lat[i] = time.Since(t0)
		}(i, due)
	}
	sent := time.Since(start.Add(time.Duration(skip) * interval))
	wg.Wait()

	ok := make([]time.Duration, 0, total-skip)
	for _, d := range lat[skip:] {
		if d >= 0 {
			ok = append(ok, d)
		}
	}
	measured := lag[skip:]
	slices.Sort(ok)
	slices.Sort(measured)
	fmt.Printf("requests=%d errors=%d rate=%.0f p50_us=%.1f p90_us=%.1f p99_us=%.1f max_us=%.1f lag_p99_us=%.1f\n",
		total-skip, errs.Load(), float64(total-skip)/sent.Seconds(),
		us(pct(ok, 50)), us(pct(ok, 90)), us(pct(ok, 99)), us(pct(ok, 100)), us(pct(measured, 99)))
	if e := firstErr.Load(); e != nil {
		fmt.Fprintln(os.Stderr, "loadgen: first error:", e)
	}
	return nil
}

// pct is the p-th percentile (nearest rank) of sorted ds.
func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	i := int(float64(len(ds))*p/100+0.5) - 1
	return ds[max(0, min(i, len(ds)-1))]
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
