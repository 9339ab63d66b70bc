package httpproxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// The HTTP/2 server: a lean codec on golang.org/x/net/http2's Framer and
// hpack, in place of its Server. One goroutine per connection reads frames
// (h2conn.serve); each request runs its handler on a goroutine of its own
// (net/http's types, as stream2.ServeHTTP expects them); the frames every
// stream writes are appended to one connection buffer, which one writer
// goroutine sends with a system call per batch rather than per frame.
//
// Kept from the protocol: SETTINGS both ways (acknowledged), flow control
// both ways (the peer's windows bound what handlers send; the windows this
// server grants are refunded as handlers read), PING, GOAWAY (sent on a
// connection error and at the idle timeout; received: the streams open
// finish), RST_STREAM both ways (a handler's panic resets its stream,
// http.ErrAbortHandler included), trailers both ways, CONTINUATION,
// MAX_CONCURRENT_STREAMS (REFUSED_STREAM beyond it). Not kept: server
// push, priorities (ignored, as RFC 9113 allows, but for a stream that
// depends on itself), and the Date and sniffed Content-Type that
// net/http's server adds to responses lacking them. doc.go says how it
// answers frames h2spec probes (make h2spec).

const (
	// h2MaxStreams is SETTINGS_MAX_CONCURRENT_STREAMS, as
	// golang.org/x/net/http2's server.
	h2MaxStreams = 250
	// h2StreamWindow and h2ConnWindow are the receive windows granted to
	// a client: how much request body is buffered per stream and per
	// connection while handlers do not read it.
	h2StreamWindow = 1 << 20
	h2ConnWindow   = 1 << 20
	// h2Refund: window is given back once this much was read.
	h2Refund = 16 << 10
	// h2MaxBuffered is how many bytes of frames may wait for the writer
	// before handlers sending DATA wait.
	h2MaxBuffered = 1 << 20
	// h2Chunk is how much response body a stream buffers before sending
	// it without a Flush.
	h2Chunk = 16 << 10
	// h2MaxReadFrame is the largest frame a client may send: the
	// protocol's default SETTINGS_MAX_FRAME_SIZE, which this server does
	// not raise.
	h2MaxReadFrame = 16 << 10
	// h2ResetsKept is how many of the streams this server reset are
	// remembered after they are forgotten, so that the frames the
	// client sent before it saw the RST_STREAM are ignored (RFC 9113
	// 5.1) rather than answered as frames on a closed stream.
	h2ResetsKept = 16
)

// errStreamClosed is a write to a stream that was reset or whose
// connection is gone.
var errStreamClosed = errors.New("http2: stream closed")

// h2conn is one HTTP/2 server connection.
type h2conn struct {
	h       *Handler
	handler http.Handler
	conn    net.Conn
	fr      *http2.Framer // reads; only serve uses it
	ctx     context.Context
	remote  string
	maxHdr  uint32

	mu sync.Mutex // everything below
	// Writing: frames are encoded (HPACK included, so the encoder's
	// state follows wire order) into wbuf under mu; the writer sends it.
	wfr      *http2.Framer
	wbuf     []byte
	spare    []byte
	wcond    sync.Cond // wbuf not empty, or the connection is done
	room     sync.Cond // wbuf has room again
	henc     *hpack.Encoder
	hbuf     []byte
	writeErr error
	done     bool // torn down: no more frames

	streams     map[uint32]*h2stream
	maxID       uint32               // highest client stream id seen
	sentResets  [h2ResetsKept]uint32 // the last streams reset by this server, a ring
	nextReset   int
	goAway      bool  // a GOAWAY was sent
	sendWindow  int64 // the peer's connection window for our DATA
	connCond    sync.Cond
	peerWindow  int64 // the peer's SETTINGS_INITIAL_WINDOW_SIZE
	peerFrame   int   // the peer's SETTINGS_MAX_FRAME_SIZE
	connUnacked int   // read by handlers, not yet refunded to the connection window
	recvWindow  int64 // what the client may still send on the connection
	idle        *time.Timer
	handlers    sync.WaitGroup
}

