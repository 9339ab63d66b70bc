package bootstrap

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoregistry"
	"sigs.k8s.io/yaml"
)

// Format is a bootstrap file's encoding.
type Format string

const (
	// Detect picks JSON when the first non-blank byte is '{', YAML otherwise.
	Detect Format = ""
	YAML   Format = "yaml"
	JSON   Format = "json"
)

// Load reads and parses a bootstrap file; its format comes from the
// extension (.yaml, .yml, .json), or from its content for any other. Envoy's
// binary and text proto formats (.pb, .pb_text) are refused. Load does not
// Check the result.
func Load(path string) (*bootstrapv3.Bootstrap, error) {
	f := Detect
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".yaml", ".yml":
		f = YAML
	case ".json":
		f = JSON
	case ".pb", ".pb_text":
		return nil, fmt.Errorf("bootstrap %s: %s files are not supported; write it as YAML or JSON", path, ext)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	b, err := Parse(data, f)
	if err != nil {
		return nil, fmt.Errorf("bootstrap %s: %w", path, err)
	}
	return b, nil
}

// Parse decodes a bootstrap in Envoy's YAML or JSON form: fields by their
// proto (or JSON) names, unknown fields refused, typed configs ("@type")
// resolved against the proto types linked into the program, which are the
// ones skein-proxy's packages compile. It then runs the protos' own
// validation (ValidateAll). Errors name the field path. Parse does not Check
// the result.
func Parse(data []byte, f Format) (*bootstrapv3.Bootstrap, error) {
	if f == Detect {
		f = YAML
		if t := bytes.TrimLeft(data, " \t\r\n"); len(t) > 0 && t[0] == '{' {
			f = JSON
		}
	}
	switch f {
	case YAML:
		j, err := yaml.YAMLToJSON(data)
		if err != nil {
			return nil, fmt.Errorf("YAML: %w", err)
		}
		data = j
	case JSON:
	default:
		return nil, fmt.Errorf("unknown format %q", f)
	}
	var tree any
	if err := json.Unmarshal(data, &tree); err != nil {
		return nil, fmt.Errorf("JSON: %w", err)
	}
	if err := unresolvedTypes(tree, ""); err != nil {
		return nil, err
	}
	b := &bootstrapv3.Bootstrap{}
	if err := (protojson.UnmarshalOptions{}).Unmarshal(data, b); err != nil {
		return nil, protojsonError(data, err)
	}
	if err := b.ValidateAll(); err != nil {
		return nil, validationError(err)
	}
	return b, nil
}

// pgvError is the error protoc-gen-validate generates for a field; Cause
// is the nested message's error, if the field is one.
type pgvError interface {
	Field() string
	Reason() string
	Cause() error
}

// validationError rewrites the protos' validation errors, nested one per
// message ("invalid Bootstrap.Admin: ... | caused by: ..."), as field paths.
func validationError(err error) error {
	var errs []error
	if m, ok := err.(interface{ AllErrors() []error }); ok {
		for _, e := range m.AllErrors() {
			errs = append(errs, validationError(e))
		}
		return errors.Join(errs...)
	}
	path := ""
	for {
		v, ok := err.(pgvError)
		if !ok {
			return fmt.Errorf("%s: %w", orRoot(path), err)
		}
		path = joinPath(path, snake(v.Field()))
		if v.Cause() == nil {
			return fmt.Errorf("%s: %s", orRoot(path), v.Reason())
		}
		if m, ok := v.Cause().(interface{ AllErrors() []error }); ok && len(m.AllErrors()) == 1 {
			err = m.AllErrors()[0]
		} else {
			err = v.Cause()
		}
	}
}

func joinPath(path, field string) string {
	if path == "" || strings.HasPrefix(field, "[") {
		return path + field
	}
	return path + "." + field
}

