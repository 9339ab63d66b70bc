package testenv

import (
	"testing"
	"time"
)

// Eventually retries check, every poll, until it returns nil; when timeout
// passes first, it fails the test with what and check's last error.
func Eventually(t testing.TB, timeout, poll time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %s: %v", what, timeout, err)
		}
		time.Sleep(poll)
	}
}
