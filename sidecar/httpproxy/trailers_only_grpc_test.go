package httpproxy

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// failingService fails as its requests ask, without sending header
// metadata first, so that grpc-go answers an error before any message as a
// trailers-only response: one HEADERS frame with END_STREAM carrying
// grpc-status, grpc-message and the trailer metadata.
type failingService struct {
	testgrpc.UnimplementedTestServiceServer
}

func (failingService) UnaryCall(ctx context.Context, req *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	grpc.SetTrailer(ctx, metadata.Pairs("x-trailer", "unary", "x-trailer-bin", "\x00\x01\xff"))
	if s := req.GetResponseStatus(); s != nil {
		return nil, status.Error(codes.Code(s.GetCode()), s.GetMessage())
	}
	return &testgrpc.SimpleResponse{Username: "ok"}, nil
}

// StreamingOutputCall sends a message per response parameter, then fails
// with the request's status (before any message when there are none).
func (failingService) StreamingOutputCall(req *testgrpc.StreamingOutputCallRequest, s testgrpc.TestService_StreamingOutputCallServer) error {
	s.SetTrailer(metadata.Pairs("x-trailer", "stream", "x-sent", itoaT(len(req.GetResponseParameters()))))
	for _, p := range req.GetResponseParameters() {
		if err := s.Send(&testgrpc.StreamingOutputCallResponse{Payload: &testgrpc.Payload{Body: make([]byte, p.GetSize())}}); err != nil {
			return err
		}
	}
	if st := req.GetResponseStatus(); st != nil {
		return status.Error(codes.Code(st.GetCode()), st.GetMessage())
	}
	return nil
}

// StreamingInputCall fails at once while the client is still sending.
func (failingService) StreamingInputCall(s testgrpc.TestService_StreamingInputCallServer) error {
	s.SetTrailer(metadata.Pairs("x-trailer", "input"))
	return status.Error(codes.PermissionDenied, "not you")
}

