package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

// The client modes, for a meshed pod to call a service and report what
// happened (the image has no shell: `kubectl exec pod -- /echo call ...`):
//
//	echo call -url http://web.ns.svc.cluster.local:8080/anything [-proto http1|h2c] [-n 100]
//	echo call -grpc web.ns.svc.cluster.local:9090 [-n 100]
//	echo load (-url URL [-proto] | -grpc HOST:PORT) [-rps 50] [-duration 60s] [-stop-on-eof]
//
// call makes n requests one after another and prints one JSON Summary.
// load sends rps requests a second, each on its own goroutine (open loop,
// so a slow answer does not slow the load), until the duration passes, a
// SIGINT or SIGTERM, or with -stop-on-eof the end of stdin (`kubectl exec
// -i` and close stdin); it prints each failure as a JSON line
// {"failure": ...} when it happens, {"progress": ...} every 5 seconds, and
// {"summary": ...} last. Both exit 1 when a request failed.
//
// A request succeeds when the answer is 200 (gRPC OK) and an echo reply;
// anything else is a Failure with the HTTP status or gRPC code and the
// x-skein-reason header the proxy puts on the answers it makes up.

// clientOptions are the flags of call and load.
type clientOptions struct {
	url      string        // HTTP target
	proto    string        // http1 or h2c
	grpc     string        // gRPC target host:port
	n        int           // call: requests
	rps      int           // load: requests a second
	duration time.Duration // load: how long; 0 until stopped
	eof      bool          // load: stop at the end of stdin
	timeout  time.Duration // per request
	headers  headerFlag    // added to every request
}

// headerFlag is a repeatable -H "name: value".
type headerFlag [][2]string

func (h *headerFlag) String() string { return fmt.Sprint(*h) }
func (h *headerFlag) Set(v string) error {
	name, value, ok := strings.Cut(v, ":")
	if !ok || strings.TrimSpace(name) == "" {
		return fmt.Errorf("header %q: want name: value", v)
	}
	*h = append(*h, [2]string{strings.TrimSpace(name), strings.TrimSpace(value)})
	return nil
}

func parseClient(mode string, args []string) (*clientOptions, error) {
	o := &clientOptions{}
	fs := flag.NewFlagSet("echo "+mode, flag.ContinueOnError)
	fs.StringVar(&o.url, "url", "", "HTTP URL to call")
	fs.StringVar(&o.proto, "proto", "http1", "HTTP protocol: http1 or h2c (HTTP/2 with prior knowledge)")
	fs.StringVar(&o.grpc, "grpc", "", "gRPC target host:port; calls /skein.echo.v1.Echo/Echo")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "timeout of each request")
	fs.Var(&o.headers, "H", "header (gRPC: metadata) to send, \"name: value\"; repeatable")
	if mode == "call" {
		fs.IntVar(&o.n, "n", 1, "number of requests, one after another")
	} else {
		fs.IntVar(&o.rps, "rps", 50, "requests a second")
		fs.DurationVar(&o.duration, "duration", 0, "how long to run; 0: until SIGTERM (or the end of stdin with -stop-on-eof)")
		fs.BoolVar(&o.eof, "stop-on-eof", false, "stop when stdin ends")
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	switch {
	case fs.NArg() > 0:
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case (o.url == "") == (o.grpc == ""):
		return nil, errors.New("give one of -url and -grpc")
	case o.proto != "http1" && o.proto != "h2c":
		return nil, fmt.Errorf("-proto %q: want http1 or h2c", o.proto)
	case mode == "call" && o.n < 1, mode == "load" && o.rps < 1:
		return nil, errors.New("-n and -rps must be at least 1")
	}
	return o, nil
}

// clientMain runs `echo call` or `echo load` and returns the exit code.
func clientMain(mode string, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	o, err := parseClient(mode, args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "echo %s: %v\n", mode, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	c, err := newCaller(o)
	if err != nil {
		fmt.Fprintf(stderr, "echo %s: %v\n", mode, err)
		return 2
	}
	defer c.close()
	var sum *Summary
	if mode == "call" {
		sum = call(ctx, c, o.n)
		json.NewEncoder(stdout).Encode(sum)
	} else {
		if o.duration > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, o.duration)
			defer cancel()
		}
		if o.eof {
			var cancel context.CancelFunc
			ctx, cancel = context.WithCancel(ctx)
			defer cancel()
			go func() { io.Copy(io.Discard, stdin); cancel() }()
		}
		sum = load(ctx, c, o.rps, 5*time.Second, stdout)
	}
	if sum.Failed > 0 {
		return 1
	}
	return 0
}

