package httpproxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// TestH2LargeBodiesBothWays: bodies far larger than HTTP/2's initial
// windows (64 KiB) go through whole both ways, so the server refunds the
// windows it grants and waits for the ones the client grants.
func TestH2LargeBodiesBothWays(t *testing.T) {
	const size = 3 << 20
	p, _ := oneBackend(t, func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, _ := io.Copy(h, r.Body)
		w.Header().Set("X-Got", strconv.FormatInt(n, 10))
		w.Header().Set("X-Sum", string(h.Sum(nil)[:4]))
		w.Write(bytes.Repeat([]byte("z"), size))
	})
	c := h2cClient(t, p.addr)
	body := bytes.Repeat([]byte("abcdefgh"), size/8)
	sum := sha256.Sum256(body)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", "http://svc/up", bytes.NewReader(body))
			if i%2 == 1 {
				req.ContentLength = -1 // streamed, chunked upstream
				req.Body = io.NopCloser(bytes.NewReader(body))
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || len(got) != size || resp.Header.Get("X-Got") != strconv.Itoa(size) ||
				resp.Header.Get("X-Sum") != string(sum[:4]) {
				t.Errorf("request %d: %v, %d bytes back, backend got %s", i, err, len(got), resp.Header.Get("X-Got"))
			}
		}()
	}
	wg.Wait()
}

// TestH2ManyConcurrentStreams: streams of one connection run at once.
func TestH2ManyConcurrentStreams(t *testing.T) {
	release := make(chan struct{})
	var started sync.WaitGroup
	const n = 50
	started.Add(n)
	p, _ := oneBackend(t, func(w http.ResponseWriter, r *http.Request) {
		started.Done()
		<-release
		io.WriteString(w, r.URL.Query().Get("i"))
	})
	c := h2cClient(t, p.addr)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := c.Get("http://svc/?i=" + strconv.Itoa(i))
			if err != nil {
				t.Error(err)
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != strconv.Itoa(i) {
				t.Errorf("stream %d got %q", i, b)
			}
		}()
	}
	started.Wait() // all n are at the backend together
	close(release)
	wg.Wait()
}

// TestH2ClientResetEndsUpstreamExchange: a client that resets its stream
// (a cancelled request) ends the handler's context, so the upstream
// request is abandoned, and the connection serves the next stream.
func TestH2ClientResetEndsUpstreamExchange(t *testing.T) {
	gone := make(chan struct{}, 1)
	p, _ := oneBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			<-r.Context().Done() // the proxy closed the upstream connection
			gone <- struct{}{}
			return
		}
		io.WriteString(w, "ok")
	})
	c := h2cClient(t, p.addr)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://svc/slow", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	resp.Body.Close()
	select {
	case <-gone:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream request outlived the client's reset")
	}
	resp, err = c.Get("http://svc/next")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "ok" {
		t.Fatalf("next stream: %q", b)
	}
}

// TestH2ProtocolBasics speaks frames to the server: SETTINGS are
// acknowledged, PING answered, a stream beyond the advertised limit
// refused, a request on an even stream id ends the connection with
// GOAWAY PROTOCOL_ERROR.
func TestH2ProtocolBasics(t *testing.T) {
	p, _ := oneBackend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hi") })
	conn, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	conn.Write(h2Preface)
	fr := http2.NewFramer(conn, conn)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	fr.WriteSettings()
	fr.WritePing(false, [8]byte{1, 2, 3})
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "svc"}, {":path", "/"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true})
	var sawSettings, sawAck, sawPing, sawBody bool
	for !(sawSettings && sawAck && sawPing && sawBody) {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("settings %v ack %v ping %v body %v: %v", sawSettings, sawAck, sawPing, sawBody, err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if f.IsAck() {
				sawAck = true
			} else {
				sawSettings = true
				if v, ok := f.Value(http2.SettingMaxConcurrentStreams); !ok || v != h2MaxStreams {
					t.Errorf("MAX_CONCURRENT_STREAMS %d %v", v, ok)
				}
				fr.WriteSettingsAck()
			}
		case *http2.PingFrame:
			sawPing = f.IsAck() && f.Data == [8]byte{1, 2, 3}
		case *http2.DataFrame:
			if string(f.Data()) == "hi" && f.StreamEnded() {
				sawBody = true
			}
		}
	}
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 2, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true})
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("no GOAWAY before %v", err)
		}
		if ga, ok := f.(*http2.GoAwayFrame); ok {
			if ga.ErrCode != http2.ErrCodeProtocol || ga.LastStreamID != 1 {
				t.Fatalf("GOAWAY %v last stream %d", ga.ErrCode, ga.LastStreamID)
			}
			return
		}
	}
}

// TestH2SmallClientWindows pins a deadlock: a response larger than the
// client's stream window waited for a WINDOW_UPDATE with the DATA that
// filled the window still queued, not sent (h2load -w 14 hung on 300 KB
// responses). The client here grants 1,000 bytes per stream and refunds
// what it reads.
func TestH2SmallClientWindows(t *testing.T) {
	const size = 100 << 10
	p, _ := oneBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write(bytes.Repeat([]byte("w"), size))
	})
	conn, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	conn.Write(h2Preface)
	fr := http2.NewFramer(conn, conn)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1000})
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "svc"}, {":path", "/"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true})
	got := 0
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("after %d of %d bytes: %v", got, size, err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.DataFrame:
			n := len(f.Data())
			if n > 1000 {
				t.Fatalf("DATA of %d bytes beyond the 1000-byte window", n)
			}
			got += n
			if n > 0 {
				fr.WriteWindowUpdate(0, uint32(n))
				fr.WriteWindowUpdate(1, uint32(n))
			}
			if f.StreamEnded() {
				if got != size {
					t.Fatalf("%d bytes, want %d", got, size)
				}
				return
			}
		}
	}
}