// h2stream is one request of a connection.
type h2stream struct {
	c    *h2conn
	id   uint32
	ctx  streamCtx
	cond sync.Cond // on c.mu: body data, window, reset

	// Under c.mu:
	body        []byte // request body received, not read
	bodyOff     int
	bodyEnded   bool  // END_STREAM received
	bodyClosed  bool  // the handler closed the body: data is dropped
	bodyErr     error // set on reset
	trailer     http.Header
	recvWindow  int64 // what the client may still send on the stream
	unacked     int   // read, not yet refunded to the stream window
	declared    int64 // the request's Content-Length; -1: none
	received    int64 // body bytes received
	sendWindow  int64
	reset       bool // RST_STREAM sent or received
	peerReset   bool // RST_STREAM received
	handlerDone bool
}

// serve2 serves an HTTP/2 (prior knowledge) connection.
func (h *Handler) serve2(ctx context.Context, c net.Conn, src, dst netip.AddrPort) {
	hc := &h2conn{
		h:          h,
		handler:    &stream2{h: h, src: src, dst: dst},
		conn:       c,
		ctx:        ctx,
		streams:    make(map[uint32]*h2stream),
		sendWindow: 65535,
		peerWindow: 65535,
		peerFrame:  16384,
		recvWindow: h2ConnWindow,
		maxHdr:     http.DefaultMaxHeaderBytes,
	}
	if h.MaxRequestHeadersKB > 0 {
		hc.maxHdr = uint32(h.MaxRequestHeadersKB) << 10
	}
	hc.serve()
}

// The writer's side.

// bufWriter appends the write Framer's frames to wbuf.
type bufWriter struct{ c *h2conn }

func (w bufWriter) Write(p []byte) (int, error) {
	w.c.wbuf = append(w.c.wbuf, p...)
	return len(p), nil
}

// queued is called with mu held after frames were appended.
func (c *h2conn) queued() { c.wcond.Signal() }

// writeLoop sends what the streams queued until the connection is done.
func (c *h2conn) writeLoop(wrote chan<- struct{}) {
	defer close(wrote)
	c.mu.Lock()
	for {
		for len(c.wbuf) == 0 && !c.done {
			c.wcond.Wait()
		}
		if len(c.wbuf) == 0 {
			c.mu.Unlock()
			return
		}
		if c.writeErr == nil && !c.done {
			// Let the other runnable streams add their frames first:
			// one write for many responses.
			c.mu.Unlock()
			runtime.Gosched()
			c.mu.Lock()
		}
		buf := c.wbuf
		c.wbuf = c.spare[:0]
		c.spare = nil
		err := c.writeErr
		c.mu.Unlock()
		if err == nil {
			_, err = c.conn.Write(buf)
		}
		c.mu.Lock()
		if cap(buf) <= 4*h2MaxBuffered {
			c.spare = buf[:0]
		}
		if err != nil && c.writeErr == nil {
			c.writeErr = err
			c.conn.Close() // the reader stops, which tears down
		}
		c.room.Broadcast()
	}
}

// The reader's side.

