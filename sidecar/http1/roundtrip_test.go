package http1

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const bigSize = 10 << 20

// bigBody is the 10 MB body the tests stream, the same bytes every time.
func bigBody() io.Reader {
	return io.LimitReader(&pattern{}, bigSize)
}

type pattern struct{ i byte }

func (p *pattern) Read(b []byte) (int, error) {
	for k := range b {
		b[k] = 'a' + p.i%26
		p.i++
	}
	return len(b), nil
}

// backendHandler is the origin server behind the proxy: Go's own net/http,
// an implementation independent of the codec.
func backendHandler(t *testing.T) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/echo":
			body, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "%s %s te=%v cl=%d body=%s trailer=%s hop=%q conn=%q",
				r.Method, r.URL.RequestURI(), r.TransferEncoding, r.ContentLength, body,
				r.Trailer.Get("X-Sum"), r.Header.Get("X-Hop"), r.Header.Get("Connection"))
		case "/head":
			w.Header().Set("Content-Length", "42")
			if r.Method != http.MethodHead {
				w.Write(bytes.Repeat([]byte("x"), 42))
			}
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		case "/304":
			w.Header().Set("ETag", `"v1"`)
			w.WriteHeader(http.StatusNotModified)
		case "/sum": // hash of the request body
			h := sha256.New()
			n, err := io.Copy(h, r.Body)
			if err != nil {
				t.Errorf("backend reading body: %v", err)
			}
			fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
		case "/big": // 10 MB streamed, chunked
			w.Header().Set("X-Trailer-Check", "1")
			w.Header().Set("Trailer", "X-Sum")
			io.CopyBuffer(w, bigBody(), make([]byte, 64<<10))
			w.Header().Set("X-Sum", "done")
		case "/chunked": // two pieces, flushed apart: chunked for HTTP/1.1, delimited by close for HTTP/1.0
			io.WriteString(w, "part1,")
			http.NewResponseController(w).Flush()
			io.WriteString(w, "part2")
		case "/until-close": // an HTTP/1.0-style origin: no length, close ends the body
			c, rw, _ := http.NewResponseController(w).Hijack()
			rw.WriteString("HTTP/1.0 200 OK\r\nX-Old: yes\r\n\r\nbody until close")
			rw.Flush()
			c.Close()
		case "/upgrade":
			if r.Header.Get("Upgrade") != "skein-test" {
				http.Error(w, "no upgrade", 400)
				return
			}
			c, rw, _ := http.NewResponseController(w).Hijack()
			defer c.Close()
			rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: skein-test\r\n\r\n")
			rw.Flush()
			// Upper-case every byte until the client ends its side, then
			// say goodbye: raw bytes both ways.
			buf := make([]byte, 1024)
			for {
				n, err := rw.Read(buf)
				rw.Write(bytes.ToUpper(buf[:n]))
				rw.Flush()
				if err != nil {
					break
				}
			}
			rw.WriteString("BYE")
			rw.Flush()
		default:
			http.NotFound(w, r)
		}
	}
}

