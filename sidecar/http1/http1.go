// Package http1 is skein-proxy's HTTP/1.1 codec: it parses request and
// response heads into reusable, allocation-free structures, edits their
// header fields in place, writes them back, and copies bodies between
// connections with the framing of RFC 9112, re-framing where the two sides
// need it. It is the lean path the proxy's router and HTTP filters stand on
// instead of net/http, and it imports only the standard library.
//
// A connection loop reads a head with [ParseRequestHead] from a pooled
// [bufio.Reader] ([NewReader]), lets filters look at and change it,
// removes hop-by-hop fields ([RequestHead.StripHopByHop]), writes it with
// [WriteRequestHead] to a pooled [bufio.Writer] ([NewWriter]) and streams
// the body with [CopyBody]; the response goes back the same way. Heads are
// reused from one message to the next, so a connection in steady state
// allocates nothing per request.
//
// Every byte slice a head hands out points into the head's own arena and
// stays valid until the head is parsed into again or reset. The tests hold
// a complete forwarding loop built this way (forward_test.go): keep-alive
// upstream pool, 100-continue, 101 tunnels, re-framing for HTTP/1.0.
//
// What the parsers accept, where RFC 9112 leaves a choice: a bare LF ends
// a line as CRLF does (the codec writes CRLF, so the next hop never sees
// the difference); up to four empty lines before a request line are
// skipped; everything a request smuggler relies on is refused rather than
// repaired (see the Err variables). The wire framing of a written message
// always comes from its Body field, never from Content-Length or
// Transfer-Encoding fields left in its header, so a head and the body
// CopyBody sends after it cannot disagree.
package http1

// Proto is an HTTP/1.x protocol version.
type Proto uint8

const (
	// HTTP11 is HTTP/1.1; it is the zero value.
	HTTP11 Proto = iota
	// HTTP10 is HTTP/1.0.
	HTTP10
)

// String returns the version as it appears on the wire.
func (p Proto) String() string {
	if p == HTTP10 {
		return "HTTP/1.0"
	}
	return "HTTP/1.1"
}

// Limits bound what a parser accepts in one message head.
type Limits struct {
	// MaxHeadBytes bounds the head: start line, header fields and the empty
	// line that ends them (or a chunked body's trailer section); 0 means
	// 64 KiB. A longer head is ErrHeadTooLarge.
	MaxHeadBytes int
	// MaxHeaders bounds the number of header (or trailer) fields; 0 means
	// 100. More is ErrTooManyHeaders.
	MaxHeaders int
}

const (
	defaultMaxHeadBytes = 64 << 10
	defaultMaxHeaders   = 100
)

func (l Limits) headBytes() int {
	if l.MaxHeadBytes <= 0 {
		return defaultMaxHeadBytes
	}
	return l.MaxHeadBytes
}

func (l Limits) headers() int {
	if l.MaxHeaders <= 0 {
		return defaultMaxHeaders
	}
	return l.MaxHeaders
}

// Error is a message the codec refuses. Status is the response a server
// answers a refused request with (400, 431, 501 or 505); a proxy answers a
// refused upstream response with 502 whatever Status says.
type Error struct {
	// Status is the HTTP status code to answer with.
	Status int
	// Msg says what was wrong, for logs.
	Msg string
}

func (e *Error) Error() string { return "http1: " + e.Msg }

// The errors the parsers and CopyBody return; compare with errors.Is.
var (
	// ErrHeadTooLarge: the head (or a trailer section) exceeds MaxHeadBytes.
	ErrHeadTooLarge = &Error{431, "message head too large"}
	// ErrTooManyHeaders: more header (or trailer) fields than MaxHeaders.
	ErrTooManyHeaders = &Error{431, "too many header fields"}
	// ErrRequestLine: not "method SP request-target SP HTTP-version" with
	// a token method and a target of visible ASCII in a form the method
	// allows, or more than four empty lines before it.
	ErrRequestLine = &Error{400, "malformed request line"}
	// ErrStatusLine: not "HTTP-version SP 3DIGIT [SP reason]".
	ErrStatusLine = &Error{400, "malformed status line"}
	// ErrVersion: a well-formed HTTP version other than 1.0 and 1.1.
	ErrVersion = &Error{505, "unsupported HTTP version"}
	// ErrHeaderName: a field line without a colon, or a name that is not a
	// token.
	ErrHeaderName = &Error{400, "invalid header field name"}
	// ErrHeaderValue: a control character (CR, LF, NUL, DEL...) in a value.
	ErrHeaderValue = &Error{400, "invalid header field value"}
	// ErrSpaceBeforeColon: whitespace between a field name and its colon
	// (RFC 9112 §5.1 requires rejecting it).
	ErrSpaceBeforeColon = &Error{400, "whitespace between header field name and colon"}
	// ErrObsFold: a field line continued on the next line (obsolete line
	// folding), or whitespace before the first field.
	ErrObsFold = &Error{400, "obsolete line folding in header field"}
	// ErrHost: an HTTP/1.1 request without Host, or any request with two.
	ErrHost = &Error{400, "missing or repeated Host header"}
	// ErrContentLength: a Content-Length that is not a non-negative
	// decimal number, or two that differ.
	ErrContentLength = &Error{400, "invalid or conflicting Content-Length"}
	// ErrLengthAndChunked: Content-Length and Transfer-Encoding together,
	// the classic request-smuggling disagreement.
	ErrLengthAndChunked = &Error{400, "both Content-Length and Transfer-Encoding"}
	// ErrTransferEncoding: a transfer coding other than a single, final
	// chunked.
	ErrTransferEncoding = &Error{501, "unsupported transfer coding"}
	// ErrTransferEncodingHTTP10: Transfer-Encoding in an HTTP/1.0 message,
	// whose framing RFC 9112 §6.1 says to treat as faulty.
	ErrTransferEncodingHTTP10 = &Error{400, "Transfer-Encoding in an HTTP/1.0 message"}
	// ErrChunk: a malformed chunk-size line, or chunk data not followed by
	// a line ending.
	ErrChunk = &Error{400, "malformed chunked body"}
	// ErrFraming: CopyBody was asked for a conversion it cannot make, or
	// WriteRequestHead for a request delimited by close; a bug in the
	// caller.
	ErrFraming = &Error{500, "CopyBody cannot turn this framing into that one"}
)
