package xds_test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	testpb "google.golang.org/grpc/interop/grpc_testing"
)

// backend is a real gRPC server on 127.0.0.1 serving grpc.testing.TestService.
// UnaryCall answers with the backend's name and counts the call, so that the
// test counts where calls landed at the servers, not at the client.
type backend struct {
	testpb.UnimplementedTestServiceServer

	// name is what UnaryCall answers in SimpleResponse.server_id.
	name string
	// subset is the Skein subset the backend's endpoint is labelled into.
	subset string
	// port is the port the backend listens on, on 127.0.0.1.
	port int32
	// calls counts UnaryCalls served since the last reset.
	calls atomic.Int64
}

func (b *backend) UnaryCall(context.Context, *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	b.calls.Add(1)
	return &testpb.SimpleResponse{ServerId: b.name}, nil
}

// startBackend serves a new backend on 127.0.0.1:0 until the test ends.
func startBackend(t *testing.T, name, subset string) *backend {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen for backend %s: %v", name, err)
	}
	_, portText, _ := net.SplitHostPort(lis.Addr().String())
	port, err := strconv.Atoi(portText)
	if err != nil {
		t.Fatalf("port of backend %s: %v", name, err)
	}
	b := &backend{name: name, subset: subset, port: int32(port)}
	srv := grpc.NewServer()
	testpb.RegisterTestServiceServer(srv, b)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return b
}

// tally is how many calls each backend served, and each subset in total.
type tally struct {
	byBackend map[string]int64
	bySubset  map[string]int64
	total     int64
}

func (c tally) String() string {
	return fmt.Sprintf("by subset %v, by backend %v", c.bySubset, c.byBackend)
}

// share is the fraction of all counted calls that the subset served.
func (c tally) share(subset string) float64 {
	if c.total == 0 {
		return 0
	}
	return float64(c.bySubset[subset]) / float64(c.total)
}

// count reads every backend's counter and zeroes it.
func count(backends []*backend) tally {
	c := tally{byBackend: map[string]int64{}, bySubset: map[string]int64{}}
	for _, b := range backends {
		n := b.calls.Swap(0)
		c.byBackend[b.name] = n
		c.bySubset[b.subset] += n
		c.total += n
	}
	return c
}
