package http1

import (
	"bufio"
	"io"
	"sync"
)

// BufferSize is the size of the buffers NewReader and NewWriter hand out.
// A reader's buffer also bounds one chunk-size line and one trailer field.
const BufferSize = 16 << 10

var (
	readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, BufferSize) }}
	writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, BufferSize) }}
)

// NewReader returns a pooled reader of BufferSize bytes reading from r.
// Give it back with PutReader when the connection is done.
func NewReader(r io.Reader) *bufio.Reader {
	br := readers.Get().(*bufio.Reader)
	br.Reset(r)
	return br
}

// PutReader returns br to the pool; br must not be used afterwards.
func PutReader(br *bufio.Reader) {
	if br.Size() != BufferSize {
		return
	}
	br.Reset(nil)
	readers.Put(br)
}

// NewWriter returns a pooled writer of BufferSize bytes writing to w.
// Give it back with PutWriter when the connection is done.
func NewWriter(w io.Writer) *bufio.Writer {
	bw := writers.Get().(*bufio.Writer)
	bw.Reset(w)
	return bw
}

// PutWriter returns bw to the pool, unflushed bytes discarded; bw must
// not be used afterwards.
func PutWriter(bw *bufio.Writer) {
	if bw.Size() != BufferSize {
		return
	}
	bw.Reset(nil)
	writers.Put(bw)
}
