package router

import (
	"net/netip"
	"regexp"
	"time"

	"github.com/cespare/xxhash/v2"
)

// RetryOn is a set of conditions under which a request is retried, from
// retry_on's comma-separated names.
type RetryOn uint32

// The retry conditions, by their Envoy names.
const (
	Retry5xx                     RetryOn = 1 << iota // "5xx"
	RetryGatewayError                                // "gateway-error": 502, 503, 504
	RetryReset                                       // "reset"
	RetryResetBeforeRequest                          // "reset-before-request"
	RetryConnectFailure                              // "connect-failure"
	RetryEnvoyRateLimited                            // "envoy-ratelimited"
	RetryRetriable4xx                                // "retriable-4xx": 409
	RetryRefusedStream                               // "refused-stream"
	RetryRetriableStatusCodes                        // "retriable-status-codes"
	RetryRetriableHeaders                            // "retriable-headers"
	RetryHTTP3PostConnectFailure                     // "http3-post-connect-failure"
	RetryGRPCCancelled                               // "cancelled"
	RetryGRPCDeadlineExceeded                        // "deadline-exceeded"
	RetryGRPCInternal                                // "internal"
	RetryGRPCResourceExhausted                       // "resource-exhausted"
	RetryGRPCUnavailable                             // "unavailable"
)

var retryOnNames = map[string]RetryOn{
	"5xx": Retry5xx, "gateway-error": RetryGatewayError, "reset": RetryReset,
	"reset-before-request": RetryResetBeforeRequest, "connect-failure": RetryConnectFailure,
	"envoy-ratelimited": RetryEnvoyRateLimited, "retriable-4xx": RetryRetriable4xx,
	"refused-stream": RetryRefusedStream, "retriable-status-codes": RetryRetriableStatusCodes,
	"retriable-headers": RetryRetriableHeaders, "http3-post-connect-failure": RetryHTTP3PostConnectFailure,
	"cancelled": RetryGRPCCancelled, "deadline-exceeded": RetryGRPCDeadlineExceeded,
	"internal": RetryGRPCInternal, "resource-exhausted": RetryGRPCResourceExhausted,
	"unavailable": RetryGRPCUnavailable,
}

// Has reports whether every condition of c is in o.
func (o RetryOn) Has(c RetryOn) bool { return o&c == c }

// RetryPolicy is a compiled RetryPolicy.
type RetryPolicy struct {
	// On are the conditions retried; never empty.
	On RetryOn
	// NumRetries is the most retries after the first try; unset is
	// Envoy's default, 1.
	NumRetries uint32
	// PerTryTimeout bounds each try; 0 means the route's Timeout alone.
	PerTryTimeout time.Duration
	// PerTryIdleTimeout bounds each try's time without activity; 0 means
	// none.
	PerTryIdleTimeout time.Duration
	// BackOffBase is the base of the fully jittered exponential back-off
	// between tries; unset is Envoy's 25ms.
	BackOffBase time.Duration
	// BackOffMax caps the back-off; unset is 10 times BackOffBase.
	BackOffMax time.Duration
	// RetriableStatusCodes are the statuses retried under
	// RetryRetriableStatusCodes; nil means none.
	RetriableStatusCodes []uint32
	// PreviousHosts is the previous_hosts retry host predicate: a retry
	// goes to a host not tried yet for this request when the balancer
	// offers one within HostSelectionMaxAttempts picks. false means a
	// retry may pick any host, the one that failed included.
	PreviousHosts bool
	// HostSelectionMaxAttempts is host_selection_retry_max_attempts: how
	// many times a retry's pick is redone when it returns a host already
	// tried; 0 (unset) is Envoy's default, 1. The last pick is used
	// whatever it returned.
	HostSelectionMaxAttempts uint32
}

