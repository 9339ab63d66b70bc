package main

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/skeinmesh/skein/internal/xds/server/xdstest"
)

// fleet is the simulated proxies: one ADS stream each, over a gRPC
// connection of its own, as real proxies have.
type fleet struct {
	proxies []*proxy
	// lastUpdate is when any proxy last answered a response (UnixNano).
	lastUpdate atomic.Int64
	// responses counts the responses answered, by type URL; nacks the NACKs.
	responses map[string]*atomic.Int64
	nacks     atomic.Int64
	// full receives each proxy once, when it first ACKed every type.
	full chan *proxy
}

// proxy is one simulated proxy.
type proxy struct {
	pod   *benchPod
	delta bool
	conn  *grpc.ClientConn
	ads   *xdstest.Client

	mu sync.Mutex
	// acked are the types accepted so far; fullAt is when the last of
	// them first was.
	acked  map[string]bool
	fullAt time.Time
	// watch, while set, waits for a new version of one type.
	watch *watch
}

// watch waits for the first accepted version of typeURL other than old,
// received after since.
type watch struct {
	typeURL, old string
	since        time.Time
	// ackedAt is when the proxy ACKed it; zero until then.
	ackedAt time.Time
	arrived chan<- struct{}
}

// connectFleet opens one stream per pod, at most workers opening at once.
// Every other proxy uses delta xDS when mode is mixed.
func connectFleet(ctx context.Context, addr string, pods []*benchPod, mode string, workers int) (*fleet, error) {
	f := &fleet{proxies: make([]*proxy, len(pods)), responses: map[string]*atomic.Int64{}, full: make(chan *proxy, len(pods))}
	for _, t := range xdstest.AllTypes {
		f.responses[t] = &atomic.Int64{}
	}
	for i, pod := range pods {
		f.proxies[i] = &proxy{pod: pod, delta: mode == "delta" || (mode == "mixed" && i%2 == 1), acked: map[string]bool{}}
	}
	err := parallel(ctx, len(pods), workers, func(_ context.Context, i int) error {
		p := f.proxies[i]
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return err
		}
		p.conn = conn
		// The stream lives on ctx, not on the per-call context of parallel.
		p.ads, err = xdstest.Connect(ctx, conn, xdstest.Options{
			NodeID: p.pod.nodeID, Token: p.pod.token, Delta: p.delta,
			OnUpdate: func(u xdstest.Update) { f.answered(p, u) },
		})
		return err
	})
	if err != nil {
		f.close()
		return nil, fmt.Errorf("connect the proxies: %w", err)
	}
	return f, nil
}

