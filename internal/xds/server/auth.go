package server

import (
	"context"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/skeinmesh/skein/internal/mesh"
)

// TokenAudience is the audience of the projected service-account token a
// proxy presents.
const TokenAudience = "skein"

// Identity is who a token belongs to.
type Identity struct {
	// Namespace and ServiceAccount are the token's service account.
	Namespace, ServiceAccount string
	// Pod is the pod the token is bound to; empty for a token not bound to a pod.
	Pod string
}

// Authenticator verifies a bearer token. It returns an error with code
// Unauthenticated for a token it refuses, and another code (Unavailable)
// when it could not decide.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (Identity, error)
}

// bearerToken returns the token of the stream's "authorization: Bearer <token>" metadata.
func bearerToken(ctx context.Context) (string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) == 0 {
		return "", status.Error(codes.Unauthenticated, `no "authorization: Bearer <token>" metadata; a proxy sends its service-account token for audience "skein"`)
	}
	scheme, token, ok := strings.Cut(vals[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return "", status.Error(codes.Unauthenticated, `malformed authorization metadata, want "Bearer <token>"`)
	}
	return strings.TrimSpace(token), nil
}

// authorize checks that a proxy's node ID names the token's workload: the
// same namespace, and for a sidecar the same pod. A mismatch is an error
// with code PermissionDenied naming both.
func authorize(id Identity, p mesh.Proxy) error {
	if p.Pod == "" {
		if id.Namespace != p.Namespace {
			return status.Errorf(codes.PermissionDenied, "node %q is in namespace %q but its token belongs to service account %s/%s", p.ID, p.Namespace, id.Namespace, id.ServiceAccount)
		}
		return nil
	}
	if id.Namespace != p.Namespace || id.Pod != p.Pod {
		tokenPod := id.Pod
		if tokenPod == "" {
			tokenPod = "(token bound to no pod)"
		}
		return status.Errorf(codes.PermissionDenied, "node %q names pod %s/%s but its token belongs to pod %s/%s (service account %s)", p.ID, p.Namespace, p.Pod, id.Namespace, tokenPod, id.ServiceAccount)
	}
	return nil
}
