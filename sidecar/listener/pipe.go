package listener

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// copyBufs holds buffers for copies that cannot splice (a side that is not
// a *net.TCPConn).
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// pipe copies a to b and b to a until both directions have ended, passing
// each end of stream on as a half-close; an error in either direction
// closes both. With idle > 0 it closes both when no byte has moved either
// way for idle: each direction's reads wake up every idle/4 to look at the
// time of the last progress (io.Copy reports progress only when it
// returns), so a connection is closed between idle and 1.25 idle after its
// last byte. TCP to TCP, io.Copy splices without copying through user
// space.
func pipe(a, b net.Conn, idle time.Duration) {
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		copyHalf(b, a, idle, &last)
	}()
	copyHalf(a, b, idle, &last)
	wg.Wait()
}

var errIdle = errors.New("idle timeout")

// copyHalf copies src to dst; at src's end of stream it half-closes dst,
// on any error it closes both.
func copyHalf(dst, src net.Conn, idle time.Duration, last *atomic.Int64) {
	var buf []byte
	_, dstTCP := dst.(*net.TCPConn)
	_, srcTCP := src.(*net.TCPConn)
	if !dstTCP || !srcTCP {
		bp := copyBufs.Get().(*[]byte)
		defer copyBufs.Put(bp)
		buf = *bp
	}
	tick := idle / 4
	var err error
	for {
		if idle > 0 {
			_ = src.SetReadDeadline(time.Now().Add(tick))
		}
		var n int64
		n, err = io.CopyBuffer(dst, src, buf)
		if n > 0 {
			last.Store(time.Now().UnixNano())
		}
		if err == nil || idle <= 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if time.Since(time.Unix(0, last.Load())) >= idle {
			err = errIdle
			break
		}
	}
	if err != nil {
		_ = dst.Close()
		_ = src.Close()
		return
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	} else {
		_ = dst.Close()
	}
}
