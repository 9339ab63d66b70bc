package router

import (
	"slices"
	"strconv"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// path is a field path inside the route configuration being compiled,
// such as "virtual_hosts[0].routes[2].match.safe_regex".
type path string

func (p path) field(name string) path {
	if p == "" {
		return path(name)
	}
	return p + "." + path(name)
}

func (p path) index(name string, i int) path {
	return p.field(name) + "[" + path(strconv.Itoa(i)) + "]"
}

func (p path) key(name, k string) path {
	return p.field(name) + "[" + path(strconv.Quote(k)) + "]"
}

// FieldError is a configuration the router refuses: Path is the field's
// path in the RouteConfiguration ("virtual_hosts[0].routes[2].match").
type FieldError struct {
	Path string
	Msg  string
}

func (e *FieldError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

func (p path) err(msg string) error { return &FieldError{Path: string(p), Msg: msg} }

// onlyFields refuses every populated field of m that is not in known (by
// proto name), and fields unknown to this build of the protos: the
// router would otherwise ignore them silently. The lowest-numbered
// offender is named, so the message does not depend on map order.
func onlyFields(m proto.Message, p path, known ...string) error {
	r := m.ProtoReflect()
	var bad protoreflect.FieldDescriptor
	r.Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		if !slices.Contains(known, string(fd.Name())) && (bad == nil || fd.Number() < bad.Number()) {
			bad = fd
		}
		return true
	})
	if bad != nil {
		return p.field(string(bad.Name())).err("not supported by skein-proxy")
	}
	if len(r.GetUnknown()) > 0 {
		return p.err("fields unknown to skein-proxy")
	}
	return nil
}

func quote(s string) string { return strconv.Quote(s) }