// snake turns a generated Go field name ("SocketAddress", "Clusters[0]")
// into its proto name ("socket_address", "clusters[0]").
func snake(field string) string {
	name, index, _ := strings.Cut(field, "[")
	var b strings.Builder
	for i, r := range name {
		if 'A' <= r && r <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	if index != "" {
		b.WriteString("[" + index)
	}
	return b.String()
}

// unresolvedTypes finds the first "@type" that names a type the program
// does not know, so its error can say where it is.
func unresolvedTypes(v any, path string) error {
	switch v := v.(type) {
	case map[string]any:
		if t, ok := v["@type"].(string); ok {
			if _, err := protoregistry.GlobalTypes.FindMessageByURL(t); err != nil {
				return fmt.Errorf("%s: typed config %s is not supported by skein-proxy", orRoot(path), t)
			}
		}
		for _, k := range slices.Sorted(func(yield func(string) bool) {
			for k := range v {
				if !yield(k) {
					return
				}
			}
		}) {
			if err := unresolvedTypes(v[k], joinKey(path, k)); err != nil {
				return err
			}
		}
	case []any:
		for i, e := range v {
			if err := unresolvedTypes(e, path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
	}
	return nil
}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// joinKey appends an object key to a field path: .name for field names,
// ["key"] for map keys that are not identifiers.
func joinKey(path, k string) string {
	if !identifier.MatchString(k) {
		return path + "[" + strconv.Quote(k) + "]"
	}
	if path == "" {
		return k
	}
	return path + "." + k
}

func orRoot(path string) string {
	if path == "" {
		return "(bootstrap)"
	}
	return path
}

// protojson reports "(line L:C)" positions in the JSON; after YAMLToJSON
// the JSON is one line, so the position is turned into a field path.
var position = regexp.MustCompile(`\(line (\d+):(\d+)\):?\s*`)

func protojsonError(data []byte, err error) error {
	msg := err.Error()
	m := position.FindStringSubmatchIndex(msg)
	if m == nil {
		return err
	}
	line, _ := strconv.Atoi(msg[m[2]:m[3]])
	col, _ := strconv.Atoi(msg[m[4]:m[5]])
	detail := msg[m[1]:]
	off := offset(data, line, col)
	if off < 0 {
		return errors.New(detail)
	}
	return fmt.Errorf("%s: %s", orRoot(pathAt(data, off)), detail)
}

// offset turns a 1-based line and rune column into a byte offset.
func offset(data []byte, line, col int) int {
	i := 0
	for l := 1; l < line; l++ {
		n := bytes.IndexByte(data[i:], '\n')
		if n < 0 {
			return -1
		}
		i += n + 1
	}
	for c := 1; c < col; c++ {
		if i >= len(data) {
			return -1
		}
		_, size := utf8.DecodeRune(data[i:])
		i += size
	}
	return i
}

// pathAt is the field path of the JSON value or key that starts at off.
func pathAt(data []byte, off int) string {
	dec := json.NewDecoder(bytes.NewReader(data))
	type frame struct {
		object bool
		key    string // object: the current key
		index  int    // array: the current element
		atKey  bool   // object: the next token is a key
	}
	var stack []frame
	render := func(includeTop bool) string {
		var p string
		for i, f := range stack {
			if i == len(stack)-1 && !includeTop {
				break
			}
			if f.object {
				p = joinKey(p, f.key)
			} else {
				p += "[" + strconv.Itoa(f.index) + "]"
			}
		}
		return p
	}
	for {
		// Skip separators, so InputOffset is where the next token starts.
		start := int(dec.InputOffset())
		for start < len(data) && strings.IndexByte(" \t\r\n,:", data[start]) >= 0 {
			start++
		}
		if start >= off {
			if len(stack) > 0 && stack[len(stack)-1].object && stack[len(stack)-1].atKey {
				if k, err := dec.Token(); err == nil {
					if k, ok := k.(string); ok {
						return joinKey(render(false), k)
					}
				}
				return render(false)
			}
			return render(true)
		}
		tok, err := dec.Token()
		if err != nil {
			return render(true)
		}
		top := len(stack) - 1
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:top]
			if top > 0 {
				advance(&stack[top-1].atKey, &stack[top-1].index, stack[top-1].object)
			}
			continue
		}
		if top >= 0 && stack[top].object && stack[top].atKey {
			stack[top].key, stack[top].atKey = tok.(string), false
			continue
		}
		if d, ok := tok.(json.Delim); ok {
			stack = append(stack, frame{object: d == '{', atKey: d == '{', index: 0})
			continue
		}
		if top >= 0 {
			advance(&stack[top].atKey, &stack[top].index, stack[top].object)
		}
	}
}

// advance moves an object to its next key or an array to its next element
// after a value.
func advance(atKey *bool, index *int, object bool) {
	if object {
		*atKey = true
	} else {
		*index++
	}
}
