package http1

import (
	"bufio"
	"strconv"
)

// WriteRequestHead writes h to w: the request line with h's version, the
// header fields in order except Content-Length and Transfer-Encoding,
// then the framing fields that Body calls for and the Connection field
// that Close and Proto call for. It does not flush. Call StripHopByHop
// first when forwarding.
func WriteRequestHead(w *bufio.Writer, h *RequestHead) error {
	if h.Body.Kind == UntilClose {
		return ErrFraming
	}
	w.Write(h.method)
	w.WriteByte(' ')
	w.Write(h.target)
	w.WriteByte(' ')
	w.WriteString(h.Proto.String())
	w.Write(crlf)
	writeFields(w, &h.Header, true)
	writeFraming(w, h.Body)
	writeConnection(w, h.Proto, h.Close)
	_, err := w.Write(crlf)
	return err
}

// WriteResponseHead writes h to w: the status line with h's version,
// status and reason, the header fields in order except Transfer-Encoding
// and, unless Body is NoBody, Content-Length (a response to HEAD or a 304
// keeps the length it describes), then the framing fields that Body calls
// for and the Connection field that Close and Proto call for ("close"
// whenever Body is UntilClose; none on a 1xx). It does not flush.
func WriteResponseHead(w *bufio.Writer, h *ResponseHead) error {
	w.WriteString(h.Proto.String())
	w.WriteByte(' ')
	writeInt(w, int64(h.Status), 10)
	w.WriteByte(' ')
	w.Write(h.reason)
	w.Write(crlf)
	writeFields(w, &h.Header, h.Body.Kind != NoBody)
	writeFraming(w, h.Body)
	if h.Status >= 200 {
		writeConnection(w, h.Proto, h.Close || h.Body.Kind == UntilClose)
	}
	_, err := w.Write(crlf)
	return err
}

func writeFields(w *bufio.Writer, h *Header, skipLength bool) {
	for i := range h.fields {
		f := &h.fields[i]
		if equalFold(f.name, "Transfer-Encoding") || (skipLength && equalFold(f.name, "Content-Length")) {
			continue
		}
		w.Write(f.name)
		w.WriteString(": ")
		w.Write(f.value)
		w.Write(crlf)
	}
}

func writeFraming(w *bufio.Writer, f Framing) {
	switch f.Kind {
	case ContentLength:
		w.WriteString("Content-Length: ")
		writeInt(w, f.Length, 10)
		w.Write(crlf)
	case Chunked:
		w.WriteString("Transfer-Encoding: chunked\r\n")
	}
}

func writeConnection(w *bufio.Writer, proto Proto, close bool) {
	switch {
	case close && proto == HTTP11:
		w.WriteString("Connection: close\r\n")
	case !close && proto == HTTP10:
		w.WriteString("Connection: keep-alive\r\n")
	}
}

// writeInt appends n in base to w's buffer without allocating, flushing
// first in the rare case that the buffer has no room for it.
func writeInt(w *bufio.Writer, n int64, base int) {
	if w.Available() < 20 {
		w.Flush()
	}
	w.Write(strconv.AppendInt(w.AvailableBuffer(), n, base))
}
