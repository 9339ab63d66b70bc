package httpproxy

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// h2cClient is an HTTP/2 prior-knowledge client to addr.
func h2cClient(t *testing.T, addr string) *http.Client {
	tr := &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, _ string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func TestH2CPriorKnowledgeToHTTP1Backend(t *testing.T) {
	p, b := oneBackend(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Proto", r.Proto)
		w.Header().Set("X-Path", r.URL.RequestURI())
		w.Write(append([]byte(r.Method+":"), body...))
	})
	c := h2cClient(t, p.addr)
	for i := range 20 {
		resp, err := c.Post("http://svc/p?i="+itoaT(i), "text/plain", strings.NewReader("body"+itoaT(i)))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 || resp.StatusCode != 200 || string(body) != "POST:body"+itoaT(i) ||
			resp.Header.Get("X-Proto") != "HTTP/1.1" || resp.Header.Get("X-Path") != "/p?i="+itoaT(i) {
			t.Fatalf("%s %d %q %v", resp.Proto, resp.StatusCode, body, resp.Header)
		}
	}
	if n := b.conns.Load(); n != 1 {
		t.Errorf("%d upstream connections for 20 sequential requests, want 1", n)
	}
	resp, err := c.Get("http://other/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET without body: %d", resp.StatusCode)
	}
}

// testService is a grpc_testing TestService that echoes metadata and
// answers the status a request asks for.
type testService struct {
	testgrpc.UnimplementedTestServiceServer
}

func (testService) UnaryCall(ctx context.Context, req *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	grpc.SetHeader(ctx, metadata.Pairs("x-echo", strings.Join(md.Get("x-test"), ",")))
	grpc.SetTrailer(ctx, metadata.Pairs("x-trailer", "t-"+strings.Join(md.Get("x-test"), ",")))
	if s := req.GetResponseStatus(); s != nil {
		return nil, status.Error(codes.Code(s.GetCode()), s.GetMessage())
	}
	return &testgrpc.SimpleResponse{Payload: &testgrpc.Payload{Body: make([]byte, req.GetResponseSize())}, Username: "unary"}, nil
}

func (testService) StreamingOutputCall(req *testgrpc.StreamingOutputCallRequest, s testgrpc.TestService_StreamingOutputCallServer) error {
	for _, p := range req.GetResponseParameters() {
		if err := s.Send(&testgrpc.StreamingOutputCallResponse{Payload: &testgrpc.Payload{Body: make([]byte, p.GetSize())}}); err != nil {
			return err
		}
		time.Sleep(time.Duration(p.GetIntervalUs()) * time.Microsecond)
	}
	return nil
}

func (testService) StreamingInputCall(s testgrpc.TestService_StreamingInputCallServer) error {
	n := 0
	for {
		req, err := s.Recv()
		if err == io.EOF {
			return s.SendAndClose(&testgrpc.StreamingInputCallResponse{AggregatedPayloadSize: int32(n)})
		}
		if err != nil {
			return err
		}
		n += len(req.GetPayload().GetBody())
	}
}

func (testService) FullDuplexCall(s testgrpc.TestService_FullDuplexCallServer) error {
	for {
		req, err := s.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		for _, p := range req.GetResponseParameters() {
			if err := s.Send(&testgrpc.StreamingOutputCallResponse{Payload: &testgrpc.Payload{Body: make([]byte, p.GetSize())}}); err != nil {
				return err
			}
		}
	}
}