// GRPCRetries reports whether a gRPC response carrying grpc-status code
// (in its HEADERS: a trailers-only response) is retried under p.
func (p *RetryPolicy) GRPCRetries(code int) bool {
	switch code {
	case 1:
		return p.On.Has(RetryGRPCCancelled)
	case 4:
		return p.On.Has(RetryGRPCDeadlineExceeded)
	case 8:
		return p.On.Has(RetryGRPCResourceExhausted)
	case 13:
		return p.On.Has(RetryGRPCInternal)
	case 14:
		return p.On.Has(RetryGRPCUnavailable)
	}
	return false
}

// BackOff is the wait before retry n (1 for the first retry) given a
// random number u in [0, 1): Envoy's fully jittered exponential back-off,
// uniform in [0, min(BackOffBase*2^(n-1), BackOffMax)).
func (p *RetryPolicy) BackOff(n int, u float64) time.Duration {
	limit := p.BackOffBase
	for i := 1; i < n && limit < p.BackOffMax; i++ {
		limit *= 2
	}
	limit = min(limit, p.BackOffMax)
	return time.Duration(u * float64(limit))
}

// Retries reports whether a response with status is retried under p, for
// the HTTP conditions (gRPC ones read grpc-status, the caller's part).
func (p *RetryPolicy) Retries(status int) bool {
	switch {
	case p.On.Has(Retry5xx) && status >= 500 && status <= 599:
		return true
	case p.On.Has(RetryGatewayError) && status >= 502 && status <= 504:
		return true
	case p.On.Has(RetryRetriable4xx) && status == 409:
		return true
	case p.On.Has(RetryRetriableStatusCodes):
		for _, c := range p.RetriableStatusCodes {
			if int(c) == status {
				return true
			}
		}
	}
	return false
}

// HashKind is where a hash policy takes its key from.
type HashKind uint8

const (
	// HashHeader hashes a request header's value.
	HashHeader HashKind = iota
	// HashCookie hashes a cookie's value.
	HashCookie
	// HashSourceIP hashes the downstream address.
	HashSourceIP
	// HashQueryParameter hashes a query parameter's raw value.
	HashQueryParameter
)

// HashPolicy is a compiled RouteAction.HashPolicy.
type HashPolicy struct {
	// Kind is the key's source.
	Kind HashKind
	// Name is the header (lower case), cookie or query parameter; "" for
	// HashSourceIP.
	Name string
	// Terminal stops at this policy when it produced a key.
	Terminal bool
	// CookieTTL is the cookie's ttl: when set (> 0) and the request has
	// no such cookie, Envoy generates one and sets it on the response,
	// the HTTP layer's part; 0 means no cookie is generated.
	CookieTTL time.Duration
	// CookiePath is the generated cookie's path; "" means none.
	CookiePath string
}

// Hash computes the request's hash key from the route's hash policies as
// Envoy does: xxHash64 of each policy's value, combined as
// rotl(h, 1) ^ next, stopping after a Terminal policy with a value. ok is
// false when no policy produced a value (the balancer then picks at
// random). src is the downstream address, for HashSourceIP.
func (r *Route) Hash(req Request, src netip.Addr) (h uint64, ok bool) {
	for i := range r.HashPolicies {
		p := &r.HashPolicies[i]
		var v uint64
		var found bool
		switch p.Kind {
		case HashHeader:
			var b []byte
			if p.Name == ":authority" {
				b, found = req.Authority(), true
			} else if p.Name == ":method" {
				b, found = req.Method(), true
			} else {
				b, found = req.Header(p.Name)
			}
			if found {
				v = xxhash.Sum64(b)
			}
		case HashCookie:
			var b []byte
			if b, found = cookie(req, p.Name); found {
				v = xxhash.Sum64(b)
			}
		case HashSourceIP:
			if found = src.IsValid(); found {
				var buf [64]byte
				v = xxhash.Sum64(src.Unmap().AppendTo(buf[:0]))
			}
		case HashQueryParameter:
			var b []byte
			if b, found = queryParam(req.Query(), p.Name); found {
				v = xxhash.Sum64(b)
			}
		}
		if !found {
			continue
		}
		if ok {
			h = (h<<1 | h>>63) ^ v
		} else {
			h, ok = v, true
		}
		if p.Terminal {
			break
		}
	}
	return h, ok
}

