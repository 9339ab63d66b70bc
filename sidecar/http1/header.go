package http1

import "iter"

// Header is an ordered list of header fields whose names and values live
// in an arena of bytes that is reused from one message to the next. Names
// keep the case they arrived in and compare case-insensitively; nothing is
// canonicalised, mapped or converted to strings.
//
// The zero value is an empty header ready to use. Methods that take names
// and values as strings do not validate them: names and values that come
// from configuration are checked once, when it is loaded, with
// [ValidFieldName] and [ValidFieldValue].
type Header struct {
	arena  []byte
	fields []field
}

type field struct {
	name, value []byte
	drop        bool // marked for removal by stripHopByHop
}

// Reset empties the header, keeping its memory for the next message.
func (h *Header) Reset() {
	h.arena = h.arena[:0]
	clear(h.fields) // drop references into old arenas
	h.fields = h.fields[:0]
}

// Len is the number of fields.
func (h *Header) Len() int { return len(h.fields) }

// At returns the i'th field, 0 <= i < Len, in the order received or added.
func (h *Header) At(i int) (name, value []byte) {
	f := &h.fields[i]
	return f.name, f.value
}

// All yields every field in order.
func (h *Header) All() iter.Seq2[[]byte, []byte] {
	return func(yield func([]byte, []byte) bool) {
		for i := range h.fields {
			if !yield(h.fields[i].name, h.fields[i].value) {
				return
			}
		}
	}
}

// Get returns the value of the first field named name (in any case), or
// nil if there is none.
func (h *Header) Get(name string) []byte {
	v, _ := h.Lookup(name)
	return v
}

// Lookup is Get that also reports whether the field is present, which
// tells an empty value from a missing field.
func (h *Header) Lookup(name string) ([]byte, bool) {
	for i := range h.fields {
		if equalFold(h.fields[i].name, name) {
			return h.fields[i].value, true
		}
	}
	return nil, false
}

// Has reports whether a field named name is present.
func (h *Header) Has(name string) bool {
	_, ok := h.Lookup(name)
	return ok
}

// HasToken reports whether any field named name holds token (in any case)
// as an element of its comma-separated list, as Connection does "close".
func (h *Header) HasToken(name, token string) bool {
	for i := range h.fields {
		if equalFold(h.fields[i].name, name) && listHas(h.fields[i].value, token) {
			return true
		}
	}
	return false
}

// Add appends a field.
func (h *Header) Add(name, value string) {
	n := len(h.arena)
	h.arena = append(h.arena, name...)
	v := len(h.arena)
	h.arena = append(h.arena, value...)
	h.fields = append(h.fields, field{name: h.arena[n:v:v], value: h.arena[v:len(h.arena):len(h.arena)]})
}

// AddBytes is Add with byte slices, for values copied from another message.
func (h *Header) AddBytes(name, value []byte) {
	n := len(h.arena)
	h.arena = append(h.arena, name...)
	v := len(h.arena)
	h.arena = append(h.arena, value...)
	h.fields = append(h.fields, field{name: h.arena[n:v:v], value: h.arena[v:len(h.arena):len(h.arena)]})
}

// Set replaces the value of the first field named name and removes the
// others with that name, or adds the field if there is none.
func (h *Header) Set(name, value string) {
	for i := range h.fields {
		if equalFold(h.fields[i].name, name) {
			v := len(h.arena)
			h.arena = append(h.arena, value...)
			h.fields[i].value = h.arena[v:len(h.arena):len(h.arena)]
			h.delFrom(i+1, name)
			return
		}
	}
	h.Add(name, value)
}

// Del removes every field named name.
func (h *Header) Del(name string) { h.delFrom(0, name) }

func (h *Header) delFrom(start int, name string) {
	j := start
	for i := start; i < len(h.fields); i++ {
		if !equalFold(h.fields[i].name, name) {
			h.fields[j] = h.fields[i]
			j++
		}
	}
	clear(h.fields[j:])
	h.fields = h.fields[:j]
}

// add appends a field whose bytes are already in the arena.
func (h *Header) addParsed(name, value []byte) {
	h.fields = append(h.fields, field{name: name, value: value})
}