// grpcProxy starts a gRPC backend behind a proxy whose cluster speaks
// HTTP/2, and returns a client of the proxy.
func grpcProxy(t *testing.T) testgrpc.TestServiceClient {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	testgrpc.RegisterTestServiceServer(srv, testService{})
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	rc := routeConfig("rc", vhost("all", []string{"*"}, toCluster("/grpc.testing.TestService/", "grpc"), toCluster("/grpc.testing.Empty", "nohosts")))
	p := startProxy(t, inline(rc), Deps{Clusters: clusterSet{
		"grpc":    cluster(t, "grpc", true, ln.Addr().String()),
		"nohosts": cluster(t, "nohosts", true),
	}})
	cc, err := grpc.NewClient(p.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return testgrpc.NewTestServiceClient(cc)
}

func TestGRPCThroughProxy(t *testing.T) {
	c := grpcProxy(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	t.Run("unary with metadata", func(t *testing.T) {
		var hdr, trl metadata.MD
		resp, err := c.UnaryCall(metadata.AppendToOutgoingContext(ctx, "x-test", "v1"),
			&testgrpc.SimpleRequest{ResponseSize: 1000}, grpc.Header(&hdr), grpc.Trailer(&trl))
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.GetPayload().GetBody()) != 1000 || resp.GetUsername() != "unary" {
			t.Errorf("response %v", resp)
		}
		if got := hdr.Get("x-echo"); len(got) != 1 || got[0] != "v1" {
			t.Errorf("header metadata %v", hdr)
		}
		if got := trl.Get("x-trailer"); len(got) != 1 || got[0] != "t-v1" {
			t.Errorf("trailer metadata %v", trl)
		}
	})
	t.Run("error status intact", func(t *testing.T) {
		var trl metadata.MD
		_, err := c.UnaryCall(metadata.AppendToOutgoingContext(ctx, "x-test", "e"), &testgrpc.SimpleRequest{
			ResponseStatus: &testgrpc.EchoStatus{Code: int32(codes.NotFound), Message: "no such thing: widget 42"},
		}, grpc.Trailer(&trl))
		if s := status.Convert(err); s.Code() != codes.NotFound || s.Message() != "no such thing: widget 42" {
			t.Errorf("status %v, want NotFound with the backend's message", s)
		}
		if got := trl.Get("x-trailer"); len(got) != 1 || got[0] != "t-e" {
			t.Errorf("trailer metadata with an error %v", trl)
		}
	})
	t.Run("server streaming", func(t *testing.T) {
		sizes := []int32{10, 20000, 3, 70000}
		var params []*testgrpc.ResponseParameters
		for _, s := range sizes {
			params = append(params, &testgrpc.ResponseParameters{Size: s, IntervalUs: 2000})
		}
		s, err := c.StreamingOutputCall(ctx, &testgrpc.StreamingOutputCallRequest{ResponseParameters: params})
		if err != nil {
			t.Fatal(err)
		}
		for i, want := range sizes {
			resp, err := s.Recv()
			if err != nil || len(resp.GetPayload().GetBody()) != int(want) {
				t.Fatalf("message %d: %v %d", i, err, len(resp.GetPayload().GetBody()))
			}
		}
		if _, err := s.Recv(); err != io.EOF {
			t.Fatalf("end of stream: %v", err)
		}
	})
	t.Run("client streaming", func(t *testing.T) {
		s, err := c.StreamingInputCall(ctx)
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		for _, n := range []int{27182, 8, 1828, 45904} {
			total += n
			if err := s.Send(&testgrpc.StreamingInputCallRequest{Payload: &testgrpc.Payload{Body: make([]byte, n)}}); err != nil {
				t.Fatal(err)
			}
		}
		resp, err := s.CloseAndRecv()
		if err != nil || int(resp.GetAggregatedPayloadSize()) != total {
			t.Fatalf("%v %v, want %d", resp, err, total)
		}
	})
	t.Run("bidi ping-pong", func(t *testing.T) {
		s, err := c.FullDuplexCall(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Each response must arrive before the next request is sent: the
		// proxy streams both ways rather than buffering either.
		for i, n := range []int32{31415, 9, 2653, 58979} {
			if err := s.Send(&testgrpc.StreamingOutputCallRequest{ResponseParameters: []*testgrpc.ResponseParameters{{Size: n}}}); err != nil {
				t.Fatal(err)
			}
			resp, err := s.Recv()
			if err != nil || len(resp.GetPayload().GetBody()) != int(n) {
				t.Fatalf("pong %d: %v", i, err)
			}
		}
		s.CloseSend()
		if _, err := s.Recv(); err != io.EOF {
			t.Fatalf("end: %v", err)
		}
	})
}

func TestGRPCLocalRepliesAreGRPCStatuses(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	rc := routeConfig("rc", vhost("all", []string{"*"},
		toCluster("/grpc.testing.TestService/UnaryCall", "nohosts"),
		toCluster("/grpc.testing.TestService/StreamingInputCall", "refused"),
	))
	p := startProxy(t, inline(rc), Deps{Clusters: clusterSet{
		"nohosts": cluster(t, "nohosts", true),
		"refused": cluster(t, "refused", true, ln.Addr().String()),
	}})
	cc, err := grpc.NewClient(p.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	c := testgrpc.NewTestServiceClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	var hdr metadata.MD // a trailers-only response: its metadata are trailers
	_, err = c.EmptyCall(ctx, &testgrpc.Empty{}, grpc.Trailer(&hdr))
	if s := status.Convert(err); s.Code() != codes.Unimplemented || !strings.HasPrefix(s.Message(), "no_route") {
		t.Errorf("no route: %v, want UNIMPLEMENTED no_route", s)
	}
	if got := hdr.Get(HeaderReason); len(got) != 1 || got[0] != "no_route" {
		t.Errorf("no route: %s %v", HeaderReason, hdr)
	}
	_, err = c.UnaryCall(ctx, &testgrpc.SimpleRequest{})
	if s := status.Convert(err); s.Code() != codes.Unavailable || !strings.HasPrefix(s.Message(), "no_healthy_upstream") {
		t.Errorf("no hosts: %v, want UNAVAILABLE no_healthy_upstream", s)
	}
	s, err := c.StreamingInputCall(ctx)
	if err == nil {
		_, err = s.CloseAndRecv()
	}
	if s := status.Convert(err); s.Code() != codes.Unavailable || !strings.HasPrefix(s.Message(), "upstream_connect_failure") {
		t.Errorf("refused: %v, want UNAVAILABLE upstream_connect_failure", s)
	}
}
