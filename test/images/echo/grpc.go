package main

import (
	"context"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

// echoService is the gRPC echo service's name. Its one method, Echo, is
// described here by hand instead of generated from a .proto file, as both
// its messages are google.protobuf.Struct: a client calls it with
// conn.Invoke(ctx, "/skein.echo.v1.Echo/Echo", &structpb.Struct{}, reply).
const echoService = "skein.echo.v1.Echo"

func newGRPCServer(id identity) (*grpc.Server, *health.Server) {
	srv := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus(echoService, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: echoService,
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "Echo",
			Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				var req structpb.Struct
				if err := dec(&req); err != nil {
					return nil, err
				}
				return grpcEcho(ctx, id, &req)
			},
		}},
	}, struct{}{})
	return srv, hs
}

// grpcEcho answers a call to Echo: after the faults its metadata asks for,
// the echo reply as a Struct.
func grpcEcho(ctx context.Context, id identity, req *structpb.Struct) (*structpb.Struct, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	code := codes.OK
	if v := first(md, "x-echo-grpc-status"); v != "" {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || n > 16 {
			return nil, status.Errorf(codes.InvalidArgument, "x-echo-grpc-status %q: want a code from 0 to 16", v)
		}
		code = codes.Code(n)
	}
	if v := first(md, "x-echo-delay"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return nil, status.Errorf(codes.InvalidArgument, "x-echo-delay %q: want a duration such as 200ms", v)
		}
		if !wait(ctx, d) {
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	}
	if code != codes.OK {
		return nil, status.Errorf(code, "x-echo-grpc-status asked for %s", code)
	}

	method, _ := grpc.Method(ctx)
	var remote string
	if p, ok := peer.FromContext(ctx); ok {
		remote = p.Addr.String()
	}
	headers := map[string]any{}
	for k, vs := range md {
		list := make([]any, len(vs))
		for i, v := range vs {
			list[i] = v
		}
		headers[k] = list
	}
	reply, err := structpb.NewStruct(map[string]any{
		"pod": id.Pod, "namespace": id.Namespace, "version": id.Version, "hostname": id.Hostname,
		"protocol": "grpc", "host": first(md, ":authority"), "path": method,
		"remoteAddr": remote, "headers": headers, "status": int(codes.OK),
		"request": req.AsMap(),
	})
	if err != nil {
		return nil, status.Errorf(codes.Internal, "echo reply: %v", err)
	}
	return reply, nil
}

func first(md metadata.MD, key string) string {
	if vs := md.Get(key); len(vs) > 0 {
		return vs[0]
	}
	return ""
}
