package router

import (
	"regexp"
	"strconv"
)

// matchKind is how a string matcher compares.
type matchKind uint8

const (
	matchExact matchKind = iota
	matchPrefix
	matchSuffix
	matchContains
	matchRegex
)

// stringMatcher is a compiled envoy.type.matcher.v3.StringMatcher.
// With ignoreCase, pattern is lower case and comparisons fold ASCII case;
// ignore_case does not apply to regexes (as Envoy).
type stringMatcher struct {
	kind       matchKind
	ignoreCase bool
	pattern    string
	re         *regexp.Regexp // full match
}

func (m *stringMatcher) match(v []byte) bool {
	if m.kind == matchRegex {
		return m.re.Match(v)
	}
	return m.matchPlain(v)
}

// matchPlain is match for every kind but regex; v does not escape.
func (m *stringMatcher) matchPlain(v []byte) bool {
	switch m.kind {
	case matchExact:
		return len(v) == len(m.pattern) && m.eq(v, m.pattern)
	case matchPrefix:
		return len(v) >= len(m.pattern) && m.eq(v[:len(m.pattern)], m.pattern)
	case matchSuffix:
		return len(v) >= len(m.pattern) && m.eq(v[len(v)-len(m.pattern):], m.pattern)
	case matchContains:
		for i := 0; i+len(m.pattern) <= len(v); i++ {
			if m.eq(v[i:i+len(m.pattern)], m.pattern) {
				return true
			}
		}
		return false
	}
	return false
}

// eq compares b and s of equal length.
func (m *stringMatcher) eq(b []byte, s string) bool {
	if !m.ignoreCase {
		return string(b) == s
	}
	return equalFold(b, s)
}

// equalFold compares b with s, which is lower case, folding ASCII case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		if lower(b[i]) != s[i] {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}

// compileRegex compiles an RE2 pattern (Envoy's safe_regex) for a full
// match, as Envoy matches safe_regex everywhere routing uses it.
func compileRegex(re string) (*regexp.Regexp, error) {
	return regexp.Compile(`^(?:` + re + `)$`)
}

// headerSource says where a header matcher finds its value.
type headerSource uint8

const (
	fromHeader headerSource = iota
	fromMethod
	fromAuthority
)

// headerMatcher is a compiled HeaderMatcher. Absent fields follow Envoy:
// a string, range or empty matcher fails on an absent field whatever
// invert says (unless missingAsEmpty); present_match compares presence.
type headerMatcher struct {
	name           string // lower case
	src            headerSource
	kind           headerMatchKind
	str            stringMatcher
	rangeLo        int64 // [rangeLo, rangeHi)
	rangeHi        int64
	present        bool
	invert         bool
	missingAsEmpty bool
}

type headerMatchKind uint8

const (
	headerAny     headerMatchKind = iota // no specifier: present with any value
	headerString                         // string_match or a deprecated *_match
	headerRange                          // range_match
	headerPresent                        // present_match
)

func (m *headerMatcher) match(r Request) bool {
	var v []byte
	ok := true
	switch m.src {
	case fromMethod:
		v = r.Method()
	case fromAuthority:
		v = r.Authority()
	default:
		v, ok = r.Header(m.name)
	}
	if !ok && !m.missingAsEmpty {
		if m.kind == headerPresent {
			return m.present == m.invert // absent: matches present_match false
		}
		return false
	}
	var matched bool
	switch m.kind {
	case headerAny:
		matched = true
	case headerString:
		matched = m.str.match(v)
	case headerRange:
		n, err := parseInt(v)
		matched = err == nil && m.rangeLo <= n && n < m.rangeHi
	case headerPresent:
		matched = m.present
	}
	return matched != m.invert
}