func (c *h2conn) serve() {
	c.wcond.L, c.room.L, c.connCond.L = &c.mu, &c.mu, &c.mu
	c.wfr = http2.NewFramer(bufWriter{c}, nil)
	c.henc = hpack.NewEncoder(headerBlock{c})
	c.remote = c.conn.RemoteAddr().String()
	br := bufio.NewReaderSize(c.conn, 16<<10)
	wrote := make(chan struct{})
	go c.writeLoop(wrote)
	defer func() {
		c.teardown()
		c.handlers.Wait()
		<-wrote
		c.conn.Close()
	}()

	var preface [24]byte
	if _, err := io.ReadFull(br, preface[:]); err != nil || string(preface[:]) != string(h2Preface) {
		return
	}
	c.fr = http2.NewFramer(nil, br)
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.fr.MaxHeaderListSize = c.maxHdr
	c.fr.SetMaxReadFrameSize(h2MaxReadFrame)
	c.fr.SetReuseFrames()
	c.mu.Lock()
	c.wfr.WriteSettings(
		http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: h2MaxStreams},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: h2StreamWindow},
		http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: c.maxHdr},
	)
	if h2ConnWindow > 65535 {
		c.wfr.WriteWindowUpdate(0, h2ConnWindow-65535)
	}
	c.queued()
	c.mu.Unlock()
	c.setIdle(true)

	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) {
				c.mu.Lock()
				if se.StreamID > c.maxID && se.StreamID%2 == 1 {
					c.maxID = se.StreamID
				}
				c.resetLocked(se.StreamID, se.Code)
				c.mu.Unlock()
				continue
			}
			var ce http2.ConnectionError
			if errors.As(err, &ce) {
				c.fail(http2.ErrCode(ce))
			} else if errors.Is(err, http2.ErrFrameTooLarge) {
				// Larger than SETTINGS_MAX_FRAME_SIZE (RFC 9113 4.2).
				c.fail(http2.ErrCodeFrameSize)
			}
			c.debug("HTTP/2 connection ended reading", err)
			return
		}
		var cerr error
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			cerr = c.onHeaders(f)
		case *http2.DataFrame:
			cerr = c.onData(f)
		case *http2.SettingsFrame:
			cerr = c.onSettings(f)
		case *http2.WindowUpdateFrame:
			cerr = c.onWindowUpdate(f)
		case *http2.PingFrame:
			if !f.IsAck() {
				c.mu.Lock()
				c.wfr.WritePing(true, f.Data)
				c.queued()
				c.mu.Unlock()
			}
		case *http2.RSTStreamFrame:
			c.mu.Lock()
			if s := c.streams[f.StreamID]; s != nil {
				s.reset, s.peerReset = true, true
				c.closeStreamLocked(s, errStreamClosed)
			} else if f.StreamID > c.maxID {
				cerr = http2.ConnectionError(http2.ErrCodeProtocol)
			}
			c.mu.Unlock()
		case *http2.GoAwayFrame:
			// The client opens no more streams; the ones open finish.
		case *http2.PushPromiseFrame:
			cerr = http2.ConnectionError(http2.ErrCodeProtocol)
		case *http2.PriorityFrame:
			if f.StreamDep == f.StreamID {
				// RFC 9113 5.3.1: a stream cannot depend on itself.
				c.mu.Lock()
				c.resetLocked(f.StreamID, http2.ErrCodeProtocol)
				c.mu.Unlock()
			}
		default:
			// Unknown types are ignored (RFC 9113 5.5).
		}
		if cerr != nil {
			var ce http2.ConnectionError
			if errors.As(cerr, &ce) {
				c.fail(http2.ErrCode(ce))
			}
			c.debug("HTTP/2 connection error", cerr)
			return
		}
	}
}

// debug logs why the connection ends, at V(1).
func (c *h2conn) debug(msg string, err error) {
	if l := c.h.deps.Log.V(1); l.Enabled() {
		l.Info(msg, "err", err.Error(), "remote", c.remote)
	}
}

// fail sends GOAWAY with code; serve returns after it.
func (c *h2conn) fail(code http2.ErrCode) {
	c.mu.Lock()
	if !c.goAway && !c.done {
		c.goAway = true
		c.wfr.WriteGoAway(c.maxID, code, nil)
		c.queued()
	}
	c.mu.Unlock()
}

// teardown ends every stream and stops the writer once it sent what is
// queued.
func (c *h2conn) teardown() {
	c.mu.Lock()
	c.done = true
	for _, s := range c.streams {
		s.reset = true
		c.closeStreamLocked(s, errStreamClosed)
	}
	c.wcond.Broadcast()
	c.room.Broadcast()
	c.connCond.Broadcast()
	c.mu.Unlock()
	if c.idle != nil {
		c.idle.Stop()
	}
	// A writer stuck on a client that reads nothing must not hold the
	// teardown: give it a moment, then cut.
	c.conn.SetWriteDeadline(time.Now().Add(time.Second))
}

