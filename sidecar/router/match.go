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
// of that name decides, as Envoy. Names and values are compared raw, not
// percent-decoded, as Envoy's route matching does (parseQueryString).
type queryMatcher struct {
	name       string
	hasPresent bool
	present    bool
	str        *stringMatcher // nil: present with any value
}

func (m *queryMatcher) match(query []byte) bool {
	v, ok := queryParam(query, m.name)
	if m.hasPresent {
		return ok == m.present
	}
	if !ok {
		return false
	}
	return m.str == nil || m.str.match(v)
}

// queryParam finds the raw value of the first parameter named name; a
// parameter without '=' has the empty value.
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
		if string(k) == name {
			return v, true
		}
	}
	return nil, false
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
	if m.grpc && !isGRPC(r) {
		return false
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

// isGRPC reports whether the content type is gRPC's: "application/grpc"
// or "application/grpc+<subtype>" (not gRPC-Web), as Envoy's grpc match.
func isGRPC(r Request) bool {
	ct, ok := r.Header("content-type")
	const g = "application/grpc"
	return ok && len(ct) >= len(g) && string(ct[:len(g)]) == g && (len(ct) == len(g) || ct[len(g)] == '+')
}
