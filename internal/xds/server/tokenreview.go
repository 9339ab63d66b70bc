package server

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	authnv1 "k8s.io/api/authentication/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// podNameExtra is the TokenReview user extra that names a bound token's pod.
const podNameExtra = "authentication.kubernetes.io/pod-name"

// MaxTokenCacheTTL bounds how long a TokenReviewAuthenticator trusts a
// token without asking the API server again.
const MaxTokenCacheTTL = 5 * time.Minute

// TokenReviewAuthenticator authenticates service-account tokens for
// audience "skein" with the API server's TokenReview, and caches positive
// answers by the token's hash for at most TTL (and never past the token's
// own expiry). The client needs RBAC to create
// authentication.k8s.io/v1 tokenreviews.
type TokenReviewAuthenticator struct {
	client client.Client
	ttl    time.Duration
	now    func() time.Time

	mu    sync.Mutex
	cache map[[sha256.Size]byte]cachedIdentity
	// pruneAt is the cache size at which expired entries are dropped next;
	// it doubles with the live entries, so pruning costs O(1) per insert.
	pruneAt int
}

type cachedIdentity struct {
	id      Identity
	expires time.Time
}

var _ Authenticator = (*TokenReviewAuthenticator)(nil)

// NewTokenReviewAuthenticator returns an authenticator that reviews tokens
// with c. ttl is how long a positive review is cached; zero or more than
// MaxTokenCacheTTL means MaxTokenCacheTTL.
func NewTokenReviewAuthenticator(c client.Client, ttl time.Duration) *TokenReviewAuthenticator {
	if ttl <= 0 || ttl > MaxTokenCacheTTL {
		ttl = MaxTokenCacheTTL
	}
	return &TokenReviewAuthenticator{client: c, ttl: ttl, now: time.Now, cache: map[[sha256.Size]byte]cachedIdentity{}}
}

// Authenticate returns the identity of token, or an error with code
// Unauthenticated when the API server does not accept it for audience
// "skein" as a service account's, or Unavailable when the review failed.
func (a *TokenReviewAuthenticator) Authenticate(ctx context.Context, token string) (Identity, error) {
	key := sha256.Sum256([]byte(token))
	now := a.now()
	a.mu.Lock()
	c, ok := a.cache[key]
	a.mu.Unlock()
	if ok && now.Before(c.expires) {
		return c.id, nil
	}

	tr := &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: token, Audiences: []string{TokenAudience}}}
	if err := a.client.Create(ctx, tr); err != nil {
		return Identity{}, status.Errorf(codes.Unavailable, "review token: %v", err)
	}
	if !tr.Status.Authenticated {
		msg := tr.Status.Error
		if msg == "" {
			msg = "not authenticated"
		}
		return Identity{}, status.Errorf(codes.Unauthenticated, "token refused for audience %q: %s", TokenAudience, msg)
	}
	ns, sa, ok := splitServiceAccount(tr.Status.User.Username)
	if !ok {
		return Identity{}, status.Errorf(codes.Unauthenticated, "token of %q is not a service account's", tr.Status.User.Username)
	}
	id := Identity{Namespace: ns, ServiceAccount: sa}
	if pods := tr.Status.User.Extra[podNameExtra]; len(pods) == 1 {
		id.Pod = pods[0]
	}

	expires := now.Add(a.ttl)
	if exp, ok := tokenExpiry(token); ok && exp.Before(expires) {
		expires = exp
	}
	a.mu.Lock()
	if len(a.cache) >= a.pruneAt {
		a.pruneLocked(now)
		a.pruneAt = max(64, 2*len(a.cache))
	}
	a.cache[key] = cachedIdentity{id: id, expires: expires}
	a.mu.Unlock()
	return id, nil
}

// pruneLocked drops expired entries, so that the cache holds at most the
// tokens seen in the last TTL.
func (a *TokenReviewAuthenticator) pruneLocked(now time.Time) {
	for k, c := range a.cache {
		if !now.Before(c.expires) {
			delete(a.cache, k)
		}
	}
}

// splitServiceAccount splits "system:serviceaccount:<ns>:<sa>".
func splitServiceAccount(username string) (ns, sa string, ok bool) {
	rest, ok := strings.CutPrefix(username, "system:serviceaccount:")
	if !ok {
		return "", "", false
	}
	ns, sa, ok = strings.Cut(rest, ":")
	if !ok || ns == "" || sa == "" || strings.Contains(sa, ":") {
		return "", "", false
	}
	return ns, sa, true
}

// tokenExpiry reads the "exp" claim of a JWT without verifying it (the API
// server did); ok is false when there is none.
func tokenExpiry(token string) (time.Time, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp int64 `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Exp == 0 {
		return time.Time{}, false
	}
	return time.Unix(claims.Exp, 0), true
}
