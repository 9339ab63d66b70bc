package http1

import (
	"bufio"
	"errors"
	"io"
)

// CopyBody copies a message body from src, framed as in, to dst, framed as
// out, and flushes dst. It returns the number of body bytes (framing not
// counted). These conversions are possible:
//
//   - NoBody to NoBody, to ContentLength 0, or to an empty Chunked body;
//   - ContentLength to the same ContentLength, to Chunked or to UntilClose;
//   - Chunked to Chunked (trailer fields copied) or to UntilClose (trailer
//     fields dropped);
//   - UntilClose to Chunked or to UntilClose.
//
// Others are ErrFraming. A chunked body keeps its chunk sizes and loses
// its chunk extensions (a body framed otherwise is sent chunked as it is
// read); its chunk lines and trailer fields are checked as strictly
// as a head: malformed ones are ErrChunk, ErrHeadTooLarge,
// ErrTooManyHeaders or a field error. A body that ends early is
// io.ErrUnexpectedEOF. dst is flushed whenever src has nothing buffered,
// so a slow stream reaches the peer as it comes; CopyBody allocates
// nothing.
func CopyBody(dst *bufio.Writer, src *bufio.Reader, in, out Framing) (int64, error) {
	if !convertible(in, out) {
		return 0, ErrFraming
	}
	var n int64
	var err error
	switch in.Kind {
	case ContentLength:
		n, err = copyData(dst, src, in.Length, out.Kind == Chunked)
	case UntilClose:
		n, err = copyData(dst, src, -1, out.Kind == Chunked)
	case Chunked:
		n, err = copyChunked(dst, src, out.Kind == Chunked)
	}
	if err != nil {
		return n, err
	}
	if out.Kind == Chunked && in.Kind != Chunked {
		dst.WriteString("0\r\n\r\n")
	}
	return n, dst.Flush()
}

func convertible(in, out Framing) bool {
	switch in.Kind {
	case NoBody:
		return out.Kind == NoBody || out.Kind == Chunked || (out.Kind == ContentLength && out.Length == 0)
	case ContentLength:
		return out.Kind == Chunked || out.Kind == UntilClose || (out.Kind == ContentLength && out.Length == in.Length) ||
			(out.Kind == NoBody && in.Length == 0)
	case Chunked, UntilClose:
		return out.Kind == Chunked || out.Kind == UntilClose
	}
	return false
}

// copyData copies n bytes, or until EOF if n < 0, each piece as one chunk
// if chunked.
func copyData(dst *bufio.Writer, src *bufio.Reader, n int64, chunked bool) (int64, error) {
	var done int64
	for n < 0 || done < n {
		if src.Buffered() == 0 {
			if err := dst.Flush(); err != nil {
				return done, err
			}
			if _, err := src.Peek(1); err != nil {
				if err == io.EOF && n < 0 {
					return done, nil
				}
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return done, err
			}
		}
		k := src.Buffered()
		if n >= 0 && int64(k) > n-done {
			k = int(n - done)
		}
		p, _ := src.Peek(k)
		if chunked {
			writeInt(dst, int64(k), 16)
			dst.Write(crlf)
		}
		if _, err := dst.Write(p); err != nil {
			return done, err
		}
		if chunked {
			dst.Write(crlf)
		}
		src.Discard(k)
		done += int64(k)
	}
	return done, nil
}

// copyChunked decodes a chunked body (RFC 9112 §7.1) and writes its data
// in the same chunks if chunked, raw otherwise.
func copyChunked(dst *bufio.Writer, src *bufio.Reader, chunked bool) (int64, error) {
	var done int64
	for {
		size, err := readChunkSize(src, dst)
		if err != nil {
			return done, err
		}
		if size == 0 {
			break
		}
		if chunked { // the chunk as it came, extensions dropped
			writeInt(dst, size, 16)
			dst.Write(crlf)
		}
		n, err := copyData(dst, src, size, false)
		done += n
		if err != nil {
			return done, err
		}
		if chunked {
			dst.Write(crlf)
		}
		end, err := src.ReadSlice('\n')
		if err != nil {
			return done, chunkErr(err)
		}
		if !isLineEnd(end) {
			return done, ErrChunk
		}
	}
	if chunked {
		dst.WriteString("0\r\n")
	}
	return done, copyTrailers(dst, src, chunked)
}

// readChunkSize reads chunk-size [ chunk-ext ] CRLF, flushing dst first if
// it would wait for the peer.
func readChunkSize(src *bufio.Reader, dst *bufio.Writer) (int64, error) {
	if src.Buffered() == 0 {
		if err := dst.Flush(); err != nil {
			return 0, err
		}
	}
	line, err := src.ReadSlice('\n')
	if err != nil {
		return 0, chunkErr(err)
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	var size int64
	i := 0
	for ; i < len(line); i++ {
		d := unhex(line[i])
		if d < 0 {
			break
		}
		if i == 15 {
			return 0, ErrChunk // larger than any body we would carry
		}
		size = size<<4 | int64(d)
	}
	if i == 0 {
		return 0, ErrChunk
	}
	// chunk-ext: *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] ), ignored
	// but free of control characters.
	ext := trimOWS(line[i:])
	if len(ext) > 0 && ext[0] != ';' {
		return 0, ErrChunk
	}
	for _, c := range ext {
		if !isValueChar[c] {
			return 0, ErrChunk
		}
	}
	return size, nil
}

// copyTrailers reads the trailer section up to its empty line, checking
// each field as a header field, and writes it with the final CRLF if
// chunked; otherwise it drops it.
func copyTrailers(dst *bufio.Writer, src *bufio.Reader, chunked bool) error {
	left, count := defaultMaxHeadBytes, 0
	for {
		line, err := src.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return ErrHeadTooLarge
		}
		if err != nil {
			return chunkErr(err)
		}
		if left -= len(line); left < 0 {
			return ErrHeadTooLarge
		}
		line = line[:len(line)-1]
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if len(line) == 0 {
			break
		}
		if count++; count > defaultMaxHeaders {
			return ErrTooManyHeaders
		}
		name, value, err := parseField(line)
		if err != nil {
			return err
		}
		if chunked {
			dst.Write(name)
			dst.WriteString(": ")
			dst.Write(value)
			dst.Write(crlf)
		}
	}
	if chunked {
		dst.Write(crlf)
	}
	return nil
}

func chunkErr(err error) error {
	switch {
	case err == io.EOF:
		return io.ErrUnexpectedEOF
	case errors.Is(err, bufio.ErrBufferFull):
		return ErrChunk
	}
	return err
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}
