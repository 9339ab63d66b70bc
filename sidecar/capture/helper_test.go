package capture_test

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skeinmesh/skein/sidecar/capture"
)

// helperEnv selects a helper role when the test binary re-executes itself
// inside a network namespace (`ip netns exec NS capture.test`): a Go process
// cannot safely move its own threads between namespaces, but a process
// started inside one is wholly in it.
const helperEnv = "SKEIN_CAPTURE_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "listen":
		listen(os.Args[1], os.Args[2:])
	case "dial":
		dial(os.Args[1:])
	default:
		fmt.Fprintf(os.Stderr, "unknown helper role %q\n", os.Getenv(helperEnv))
		os.Exit(2)
	}
}

// listen listens on each address ("tcp4/0.0.0.0:15006", "tcp/:15001"),
// prints "ready", and answers every connection with one line naming the
// listener, and the original destination when the connection was redirected,
// then closes it: "app:8080", or "proxy:15001 orig=10.78.1.1:80". It runs
// until killed.
func listen(name string, addrs []string) {
	for _, a := range addrs {
		network, addr, _ := strings.Cut(a, "/")
		ln, err := net.Listen(network, addr)
		if err != nil {
			fmt.Println("listen:", err)
			os.Exit(1)
		}
		label := name + ":" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				fmt.Fprintln(c, label+redirectedFrom(c.(*net.TCPConn)))
				c.Close()
			}
		}()
	}
	fmt.Println("ready")
	select {}
}

// redirectedFrom returns " orig=ADDR:PORT" when c's original destination is
// not where it arrived, and "" when it was not redirected (or conntrack does
// not track it, as in a namespace without nat rules).
func redirectedFrom(c *net.TCPConn) string {
	orig, err := capture.OriginalDst(c)
	if errors.Is(err, syscall.ENOENT) {
		return ""
	}
	if err != nil {
		return " orig-error=" + err.Error()
	}
	local := c.LocalAddr().(*net.TCPAddr).AddrPort()
	if orig == netip.AddrPortFrom(local.Addr().Unmap(), local.Port()) {
		return ""
	}
	return " orig=" + orig.String()
}

// dial connects to args[0] and prints the line the listener answers, or
// "error: ...". Options after the address: uid=N and gid=N switch to that
// user and group before dialing (no supplementary groups); from=ADDR binds
// the local address.
func dial(args []string) {
	d := net.Dialer{Timeout: 3 * time.Second}
	uid, gid := -1, -1
	for _, opt := range args[1:] {
		k, v, _ := strings.Cut(opt, "=")
		n, _ := strconv.Atoi(v)
		switch k {
		case "uid":
			uid = n
		case "gid":
			gid = n
		case "from":
			d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(v)}
		}
	}
	if err := setIDs(uid, gid); err != nil {
		fmt.Println("error: switch user:", err)
		os.Exit(1)
	}
	c, err := d.Dial("tcp", args[0])
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		fmt.Println("error: read:", err)
		return
	}
	fmt.Print(line)
}

// setIDs switches every thread to gid and uid; -1 leaves one as it is.
func setIDs(uid, gid int) error {
	if uid < 0 && gid < 0 {
		return nil
	}
	if err := syscall.Setgroups(nil); err != nil {
		return err
	}
	if gid >= 0 {
		if err := syscall.Setgid(gid); err != nil {
			return err
		}
	}
	if uid >= 0 {
		return syscall.Setuid(uid)
	}
	return nil
}