// setIdle starts (or stops) the idle timeout: with no stream open for
// IdleTimeout, the connection says GOAWAY and closes.
func (c *h2conn) setIdle(on bool) {
	t := c.h.IdleTimeout
	if t <= 0 {
		return
	}
	if !on {
		if c.idle != nil {
			c.idle.Stop()
		}
		return
	}
	if c.idle == nil {
		c.idle = time.AfterFunc(t, func() {
			c.mu.Lock()
			n := len(c.streams)
			c.mu.Unlock()
			if n == 0 {
				c.fail(http2.ErrCodeNo)
				c.conn.SetReadDeadline(past)
			}
		})
		return
	}
	c.idle.Reset(t)
}

func (c *h2conn) onSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	err := f.ForeachSetting(func(st http2.Setting) error {
		if err := st.Valid(); err != nil {
			return err
		}
		switch st.ID {
		case http2.SettingInitialWindowSize:
			delta := int64(st.Val) - c.peerWindow
			c.peerWindow = int64(st.Val)
			for _, s := range c.streams {
				s.sendWindow += delta
				if s.sendWindow > 1<<31-1 {
					return http2.ConnectionError(http2.ErrCodeFlowControl)
				}
				s.cond.Broadcast()
			}
		case http2.SettingMaxFrameSize:
			c.peerFrame = int(st.Val)
		case http2.SettingHeaderTableSize:
			c.henc.SetMaxDynamicTableSizeLimit(st.Val)
		}
		return nil
	})
	if err != nil {
		return err
	}
	c.wfr.WriteSettingsAck()
	c.queued()
	return nil
}