// Result is one request's outcome.
type Result struct {
	Time     time.Time `json:"time"`
	Duration string    `json:"duration"`
	// Status is the HTTP status or the gRPC code; 0 for HTTP when no
	// answer came (Error says why).
	Status int `json:"status"`
	// Reason is the x-skein-reason header (gRPC: header or trailer), if any.
	Reason string `json:"reason,omitempty"`
	Error  string `json:"error,omitempty"`
	// From the echo reply: who answered, the caller's address it saw, and
	// the HTTP version it was reached over.
	Pod        string `json:"pod,omitempty"`
	RemoteAddr string `json:"remoteAddr,omitempty"`
	Proto      string `json:"proto,omitempty"`
}

// ok is a success: 200 (or gRPC OK) with an echo reply.
func (r *Result) ok() bool { return r.Error == "" && r.Status == http.StatusOK }

// Summary is what call and load report.
type Summary struct {
	Target   string `json:"target"`
	Protocol string `json:"protocol"` // http1, h2c or grpc
	Requests int    `json:"requests"`
	OK       int    `json:"ok"`
	Failed   int    `json:"failed"`
	// Pods counts the successful answers by the pod that gave them.
	Pods map[string]int `json:"pods"`
	// Callers counts them by the caller's IP the server saw
	// (127.0.0.6 behind a meshed server's proxy).
	Callers map[string]int `json:"callers"`
	// ServerProtos counts them by the HTTP version the server saw.
	ServerProtos map[string]int `json:"serverProtos,omitempty"`
	// Statuses counts every answer by status (or gRPC code); "error" when
	// none came.
	Statuses map[string]int `json:"statuses"`
	// Failures are the failed requests, the first maxFailures of them.
	Failures []Result `json:"failures,omitempty"`
	Elapsed  string   `json:"elapsed"`
}

const maxFailures = 200

func newSummary(target, protocol string) *Summary {
	return &Summary{Target: target, Protocol: protocol, Pods: map[string]int{}, Callers: map[string]int{},
		ServerProtos: map[string]int{}, Statuses: map[string]int{}}
}

func (s *Summary) add(r Result) {
	s.Requests++
	if r.Error != "" && r.Status == 0 {
		s.Statuses["error"]++
	} else {
		s.Statuses[fmt.Sprint(r.Status)]++
	}
	if !r.ok() {
		s.Failed++
		if len(s.Failures) < maxFailures {
			s.Failures = append(s.Failures, r)
		}
		return
	}
	s.OK++
	s.Pods[r.Pod]++
	host := r.RemoteAddr
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	s.Callers[host]++
	if r.Proto != "" {
		s.ServerProtos[r.Proto]++
	}
}

// caller makes one request of the kind the options say.
type caller struct {
	target, protocol string
	timeout          time.Duration
	do               func(ctx context.Context) Result
	close            func()
}

func newCaller(o *clientOptions) (*caller, error) {
	c := &caller{timeout: o.timeout, close: func() {}}
	if o.grpc != "" {
		conn, err := grpc.NewClient(o.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, err
		}
		var md []string
		for _, h := range o.headers {
			md = append(md, strings.ToLower(h[0]), h[1])
		}
		c.target, c.protocol, c.close = o.grpc, "grpc", func() { conn.Close() }
		c.do = func(ctx context.Context) Result { return grpcCall(ctx, conn, md) }
		return c, nil
	}
	var protocols http.Protocols
	if o.proto == "h2c" {
		protocols.SetUnencryptedHTTP2(true)
	} else {
		protocols.SetHTTP1(true)
	}
	tr := &http.Transport{Protocols: &protocols, MaxIdleConnsPerHost: 100, IdleConnTimeout: 90 * time.Second}
	client := &http.Client{Transport: tr}
	if _, err := http.NewRequest(http.MethodGet, o.url, nil); err != nil {
		return nil, err
	}
	c.target, c.protocol, c.close = o.url, o.proto, tr.CloseIdleConnections
	c.do = func(ctx context.Context) Result { return httpCall(ctx, client, o.url, o.headers) }
	return c, nil
}

func (c *caller) call(ctx context.Context) Result {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	start := time.Now()
	r := c.do(ctx)
	r.Time, r.Duration = start.UTC(), time.Since(start).Round(time.Microsecond).String()
	return r
}

