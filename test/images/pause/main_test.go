package main

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain runs pause itself when a test starts this binary as the pause
// process, so that the tests exercise the real main.
func TestMain(m *testing.M) {
	if os.Getenv("PAUSE_TEST_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

func pauseCommand() *exec.Cmd {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "PAUSE_TEST_MAIN=1")
	return cmd
}

// waitExit waits for cmd and returns its exit code, failing after 5s.
func waitExit(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Logf("pause ended: %v", err)
			return exit.ExitCode() // -1 when a signal killed it
		}
		if err != nil {
			t.Fatalf("wait: %v", err)
		}
		return 0
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		t.Fatal("pause did not exit within 5s of the signal")
		return 0
	}
}

func TestExitsZeroOnSignal(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := pauseCommand()
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Not PID 1 here, pause warns once its signal handlers are set.
			line, err := bufio.NewReader(stderr).ReadString('\n')
			if !strings.Contains(line, "not PID 1") {
				t.Fatalf("stderr %q (%v), want the not-PID-1 warning", line, err)
			}
			start := time.Now()
			cmd.Process.Signal(sig)
			if code := waitExit(t, cmd); code != 0 {
				t.Fatalf("exit code %d after %v, want 0", code, sig)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("took %v to exit, want under 1s", d)
			}
		})
	}
}

// TestReapsOrphansAsPID1 starts pause as PID 1 of a new PID namespace and
// orphans processes inside it: the kernel reparents the orphan to pause,
// which must reap it when it exits instead of leaving a zombie.
func TestReapsOrphansAsPID1(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a new PID namespace")
	}
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		t.Skip("needs nsenter")
	}
	cmd := pauseCommand()
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	pid := cmd.Process.Pid

	// sh starts sleeps in the background and exits: their new parent is
	// the namespace's PID 1. They exit together, so their SIGCHLDs coalesce
	// and one signal must reap them all.
	const orphans = 5
	out, err := exec.Command(nsenter, "--target", strconv.Itoa(pid), "--pid", "--", "sh", "-c",
		"for i in 1 2 3 4 5; do sleep 1 >/dev/null 2>&1 & done; exit 0").CombinedOutput()
	if err != nil {
		t.Fatalf("nsenter: %v: %s", err, out)
	}
	// Wait to see the orphans under pause, then to see them gone.
	seen := false
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		kids := children(t, pid)
		if len(kids) == orphans {
			seen = true
		} else if seen && len(kids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("children of pause after 5s: %v (seen all %d orphans: %v); want them reaped", kids, orphans, seen)
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if code := waitExit(t, cmd); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0", code)
	}
}

// children returns "pid state" for each process whose parent is ppid.
func children(t *testing.T, ppid int) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
		s := string(stat)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) > 1 && fields[1] == strconv.Itoa(ppid) {
			kids = append(kids, e.Name()+" "+fields[0])
		}
	}
	return kids
}
