package upstream

// Error is why a request found no upstream connection. Status is what the
// router answers with and Detail is Envoy's response code detail for the
// access log; compare with errors.Is against the Err variables, which
// match any Error of the same Detail.
type Error struct {
	// Status is the HTTP status to answer with (503 for all of these).
	Status int
	// Detail is Envoy's response code detail, e.g. "no_healthy_upstream".
	Detail string
	// Host is the upstream address, when one was picked; "" otherwise.
	Host string
	// Err is the cause (a dial error), or nil.
	Err error
}

func (e *Error) Error() string {
	s := "upstream: " + e.Detail
	if e.Host != "" {
		s += " " + e.Host
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is matches an Error of the same Detail, so that
// errors.Is(err, ErrConnectTimeout) holds for every host's timeout.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Detail == e.Detail
}

// The errors Pick, HTTP1, HTTP2 and DialTCP return.
var (
	// ErrNoHealthyUpstream: the cluster has no host to pick (no endpoints
	// yet, all removed, or all UNHEALTHY/DRAINING in EDS). Envoy's UH flag.
	// Pick returns this very value, without allocating.
	ErrNoHealthyUpstream = &Error{Status: 503, Detail: "no_healthy_upstream"}
	// ErrNoOriginalDst: an ORIGINAL_DST cluster was asked to pick without
	// a valid PickContext.OriginalDst.
	ErrNoOriginalDst = &Error{Status: 503, Detail: "no_original_destination"}
	// ErrConnectFailure: the connection was refused or failed (Envoy's UF
	// flag, reset reason connection_failure).
	ErrConnectFailure = &Error{Status: 503, Detail: "upstream_reset_before_response_started{connection_failure}"}
	// ErrConnectTimeout: the connection did not complete within the
	// cluster's connect_timeout (Envoy's UF flag, connection_timeout).
	ErrConnectTimeout = &Error{Status: 503, Detail: "upstream_reset_before_response_started{connection_timeout}"}
)
