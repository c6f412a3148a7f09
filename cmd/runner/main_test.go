package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coderun-dev/coderun/internal/procfs"
	"github.com/coderun-dev/coderun/internal/report"
	"github.com/coderun-dev/coderun/internal/runner"
	"github.com/coderun-dev/coderun/internal/runner/runnertest"
	"github.com/coderun-dev/coderun/internal/testneed"
)

// runnerBin is the runner binary that TestMain builds, as it ships (static, no cgo).
var runnerBin string

func TestMain(m *testing.M) {
	runner.RunHelperIfRequested(os.Args)
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	// A runner built elsewhere (e.g. the image's) can be tested instead.
	if bin := os.Getenv("CODERUN_TEST_RUNNER_BIN"); bin != "" {
		runnerBin = bin
		return m.Run()
	}
	// A directory every uid can traverse, so that the program's uid can execute the
	// binary too.
	dir, err := os.MkdirTemp("", "coderun-runner-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	runnerBin = filepath.Join(dir, "runner")
	build := exec.Command("go", "build", "-o", runnerBin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "building the runner: %v\n", err)
		return 1
	}
	if err := os.Chmod(runnerBin, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// sandbox is one test's program: its source, a workdir its uid can write, and the uid.
type sandbox struct {
	t       *testing.T
	dir     string
	source  string
	workdir string
	uid     int
}

func newSandbox(t *testing.T, program string) *sandbox {
	t.Helper()
	s := &sandbox{t: t, dir: t.TempDir(), uid: runnertest.UID(t)}
	for _, d := range []string{s.dir, filepath.Dir(s.dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s.source = filepath.Join(s.dir, "main.py")
	if err := os.WriteFile(s.source, []byte(program), 0o644); err != nil {
		t.Fatal(err)
	}
	s.workdir = filepath.Join(s.dir, "work")
	if err := os.Mkdir(s.workdir, 0o700); err != nil {
		t.Fatal(err)
	}
	if s.uid != 0 {
		if err := os.Chown(s.workdir, s.uid, s.uid); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// args returns the runner's flags for this sandbox (--uid when it has a uid), then extra.
func (s *sandbox) args(extra ...string) []string {
	if s.uid != 0 {
		extra = append([]string{"--uid", strconv.Itoa(s.uid)}, extra...)
	}
	return s.argsWithoutUID(extra...)
}

// argsWithoutUID returns the runner's flags for this sandbox but --uid, then extra: for a
// runner that runs as the sandbox's uid itself, as in a pod.
func (s *sandbox) argsWithoutUID(extra ...string) []string {
	return append([]string{"--source", s.source, "--python", runnertest.Python(s.t), "--workdir", s.workdir}, extra...)
}

// result is one invocation of the runner binary.
type result struct {
	report   report.Report
	stdout   string
	stderr   string
	exitCode int
	elapsed  time.Duration
}

// runRunner runs the runner binary with args (through wrapper, if any) and parses the
// report on its stdout.
func runRunner(t *testing.T, wrapper []string, args ...string) result {
	t.Helper()
	argv := append(append(append([]string(nil), wrapper...), runnerBin), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	return exited(t, err, result{stdout: stdout.String(), stderr: stderr.String(), elapsed: time.Since(start)})
}

// exited completes res with the exit code of the runner that ended with err and the report
// on its stdout, which must be the whole of stdout: one line.
func exited(t *testing.T, err error, res result) result {
	t.Helper()
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		res.exitCode = exitErr.ExitCode()
	case err != nil:
		t.Fatalf("running the runner: %v", err)
	}
	if !strings.HasSuffix(res.stdout, "\n") || strings.Count(res.stdout, "\n") != 1 {
		t.Fatalf("stdout is not one line: %q (stderr %q)", res.stdout, res.stderr)
	}
	if res.report, err = report.Parse([]byte(res.stdout)); err != nil {
		t.Fatalf("parsing the report: %v\nstdout: %s\nstderr: %s", err, res.stdout, res.stderr)
	}
	return res
}

func (res result) check(t *testing.T, reason report.Reason, exitCode int) {
	t.Helper()
	if res.exitCode != 0 {
		t.Errorf("the runner exited with %d (stderr %q)", res.exitCode, res.stderr)
	}
	if res.report.Reason != reason || res.report.ExitCode != exitCode {
		t.Errorf("reason %s, exit code %d; want %s, %d\nreport: %s\nrunner stderr: %s",
			res.report.Reason, res.report.ExitCode, reason, exitCode, res.stdout, res.stderr)
	}
	switch reason {
	case report.Completed, report.NonZeroExit:
		if res.report.Message != "" {
			t.Errorf("message %q for %s", res.report.Message, reason)
		}
	default:
		if res.report.Message == "" {
			t.Errorf("no message for %s", reason)
		}
	}
}

func wall(r report.Report) time.Duration { return time.Duration(r.WallTimeMicros) * time.Microsecond }
func cpu(r report.Report) time.Duration  { return time.Duration(r.CPUTimeMicros) * time.Microsecond }

// checkNoProcessLeft fails when a process of the sandbox's uid is alive, or when its
// zombies are not reaped within a few seconds (the machine's init reaps them). It needs a
// dedicated uid, so root: otherwise it skips the test, after the checks before it (or
// fails it: see testneed), rather than pass without looking.
func (s *sandbox) checkNoProcessLeft() {
	t := s.t
	t.Helper()
	if s.uid == 0 {
		testneed.Root(t, "to check that no process of the program's own uid is left")
		t.Fatal("the sandbox has no uid of its own") // runnertest.UID gives one to root
	}
	if left := runnertest.LiveProcessesOf(s.uid); len(left) > 0 {
		t.Errorf("processes of uid %d alive after the run: %v", s.uid, left)
		return
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := runnertest.ProcessesOf(s.uid)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("zombies of uid %d not reaped: %v", s.uid, left)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// anyExitCode in a test case accepts whatever exit code the program had.
const anyExitCode = -1

func TestPrograms(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		program  string
		flags    []string
		reason   report.Reason
		exitCode int
		check    func(t *testing.T, r report.Report)
	}{
		{
			name:    "hello world",
			program: `print("Hello, World!")`,
			reason:  report.Completed,
			check: func(t *testing.T, r report.Report) {
				if r.Output != "Hello, World!\n" || r.Stdout != r.Output || r.Stderr != "" {
					t.Errorf("output %q stdout %q stderr %q", r.Output, r.Stdout, r.Stderr)
				}
				if r.PeakMemoryBytes <= 0 || r.WallTimeMicros <= 0 || r.CPUTimeMicros <= 0 {
					t.Errorf("memory %d, wall %d µs, cpu %d µs", r.PeakMemoryBytes, r.WallTimeMicros, r.CPUTimeMicros)
				}
				if r.PeakMemoryBytes < 1<<20 || r.PeakMemoryBytes > 1<<30 || wall(r) > 5*time.Second {
					t.Errorf("implausible: memory %d bytes, wall %v", r.PeakMemoryBytes, wall(r))
				}
			},
		},
		{
			name:     "syntax error",
			program:  "print('unclosed'\n",
			reason:   report.NonZeroExit,
			exitCode: 1,
			check: func(t *testing.T, r report.Report) {
				if !strings.Contains(r.Output, "SyntaxError") || !strings.Contains(r.Stderr, "SyntaxError") || r.Stdout != "" {
					t.Errorf("output %q stdout %q stderr %q", r.Output, r.Stdout, r.Stderr)
				}
				if !strings.Contains(r.Stderr, "main.py") {
					t.Errorf("the traceback does not name the source: %q", r.Stderr)
				}
			},
		},
		{
			name:     "exception",
			program:  "print('before')\n{}['missing']\n",
			reason:   report.NonZeroExit,
			exitCode: 1,
			check: func(t *testing.T, r report.Report) {
				if !strings.HasPrefix(r.Output, "before\nTraceback (most recent call last):") || !strings.HasSuffix(r.Output, "KeyError: 'missing'\n") {
					t.Errorf("output %q", r.Output)
				}
			},
		},
		{
			name:     "sys.exit(3)",
			program:  "import sys\nprint('bye')\nsys.exit(3)\n",
			reason:   report.NonZeroExit,
			exitCode: 3,
			check: func(t *testing.T, r report.Report) {
				if r.Output != "bye\n" || r.Signal != "" {
					t.Errorf("output %q signal %q", r.Output, r.Signal)
				}
			},
		},
		{
			name:     "SIGSEGV",
			program:  "import os, signal\nprint('about to crash', flush=True)\nos.kill(os.getpid(), signal.SIGSEGV)\n",
			reason:   report.Signaled,
			exitCode: 139,
			check: func(t *testing.T, r report.Report) {
				if r.Signal != "SIGSEGV" || r.Output != "about to crash\n" || !strings.Contains(r.Message, "SIGSEGV") {
					t.Errorf("signal %q output %q message %q", r.Signal, r.Output, r.Message)
				}
			},
		},
		{
			name: "interleaving",
			program: "import sys, time\nprint('out 1')\ntime.sleep(0.02)\nprint('err 1', file=sys.stderr)\n" +
				"time.sleep(0.02)\nprint('out 2')\n",
			reason: report.Completed,
			check: func(t *testing.T, r report.Report) {
				if r.Output != "out 1\nerr 1\nout 2\n" || r.Stdout != "out 1\nout 2\n" || r.Stderr != "err 1\n" {
					t.Errorf("output %q stdout %q stderr %q", r.Output, r.Stdout, r.Stderr)
				}
			},
		},
		{
			name:     "infinite loop",
			program:  "print('looping', flush=True)\nwhile True:\n    pass\n",
			flags:    []string{"--timeout", "1s"},
			reason:   report.TimeLimitExceeded,
			exitCode: 137,
			check: func(t *testing.T, r report.Report) {
				if r.Output != "looping\n" || r.Message != "time limit of 1s exceeded" || r.Signal != "SIGKILL" {
					t.Errorf("output %q message %q signal %q", r.Output, r.Message, r.Signal)
				}
				// On a loaded machine the loop gets less than the whole second of CPU.
				if wall(r) < time.Second || wall(r) > 2*time.Second || cpu(r) <= 0 || cpu(r) > wall(r)+100*time.Millisecond {
					t.Errorf("wall %v, cpu %v; want about 1s, and some CPU time but no more", wall(r), cpu(r))
				}
			},
		},
		{
			name:     "sleeper",
			program:  "import time\ntime.sleep(60)\n",
			flags:    []string{"--timeout", "1s"},
			reason:   report.TimeLimitExceeded,
			exitCode: 137,
			check: func(t *testing.T, r report.Report) {
				if wall(r) < time.Second || wall(r) > 2*time.Second || cpu(r) > 500*time.Millisecond {
					t.Errorf("wall %v, cpu %v; want about 1s and little", wall(r), cpu(r))
				}
			},
		},
		{
			name:     "memory hog",
			program:  "chunks = []\nwhile True:\n    chunks.append(b'x' * (10 << 20))\n",
			flags:    []string{"--memory-limit", "100MiB"},
			reason:   report.MemoryLimitExceeded,
			exitCode: 137,
			check: func(t *testing.T, r report.Report) {
				if r.PeakMemoryBytes < 100<<20 || r.PeakMemoryBytes > 2<<30 {
					t.Errorf("peak memory %d bytes", r.PeakMemoryBytes)
				}
				if r.Message != "memory limit of 100Mi exceeded" {
					t.Errorf("message %q", r.Message)
				}
				if wall(r) > 5*time.Second {
					t.Errorf("wall %v", wall(r))
				}
			},
		},
		{
			// Nine interpreters share their pages after fork: their resident sizes add up
			// to about twice the limit, but the memory they use together does not.
			name: "worker processes share memory",
			program: "import os, time\npids = []\nfor _ in range(8):\n    pid = os.fork()\n    if pid == 0:\n" +
				"        time.sleep(0.5)\n        os._exit(0)\n    pids.append(pid)\nfor pid in pids:\n    os.waitpid(pid, 0)\nprint('workers done')\n",
			flags:  []string{"--memory-limit", "40MiB"},
			reason: report.Completed,
			check: func(t *testing.T, r report.Report) {
				if r.Output != "workers done\n" {
					t.Errorf("output %q", r.Output)
				}
				if r.PeakMemoryBytes > 40<<20 {
					t.Errorf("peak memory %d bytes, over the 40 MiB the workers share", r.PeakMemoryBytes)
				}
			},
		},
		{
			name:     "output flood",
			program:  "while True:\n    print('x' * 1000)\n",
			flags:    []string{"--output-limit", "10000"},
			reason:   report.OutputLimitExceeded,
			exitCode: 137,
			check: func(t *testing.T, r report.Report) {
				want := strings.Repeat(strings.Repeat("x", 1000)+"\n", 10)[:10000]
				if r.Output != want || r.Stdout != want || r.Stderr != "" {
					t.Errorf("output %d bytes, stdout %d, stderr %d", len(r.Output), len(r.Stdout), len(r.Stderr))
				}
				if !r.StdoutTruncated || r.StderrTruncated {
					t.Errorf("truncated: stdout %v stderr %v", r.StdoutTruncated, r.StderrTruncated)
				}
				if r.Message != "output limit of 10000 bytes exceeded" {
					t.Errorf("message %q", r.Message)
				}
			},
		},
		{
			name:    "output exactly at the limit",
			program: "import sys\nsys.stdout.write('o' * 600)\nsys.stderr.write('e' * 400)\n",
			flags:   []string{"--output-limit", "1000"},
			reason:  report.Completed,
			check: func(t *testing.T, r report.Report) {
				if len(r.Output) != 1000 || r.StdoutTruncated || r.StderrTruncated {
					t.Errorf("output %d bytes, truncated %v %v", len(r.Output), r.StdoutTruncated, r.StderrTruncated)
				}
			},
		},
		{
			name:    "unicode",
			program: `print("héllo, 世界 🌍")`,
			reason:  report.Completed,
			check: func(t *testing.T, r report.Report) {
				if r.Output != "héllo, 世界 🌍\n" {
					t.Errorf("output %q", r.Output)
				}
			},
		},
		{
			name:    "invalid UTF-8",
			program: "import sys\nsys.stdout.buffer.write(b'ok \\xff\\xfe end\\n')\n",
			reason:  report.Completed,
			check: func(t *testing.T, r report.Report) {
				if r.Output != "ok \uFFFD end\n" || r.Stdout != r.Output {
					t.Errorf("output %q", r.Output)
				}
			},
		},
		{
			name:    "multibyte character cut by the output limit",
			program: "print('ab' + '世' * 10)\n",
			flags:   []string{"--output-limit", "6"}, // 'ab' + 世 (3 bytes) + 1 byte of the next
			reason:  report.OutputLimitExceeded,
			// One write: the program may exit before the kill lands.
			exitCode: anyExitCode,
			check: func(t *testing.T, r report.Report) {
				if r.Output != "ab世" || !r.StdoutTruncated {
					t.Errorf("output %q, truncated %v", r.Output, r.StdoutTruncated)
				}
			},
		},
		{
			name:     "file size limit",
			program:  "import os\nwith open(os.path.join(os.environ['TMPDIR'], 'big'), 'wb') as f:\n    f.write(b'x' * (2 << 20))\n",
			flags:    []string{"--max-file-size", "1MiB"},
			reason:   report.NonZeroExit,
			exitCode: 1,
			check: func(t *testing.T, r report.Report) {
				if !strings.Contains(r.Stderr, "File too large") {
					t.Errorf("stderr %q", r.Stderr)
				}
			},
		},
		{
			name:    "python cannot be executed",
			program: "print('never')",
			flags:   []string{"--python", "/dev/null"},
			reason:  report.SystemError,
			check: func(t *testing.T, r report.Report) {
				if !strings.Contains(r.Message, "could not start the program") || r.Output != "" {
					t.Errorf("message %q output %q", r.Message, r.Output)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newSandbox(t, tt.program)
			res := runRunner(t, nil, s.args(tt.flags...)...)
			if tt.exitCode == anyExitCode {
				tt.exitCode = res.report.ExitCode
			}
			res.check(t, tt.reason, tt.exitCode)
			tt.check(t, res.report)
			s.checkNoProcessLeft()
		})
	}
}

func TestStdin(t *testing.T) {
	t.Parallel()
	const program = "name = input()\nprint(f'Hello, {name}!')\n"
	t.Run("file", func(t *testing.T) {
		t.Parallel()
		s := newSandbox(t, program)
		in := filepath.Join(s.dir, "stdin.txt")
		if err := os.WriteFile(in, []byte("Ada\nignored\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		res := runRunner(t, nil, s.args("--stdin", in)...)
		res.check(t, report.Completed, 0)
		if res.report.Output != "Hello, Ada!\n" {
			t.Errorf("output %q", res.report.Output)
		}
	})
	for name, path := range map[string]string{"missing file": "/nonexistent/stdin", "empty": os.DevNull} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := newSandbox(t, program)
			res := runRunner(t, nil, s.args("--stdin", path)...)
			res.check(t, report.NonZeroExit, 1)
			if !strings.Contains(res.report.Stderr, "EOFError") {
				t.Errorf("stderr %q", res.report.Stderr)
			}
		})
	}
}

// forkBomb forks until it cannot, and its children leave the process group and session.
const forkBomb = `
import os, time
print("forking", flush=True)
while True:
    try:
        if os.fork() == 0:
            try:
                os.setsid()
            except OSError:
                pass
    except OSError:
        time.sleep(0.01)
`

// forkBombFlags are the runner's limits for a fork bomb: few processes, a short time.
var forkBombFlags = []string{"--max-processes", "32", "--timeout", "2s"}

// checkForkBombStopped checks that a fork bomb run with forkBombFlags ended by its time
// limit, or by failing to fork, and soon.
func checkForkBombStopped(t *testing.T, res result) {
	t.Helper()
	if r := res.report; r.Reason != report.TimeLimitExceeded && r.Reason != report.NonZeroExit {
		t.Errorf("reason %s: %s", r.Reason, res.stdout)
	}
	if res.elapsed > 8*time.Second {
		t.Errorf("the run took %v", res.elapsed)
	}
}

// TestForkBomb runs a fork bomb whose children leave the process group and session. It
// needs a dedicated uid, for RLIMIT_NPROC to apply (root ignores it) and for the cleanup
// to reach every process.
func TestForkBomb(t *testing.T) {
	t.Parallel()
	testneed.Root(t, "to run the fork bomb as a dedicated uid that RLIMIT_NPROC applies to")
	s := newSandbox(t, forkBomb)
	res := runRunner(t, nil, s.args(forkBombFlags...)...)
	checkForkBombStopped(t, res)
	if res.report.Output != "forking\n" && !strings.HasPrefix(res.report.Output, "forking\n") {
		t.Errorf("output %q", res.report.Output)
	}
	s.checkNoProcessLeft()

	// The uid is usable again.
	if err := os.WriteFile(s.source, []byte(`print("Hello, World!")`), 0o644); err != nil {
		t.Fatal(err)
	}
	res = runRunner(t, nil, s.args("--max-processes", "32")...)
	res.check(t, report.Completed, 0)
	if res.report.Output != "Hello, World!\n" {
		t.Errorf("output %q", res.report.Output)
	}
	s.checkNoProcessLeft()
}

// escapeProgram leaves a process in its own session that holds the output pipes and
// sleeps; it writes that process's pid to a file in the workdir.
const escapeProgram = `
import os, time
pidfile = os.path.join(os.environ["TMPDIR"], "escaped.pid")
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        with open(pidfile + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.rename(pidfile + ".tmp", pidfile)
        time.sleep(60)
    os._exit(0)
while not os.path.exists(pidfile):
    time.sleep(0.01)
print("main done")
`

func TestEscapedBackgroundProcess(t *testing.T) {
	t.Parallel()
	s := newSandbox(t, escapeProgram)
	res := runRunner(t, nil, s.args()...)
	res.check(t, report.Completed, 0)
	if res.report.Output != "main done\n" {
		t.Errorf("output %q", res.report.Output)
	}
	if res.elapsed > 3*time.Second {
		t.Errorf("the run took %v: the escaped process held it", res.elapsed)
	}
	data, err := os.ReadFile(filepath.Join(s.workdir, "escaped.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(string(data))
	if err != nil {
		t.Fatal(err)
	}
	if procfs.Alive(pid) {
		t.Errorf("the escaped process %d is alive", pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	s.checkNoProcessLeft()
}

// pid1Program checks what a program sees of a runner that is PID 1: an orphan it leaves
// is reaped while it runs, the runner's /proc entries are closed to it, and SIGKILL does
// not reach the runner. It also leaves a process in its own session that sleeps.
const pid1Program = `
import os, time
def opens(path):
    try:
        open(path, "rb").close()
        return True
    except OSError:
        return False
r, w = os.pipe()
if os.fork() == 0:
    orphan = os.fork()
    if orphan == 0:
        os._exit(0)
    os.write(w, str(orphan).encode())
    os._exit(0)
os.wait()
orphan = int(os.read(r, 100))
if os.fork() == 0:
    os.setsid()
    time.sleep(60)
time.sleep(0.3)
print("runner is pid 1:", os.getppid() == 1)
print("orphan reaped:", not os.path.exists(f"/proc/{orphan}"))
print("runner's fd, mem, environ open:", opens("/proc/1/fd/1"), opens("/proc/1/mem"), opens("/proc/1/environ"))
try:
    os.kill(1, 9)  # as the runner's uid: ignored by the namespace's init
except PermissionError:
    pass  # as another uid
print("runner survived SIGKILL")
`

const pid1Output = "runner is pid 1: True\norphan reaped: True\n" +
	"runner's fd, mem, environ open: False False False\nrunner survived SIGKILL\n"

// TestPID1 runs the runner as PID 1 of a new PID namespace, as in a container: it must
// reap orphans while the program runs and kill everything with kill(-1) at the end. In a
// pod the runner and the program share a non-root uid; that is tested too.
func TestPID1(t *testing.T) {
	t.Parallel()
	// asRoot runs the runner as root in the namespace; it runs the program as the sandbox's
	// uid (--uid).
	asRoot := func(t *testing.T, s *sandbox, flags ...string) result {
		return runRunner(t, pidNamespace(t), s.args(flags...)...)
	}

	for _, tt := range []struct {
		name string
		run  func(t *testing.T, s *sandbox, flags ...string) result
	}{
		{"root runner", asRoot},
		{"as in a pod", asPod},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newSandbox(t, pid1Program)
			res := tt.run(t, s)
			res.check(t, report.Completed, 0)
			if res.report.Output != pid1Output {
				t.Errorf("output %q", res.report.Output)
			}
			if res.elapsed > 3*time.Second {
				t.Errorf("the run took %v: the sleeping process held it", res.elapsed)
			}
			s.checkNoProcessLeft()
		})
	}
	t.Run("fork bomb as in a pod", func(t *testing.T) {
		t.Parallel()
		s := newSandbox(t, forkBomb)
		checkForkBombStopped(t, asPod(t, s, forkBombFlags...))
		s.checkNoProcessLeft()
	})
	t.Run("report file forged as in a pod", func(t *testing.T) {
		t.Parallel()
		s := newSandbox(t, forgeReport)
		path := filepath.Join(s.workdir, "termination-log")
		res := asPod(t, s, "--report", path)
		res.check(t, report.NonZeroExit, 5)
		if res.report.Output != "real output\n" {
			t.Errorf("stdout's report has output %q", res.report.Output)
		}
		data := mustRead(t, path)
		if got, err := report.Parse(data); err != nil || got != res.report {
			t.Errorf("the report file holds %s (%v), want the runner's report %s", data, err, res.stdout)
		}
	})
}

// forgeReport writes a made-up report to the report file (its name, in the program's
// working directory, as a pod's termination log is writable by the program), then tries
// to lower the runner's limit on open files to 0 so that it cannot open the file to
// replace it: the seccomp filter refuses that, and the runner opened the file before the
// program started anyway.
const forgeReport = `import json, os, resource
forged = {"coderun": "report/v1", "exitCode": 0, "reason": "Completed", "stdout": "forged\\n",
          "stderr": "", "output": "forged\\n", "wallTimeMicros": 1, "cpuTimeMicros": 1, "peakMemoryBytes": 1}
with open("termination-log", "w") as f:
    f.write(json.dumps(forged))
for pid in {1, os.getppid()}:
    try:
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (0, 0))
    except PermissionError:
        pass
print("real output")
raise SystemExit(5)
`

func TestReportFile(t *testing.T) {
	t.Parallel()
	t.Run("small", func(t *testing.T) {
		t.Parallel()
		s := newSandbox(t, `print("Hello, World!")`)
		path := filepath.Join(s.dir, "termination-log")
		// The file is truncated, not appended to.
		if err := os.WriteFile(path, bytes.Repeat([]byte("old "), 2000), 0o644); err != nil {
			t.Fatal(err)
		}
		res := runRunner(t, nil, s.args("--report", path)...)
		res.check(t, report.Completed, 0)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		got, err := report.Parse(data)
		if err != nil {
			t.Fatalf("parsing %q: %v", data, err)
		}
		if got != res.report || got.OutputInLog {
			t.Errorf("the file holds %s, stdout %s", data, res.stdout)
		}
	})
	t.Run("large output", func(t *testing.T) {
		t.Parallel()
		s := newSandbox(t, "print('y' * 9000)\n")
		path := filepath.Join(s.dir, "termination-log")
		res := runRunner(t, nil, s.args("--report", path, "--output-limit", "10000")...)
		res.check(t, report.Completed, 0)
		if len(res.report.Output) != 9001 || res.report.OutputInLog {
			t.Errorf("stdout's report has %d bytes of output, outputInLog %v", len(res.report.Output), res.report.OutputInLog)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) > report.TerminationMessageLimit {
			t.Errorf("the report file has %d bytes", len(data))
		}
		got, err := report.Parse(data)
		if err != nil {
			t.Fatalf("parsing %q: %v", data, err)
		}
		if !got.OutputInLog || got.Output != "" || got.Stdout != "" || got.Reason != report.Completed || got != res.report.Summary() {
			t.Errorf("the file holds %s", data)
		}
		// The operator finds the full report in the log.
		full, err := report.FindInLog([]byte("some other line\n" + res.stdout))
		if err != nil || full != res.report {
			t.Errorf("FindInLog: %v", err)
		}
	})
}

// TestStopSignalsDuringRun sends SIGTERM and SIGINT to a cold run's runner, as the kubelet
// does when the pod is deleted. The program, which runs as the runner's user, could send
// them as well, so they are ignored while it runs: the run ends on its own, with its
// result. (A deleted pod's runner is then killed at the end of its grace period.)
func TestStopSignalsDuringRun(t *testing.T) {
	t.Parallel()
	s := newSandbox(t, `
import os, time
print("waiting", flush=True)
open(os.path.join(os.environ["TMPDIR"], "started"), "w").close()
time.sleep(1)
print("done")
`)
	path := filepath.Join(s.dir, "termination-log")
	cmd := exec.Command(runnerBin, s.args("--report", path, "--timeout", "30s")...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(s.workdir, "started")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatal("the program did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, sig := range []os.Signal{syscall.SIGTERM, syscall.SIGINT} {
		if err := cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
	}
	res := exited(t, cmd.Wait(), result{stdout: stdout.String(), stderr: stderr.String()})
	res.check(t, report.Completed, 0)
	if res.report.Output != "waiting\ndone\n" {
		t.Errorf("output %q", res.report.Output)
	}
	expectReportFile(t, path, res)
	s.checkNoProcessLeft()
}

// expectReportFile checks that the report file at path holds exactly the report the runner
// printed on stdout.
func expectReportFile(t *testing.T, path string, res result) {
	t.Helper()
	if got, err := report.Parse(mustRead(t, path)); err != nil || !reflect.DeepEqual(got, res.report) {
		t.Errorf("the report file holds %+v (%v), want the runner's report %s", got, err, res.stdout)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestBadFlags(t *testing.T) {
	t.Parallel()
	s := newSandbox(t, `print("never")`)
	tests := []struct {
		name    string
		args    []string
		message string
	}{
		{"no source", []string{"--python", "python3"}, "source file is required"},
		{"unknown flag", append(s.args(), "--frobnicate"), "frobnicate"},
		{"positional argument", append(s.args(), "extra"), "unexpected arguments"},
		{"output limit too large", s.args("--output-limit", "1GiB"), "output limit"},
		{"bad size", s.args("--memory-limit", "lots"), "not a number of bytes"},
		{"bad duration", s.args("--timeout", "soon"), "timeout"},
		{"zero timeout", s.args("--timeout", "0s"), "timeout"},
		{"uid 0", s.args("--uid", "0"), "never runs as root"},
		{"negative uid", s.args("--uid", "-3"), "uid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "termination-log")
			res := runRunner(t, nil, append([]string{"--report", path}, tt.args...)...)
			if res.exitCode != 2 {
				t.Errorf("exit code %d, want 2", res.exitCode)
			}
			r := res.report
			if r.Reason != report.SystemError || !strings.Contains(r.Message, tt.message) || r.Output != "" {
				t.Errorf("report %s, want a SystemError about %q", res.stdout, tt.message)
			}
			expectReportFile(t, path, res)
		})
	}
}

func TestByteSizeFlag(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"65536", 65536, true},
		{"64KiB", 64 << 10, true},
		{"100MiB", 100 << 20, true},
		{"2GiB", 2 << 30, true},
		{"3Mi", 3 << 20, true},
		{"1Ki", 1024, true},
		{"", 0, false},
		{"-1", 0, false},
		{"1.5MiB", 0, false},
		{"MiB", 0, false},
		{"10MB", 0, false},
		{"99999999999GiB", 0, false},
	}
	for _, tt := range tests {
		var n int64
		err := byteSize{int64Ptr: &n}.Set(tt.in)
		if (err == nil) != tt.ok || (tt.ok && n != tt.want) {
			t.Errorf("Set(%q) = %d, %v; want %d, ok %v", tt.in, n, err, tt.want, tt.ok)
		}
	}
	var small int
	if err := (byteSize{intPtr: &small}).Set("64KiB"); err != nil || small != 64<<10 {
		t.Errorf("int flag: %d, %v", small, err)
	}
}