// answered records a response a proxy answered; it runs on the proxy's
// receiving goroutine right after the ACK or NACK was sent.
func (f *fleet) answered(p *proxy, u xdstest.Update) {
	now := time.Now()
	f.lastUpdate.Store(now.UnixNano())
	if c := f.responses[u.TypeURL]; c != nil {
		c.Add(1)
	}
	if u.NACKed {
		f.nacks.Add(1)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fullAt.IsZero() {
		p.acked[u.TypeURL] = true
		if len(p.acked) == len(xdstest.AllTypes) {
			p.fullAt = now
			f.full <- p
		}
	}
	if w := p.watch; w != nil && w.ackedAt.IsZero() && u.TypeURL == w.typeURL && u.Version != w.old && !u.Received.Before(w.since) {
		w.ackedAt = now
		w.arrived <- struct{}{}
	}
}

// coldStart waits until every proxy ACKed its first full config, or
// timeout, or a minute without any proxy getting one. It returns each proxy's time since start (missing ones out),
// and the errors of the streams that ended.
func (f *fleet) coldStart(ctx context.Context, start time.Time, timeout time.Duration) ([]time.Duration, map[string]int, error) {
	deadline := time.After(timeout)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	got, progressed := 0, time.Now()
wait:
	for got < len(f.proxies) {
		select {
		case <-f.full:
			got, progressed = got+1, time.Now()
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-deadline:
			break wait
		case <-tick.C:
			if _, n := f.ended(); got+n >= len(f.proxies) {
				break wait // every proxy is either configured or its stream ended
			}
			if time.Since(progressed) > time.Minute {
				break wait // stalled
			}
		}
	}
	var lat []time.Duration
	for _, p := range f.proxies {
		p.mu.Lock()
		if !p.fullAt.IsZero() {
			lat = append(lat, p.fullAt.Sub(start))
		}
		p.mu.Unlock()
	}
	errs, _ := f.ended()
	return lat, errs, nil
}

// ended counts the streams that ended, by error, and in all.
func (f *fleet) ended() (map[string]int, int) {
	errs, n := map[string]int{}, 0
	for _, p := range f.proxies {
		select {
		case <-p.ads.Done():
			errs[fmt.Sprint(p.ads.Err())]++
			n++
		default:
		}
	}
	return errs, n
}

// settle waits until no proxy answered a response for quiet, at most
// limit; it reports whether it did settle.
func (f *fleet) settle(ctx context.Context, quiet, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for {
		idle := time.Since(time.Unix(0, f.lastUpdate.Load()))
		if idle >= quiet {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(quiet - idle):
		}
	}
}

// counts snapshots the responses answered so far, by type URL.
func (f *fleet) counts() map[string]int64 {
	out := map[string]int64{}
	for t, c := range f.responses {
		out[t] = c.Load()
	}
	return out
}

// round is one timed change.
type round struct {
	name string
	// lat are the proxies' times from the change to their ACK; missing
	// ones are left out.
	lat   []time.Duration
	total int
	// sotw and delta split lat by the proxies' flavour.
	sotw, delta []time.Duration
	// extra counts, by type URL, the responses the proxies answered during
	// the round, settled.
	extra map[string]int64
	// settled is false when pushes went on after the round.
	settled bool
	// checked is how many proxies hold the expected content afterwards.
	checked int
}

// measure arms every proxy to wait for a new version of typeURL, makes the
// change, and waits until every proxy ACKed one, or timeout. check then
// tells whether a proxy's accepted config holds the change.
func (f *fleet) measure(ctx context.Context, name, typeURL string, timeout time.Duration,
	change func(context.Context) (time.Time, error), check func(*xdstest.Client) bool,
) (*round, error) {
	arrived := make(chan struct{}, len(f.proxies))
	armed := time.Now()
	for _, p := range f.proxies {
		p.mu.Lock()
		p.watch = &watch{typeURL: typeURL, old: p.ads.Versions()[typeURL], since: armed, arrived: arrived}
		p.mu.Unlock()
	}
	before := f.counts()
	t0, err := change(ctx)
	if err != nil {
		return nil, err
	}
	deadline := time.After(timeout)
wait:
	for got := 0; got < len(f.proxies); got++ {
		select {
		case <-arrived:
		case <-deadline:
			break wait
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	r := &round{name: name, total: len(f.proxies)}
	for _, p := range f.proxies {
		p.mu.Lock()
		w := p.watch
		p.watch = nil
		p.mu.Unlock()
		if w.ackedAt.IsZero() {
			continue
		}
		d := w.ackedAt.Sub(t0)
		r.lat = append(r.lat, d)
		if p.delta {
			r.delta = append(r.delta, d)
		} else {
			r.sotw = append(r.sotw, d)
		}
	}
	r.settled = f.settle(ctx, time.Second, 20*time.Second)
	after := f.counts()
	r.extra = map[string]int64{}
	for t := range after {
		r.extra[t] = after[t] - before[t]
	}
	for _, p := range f.proxies {
		if check(p.ads) {
			r.checked++
		}
	}
	return r, nil
}

// close ends every stream and connection.
func (f *fleet) close() {
	var wg sync.WaitGroup
	for _, p := range f.proxies {
		wg.Go(func() {
			if p.ads != nil {
				p.ads.Close()
			}
			if p.conn != nil {
				_ = p.conn.Close()
			}
		})
	}
	wg.Wait()
}

// stats are the percentiles of a set of latencies.
type stats struct {
	n int
	// first and last are the fastest and the slowest.
	first, p50, p99, last time.Duration
}

func summarize(lat []time.Duration) stats {
	s := stats{n: len(lat)}
	if len(lat) == 0 {
		return s
	}
	sorted := append([]time.Duration(nil), lat...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	s.first, s.last = sorted[0], sorted[len(sorted)-1]
	s.p50, s.p99 = percentile(sorted, 50), percentile(sorted, 99)
	return s
}

// percentile is the nearest-rank percentile of sorted.
func percentile(sorted []time.Duration, p int) time.Duration {
	rank := (p*len(sorted) + 99) / 100 // ceil(p/100 * n)
	return sorted[max(rank, 1)-1]
}
