package httpproxy

import (
	"context"
	"sync"
	"time"
)

// streamCtx is a stream's context: the connection context's values, done
// when the stream ends (context.Canceled); the route's timeout is a
// context.WithDeadline on it (which registers through AfterFunc). The connection ends its streams itself on
// teardown, so the connection context keeps no child per stream; and it
// has an AfterFunc method, which context.AfterFunc and the With* functions
// use instead of registering a child (or starting a goroutine).
type streamCtx struct {
	parent context.Context

	mu   sync.Mutex
	done chan struct{} // made on demand
	err  error
	fns  []*afterFunc
}

type afterFunc struct{ f func() }

var _ context.Context = (*streamCtx)(nil)

// closedDone is the Done channel of a context that ended before anyone
// asked for it.
var closedDone = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (c *streamCtx) Deadline() (time.Time, bool) { return c.parent.Deadline() }

func (c *streamCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
	}
	return c.done
}

func (c *streamCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *streamCtx) Value(key any) any { return c.parent.Value(key) }

// AfterFunc arranges for f to run in its own goroutine once c is done, as
// context.AfterFunc; stop unregisters it.
func (c *streamCtx) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	a := &afterFunc{f: f}
	c.fns = append(c.fns, a)
	c.mu.Unlock()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for i, x := range c.fns {
			if x == a {
				c.fns = append(c.fns[:i], c.fns[i+1:]...)
				return true
			}
		}
		return false
	}
}

// cancel ends c with err; the first call wins.
func (c *streamCtx) cancel(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	if c.done == nil {
		c.done = closedDone
	} else {
		close(c.done)
	}
	fns := c.fns
	c.fns = nil
	c.mu.Unlock()
	for _, a := range fns {
		go a.f()
	}
}
