// Package e2e decides whether a test that needs an external real client
// (ffmpeg, Chromium) runs, skips or fails.
//
// With CALLCORE_E2E=require a missing tool fails the test, so CI cannot
// pass by skipping; otherwise a missing tool skips it.
package e2e

import (
	"os"
	"os/exec"
	"testing"
)

// Required reports whether CALLCORE_E2E=require is set.
func Required() bool { return os.Getenv("CALLCORE_E2E") == "require" }

// LookPath returns the path of the named tool. When the tool is missing it
// fails t under CALLCORE_E2E=require and skips t otherwise.
func LookPath(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if Required() {
			t.Fatalf("%s is required (CALLCORE_E2E=require) but missing: %v", name, err)
		}
		t.Skipf("%s not installed; set CALLCORE_E2E=require to fail instead", name)
	}
	return p
}
