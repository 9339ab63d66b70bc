package server

import (
	"context"
	"sync"
	"time"
)

// debouncer coalesces bursts of triggers into one call of fire: the call
// happens once quiet has passed without a trigger, or maxDelay after the
// first trigger of the burst, whichever comes first. Triggers that arrive
// while fire runs start the next burst.
type debouncer struct {
	quiet, maxDelay time.Duration
	// kick wakes run; it holds at most one pending wake-up.
	kick chan struct{}

	mu sync.Mutex
	// first is when the pending burst's first trigger came; zero when none is pending.
	first time.Time
}

func newDebouncer(quiet, maxDelay time.Duration) *debouncer {
	return &debouncer{quiet: quiet, maxDelay: maxDelay, kick: make(chan struct{}, 1)}
}

// trigger records a change. It never blocks.
func (d *debouncer) trigger() {
	d.mu.Lock()
	if d.first.IsZero() {
		d.first = time.Now()
	}
	d.mu.Unlock()
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// run calls fire, with the time of the burst's first trigger, for every
// burst until ctx ends. fire runs on run's goroutine, one call at a time.
func (d *debouncer) run(ctx context.Context, fire func(first time.Time)) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.kick:
		}
		// A burst started: wait for quiet, bounded by the burst's deadline.
		d.mu.Lock()
		deadline := d.first.Add(d.maxDelay)
		d.mu.Unlock()
		timer.Reset(min(d.quiet, time.Until(deadline)))
	wait:
		for {
			select {
			case <-ctx.Done():
				timer.Stop()
				return
			case <-d.kick:
				timer.Stop()
				timer.Reset(min(d.quiet, time.Until(deadline)))
			case <-timer.C:
				break wait
			}
		}
		d.mu.Lock()
		first := d.first
		d.first = time.Time{}
		d.mu.Unlock()
		// A trigger between the timer firing and here is part of this
		// burst; drop its wake-up so that it does not start an empty one.
		select {
		case <-d.kick:
		default:
		}
		fire(first)
	}
}
