package upstream

import (
	"syscall"
	"unsafe"
)

// alive reports whether an idle connection is still open and silent: a
// non-blocking MSG_PEEK of one byte must find nothing to read (EAGAIN).
// End of stream (the server closed it), an error, or unsolicited bytes
// mean the connection cannot carry another request.
func (cn *Conn1) alive() bool {
	if cn.rc == nil {
		return true
	}
	cn.peekN, cn.peekErr = 0, 0
	if err := cn.rc.Read(cn.peekFn); err != nil {
		return false
	}
	return cn.peekErr == syscall.EAGAIN
}

// peek is the rc.Read callback; a raw syscall, so that it allocates nothing.
func (cn *Conn1) peek(fd uintptr) bool {
	cn.peekN, _, cn.peekErr = syscall.Syscall6(syscall.SYS_RECVFROM, fd,
		uintptr(unsafe.Pointer(&cn.peekBuf[0])), 1, syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	return true
}