// setup starts a backend and the forwarding loop in front of it, and
// returns a client for the loop and the backend's connection count.
func setup(t *testing.T) (*testProxy, *http.Client, *atomic.Int64) {
	t.Helper()
	backend := httptest.NewUnstartedServer(backendHandler(t))
	var conns atomic.Int64
	backend.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	backend.Start()
	t.Cleanup(backend.Close)
	p := startProxy(t, backend.Listener.Addr().String())
	tr := &http.Transport{ExpectContinueTimeout: 10 * time.Second, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return p, &http.Client{Transport: tr, Timeout: 20 * time.Second}, &conns
}

func do(t *testing.T, c *http.Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func newRequest(t *testing.T, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestRoundTripThroughNetHTTP(t *testing.T) {
	p, client, backendConns := setup(t)
	base := "http://" + p.addr()
	for _, tc := range []struct {
		name   string
		req    func() *http.Request
		status int
		body   string // want, exactly
		check  func(t *testing.T, resp *http.Response)
	}{
		{
			name: "GET with hop-by-hop fields",
			req: func() *http.Request {
				r := newRequest(t, "GET", base+"/echo?a=1&b", nil)
				r.Header.Set("Connection", "X-Hop")
				r.Header.Set("X-Hop", "secret")
				return r
			},
			status: 200,
			body:   `GET /echo?a=1&b te=[] cl=0 body= trailer= hop="" conn=""`,
		},
		{
			name:   "POST with Content-Length",
			req:    func() *http.Request { return newRequest(t, "POST", base+"/echo", strings.NewReader("hello")) },
			status: 200,
			body:   `POST /echo te=[] cl=5 body=hello trailer= hop="" conn=""`,
		},
		{
			name: "POST chunked with a trailer",
			req: func() *http.Request {
				r := newRequest(t, "POST", base+"/echo", io.MultiReader(strings.NewReader("chu"), strings.NewReader("nked")))
				r.ContentLength = -1
				r.Trailer = http.Header{"X-Sum": {"42"}}
				return r
			},
			status: 200,
			body:   `POST /echo te=[chunked] cl=-1 body=chunked trailer=42 hop="" conn=""`,
		},
		{
			name:   "HEAD keeps its Content-Length and sends no body",
			req:    func() *http.Request { return newRequest(t, "HEAD", base+"/head", nil) },
			status: 200,
			check: func(t *testing.T, resp *http.Response) {
				if resp.ContentLength != 42 {
					t.Errorf("Content-Length %d, want 42", resp.ContentLength)
				}
			},
		},
		{name: "204", req: func() *http.Request { return newRequest(t, "DELETE", base+"/204", nil) }, status: 204},
		{
			name:   "304",
			req:    func() *http.Request { return newRequest(t, "GET", base+"/304", nil) },
			status: 304,
			check: func(t *testing.T, resp *http.Response) {
				if resp.Header.Get("ETag") != `"v1"` {
					t.Errorf("ETag %q", resp.Header.Get("ETag"))
				}
			},
		},
		{
			name:   "a body delimited by close goes on chunked",
			req:    func() *http.Request { return newRequest(t, "GET", base+"/until-close", nil) },
			status: 200,
			body:   "body until close",
			check: func(t *testing.T, resp *http.Response) {
				if len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" || resp.Close {
					t.Errorf("transfer encoding %v, close %v: want chunked on a kept connection", resp.TransferEncoding, resp.Close)
				}
			},
		},
		{
			name:   "GET after them all on the same connections",
			req:    func() *http.Request { return newRequest(t, "GET", base+"/echo", nil) },
			status: 200,
			body:   `GET /echo te=[] cl=0 body= trailer= hop="" conn=""`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, client, tc.req())
			if resp.StatusCode != tc.status || body != tc.body {
				t.Errorf("got %d %q\nwant %d %q", resp.StatusCode, body, tc.status, tc.body)
			}
			if tc.check != nil {
				tc.check(t, resp)
			}
		})
	}
	// One client connection for all of them; upstream, one more for the
	// response that was delimited by closing.
	if a, d, b := p.accepts.Load(), p.dials.Load(), backendConns.Load(); a != 1 || d != 2 || b != 2 {
		t.Errorf("%d downstream connections, %d dialled, %d at the backend; want 1, 2, 2", a, d, b)
	}
}

func TestRoundTripBigBodies(t *testing.T) {
	p, client, _ := setup(t)
	base := "http://" + p.addr()
	want := sha256.New()
	io.Copy(want, bigBody())
	wantSum := fmt.Sprintf("%d %x", bigSize, want.Sum(nil))

	t.Run("upload with Content-Length", func(t *testing.T) {
		r := newRequest(t, "PUT", base+"/sum", bigBody())
		r.ContentLength = bigSize
		if _, body := do(t, client, r); body != wantSum {
			t.Errorf("backend got %s, want %s", body, wantSum)
		}
	})
	t.Run("upload chunked", func(t *testing.T) {
		r := newRequest(t, "PUT", base+"/sum", bigBody())
		r.ContentLength = -1
		if _, body := do(t, client, r); body != wantSum {
			t.Errorf("backend got %s, want %s", body, wantSum)
		}
	})
	t.Run("download chunked with trailer", func(t *testing.T) {
		resp, err := client.Get(base + "/big")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		h := sha256.New()
		n, err := io.Copy(h, resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprintf("%d %x", n, h.Sum(nil)); got != wantSum {
			t.Errorf("client got %s, want %s", got, wantSum)
		}
		if resp.Trailer.Get("X-Sum") != "done" {
			t.Errorf("trailer X-Sum = %q, want done", resp.Trailer.Get("X-Sum"))
		}
	})
}

func TestRoundTripKeepAlive(t *testing.T) {
	p, client, backendConns := setup(t)
	for i := range 100 {
		body := fmt.Sprintf("request %d", i)
		resp, got := do(t, client, newRequest(t, "POST", "http://"+p.addr()+"/echo", strings.NewReader(body)))
		if want := fmt.Sprintf(`POST /echo te=[] cl=%d body=%s trailer= hop="" conn=""`, len(body), body); resp.StatusCode != 200 || got != want {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, got)
		}
	}
	if a, d, b := p.accepts.Load(), p.dials.Load(), backendConns.Load(); a != 1 || d != 1 || b != 1 {
		t.Errorf("100 requests took %d downstream connections, %d dialled, %d at the backend; want 1 each", a, d, b)
	}
}

func TestRoundTripExpectContinue(t *testing.T) {
	p, client, _ := setup(t)
	r := newRequest(t, "POST", "http://"+p.addr()+"/echo", strings.NewReader("after continue"))
	r.Header.Set("Expect", "100-continue")
	var got100 atomic.Bool
	r = r.WithContext(httptrace.WithClientTrace(r.Context(), &httptrace.ClientTrace{
		Got100Continue: func() { got100.Store(true) },
	}))
	start := time.Now()
	resp, body := do(t, client, r)
	if want := `POST /echo te=[] cl=14 body=after continue trailer= hop="" conn=""`; resp.StatusCode != 200 || body != want {
		t.Errorf("got %d %q", resp.StatusCode, body)
	}
	// Without the 100 the client would wait ExpectContinueTimeout (10 s).
	if !got100.Load() || time.Since(start) > 5*time.Second {
		t.Errorf("100 Continue reached the client: %v, after %v", got100.Load(), time.Since(start))
	}
}