// hopByHop are the fields that describe one connection rather than the
// message (RFC 9110 §7.6.1), besides those Connection names; TE and
// Upgrade get special treatment in stripHopByHop.
var hopByHop = [...]string{
	"Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Trailer",
	"TE", "Upgrade",
}

// stripHopByHop removes the hop-by-hop fields. TE survives as
// "TE: trailers" if it offered trailers. When upgrading, Upgrade stays and
// "Connection: Upgrade" is added back.
func (h *Header) stripHopByHop(upgrading bool) {
	teTrailers, connection := false, false
	for i := range h.fields {
		f := &h.fields[i]
		switch name := hopByHopName(f.name); name {
		case "":
		case "Upgrade":
			f.drop = !upgrading
		case "TE":
			f.drop = true
			teTrailers = teTrailers || listHas(f.value, "trailers")
		case "Connection":
			f.drop = true
			connection = true
		default:
			f.drop = true
		}
	}
	// Fields named in Connection; upgrading keeps Upgrade even if named.
	for i := range h.fields {
		if !connection {
			break
		}
		if !equalFold(h.fields[i].name, "Connection") {
			continue
		}
		for tok := range listElems(h.fields[i].value) {
			for j := range h.fields {
				f := &h.fields[j]
				if !f.drop && equalFoldBytes(f.name, tok) && !(upgrading && equalFold(f.name, "Upgrade")) {
					f.drop = true
				}
			}
		}
	}
	j := 0
	for i := range h.fields {
		if !h.fields[i].drop {
			h.fields[j] = h.fields[i]
			j++
		}
	}
	clear(h.fields[j:])
	h.fields = h.fields[:j]
	if teTrailers {
		h.Add("TE", "trailers")
	}
	if upgrading {
		h.Add("Connection", "Upgrade")
	}
}

// hopByHopName returns the entry of hopByHop that name is (any case), or
// "". It looks at the length first: most fields are none of them.
func hopByHopName(name []byte) string {
	var c string
	switch len(name) {
	case 2:
		c = "TE"
	case 7:
		if lower(name[0]) == 't' {
			c = "Trailer"
		} else {
			c = "Upgrade"
		}
	case 10:
		if lower(name[0]) == 'c' {
			c = "Connection"
		} else {
			c = "Keep-Alive"
		}
	case 16:
		c = "Proxy-Connection"
	case 17:
		c = "Transfer-Encoding"
	default:
		return ""
	}
	if equalFold(name, c) {
		return c
	}
	return ""
}

// listElems yields the non-empty elements of a comma-separated list with
// their surrounding whitespace trimmed (RFC 9110 §5.6.1).
func listElems(v []byte) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		for len(v) > 0 {
			i := 0
			for i < len(v) && v[i] != ',' {
				i++
			}
			e := trimOWS(v[:i])
			if i < len(v) {
				i++
			}
			v = v[i:]
			if len(e) > 0 && !yield(e) {
				return
			}
		}
	}
}

func listHas(v []byte, token string) bool {
	for e := range listElems(v) {
		if equalFold(e, token) {
			return true
		}
	}
	return false
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}

// equalFold compares ASCII case-insensitively, as field names compare.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		if lower(b[i]) != lower(s[i]) {
			return false
		}
	}
	return true
}

func equalFoldBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range len(a) {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

// ValidFieldName reports whether s is a field name (a token, RFC 9110 §5.1).
func ValidFieldName(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		if !isTokenChar[s[i]] {
			return false
		}
	}
	return true
}

// ValidFieldValue reports whether s may be sent as a field value: no
// control characters but tab, and no leading or trailing whitespace
// (RFC 9110 §5.5).
func ValidFieldValue(s string) bool {
	for i := range len(s) {
		if !isValueChar[s[i]] {
			return false
		}
	}
	return len(s) == 0 || (s[0] != ' ' && s[0] != '\t' && s[len(s)-1] != ' ' && s[len(s)-1] != '\t')
}

// isTokenChar: tchar of RFC 9110 §5.6.2.
var isTokenChar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// isValueChar: field-vchar, SP and HTAB (obs-text included).
var isValueChar = func() (t [256]bool) {
	for c := 0x20; c < 0x100; c++ {
		t[c] = c != 0x7f
	}
	t['\t'] = true
	return t
}()
