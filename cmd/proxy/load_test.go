package main

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestEndpointUpdatesUnderLoad changes the endpoints of the cluster 20
// times (backends added and removed; removed ones keep running, as a
// terminating pod finishes its requests) while keep-alive HTTP clients and
// new TCP connections go through the proxy: no request fails, and in the
// end only the last set's backends get new requests.
func TestEndpointUpdatesUnderLoad(t *testing.T) {
	var backends []*backend
	for i := range 4 {
		backends = append(backends, startBackend(t, fmt.Sprintf("b%d", i)))
	}
	subset := func(i int) []*backend { // 20 different non-empty subsets
		mask := (i*7+3)%15 + 1
		var out []*backend
		for j, b := range backends {
			if mask&(1<<j) != 0 {
				out = append(out, b)
			}
		}
		return out
	}
	srv := startXDS(t, "")
	m := mesh{outboundPort: freePort(t), httpPort: freePort(t), backends: subset(0)}
	srv.set(m.snapshot(t, "0"))
	p := startSidecar(t, srv.addr, m.outboundPort)
	p.waitReady()

	var ok, failed atomic.Int64
	var errMu sync.Mutex
	var errs []string
	fail := func(s string) {
		failed.Add(1)
		errMu.Lock()
		if len(errs) < 10 {
			errs = append(errs, s)
		}
		errMu.Unlock()
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	worker := func(url string, client *http.Client) {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			resp, err := client.Get(url)
			if err != nil {
				fail(err.Error())
				continue
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 || !strings.HasPrefix(string(body), "b") {
				fail(fmt.Sprintf("%s: %d %q %v", url, resp.StatusCode, body, err))
				continue
			}
			ok.Add(1)
		}
	}
	for range 4 { // keep-alive through the HCM: a host per request
		wg.Add(1)
		go worker("http://127.0.0.1:"+m.httpPort+"/", &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}})
	}
	for range 2 { // a new connection per request through tcp_proxy: a host per connection
		wg.Add(1)
		go worker("http://127.0.0.1:"+m.outboundPort+"/", &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}})
	}

	var last []*backend
	for i := 1; i <= 20; i++ {
		last = subset(i)
		m.backends = last
		srv.set(m.snapshot(t, fmt.Sprint(i)))
		want := addrs(last)
		eventually(t, 10*time.Second, func() string {
			if got := hostsOf(p, cluster); !slices.Equal(got, want) {
				return fmt.Sprintf("update %d: /clusters shows %v, want %v", i, got, want)
			}
			return ""
		})
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	t.Logf("%d requests, %d failed", ok.Load(), failed.Load())
	if failed.Load() != 0 {
		t.Errorf("%d requests failed during the updates, first ones: %q", failed.Load(), errs)
	}
	if ok.Load() < 200 {
		t.Errorf("only %d requests went through: the load was not there", ok.Load())
	}
	for _, b := range backends {
		if b.hits.Load() == 0 {
			t.Errorf("backend %s got no request, though it was in some sets", b.name)
		}
		b.hits.Store(0)
	}

	for range 20 {
		for _, port := range []string{m.httpPort, m.outboundPort} {
			if code, body := get("http://127.0.0.1:" + port + "/"); code != 200 {
				t.Fatalf("after the updates: %d %s", code, body)
			}
		}
	}
	for _, b := range backends {
		if in := slices.Contains(last, b); !in && b.hits.Load() != 0 {
			t.Errorf("backend %s, removed, got %d new requests", b.name, b.hits.Load())
		}
	}
}

func addrs(bs []*backend) []string {
	var out []string
	for _, b := range bs {
		out = append(out, b.addr)
	}
	slices.Sort(out)
	return out
}

// hostsOf reads the cluster's hosts from admin /clusters, sorted.
func hostsOf(p *proc, name string) []string {
	_, text := get(p.admin + "/clusters")
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(line, name+"::"); ok && strings.HasSuffix(rest, "::weight::1") {
			out = append(out, strings.TrimSuffix(rest, "::weight::1"))
		}
	}
	slices.Sort(out)
	return out
}
