package runner

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/coderun-dev/coderun/internal/procfs"
)

// The runner re-executes its own binary for two small jobs that need a fresh process:
// the exec shim, which applies the limits and then becomes the program, and (as the program's
// dedicated uid) the kill helper. The first argument names the job.
const (
	execHelperArg = "__coderun_exec"
	killHelperArg = "__coderun_killuid"
)

// statusFD is the shim's fd for reporting a failure to start the program. It is close-on-
// exec in the shim, so the runner reads EOF from it when the program has been executed.
const statusFD = 3

// RunHelperIfRequested runs the helper that args (os.Args) ask for and then exits the
// process; it returns at once when args ask for none. The runner's main must call it
// first, before it does anything else.
func RunHelperIfRequested(args []string) {
	if len(args) < 2 {
		return
	}
	// unix.Exit, not os.Exit: the helpers have nothing to flush, and it skips the race
	// detector's one-second pause at exit in race-enabled test binaries.
	switch args[1] {
	case execHelperArg:
		unix.Exit(execShim(args[2:]))
	case killHelperArg:
		unix.Exit(killOwnUID())
	}
}

// shimArgs returns the arguments of the exec shim (after the executable): the limits,
// then the path to execute and its argv.
func shimArgs(c Config, path string, argv []string) []string {
	cpuSoft, cpuHard := c.cpuLimitSeconds()
	args := make([]string, 0, 7+len(argv))
	args = append(args,
		execHelperArg,
		strconv.Itoa(c.MaxOpenFiles),
		strconv.Itoa(c.MaxProcesses),
		strconv.FormatInt(c.MaxFileSize, 10),
		strconv.FormatUint(cpuSoft, 10),
		strconv.FormatUint(cpuHard, 10),
		path,
	)
	return append(args, argv...)
}

// execShim runs in the child, before the program: it applies the rlimits, volunteers for the
// OOM killer, installs the seccomp filter (seccomp.go), gives every signal its default
// and executes the program with the environment it was given. On failure it writes
// one line to statusFD and returns the exit code.
func execShim(args []string) int {
	// The filter and the signal mask are per thread until exec: stay on this one.
	runtime.LockOSThread()
	// Whatever happens, the program must not inherit the status pipe, nor any fd but 0, 1 and
	// 2 that the runner itself may have inherited.
	_, _ = unix.FcntlInt(statusFD, unix.F_SETFD, unix.FD_CLOEXEC)
	closeOnExecFrom(statusFD + 1)
	fail := func(format string, a ...any) int {
		_, _ = unix.Write(statusFD, []byte(fmt.Sprintf(format, a...)))
		return 127
	}
	if len(args) < 7 {
		return fail("internal error: the exec shim got %d arguments", len(args))
	}
	var n [5]uint64
	for i := range n {
		v, err := strconv.ParseUint(args[i], 10, 64)
		if err != nil {
			return fail("internal error: bad limit %q", args[i])
		}
		n[i] = v
	}
	nofile, nproc, fsize, cpuSoft, cpuHard := n[0], n[1], n[2], n[3], n[4]
	path, argv := args[5], args[6:]
	if !strings.Contains(path, "/") {
		// Looked up here, not in the runner: this process has the program's environment
		// (a Runtime's env may set PATH), its uid and its working directory.
		found, err := exec.LookPath(path)
		if err != nil {
			return fail("%q was not found in the program's PATH %s", path, os.Getenv("PATH"))
		}
		path = found
	}

	// Make the program, not the runner, the OOM killer's choice. Raising the score needs
	// no privilege; a kernel without the file is no reason to fail.
	if f, err := os.OpenFile("/proc/self/oom_score_adj", os.O_WRONLY, 0); err == nil {
		_, _ = f.WriteString("1000")
		_ = f.Close()
	}

	// RLIMIT_NPROC last: it counts the threads of the uid, and this Go process may still
	// start some before it executes the program.
	limits := []struct {
		name       string
		resource   int
		soft, hard uint64
	}{
		{"RLIMIT_CORE", unix.RLIMIT_CORE, 0, 0},
		{"RLIMIT_NOFILE", unix.RLIMIT_NOFILE, nofile, nofile},
		{"RLIMIT_FSIZE", unix.RLIMIT_FSIZE, fsize, fsize},
		{"RLIMIT_CPU", unix.RLIMIT_CPU, cpuSoft, cpuHard},
		{"RLIMIT_NPROC", unix.RLIMIT_NPROC, nproc, nproc},
	}
	for _, l := range limits {
		if err := setLimit(l.resource, l.soft, l.hard); err != nil {
			return fail("setting %s: %v", l.name, err)
		}
	}
	if err := installSeccompFilter(); err != nil {
		return fail("%v", err)
	}
	// Last: from here on a signal gets its default action, as it will in the program.
	if err := resetSignals(); err != nil {
		return fail("%v", err)
	}
	err := unix.Exec(path, argv, os.Environ())
	return fail("exec %s: %v", path, err)
}

// closeOnExecFrom marks every fd from first on close-on-exec.
func closeOnExecFrom(first int) {
	if unix.CloseRange(uint(first), ^uint(0), unix.CLOSE_RANGE_CLOEXEC) == nil {
		return
	}
	// Kernels before 5.11 lack the flag.
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range entries {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd >= first {
			_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC)
		}
	}
}

// setLimit sets a resource limit, never above the hard limit in force (an unprivileged
// process cannot raise it, and a lower one is already stricter than asked).
func setLimit(resource int, soft, hard uint64) error {
	var cur unix.Rlimit
	if err := unix.Getrlimit(resource, &cur); err == nil {
		hard = min(hard, cur.Max)
	}
	return unix.Setrlimit(resource, &unix.Rlimit{Cur: min(soft, hard), Max: hard})
}

// killOwnUID runs as the program's dedicated uid and kills every process of that uid:
// kill(-1) signals exactly the processes this uid may signal. It repeats until none is
// left alive, for at most a second. Exit code 0 means none is left.
func killOwnUID() int {
	uid := unix.Getuid()
	if uid == 0 || unix.Geteuid() == 0 {
		// kill(-1) as root would kill every process on the machine.
		fmt.Fprintln(os.Stderr, "coderun kill helper: refusing to run as root")
		return 3
	}
	self := os.Getpid()
	deadline := time.Now().Add(time.Second)
	for {
		_ = unix.Kill(-1, unix.SIGKILL)
		left := slices.DeleteFunc(procfs.LiveOwnedBy(uid), func(p procfs.Process) bool { return p.PID == self })
		if len(left) == 0 {
			return 0
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(os.Stderr, "coderun kill helper: processes of uid %d still alive: %v\n", uid, left)
			return 1
		}
		time.Sleep(5 * time.Millisecond)
	}
}
