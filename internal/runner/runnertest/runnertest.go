// Package runnertest provides what the tests of the runner (internal/runner and
// cmd/runner) share: the python they run, a dedicated uid for each program, and what
// /proc shows of that uid's processes.
package runnertest

import (
	"os"
	"os/exec"
	"sync/atomic"
	"testing"

	"github.com/coderun-dev/coderun/internal/procfs"
	"github.com/coderun-dev/coderun/internal/testneed"
)

// Python returns the interpreter the tests run: Debian's, which every uid can execute (a
// pyenv under /root is not), else python3 from PATH. Without one, it skips the test (or
// fails it: see testneed).
func Python(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat("/usr/bin/python3"); err == nil {
		return "/usr/bin/python3"
	}
	p, err := exec.LookPath("python3")
	if err != nil {
		testneed.Skip(t, "no python3 here")
	}
	return p
}

var uidSeq atomic.Int32

// uidsPerProcess is the size of each test process's range of uids: the ranges of
// processes with different pids are disjoint (pids are at most 2^22, so the uids stay
// below 2^32-1).
const uidsPerProcess = 512

// UID returns a uid that no other test uses, in this or another test process (their pids
// differ), and that has no live process; 0 when the tests do not run as root: the program
// then runs as the test's own user.
func UID(t testing.TB) int {
	t.Helper()
	if os.Geteuid() != 0 {
		return 0
	}
	base := 1_000_000_000 + os.Getpid()*uidsPerProcess
	for {
		n := int(uidSeq.Add(1))
		if n >= uidsPerProcess {
			t.Fatal("out of test uids")
		}
		if uid := base + n; len(LiveProcessesOf(uid)) == 0 {
			return uid
		}
	}
}

// LiveProcessesOf lists the processes whose real, effective or saved uid is uid and that
// are not zombies, each as "pid name (state)".
func LiveProcessesOf(uid int) []string { return describe(procfs.LiveOwnedBy(uid)) }

// ProcessesOf lists the processes whose real, effective or saved uid is uid, zombies too,
// each as "pid name (state)".
func ProcessesOf(uid int) []string { return describe(procfs.OwnedBy(uid)) }

func describe(ps []procfs.Process) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.String())
	}
	return out
}