// TestGRPCTrailersOnlyStatusKept is the regression test for "gRPC status
// lost when the backend fails before any message": the proxy flushed the
// response head of a trailers-only response as HEADERS without
// END_STREAM, then ended the stream with an empty DATA frame, so the
// grpc-status the backend sent was in headers, not trailers, and grpc-go
// clients saw "Internal: server closed the stream without sending
// trailers". Every code and message, and the trailer metadata, must reach
// the client as the backend sent them, before and after messages.
func TestGRPCTrailersOnlyStatusKept(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	testgrpc.RegisterTestServiceServer(srv, failingService{})
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	rc := routeConfig("rc", vhost("all", []string{"*"}, toCluster("/", "grpc")))
	p := startProxy(t, inline(rc), Deps{Clusters: clusterSet{"grpc": cluster(t, "grpc", true, ln.Addr().String())}})
	cc, err := grpc.NewClient(p.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	c := testgrpc.NewTestServiceClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	cases := []struct {
		code codes.Code
		msg  string
	}{
		{codes.NotFound, "no such item"},
		{codes.InvalidArgument, "bad: 100% wrong\nsecond line, ünïcode"},
		{codes.PermissionDenied, ""},
		{codes.Unavailable, "backend says unavailable"},
		{codes.Internal, "internal"},
		{codes.Unknown, "unknown"},
		{codes.DeadlineExceeded, "deadline from the backend"},
		{codes.ResourceExhausted, "quota"},
		{codes.Aborted, "aborted"},
		{codes.FailedPrecondition, "precondition"},
		{codes.OutOfRange, "out of range"},
		{codes.Unimplemented, "not here"},
		{codes.DataLoss, "lost"},
		{codes.Unauthenticated, "who are you"},
		{codes.AlreadyExists, "exists"},
		{codes.Canceled, "canceled by the backend"},
	}
	checkTrailer := func(t *testing.T, trl metadata.MD, key, want string) {
		t.Helper()
		if got := trl.Get(key); len(got) != 1 || got[0] != want {
			t.Errorf("trailer %s = %q, want %q (trailers %v)", key, got, want, trl)
		}
	}
	t.Run("unary", func(t *testing.T) {
		for _, tc := range cases {
			var hdr, trl metadata.MD
			_, err := c.UnaryCall(ctx, &testgrpc.SimpleRequest{ResponseStatus: &testgrpc.EchoStatus{Code: int32(tc.code), Message: tc.msg}},
				grpc.Header(&hdr), grpc.Trailer(&trl))
			if s := status.Convert(err); s.Code() != tc.code || s.Message() != tc.msg {
				t.Errorf("unary: %v, want %v %q", s, tc.code, tc.msg)
				continue
			}
			checkTrailer(t, trl, "x-trailer", "unary")
			checkTrailer(t, trl, "x-trailer-bin", "\x00\x01\xff")
		}
		var trl metadata.MD
		if r, err := c.UnaryCall(ctx, &testgrpc.SimpleRequest{}, grpc.Trailer(&trl)); err != nil || r.GetUsername() != "ok" {
			t.Errorf("unary success: %v %v", r, err)
		}
		checkTrailer(t, trl, "x-trailer", "unary")
	})
	t.Run("streaming error before the first message", func(t *testing.T) {
		for _, tc := range cases {
			s, err := c.StreamingOutputCall(ctx, &testgrpc.StreamingOutputCallRequest{
				ResponseStatus: &testgrpc.EchoStatus{Code: int32(tc.code), Message: tc.msg}})
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Recv()
			if st := status.Convert(err); st.Code() != tc.code || st.Message() != tc.msg {
				t.Errorf("stream: %v, want %v %q", st, tc.code, tc.msg)
				continue
			}
			checkTrailer(t, s.Trailer(), "x-trailer", "stream")
			checkTrailer(t, s.Trailer(), "x-sent", "0")
		}
	})
	t.Run("streaming error after messages", func(t *testing.T) {
		for _, tc := range cases[:4] {
			sizes := []int32{5, 40000, 0}
			var params []*testgrpc.ResponseParameters
			for _, n := range sizes {
				params = append(params, &testgrpc.ResponseParameters{Size: n})
			}
			s, err := c.StreamingOutputCall(ctx, &testgrpc.StreamingOutputCallRequest{ResponseParameters: params,
				ResponseStatus: &testgrpc.EchoStatus{Code: int32(tc.code), Message: tc.msg}})
			if err != nil {
				t.Fatal(err)
			}
			for i, n := range sizes {
				r, err := s.Recv()
				if err != nil || len(r.GetPayload().GetBody()) != int(n) {
					t.Fatalf("message %d: %v", i, err)
				}
			}
			_, err = s.Recv()
			if st := status.Convert(err); st.Code() != tc.code || st.Message() != tc.msg {
				t.Errorf("stream after messages: %v, want %v %q", st, tc.code, tc.msg)
				continue
			}
			checkTrailer(t, s.Trailer(), "x-trailer", "stream")
			checkTrailer(t, s.Trailer(), "x-sent", "3")
		}
		s, err := c.StreamingOutputCall(ctx, &testgrpc.StreamingOutputCallRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Recv(); err != io.EOF {
			t.Errorf("empty stream ending OK: %v, want EOF", err)
		}
		checkTrailer(t, s.Trailer(), "x-sent", "0")
	})
	t.Run("client streaming error while sending", func(t *testing.T) {
		s, err := c.StreamingInputCall(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if err := s.Send(&testgrpc.StreamingInputCallRequest{Payload: &testgrpc.Payload{Body: make([]byte, 1000)}}); err != nil {
				break // io.EOF once the server ended the stream; CloseAndRecv has the status
			}
		}
		_, err = s.CloseAndRecv()
		if st := status.Convert(err); st.Code() != codes.PermissionDenied || st.Message() != "not you" {
			t.Errorf("client streaming: %v, want PermissionDenied %q", st, "not you")
		}
		checkTrailer(t, s.Trailer(), "x-trailer", "input")
	})
}
