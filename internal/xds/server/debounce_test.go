package server

import (
	"context"
	"sync"
	"testing"
	"time"
)

// firings records the calls of a debouncer's fire.
type firings struct {
	mu    sync.Mutex
	times []time.Time // when fire ran
	ch    chan struct{}
}

func (f *firings) fire(time.Time) {
	f.mu.Lock()
	f.times = append(f.times, time.Now())
	f.mu.Unlock()
	f.ch <- struct{}{}
}

func (f *firings) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.times)
}

func startDebouncer(t *testing.T, quiet, maxDelay time.Duration) (*debouncer, *firings) {
	t.Helper()
	d := newDebouncer(quiet, maxDelay)
	f := &firings{ch: make(chan struct{}, 100)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.run(ctx, f.fire); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return d, f
}

func waitFire(t *testing.T, f *firings, within time.Duration) {
	t.Helper()
	select {
	case <-f.ch:
	case <-time.After(within):
		t.Fatalf("no regeneration within %s", within)
	}
}

// A burst of triggers closer together than the quiet period fires once.
func TestDebouncerCoalescesBurst(t *testing.T) {
	d, f := startDebouncer(t, 50*time.Millisecond, 10*time.Second)
	for range 20 {
		d.trigger()
		time.Sleep(time.Millisecond)
	}
	waitFire(t, f, 5*time.Second)
	time.Sleep(500 * time.Millisecond) // 10x the quiet period: nothing else may fire
	if n := f.count(); n != 1 {
		t.Fatalf("fired %d times for one burst, want 1", n)
	}
}

// Nothing fires without a trigger, and a trigger after a firing fires again.
func TestDebouncerFiresOncePerBurst(t *testing.T) {
	d, f := startDebouncer(t, 20*time.Millisecond, time.Second)
	time.Sleep(200 * time.Millisecond)
	if n := f.count(); n != 0 {
		t.Fatalf("fired %d times without a trigger", n)
	}
	d.trigger()
	waitFire(t, f, 5*time.Second)
	d.trigger()
	waitFire(t, f, 5*time.Second)
	if n := f.count(); n != 2 {
		t.Fatalf("fired %d times for two bursts, want 2", n)
	}
}

// Triggers that never leave a quiet gap still fire by the maximum delay.
func TestDebouncerMaxDelay(t *testing.T) {
	quiet, maxDelay := 200*time.Millisecond, 300*time.Millisecond
	d, f := startDebouncer(t, quiet, maxDelay)
	start := time.Now()
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(quiet / 10):
				d.trigger()
			}
		}
	}()
	defer close(stop)
	// Triggers keep coming every 20ms, so the quiet period never passes;
	// only the maximum delay fires. Allow 10x slack.
	waitFire(t, f, 10*maxDelay)
	if el := time.Since(start); el < maxDelay-10*time.Millisecond {
		t.Fatalf("fired after %s, before the maximum delay %s", el, maxDelay)
	}
}

// fire receives the time of the burst's first trigger, not the last.
func TestDebouncerReportsFirstTrigger(t *testing.T) {
	d := newDebouncer(30*time.Millisecond, time.Second)
	got := make(chan time.Time, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	before := time.Now()
	d.trigger()
	time.Sleep(10 * time.Millisecond)
	d.trigger()
	go d.run(ctx, func(first time.Time) { got <- first })
	select {
	case first := <-got:
		if first.Before(before) || !first.Before(before.Add(10*time.Millisecond)) {
			t.Fatalf("first trigger reported at %s, triggers were at %s and +10ms", first, before)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no firing")
	}
}
