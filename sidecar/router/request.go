package router

import "github.com/skeinmesh/skein/sidecar/http1"

// Request is what routing reads of a request. HTTP/1.1 and HTTP/2 give the
// same view, and none of its methods may allocate.
type Request interface {
	// Method is the request method, as sent.
	Method() []byte
	// Authority is the host, and port if any, the request is for (HTTP/2
	// :authority, HTTP/1.1 the absolute target's authority or Host).
	Authority() []byte
	// Path is the path, still percent-encoded, without the query.
	Path() []byte
	// Query is the query without its '?', raw; nil if there is none.
	Query() []byte
	// Header returns the value of the field named name, which is lower
	// case, and whether the field is present. A request with several
	// fields of that name returns the first (Envoy matches on the values
	// joined with ","; joining would allocate). Pseudo-headers are asked
	// for here too: ":path" is the path and query as received; ":scheme"
	// and others may be reported absent. ":method" and ":authority" are
	// never asked for: routing reads Method and Authority.
	Header(name string) (value []byte, ok bool)
}

// HTTP1 views an HTTP/1.1 request head as a Request, without allocating.
func HTTP1(h *http1.RequestHead) Request { return http1Request{h} }

type http1Request struct{ h *http1.RequestHead }

var _ Request = http1Request{}

func (r http1Request) Method() []byte    { return r.h.Method() }
func (r http1Request) Authority() []byte { return r.h.Authority() }
func (r http1Request) Path() []byte      { return r.h.Path() }
func (r http1Request) Query() []byte     { return r.h.Query() }

func (r http1Request) Header(name string) ([]byte, bool) {
	if len(name) > 0 && name[0] == ':' {
		switch name {
		case ":path":
			// The path and query end the target in every form.
			t, q := r.h.Target(), r.h.Query()
			n := len(r.h.Path())
			if q != nil {
				n += 1 + len(q)
			}
			return t[len(t)-n:], true
		case ":method":
			return r.h.Method(), true
		case ":authority":
			a := r.h.Authority()
			return a, a != nil
		}
		return nil, false
	}
	return r.h.Header.Lookup(name)
}