func TestRoundTripUpgrade(t *testing.T) {
	p, client, _ := setup(t)
	t.Run("net/http client", func(t *testing.T) {
		r := newRequest(t, "GET", "http://"+p.addr()+"/upgrade", nil)
		r.Header.Set("Connection", "Upgrade")
		r.Header.Set("Upgrade", "skein-test")
		resp, err := (&http.Client{Transport: client.Transport}).Do(r) // no Timeout: it hides the 101's writer
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 101 || resp.Header.Get("Upgrade") != "skein-test" {
			t.Fatalf("got %d, Upgrade %q", resp.StatusCode, resp.Header.Get("Upgrade"))
		}
		rw := resp.Body.(io.ReadWriteCloser)
		defer rw.Close()
		for _, msg := range []string{"ping", "raw\x00bytes\r\n\r\n"} {
			if _, err := rw.Write([]byte(msg)); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, len(msg))
			if _, err := io.ReadFull(rw, got); err != nil {
				t.Fatal(err)
			}
			if string(got) != strings.ToUpper(msg) {
				t.Errorf("echo %q, want %q", got, strings.ToUpper(msg))
			}
		}
	})
	t.Run("half-close through the tunnel", func(t *testing.T) {
		c, err := net.Dial("tcp", p.addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET /upgrade HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade: skein-test\r\n\r\n")
		br := bufio.NewReader(c)
		var resp ResponseHead
		if err := ParseResponseHead(br, &resp, []byte("GET")); err != nil || resp.Status != 101 {
			t.Fatalf("%d, %v", resp.Status, err)
		}
		io.WriteString(c, "abc")
		c.(*net.TCPConn).CloseWrite()
		// The backend answers our end of stream through the tunnel.
		rest, err := io.ReadAll(br)
		if string(rest) != "ABCBYE" || err != nil {
			t.Errorf("after half-close: %q, %v; want ABCBYE", rest, err)
		}
	})
}

// The smuggling defences hold end to end: the loop answers a request it
// refuses itself, and the backend never sees it.
func TestRoundTripRefusesSmuggling(t *testing.T) {
	p, _, backendConns := setup(t)
	for _, tc := range []struct {
		name, raw string
		status    string
	}{
		{"CL.TE", "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG", "400"},
		{"TE obfuscated", "POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n0\r\n\r\n", "501"},
		{"space before colon", "POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", "400"},
		{"too large", "GET /echo HTTP/1.1\r\nHost: h\r\nX: " + strings.Repeat("a", 70<<10) + "\r\n\r\n", "431"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", p.addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			go c.Write([]byte(tc.raw))
			var resp ResponseHead
			if err := ParseResponseHead(bufio.NewReader(c), &resp, []byte("POST")); err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(resp.Status); got != tc.status || !resp.Close {
				t.Errorf("status %s close %v, want %s and close", got, resp.Close, tc.status)
			}
		})
	}
	if n := backendConns.Load(); n != 0 {
		t.Errorf("the backend saw %d connections", n)
	}
}

// HTTP/1.0 clients, which net/http's client cannot be: keep-alive when
// asked for, with a length; a body the origin streams reaches them
// delimited by close.
func TestRoundTripHTTP10(t *testing.T) {
	p, _, _ := setup(t)
	c, err := net.Dial("tcp", p.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	var resp ResponseHead
	for i, tc := range []struct {
		raw   string
		close bool // want the connection closed after the response
		kind  FramingKind
		body  string // want, if not empty
	}{
		{raw: "GET /echo HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", kind: ContentLength, body: `GET /echo te=[] cl=0 body= trailer= hop="" conn="keep-alive"`},
		{raw: "HEAD /head HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", kind: NoBody},
		{raw: "GET /chunked HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", close: true, kind: UntilClose, body: "part1,part2"},
	} {
		io.WriteString(c, tc.raw)
		method := []byte(tc.raw[:strings.IndexByte(tc.raw, ' ')])
		if err := ParseResponseHead(br, &resp, method); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if resp.Proto != HTTP10 || resp.Status != 200 || resp.Close != tc.close || resp.Body.Kind != tc.kind {
			t.Errorf("request %d: %v %d close %v body %+v; want HTTP/1.0 200 close %v kind %d",
				i, resp.Proto, resp.Status, resp.Close, resp.Body, tc.close, tc.kind)
		}
		var body bytes.Buffer
		w := bufio.NewWriter(&body)
		if _, err := CopyBody(w, br, resp.Body, resp.Body); err != nil {
			t.Fatalf("request %d: body: %v", i, err)
		}
		if tc.body != "" && body.String() != tc.body {
			t.Errorf("request %d: body %q, want %q", i, body.String(), tc.body)
		}
	}
	if n := p.accepts.Load(); n != 1 {
		t.Errorf("%d downstream connections, want 1", n)
	}
}