func (c *h2conn) onWindowUpdate(f *http2.WindowUpdateFrame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.StreamID == 0 {
		c.sendWindow += int64(f.Increment)
		if c.sendWindow > 1<<31-1 {
			return http2.ConnectionError(http2.ErrCodeFlowControl)
		}
		c.connCond.Broadcast()
		return nil
	}
	s := c.streams[f.StreamID]
	if s == nil {
		if f.StreamID > c.maxID {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		return nil
	}
	s.sendWindow += int64(f.Increment)
	if s.sendWindow > 1<<31-1 {
		c.resetLocked(s.id, http2.ErrCodeFlowControl)
		return nil
	}
	s.cond.Broadcast()
	return nil
}

func (c *h2conn) onData(f *http2.DataFrame) error {
	n := int(f.Length) // flow control counts the padding too
	data := f.Data()
	c.mu.Lock()
	defer c.mu.Unlock()
	if int64(n) > c.recvWindow {
		return http2.ConnectionError(http2.ErrCodeFlowControl)
	}
	c.recvWindow -= int64(n)
	s := c.streams[f.StreamID]
	if s == nil || s.reset {
		if f.StreamID > c.maxID {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		c.refundLocked(nil, n)
		if !c.closedByUsLocked(s, f.StreamID) {
			// DATA on a stream that ended, or that the client
			// reset: STREAM_CLOSED (RFC 9113 5.1).
			c.writeResetLocked(f.StreamID, http2.ErrCodeStreamClosed)
		}
		return nil
	}
	if s.bodyEnded {
		c.refundLocked(nil, n)
		c.resetLocked(f.StreamID, http2.ErrCodeStreamClosed)
		return nil
	}
	if int64(n) > s.recvWindow {
		c.refundLocked(nil, n)
		c.resetLocked(s.id, http2.ErrCodeFlowControl)
		return nil
	}
	s.recvWindow -= int64(n)
	s.received += int64(len(data))
	if s.declared >= 0 && (s.received > s.declared || (f.StreamEnded() && s.received != s.declared)) {
		// Not the body Content-Length announced (RFC 9113 8.1.1).
		c.refundLocked(nil, n)
		c.resetLocked(s.id, http2.ErrCodeProtocol)
		return nil
	}
	if s.bodyClosed || s.bodyErr != nil {
		c.refundLocked(s, n)
	} else {
		if pad := n - len(data); pad > 0 {
			c.refundLocked(s, pad)
		}
		if s.bodyOff == len(s.body) {
			s.body, s.bodyOff = s.body[:0], 0
		}
		s.body = append(s.body, data...)
	}
	if f.StreamEnded() {
		s.bodyEnded = true
		c.maybeForgetLocked(s)
	}
	s.cond.Broadcast()
	return nil
}

// refundLocked gives n bytes of window back to the client: the
// connection's, and the stream's unless s is nil, in WINDOW_UPDATEs once
// enough accumulated.
func (c *h2conn) refundLocked(s *h2stream, n int) {
	if n <= 0 || c.done {
		return
	}
	c.connUnacked += n
	if c.connUnacked >= h2Refund {
		c.wfr.WriteWindowUpdate(0, uint32(c.connUnacked))
		c.recvWindow += int64(c.connUnacked)
		c.connUnacked = 0
		c.queued()
	}
	if s == nil || s.bodyEnded || s.reset {
		return
	}
	s.unacked += n
	if s.unacked >= h2Refund {
		c.wfr.WriteWindowUpdate(s.id, uint32(s.unacked))
		s.recvWindow += int64(s.unacked)
		s.unacked = 0
		c.queued()
	}
}

// resetLocked sends RST_STREAM for id and ends the stream if open.
func (c *h2conn) resetLocked(id uint32, code http2.ErrCode) {
	if s := c.streams[id]; s != nil {
		if s.reset {
			return
		}
		s.reset = true
		c.closeStreamLocked(s, errStreamClosed)
	}
	c.writeResetLocked(id, code)
}

// writeResetLocked sends RST_STREAM for id, and remembers that it did.
func (c *h2conn) writeResetLocked(id uint32, code http2.ErrCode) {
	if c.done {
		return
	}
	c.sentResets[c.nextReset] = id
	c.nextReset = (c.nextReset + 1) % h2ResetsKept
	c.wfr.WriteRSTStream(id, code)
	c.queued()
}

// closedByUsLocked reports whether a frame for stream id (s, nil once
// forgotten) arrived after this server reset the stream, and is to be
// ignored: the client may have sent it before the RST_STREAM reached it
// (RFC 9113 5.1). A stream the client reset, or that ended, is not
// (until this server answered a frame on it with RST_STREAM).
func (c *h2conn) closedByUsLocked(s *h2stream, id uint32) bool {
	if s != nil && s.reset && !s.peerReset {
		return true
	}
	for _, r := range c.sentResets {
		if r == id {
			return true
		}
	}
	return false
}

// closeStreamLocked fails the stream's body and waits, cancels its
// context, and forgets it if its handler is done.
func (c *h2conn) closeStreamLocked(s *h2stream, err error) {
	if s.bodyErr == nil && !s.bodyEnded {
		s.bodyErr = err
	}
	s.bodyEnded = true
	s.ctx.cancel(context.Canceled)
	s.cond.Broadcast()
	c.connCond.Broadcast()
	// What the handler did not read goes back to the connection window.
	c.refundLocked(nil, len(s.body)-s.bodyOff)
	s.body, s.bodyOff = nil, 0
	c.maybeForgetLocked(s)
}

// maybeForgetLocked removes a stream that is closed both ways.
func (c *h2conn) maybeForgetLocked(s *h2stream) {
	if !s.handlerDone || !s.bodyEnded {
		return
	}
	if c.streams[s.id] == s {
		delete(c.streams, s.id)
		if len(c.streams) == 0 && !c.done {
			c.setIdle(true)
		}
	}
}