func httpCall(ctx context.Context, client *http.Client, url string, headers headerFlag) Result {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return Result{Error: err.Error()}
	}
	for _, h := range headers {
		req.Header.Add(h[0], h[1])
	}
	resp, err := client.Do(req)
	if err != nil {
		return Result{Error: err.Error()}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	r := Result{Status: resp.StatusCode, Reason: resp.Header.Get("x-skein-reason")}
	if err != nil {
		r.Error = "reading the body: " + err.Error()
		return r
	}
	var reply echoReply
	if jerr := json.Unmarshal(body, &reply); jerr != nil || reply.Protocol != "http" {
		r.Error = "not an echo reply: " + snippet(body)
		return r
	}
	r.Pod, r.RemoteAddr, r.Proto = reply.Pod, reply.RemoteAddr, reply.Proto
	if r.Status != http.StatusOK {
		r.Error = fmt.Sprintf("status %d", r.Status)
	}
	return r
}

func grpcCall(ctx context.Context, conn *grpc.ClientConn, md []string) Result {
	if len(md) > 0 {
		ctx = metadata.AppendToOutgoingContext(ctx, md...)
	}
	var header, trailer metadata.MD
	out := &structpb.Struct{}
	err := conn.Invoke(ctx, "/"+echoService+"/Echo", &structpb.Struct{}, out, grpc.Header(&header), grpc.Trailer(&trailer))
	r := Result{Status: int(status.Code(err))}
	if vs := append(header.Get("x-skein-reason"), trailer.Get("x-skein-reason")...); len(vs) > 0 {
		r.Reason = vs[0]
	}
	if err != nil {
		r.Error = err.Error()
		return r
	}
	// gRPC OK is 0; report it as 200 so that ok() is the same for both.
	r.Status = http.StatusOK
	m := out.AsMap()
	r.Pod, _ = m["pod"].(string)
	r.RemoteAddr, _ = m["remoteAddr"].(string)
	if p, _ := m["protocol"].(string); p != "grpc" {
		r.Error = "not an echo reply"
	}
	return r
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return fmt.Sprintf("%q", s)
}

// call makes n requests one after another.
func call(ctx context.Context, c *caller, n int) *Summary {
	sum := newSummary(c.target, c.protocol)
	start := time.Now()
	for i := 0; i < n && ctx.Err() == nil; i++ {
		sum.add(c.call(ctx))
	}
	sum.Elapsed = time.Since(start).Round(time.Millisecond).String()
	return sum
}

// maxInFlight bounds load's concurrent requests; a tick finding that many
// in flight is counted as a failure instead of piling up goroutines.
const maxInFlight = 1000

// load sends rps requests a second until ctx ends, writing each failure and
// a progress line every progress as JSON lines to w, then the summary.
func load(ctx context.Context, c *caller, rps int, progress time.Duration, w io.Writer) *Summary {
	out := bufio.NewWriter(w)
	var mu sync.Mutex // guards sum and out
	sum := newSummary(c.target, c.protocol)
	emit := func(key string, v any) {
		b, _ := json.Marshal(map[string]any{key: v})
		out.Write(append(b, '\n'))
		out.Flush()
	}
	record := func(r Result) {
		mu.Lock()
		defer mu.Unlock()
		sum.add(r)
		if !r.ok() {
			emit("failure", r)
		}
	}

	start := time.Now()
	tick := time.NewTicker(time.Second / time.Duration(rps))
	defer tick.Stop()
	report := time.NewTicker(progress)
	defer report.Stop()
	// Requests run on a context of their own: those in flight at the stop
	// finish rather than counting as failures.
	reqCtx, cancelReqs := context.WithCancel(context.Background())
	defer cancelReqs()
	var wg sync.WaitGroup
	inFlight := make(chan struct{}, maxInFlight)
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-report.C:
			mu.Lock()
			emit("progress", map[string]any{"elapsed": time.Since(start).Round(time.Second).String(),
				"requests": sum.Requests, "ok": sum.OK, "failed": sum.Failed, "inFlight": len(inFlight), "pods": sum.Pods})
			mu.Unlock()
		case <-tick.C:
			select {
			case inFlight <- struct{}{}:
			default:
				record(Result{Time: time.Now().UTC(), Error: fmt.Sprintf("%d requests in flight: not sent", maxInFlight)})
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := c.call(reqCtx)
				<-inFlight
				record(r)
			}()
		}
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	sum.Elapsed = time.Since(start).Round(time.Millisecond).String()
	emit("summary", sum)
	return sum
}
