package http1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// lineReader copies a head's lines from r into a header's arena, counting
// them against the head's byte budget.
type lineReader struct {
	r    *bufio.Reader
	h    *Header
	left int  // bytes the head may still use
	read bool // whether any byte of the head has been read
}

// next returns the next line without its line ending (CRLF, or a bare LF,
// which RFC 9112 §2.2 lets a recipient accept). A line longer than the
// reader's buffer is assembled in the arena. io.EOF means the connection
// ended cleanly before the head began.
func (lr *lineReader) next() ([]byte, error) {
	start := len(lr.h.arena)
	for {
		chunk, err := lr.r.ReadSlice('\n')
		if len(chunk) > lr.left {
			return nil, ErrHeadTooLarge
		}
		lr.left -= len(chunk)
		if len(chunk) > 0 {
			lr.read = true
		}
		lr.h.arena = append(lr.h.arena, chunk...)
		switch {
		case err == nil:
			line := lr.h.arena[start : len(lr.h.arena)-1]
			if n := len(line); n > 0 && line[n-1] == '\r' {
				line = line[:n-1]
			}
			return line[:len(line):len(line)], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF && !lr.read:
			return nil, io.EOF
		case err == io.EOF:
			return nil, io.ErrUnexpectedEOF
		default:
			return nil, err
		}
	}
}

// fields reads header fields up to the empty line that ends them.
func (lr *lineReader) fields(max int) error {
	for {
		line, err := lr.next()
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			return err
		}
		if len(line) == 0 {
			return nil
		}
		if len(lr.h.fields) == max {
			return ErrTooManyHeaders
		}
		name, value, err := parseField(line)
		if err != nil {
			return err
		}
		lr.h.addParsed(name, value)
	}
}

// parseField splits a field line into name and value (RFC 9112 §5). It
// rejects what parsers disagree on: obsolete line folding (a line starting
// with whitespace), whitespace between the name and the colon, and control
// characters, CR and NUL included, anywhere in the value.
func parseField(line []byte) (name, value []byte, err error) {
	if line[0] == ' ' || line[0] == '\t' {
		return nil, nil, ErrObsFold
	}
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return nil, nil, ErrHeaderName
	}
	name = line[:colon:colon]
	for _, c := range name {
		if !isTokenChar[c] {
			if c == ' ' || c == '\t' {
				return nil, nil, ErrSpaceBeforeColon
			}
			return nil, nil, ErrHeaderName
		}
	}
	value = trimOWS(line[colon+1:])
	for _, c := range value {
		if !isValueChar[c] {
			return nil, nil, ErrHeaderValue
		}
	}
	return name, value, nil
}

// parseVersion reads "HTTP/1.1" or "HTTP/1.0"; any other HTTP-version is
// ErrVersion, anything else is bad.
func parseVersion(b []byte, bad error) (Proto, error) {
	switch string(b) {
	case "HTTP/1.1":
		return HTTP11, nil
	case "HTTP/1.0":
		return HTTP10, nil
	}
	if len(b) == 8 && string(b[:5]) == "HTTP/" && isDigit(b[5]) && b[6] == '.' && isDigit(b[7]) {
		return 0, ErrVersion
	}
	return 0, bad
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