// cookie finds a cookie's value in the (first) Cookie header.
func cookie(req Request, name string) ([]byte, bool) {
	c, ok := req.Header("cookie")
	if !ok {
		return nil, false
	}
	for len(c) > 0 {
		i := 0
		for i < len(c) && c[i] != ';' {
			i++
		}
		pair := c[:i]
		if i < len(c) {
			i++
		}
		c = c[i:]
		for len(pair) > 0 && pair[0] == ' ' {
			pair = pair[1:]
		}
		if len(pair) > len(name) && pair[len(name)] == '=' && string(pair[:len(name)]) == name {
			v := pair[len(name)+1:]
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			return v, true
		}
	}
	return nil, false
}

// Redirect is a compiled RedirectAction.
type Redirect struct {
	// Scheme replaces the request's scheme; "" keeps it.
	Scheme string
	// Host replaces the request's host; "" keeps it.
	Host string
	// Port replaces the port; 0 keeps the request's (dropping a default
	// port when the scheme changes, as Envoy).
	Port uint32
	// Path replaces the path; "" keeps it. A Path with a query replaces
	// the query too, and StripQuery does not apply.
	Path string
	// PrefixRewrite replaces the matched part of the path, as the route
	// action's; "" means none.
	PrefixRewrite string
	// Status is the response status: 301 (the default), 302, 303, 307 or
	// 308.
	Status int
	// StripQuery drops the request's query from the Location.
	StripQuery bool

	pathHasQuery bool
	regexRewrite *regexp.Regexp
	regexSubst   string
}

// Location appends to dst the Location a redirect route answers with, as
// Envoy builds it: scheme "://" host [":" port] path ["?" query]. scheme
// is the request's ("http" or "https", as X-Forwarded-Proto would say).
// It allocates nothing beyond dst's growth unless the redirect has a
// regex rewrite. It returns dst unchanged for a route that does not
// redirect.
func (r *Route) Location(dst []byte, scheme string, req Request) []byte {
	rd := r.Redirect
	if rd == nil {
		return dst
	}
	newScheme := scheme
	if rd.Scheme != "" {
		newScheme = rd.Scheme
	}
	dst = append(dst, newScheme...)
	dst = append(dst, "://"...)
	if rd.Host != "" {
		dst = append(dst, rd.Host...)
	} else {
		host := req.Authority()
		if end := portStart(host); end >= 0 {
			port := host[end:]
			drop := rd.Port != 0
			if newScheme != scheme {
				drop = drop || (scheme == "https" && string(port) == ":443") || (scheme == "http" && string(port) == ":80")
			}
			if drop {
				host = host[:end]
			}
		}
		dst = append(dst, host...)
	}
	if rd.Port != 0 {
		dst = append(dst, ':')
		dst = appendUint(dst, uint64(rd.Port))
	}
	query := req.Query()
	switch {
	case rd.Path != "":
		dst = append(dst, rd.Path...)
		if rd.pathHasQuery {
			return dst
		}
	default:
		dst, _ = rewritePath(dst, req.Path(), &r.match, rd.PrefixRewrite, rd.regexRewrite, rd.regexSubst)
	}
	if query != nil && !rd.StripQuery {
		dst = append(dst, '?')
		dst = append(dst, query...)
	}
	return dst
}

// portStart is the index of the ':' before host's port, or -1.
func portStart(host []byte) int {
	for i := len(host) - 1; i >= 0; i-- {
		switch c := host[i]; {
		case c == ':':
			if i == len(host)-1 {
				return -1
			}
			if host[0] == '[' && (i == 0 || host[i-1] != ']') {
				return -1 // inside an IPv6 literal
			}
			return i
		case c < '0' || c > '9':
			return -1
		}
	}
	return -1
}

func appendUint(dst []byte, n uint64) []byte {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return append(dst, b[i:]...)
}

// DirectResponse is a compiled DirectResponseAction.
type DirectResponse struct {
	// Status is the response status, 200 to 599.
	Status int
	// Body is the response body; nil means none.
	Body []byte
}
