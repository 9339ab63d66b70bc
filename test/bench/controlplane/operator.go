package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/skeinmesh/skein/internal/testenv"
)

// buildOperator builds cmd/manager into bin.
func buildOperator(ctx context.Context, bin string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/manager")
	cmd.Dir = testenv.RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/manager: %w\n%s", err, out)
	}
	return nil
}

// operator is cmd/manager running as a process of its own.
type operator struct {
	cmd     *exec.Cmd
	logPath string
	log     *os.File
	// exited is closed when the process ended; err is then its Wait error.
	exited chan struct{}
	err    error
}

// startOperator runs bin against the API server of kubeconfig, serving xDS
// on xdsAddr with TokenReview authentication; its output goes to logPath.
func startOperator(bin, kubeconfig, xdsAddr, logPath string, extra []string) (*operator, error) {
	log, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	args := append([]string{
		"--kubeconfig=" + kubeconfig,
		"--xds-bind-address=" + xdsAddr,
		"--xds-authentication=tokenreview",
		"--metrics-bind-address=0",
		"--health-probe-bind-address=127.0.0.1:0",
		"--config-namespace=" + configNamespace,
	}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	// Should the benchmark die without cleaning up, the operator dies with
	// it; a Ctrl-C in the terminal reaches only the benchmark, which then
	// stops the operator itself.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = log.Close()
		return nil, fmt.Errorf("start the operator: %w", err)
	}
	o := &operator{cmd: cmd, logPath: logPath, log: log, exited: make(chan struct{})}
	go func() {
		o.err = cmd.Wait()
		close(o.exited)
	}()
	return o, nil
}

// waitServing waits until the operator accepts connections on its xDS address.
func (o *operator) waitServing(ctx context.Context, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
			return nil
		}
		select {
		case <-o.exited:
			return fmt.Errorf("the operator exited before serving xDS: %v", o.err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the operator does not serve xDS on %s after %s", addr, timeout)
		}
	}
}

// stop ends the operator: SIGTERM, then SIGKILL after 15s.
func (o *operator) stop() error {
	defer o.log.Close()
	select {
	case <-o.exited:
		return fmt.Errorf("the operator had exited: %v", o.err)
	default:
	}
	_ = o.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-o.exited:
		var ee *exec.ExitError
		if o.err != nil && !errors.As(o.err, &ee) {
			return o.err
		}
		return nil
	case <-time.After(15 * time.Second):
		_ = o.cmd.Process.Kill()
		<-o.exited
		return fmt.Errorf("the operator did not stop within 15s of SIGTERM; killed")
	}
}

// running reports whether the operator process is still alive.
func (o *operator) running() bool {
	select {
	case <-o.exited:
		return false
	default:
		return true
	}
}

// memory is a process's resident memory now and at its peak.
type memory struct {
	rss, hwm uint64 // bytes
}

func (m memory) String() string {
	return fmt.Sprintf("VmRSS %s, VmHWM %s", mb(m.rss), mb(m.hwm))
}

func mb(b uint64) string { return fmt.Sprintf("%.0f MB", float64(b)/(1<<20)) }

// procMemory reads VmRSS and VmHWM of pid from /proc.
func procMemory(pid int) (memory, error) {
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return memory{}, err
	}
	defer f.Close()
	var m memory
	s := bufio.NewScanner(f)
	for s.Scan() {
		name, value, ok := strings.Cut(s.Text(), ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			return memory{}, fmt.Errorf("parse %s of pid %d: %w", name, pid, err)
		}
		if name == "VmRSS" {
			m.rss = kb << 10
		} else {
			m.hwm = kb << 10
		}
	}
	return m, s.Err()
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's CPU times (100 on Linux).
const clockTicks = 100

// procCPU returns the CPU time (user and system) pid used so far.
func procCPU(pid int) time.Duration {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	// After "pid (comm) ", utime and stime are the 12th and 13th fields.
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	if len(fields) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / clockTicks
}

// childMemory returns the memory of this process's children whose command
// is name (envtest's kube-apiserver and etcd).
func childMemory(name string) (memory, bool) {
	entries, _ := os.ReadDir("/proc")
	self := strconv.Itoa(os.Getpid())
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// stat is "pid (comm) state ppid ..."; comm may hold spaces.
		lp, rp := strings.IndexByte(string(stat), '('), strings.LastIndexByte(string(stat), ')')
		if lp < 0 || rp < lp {
			continue
		}
		fields := strings.Fields(string(stat[rp+1:]))
		if string(stat[lp+1:rp]) != name || len(fields) < 2 || fields[1] != self {
			continue
		}
		if m, err := procMemory(pid); err == nil {
			return m, true
		}
	}
	return memory{}, false
}

// logErrors returns how many error lines the operator's log has, split
// at byte offset cut (where the benchmark asked it to stop), and the last
// few error lines before cut.
func logErrors(path string, cut int64, keep int) (before, after int, last []string) {
	b, _ := os.ReadFile(path)
	var off int64
	for _, l := range strings.Split(string(b), "\n") {
		lineStart := off
		off += int64(len(l)) + 1
		if !strings.Contains(l, `"level":"error"`) && !strings.Contains(l, "\tERROR\t") {
			continue
		}
		if lineStart >= cut {
			after++
			continue
		}
		before++
		last = append(last, l)
		if len(last) > keep {
			last = last[1:]
		}
	}
	return before, after, last
}

// logSize is the size of the operator's log now.
func (o *operator) logSize() int64 {
	fi, err := os.Stat(o.logPath)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// logTail returns the last n lines of the operator's log.
func logTail(path string, n int) []string {
	lines := readLines(path)
	return lines[max(0, len(lines)-n):]
}

func readLines(path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	return strings.Split(strings.TrimRight(string(b), "\n"), "\n")
}

// freeAddr returns a loopback address with a port free right now.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
