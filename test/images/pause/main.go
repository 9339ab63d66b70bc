// Command pause holds a pod's namespaces open, like Kubernetes' pause: it
// blocks until SIGINT or SIGTERM and exits 0, and, as PID 1 of a shared
// PID namespace, reaps the zombies reparented to it.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	if os.Getpid() != 1 {
		os.Stderr.WriteString("pause: warning: not PID 1, so orphans are not reaped here\n")
	}
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		reap()
	}
}

// reap waits for every child that has exited; signals coalesce, so one
// SIGCHLD can stand for many.
func reap() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
	}
}
