package upstream

import (
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// onlyFields refuses every field set in m that allowed does not name, so a
// field the proxy would silently ignore cannot slip through. path is the
// field path of m in its resource ("" for the resource itself); the error
// names the first refused field's full path. Unknown fields (from a newer
// control plane) are not fields the proxy can name, and are ignored as
// Envoy ignores them.
func onlyFields(m proto.Message, path string, allowed ...string) error {
	var err error
	m.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		if slices.Contains(allowed, string(fd.Name())) {
			return true
		}
		err = fmt.Errorf("%s: not supported", join(path, string(fd.Name())))
		return false
	})
	return err
}

// join appends a field name to a field path.
func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}
