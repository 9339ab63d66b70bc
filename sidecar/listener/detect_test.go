package listener

import (
	"bufio"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name  string
		bytes string
		want  Protocol
		final bool
	}{
		{"nothing yet", "", ProtocolUnknown, false},
		{"HTTP/1.1 request line", "GET /x?y=1 HTTP/1.1\r\nHost: a\r\n", ProtocolHTTP1, true},
		{"HTTP/1.0 with bare LF", "POST / HTTP/1.0\n", ProtocolHTTP1, true},
		{"an extension method", "PROPFIND /dav HTTP/1.1\r\n", ProtocolHTTP1, true},
		{"half a request line: wait", "GET /index.ht", ProtocolUnknown, false},
		{"method and space: wait", "GET ", ProtocolUnknown, false},
		{"version begun: wait", "GET / HTTP/1", ProtocolUnknown, false},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", ProtocolHTTP2, true},
		{"part of the preface: wait", "PRI * HTTP/2.0\r\n", ProtocolUnknown, false},
		{"TLS ClientHello", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", ProtocolTLS, true},
		{"a redis inline command is not HTTP", "SET key value\r\n", ProtocolOther, true},
		{"a request line with another version", "GET / HTTP/2.0\r\n", ProtocolOther, true},
		{"binary", "\x00\x00\x00\x0c", ProtocolOther, true},
		{"lower-case garbage word", "hello world\n", ProtocolOther, true},
		{"0x16 not followed by a TLS version", "\x16\x01", ProtocolOther, true},
		{"an endless token", strings.Repeat("A", 40), ProtocolOther, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, final := classify([]byte(tc.bytes))
			if p != tc.want || final != tc.final {
				t.Errorf("classify(%q) = %v, %v; want %v, %v", tc.bytes, p, final, tc.want, tc.final)
			}
		})
	}
}

// detectionListener serves a use_original_dst listener on 127.0.0.1 whose
// connections all claim the original destination dst: one HCM chain for
// dst's port, the default chain passes through. (The real SO_ORIGINAL_DST
// is TestCaptureListenerChoosesByOriginalDestination's.)
func detectionListener(t *testing.T, dst netip.AddrPort, detectTimeout time.Duration) (*Manager, net.Addr) {
	t.Helper()
	m := newManager(t, &testDialer{}, Config{DetectTimeout: detectTimeout})
	m.origDst = func(*net.TCPConn) (netip.AddrPort, error) { return dst, nil }
	err := m.Update([]*listenerv3.Listener{{
		Name:           "virtualOutbound",
		Address:        socketAddr("127.0.0.1", 0),
		UseOriginalDst: wrapperspb.Bool(true),
		FilterChains: []*listenerv3.FilterChain{
			chain("http", &listenerv3.FilterChainMatch{DestinationPort: port(uint32(dst.Port()))}, hcm(t)),
		},
		DefaultFilterChain: chain("PassthroughCluster", nil, toCluster(t, "PassthroughCluster")),
	}})
	if err != nil {
		t.Fatal(err)
	}
	return m, m.Addr("virtualOutbound")
}

func TestDetectsHTTP(t *testing.T) {
	banner := backend(t, func(c net.Conn) { io.WriteString(c, "220 not HTTP\r\n") })
	m, addr := detectionListener(t, banner, 5*time.Second) // a slow timeout: HTTP must not wait for it
	for _, tc := range []struct {
		name, send, want string
	}{
		{"HTTP/1", "GET /hello HTTP/1.1", "hcm http1 GET /hello HTTP/1.1"},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r", "hcm http2 PRI * HTTP/2.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			if got := ask(t, dial(t, addr), tc.send); got != tc.want {
				t.Errorf("answered %q, want %q", got, tc.want)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %v: detection waited for its timeout", d)
			}
		})
	}
	st := m.Stats()["virtualOutbound"]
	if st.HTTP1.Load() != 1 || st.HTTP2.Load() != 1 || st.DetectFallback.Load() != 0 {
		t.Errorf("stats: http1 %d http2 %d fallback %d; want 1 1 0", st.HTTP1.Load(), st.HTTP2.Load(), st.DetectFallback.Load())
	}
}

// TestServerSpeaksFirstFallsBackAtTheTimeout: an SMTP-like server writes a
// banner before its client says anything; on an AUTO (HCM) chain the
// connection waits for the detection timeout, then passes through.
func TestServerSpeaksFirstFallsBackAtTheTimeout(t *testing.T) {
	smtp := backend(t, func(c net.Conn) {
		io.WriteString(c, "220 smtp.example ready\r\n")
		line, _ := bufio.NewReader(c).ReadString('\n')
		io.WriteString(c, "250 got "+line)
	})
	const timeout = 150 * time.Millisecond
	m, addr := detectionListener(t, smtp, timeout)
	c := dial(t, addr)
	start := time.Now()
	r := bufio.NewReader(c)
	banner, err := r.ReadString('\n')
	took := time.Since(start)
	if err != nil || banner != "220 smtp.example ready\r\n" {
		t.Fatalf("banner %q, %v", banner, err)
	}
	if took < timeout || took > timeout+time.Second {
		t.Errorf("the banner came after %v, want just after the %v timeout", took, timeout)
	}
	io.WriteString(c, "HELO me\r\n")
	if got, _ := r.ReadString('\n'); got != "250 got HELO me\r\n" {
		t.Errorf("answer %q", got)
	}
	if n := m.Stats()["virtualOutbound"].DetectFallback.Load(); n != 1 {
		t.Errorf("DetectFallback = %d, want 1", n)
	}
}

// TestNotHTTPFallsBackAtOnce: TLS and other client-first bytes pass
// through, replayed to the original destination unchanged, without waiting
// for the timeout.
func TestNotHTTPFallsBackAtOnce(t *testing.T) {
	upstream := backend(t, echo)
	_, addr := detectionListener(t, upstream, 5*time.Second)
	for _, tc := range []struct{ name, send string }{
		{"TLS ClientHello", "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03 rest of the hello\n"},
		{"redis inline command", "SET key value\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, addr)
			start := time.Now()
			if _, err := io.WriteString(c, tc.send); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, len(tc.send))
			if _, err := io.ReadFull(c, got); err != nil || string(got) != tc.send {
				t.Fatalf("echoed %q, %v; want the bytes sent", got, err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %v: waited for the detection timeout", d)
			}
		})
	}
}

// TestPlainListenerHandsAnythingToTheHCM: without an original destination
// there is nothing to pass through to; non-HTTP bytes go to the HCM as
// HTTP/1 for it to answer.
func TestPlainListenerHandsAnythingToTheHCM(t *testing.T) {
	m := newManager(t, &testDialer{}, Config{})
	if err := m.Update([]*listenerv3.Listener{{Name: "http", Address: socketAddr("127.0.0.1", 0),
		FilterChains: []*listenerv3.FilterChain{chain("", nil, hcm(t))}}}); err != nil {
		t.Fatal(err)
	}
	if got := ask(t, dial(t, m.Addr("http")), "hello there"); got != "hcm http1 hello there" {
		t.Errorf("answered %q", got)
	}
}
