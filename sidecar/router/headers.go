package router

import (
	"errors"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

// Headers is the mutable header set of a request or response that header
// edits apply to. Names are compared case-insensitively. *http1.Header
// satisfies it. (Has rather than Get: ADD_IF_ABSENT and
// OVERWRITE_IF_EXISTS need presence, which a nil-or-empty value cannot
// tell.)
type Headers interface {
	Has(name string) bool
	Set(name, value string)
	Add(name, value string)
	Del(name string)
}

// AppendAction is what adding a header does when the header exists, as
// Envoy's HeaderValueOption.HeaderAppendAction.
type AppendAction uint8

const (
	// AppendIfExistsOrAdd adds another field with the value; the default.
	AppendIfExistsOrAdd AppendAction = iota
	// AddIfAbsent adds the field only if it is absent.
	AddIfAbsent
	// OverwriteIfExistsOrAdd replaces all fields of the name with one.
	OverwriteIfExistsOrAdd
	// OverwriteIfExists replaces the fields only if there are some.
	OverwriteIfExists
)

// HeaderEdits is a compiled, ordered list of header removals and
// additions; the zero value does nothing. Apply runs them in order,
// allocating nothing itself.
type HeaderEdits struct {
	ops []headerOp
}

type headerOp struct {
	del    bool // remove name; otherwise add value by action
	name   string
	value  string
	action AppendAction
}

// Len is the number of edits.
func (e HeaderEdits) Len() int { return len(e.ops) }

// Apply edits h.
func (e HeaderEdits) Apply(h Headers) {
	for i := range e.ops {
		op := &e.ops[i]
		if op.del {
			h.Del(op.name)
			continue
		}
		switch op.action {
		case AppendIfExistsOrAdd:
			h.Add(op.name, op.value)
		case AddIfAbsent:
			if !h.Has(op.name) {
				h.Add(op.name, op.value)
			}
		case OverwriteIfExistsOrAdd:
			h.Set(op.name, op.value)
		case OverwriteIfExists:
			if h.Has(op.name) {
				h.Set(op.name, op.value)
			}
		}
	}
}

// then is e followed by f, in a new list.
func (e HeaderEdits) then(f HeaderEdits) HeaderEdits {
	if len(f.ops) == 0 {
		return e
	}
	if len(e.ops) == 0 {
		return f
	}
	ops := make([]headerOp, 0, len(e.ops)+len(f.ops))
	return HeaderEdits{ops: append(append(ops, e.ops...), f.ops...)}
}

// compileHeaderEdits compiles one level's removals then additions: Envoy
// removes before it adds within a level. p is the path of the message
// holding the fields, addField and delField their names there.
func compileHeaderEdits(p path, addField string, add []*corev3.HeaderValueOption, delField string, del []string) (HeaderEdits, error) {
	var e HeaderEdits
	for i, name := range del {
		n, err := modifiableName(name)
		if err != nil {
			return e, p.index(delField, i).err(err.Error())
		}
		e.ops = append(e.ops, headerOp{del: true, name: n})
	}
	for i, o := range add {
		q := p.index(addField, i)
		if err := onlyFields(o, q, "header", "append", "append_action", "keep_empty_value"); err != nil {
			return e, err
		}
		h := o.GetHeader()
		if h == nil {
			return e, q.field("header").err("required")
		}
		if err := onlyFields(h, q.field("header"), "key", "value", "raw_value"); err != nil {
			return e, err
		}
		n, err := modifiableName(h.GetKey())
		if err != nil {
			return e, q.field("header.key").err(err.Error())
		}
		raw := h.GetValue()
		vf := "header.value"
		if raw == "" && len(h.GetRawValue()) > 0 {
			raw, vf = string(h.GetRawValue()), "header.raw_value"
		}
		v, err := literalValue(raw)
		if err != nil {
			return e, q.field(vf).err(err.Error())
		}
		action := AppendIfExistsOrAdd
		if o.GetAppend() != nil {
			if o.GetAppendAction() != corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD {
				return e, q.field("append").err("append and append_action are both set")
			}
			if !o.GetAppend().GetValue() {
				action = OverwriteIfExistsOrAdd
			}
		} else {
			switch o.GetAppendAction() {
			case corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD:
			case corev3.HeaderValueOption_ADD_IF_ABSENT:
				action = AddIfAbsent
			case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD:
				action = OverwriteIfExistsOrAdd
			case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS:
				action = OverwriteIfExists
			default:
				return e, q.field("append_action").err("unknown action " + o.GetAppendAction().String())
			}
		}
		if v == "" && !o.GetKeepEmptyValue() {
			continue // Envoy adds no field with an empty value
		}
		e.ops = append(e.ops, headerOp{name: n, value: v, action: action})
	}
	return e, nil
}

// modifiableName lower-cases a header name and refuses what Envoy does not
// let routes edit: pseudo-headers and Host.
func modifiableName(name string) (string, error) {
	if name == "" {
		return "", errors.New("empty header name")
	}
	for i := range len(name) {
		if !isTokenChar(name[i]) && !(i == 0 && name[i] == ':') {
			return "", errors.New("invalid header name " + quote(name))
		}
	}
	n := strings.ToLower(name)
	if n[0] == ':' || n == "host" {
		return "", errors.New("header " + quote(name) + " may not be modified")
	}
	return n, nil
}

// literalValue checks a configured value. Envoy's values are format
// strings with %VARIABLE% substitution; this proxy supports none, so a
// value is taken literally except that "%%" is a '%', and any other '%'
// is refused rather than sent as the variable's name.
func literalValue(v string) (string, error) {
	for i := range len(v) {
		if c := v[i]; c == '\r' || c == '\n' || c == 0 {
			return "", errors.New("control character in header value")
		}
	}
	if !strings.Contains(v, "%") {
		return v, nil
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] != '%' {
			b.WriteByte(v[i])
			continue
		}
		if i+1 < len(v) && v[i+1] == '%' {
			b.WriteByte('%')
			i++
			continue
		}
		return "", errors.New("header value " + quote(v) + " uses a %VARIABLE% substitution, which is not supported (write %% for a literal %)")
	}
	return b.String(), nil
}

func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
