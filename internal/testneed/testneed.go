// Package testneed is coderun's one policy for tests that need something the machine may
// lack (root, python3, a PID namespace, Helm, a database, a cluster): they skip with the
// reason on a developer's machine, and fail when CODERUN_TEST_REQUIRE_ALL=1, which
// `make test` and CI set, so that a missing tool can never turn a CI run green by
// skipping what it was meant to check.
package testneed

import (
	"fmt"
	"os"
	"testing"
)

// RequireAllEnv names the environment variable that turns skips into failures.
const RequireAllEnv = "CODERUN_TEST_REQUIRE_ALL"

// Skip ends the test for lack of what the message names: a skip, or a failure when
// RequireAllEnv is "1".
func Skip(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv(RequireAllEnv) == "1" {
		t.Fatalf("%s (%s=1: a missing prerequisite fails instead of skipping)", msg, RequireAllEnv)
	}
	t.Skip(msg)
}

// Root skips (or fails, see Skip) a test that needs root.
func Root(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Skip(t, "needs root: %s", why)
	}
}
