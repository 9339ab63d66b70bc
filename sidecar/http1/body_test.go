package http1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestCopyBody(t *testing.T) {
	length := func(n int64) Framing { return Framing{Kind: ContentLength, Length: n} }
	chunked, untilClose := Framing{Kind: Chunked}, Framing{Kind: UntilClose}
	for _, tc := range []struct {
		name    string
		src     string // bytes on the source connection, body and whatever follows
		in, out Framing
		want    string // bytes written
		n       int64  // body bytes counted
		rest    string // what is left unread on the source
		err     error
	}{
		{name: "length", src: "hello, nextGET", in: length(11), out: length(11), want: "hello, next", n: 11, rest: "GET"},
		{name: "length to chunked", src: "hello", in: length(5), out: chunked, want: "5\r\nhello\r\n0\r\n\r\n", n: 5},
		{name: "length cut short", src: "hel", in: length(5), out: length(5), want: "hel", n: 3, err: io.ErrUnexpectedEOF},
		{name: "no body", src: "GET", in: Framing{}, out: Framing{}, rest: "GET"},
		{name: "no body to chunked", in: Framing{}, out: chunked, want: "0\r\n\r\n"},
		{name: "until close to chunked", src: "stream", in: untilClose, out: chunked, want: "6\r\nstream\r\n0\r\n\r\n", n: 6},
		{name: "until close to until close", src: "stream", in: untilClose, out: untilClose, want: "stream", n: 6},
		{
			name: "chunked with extensions and trailers",
			src:  "5;name=val\r\nhello\r\n7 ; a\r\n, world\r\n0\r\nX-Sum: 1\r\nX-Other: 2\r\n\r\nGET",
			in:   chunked, out: chunked,
			want: "5\r\nhello\r\n7\r\n, world\r\n0\r\nX-Sum: 1\r\nX-Other: 2\r\n\r\n", n: 12, rest: "GET",
		},
		{
			name: "chunked to a 1.0 peer drops trailers",
			src:  "5\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n",
			in:   chunked, out: untilClose, want: "hello", n: 5,
		},
		{name: "upper-case hex and leading zeros", src: "00A\r\n0123456789\r\n0\r\n\r\n", in: chunked, out: untilClose, want: "0123456789", n: 10},
		{name: "bare LF chunk lines", src: "3\nabc\n0\n\n", in: chunked, out: chunked, want: "3\r\nabc\r\n0\r\n\r\n", n: 3},
		{name: "chunk longer than its size", src: "3\r\nabcd\r\n0\r\n\r\n", in: chunked, out: chunked, err: ErrChunk},
		{name: "negative chunk size", src: "-3\r\nabc\r\n0\r\n\r\n", in: chunked, out: chunked, err: ErrChunk},
		{name: "0x chunk size", src: "0x3\r\nabc\r\n0\r\n\r\n", in: chunked, out: chunked, err: ErrChunk},
		{name: "empty chunk size", src: "\r\nabc\r\n0\r\n\r\n", in: chunked, out: chunked, err: ErrChunk},
		{name: "huge chunk size", src: "fffffffffffffffff\r\n", in: chunked, out: chunked, err: ErrChunk},
		{name: "control character in extension", src: "3;a\x00\r\nabc\r\n0\r\n\r\n", in: chunked, out: chunked, err: ErrChunk},
		{name: "space in chunk size", src: "3 3\r\nabc\r\n0\r\n\r\n", in: chunked, out: chunked, err: ErrChunk},
		{name: "missing last chunk", src: "3\r\nabc\r\n", in: chunked, out: chunked, err: io.ErrUnexpectedEOF},
		{name: "obs-fold in trailer", src: "0\r\nX-A: 1\r\n 2\r\n\r\n", in: chunked, out: chunked, err: ErrObsFold},
		{name: "space before colon in trailer", src: "0\r\nX-A : 1\r\n\r\n", in: chunked, out: chunked, err: ErrSpaceBeforeColon},
		{name: "too many trailers", src: "0\r\n" + strings.Repeat("X-A: 1\r\n", 101) + "\r\n", in: chunked, out: chunked, err: ErrTooManyHeaders},
		{name: "chunked to length", src: "0\r\n\r\n", in: chunked, out: length(0), err: ErrFraming},
		{name: "length to another length", src: "abc", in: length(3), out: length(4), err: ErrFraming},
		{name: "until close to length", src: "abc", in: untilClose, out: length(3), err: ErrFraming},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := bufio.NewReaderSize(strings.NewReader(tc.src), 16)
			var out bytes.Buffer
			dst := bufio.NewWriterSize(&out, 16)
			n, err := CopyBody(dst, src, tc.in, tc.out)
			if !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			if out.String() != tc.want || n != tc.n {
				t.Errorf("wrote %q (%d body bytes), want %q (%d)", out.String(), n, tc.want, tc.n)
			}
			rest, _ := io.ReadAll(src)
			if string(rest) != tc.rest {
				t.Errorf("left %q unread, want %q", rest, tc.rest)
			}
		})
	}
}

// A body piece reaches the peer before the rest of the body is sent: a
// slow stream must not wait for a full buffer.
func TestCopyBodyFlushesWhileWaiting(t *testing.T) {
	pr, pw := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := CopyBody(bufio.NewWriter(outW), bufio.NewReader(pr), Framing{Kind: Chunked}, Framing{Kind: Chunked})
		outW.CloseWithError(err)
		done <- err
	}()
	go pw.Write([]byte("4\r\ntick\r\n"))
	got := make([]byte, len("4\r\ntick\r\n"))
	if _, err := io.ReadFull(outR, got); err != nil || string(got) != "4\r\ntick\r\n" {
		t.Fatalf("first chunk: %q, %v", got, err)
	}
	go pw.Write([]byte("0\r\n\r\n"))
	rest, _ := io.ReadAll(outR)
	if string(rest) != "0\r\n\r\n" {
		t.Errorf("end: %q", rest)
	}
	if err := <-done; err != nil {
		t.Error(err)
	}
}