// parseInt parses a decimal int64 without allocating.
func parseInt(b []byte) (int64, error) {
	neg := len(b) > 0 && b[0] == '-'
	d := b
	if neg {
		d = b[1:]
	}
	if len(d) == 0 || len(d) > 18 {
		return 0, strconv.ErrSyntax
	}
	var n int64
	for _, c := range d {
		if c < '0' || c > '9' {
			return 0, strconv.ErrSyntax
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, nil
}

// queryMatcher is a compiled QueryParameterMatcher: the first parameter
// of that (percent-decoded) name decides, as Envoy.
type queryMatcher struct {
	name       string
	hasPresent bool
	present    bool
	str        *stringMatcher // nil: present with any value
}

func (m *queryMatcher) match(query []byte) bool {
	v, ok := queryParam(query, m.name)
	if !ok {
		return m.hasPresent && !m.present
	}
	if m.hasPresent {
		return m.present
	}
	if m.str == nil {
		return true
	}
	if !needsDecode(v) {
		return m.str.match(v)
	}
	if m.str.kind == matchRegex {
		return m.str.match(percentDecode(nil, v)) // allocates
	}
	var buf [256]byte
	return m.str.matchPlain(percentDecode(buf[:0], v))
}

// queryParam finds the raw value of the first parameter whose decoded name
// is name; a parameter without '=' has the empty value.
func queryParam(q []byte, name string) ([]byte, bool) {
	for len(q) > 0 {
		i := 0
		for i < len(q) && q[i] != '&' {
			i++
		}
		pair := q[:i]
		if i < len(q) {
			i++
		}
		q = q[i:]
		k, v := pair, pair[len(pair):]
		for j := range pair {
			if pair[j] == '=' {
				k, v = pair[:j], pair[j+1:]
				break
			}
		}
		if decodedEqual(k, name) {
			return v, true
		}
	}
	return nil, false
}

func needsDecode(b []byte) bool {
	for _, c := range b {
		if c == '%' {
			return true
		}
	}
	return false
}

// percentDecode appends b with %XX sequences decoded; a '%' not followed
// by two hex digits stays as it is. '+' is not a space: Envoy decodes
// query parameters for matching with plain percent-decoding.
func percentDecode(dst, b []byte) []byte {
	for i := 0; i < len(b); i++ {
		if b[i] == '%' && i+2 < len(b) {
			if h, ok := unhex(b[i+1], b[i+2]); ok {
				dst = append(dst, h)
				i += 2
				continue
			}
		}
		dst = append(dst, b[i])
	}
	return dst
}

// decodedEqual reports whether b percent-decodes to s.
func decodedEqual(b []byte, s string) bool {
	j := 0
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c == '%' && i+2 < len(b) {
			if h, ok := unhex(b[i+1], b[i+2]); ok {
				c = h
				i += 2
			}
		}
		if j >= len(s) || s[j] != c {
			return false
		}
		j++
	}
	return j == len(s)
}

func unhex(a, b byte) (byte, bool) {
	x, ok1 := hexVal(a)
	y, ok2 := hexVal(b)
	return x<<4 | y, ok1 && ok2
}

func hexVal(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// pathKind is a route's path specifier.
type pathKind uint8

const (
	pathPrefix pathKind = iota
	pathExact
	pathRegex
	pathSeparatedPrefix
)

// routeMatch is a compiled RouteMatch: every condition must hold.
type routeMatch struct {
	kind            pathKind
	path            string // lower case when caseInsensitive
	caseInsensitive bool
	re              *regexp.Regexp
	grpc            bool
	headers         []headerMatcher
	query           []queryMatcher
}

func (m *routeMatch) match(r Request, path []byte) bool {
	switch m.kind {
	case pathPrefix:
		if len(path) < len(m.path) || !m.eq(path[:len(m.path)]) {
			return false
		}
	case pathExact:
		if len(path) != len(m.path) || !m.eq(path) {
			return false
		}
	case pathSeparatedPrefix:
		if len(path) < len(m.path) || !m.eq(path[:len(m.path)]) ||
			(len(path) > len(m.path) && path[len(m.path)] != '/') {
			return false
		}
	case pathRegex:
		if !m.re.Match(path) {
			return false
		}
	}
	if m.grpc {
		ct, ok := r.Header("content-type")
		if !ok || len(ct) < len("application/grpc") || string(ct[:len("application/grpc")]) != "application/grpc" {
			return false
		}
	}
	for i := range m.headers {
		if !m.headers[i].match(r) {
			return false
		}
	}
	if len(m.query) > 0 {
		q := r.Query()
		for i := range m.query {
			if !m.query[i].match(q) {
				return false
			}
		}
	}
	return true
}

func (m *routeMatch) eq(b []byte) bool {
	if m.caseInsensitive {
		return equalFold(b, m.path)
	}
	return string(b) == m.path
}

// matchedLen is how much of path the path specifier matched, the part a
// prefix_rewrite replaces: all of it for exact and regex matches.
func (m *routeMatch) matchedLen(path []byte) int {
	switch m.kind {
	case pathPrefix, pathSeparatedPrefix:
		return min(len(m.path), len(path))
	}
	return len(path)
}
