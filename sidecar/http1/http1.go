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
// stays valid until the head is parsed into again or reset.
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
	Status int
	Msg    string
}

func (e *Error) Error() string { return "http1: " + e.Msg }

// The errors the parsers and CopyBody return; compare with errors.Is.
var (
	ErrHeadTooLarge           = &Error{431, "message head too large"}
	ErrTooManyHeaders         = &Error{431, "too many header fields"}
	ErrRequestLine            = &Error{400, "malformed request line"}
	ErrStatusLine             = &Error{400, "malformed status line"}
	ErrVersion                = &Error{505, "unsupported HTTP version"}
	ErrHeaderName             = &Error{400, "invalid header field name"}
	ErrHeaderValue            = &Error{400, "invalid header field value"}
	ErrSpaceBeforeColon       = &Error{400, "whitespace between header field name and colon"}
	ErrObsFold                = &Error{400, "obsolete line folding in header field"}
	ErrHost                   = &Error{400, "missing or repeated Host header"}
	ErrContentLength          = &Error{400, "invalid or conflicting Content-Length"}
	ErrLengthAndChunked       = &Error{400, "both Content-Length and Transfer-Encoding"}
	ErrTransferEncoding       = &Error{501, "unsupported transfer coding"}
	ErrTransferEncodingHTTP10 = &Error{400, "Transfer-Encoding in an HTTP/1.0 message"}
	ErrChunk                  = &Error{400, "malformed chunked body"}
	ErrBodyLength             = &Error{400, "body shorter or longer than its framing"}
	ErrFraming                = &Error{500, "CopyBody cannot turn this framing into that one"}
)
