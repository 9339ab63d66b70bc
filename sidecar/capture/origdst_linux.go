package capture

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"unsafe"
)

// soOriginalDst is SO_ORIGINAL_DST (linux/netfilter_ipv4.h) on SOL_IP, and
// IP6T_SO_ORIGINAL_DST (linux/netfilter_ipv6/ip6_tables.h) on SOL_IPV6.
const soOriginalDst = 80

// OriginalDst returns where a connection that the rules redirected to the
// proxy was going: the destination before REDIRECT, from conntrack. It works
// on IPv4, IPv6 and dual-stack listeners. A connection that was not
// redirected returns its own local address, or an error when conntrack does
// not track it.
func OriginalDst(conn *net.TCPConn) (netip.AddrPort, error) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("read original destination: %w", err)
	}
	level := syscall.SOL_IPV6
	if local, ok := conn.LocalAddr().(*net.TCPAddr); ok && local.IP.To4() != nil {
		level = syscall.SOL_IP // also on a dual-stack socket: the kernel answers for IPv4
	}
	var sa [syscall.SizeofSockaddrInet6]byte
	size := uint32(len(sa))
	var errno syscall.Errno
	err = raw.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall6(syscall.SYS_GETSOCKOPT, fd, uintptr(level), soOriginalDst,
			uintptr(unsafe.Pointer(&sa[0])), uintptr(unsafe.Pointer(&size)), 0)
	})
	if err == nil && errno != 0 {
		err = errno
	}
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("read original destination: %w", err)
	}
	port := binary.BigEndian.Uint16(sa[2:4])
	switch family := binary.NativeEndian.Uint16(sa[0:2]); family {
	case syscall.AF_INET:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(sa[4:8])), port), nil
	case syscall.AF_INET6:
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(sa[8:24])), port), nil
	default:
		return netip.AddrPort{}, fmt.Errorf("read original destination: unknown address family %d", family)
	}
}
