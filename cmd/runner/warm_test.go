package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coderun-dev/coderun/internal/delivery"
	"github.com/coderun-dev/coderun/internal/procfs"
	"github.com/coderun-dev/coderun/internal/report"
	"github.com/coderun-dev/coderun/internal/runner/runnertest"
	"github.com/coderun-dev/coderun/internal/testneed"
)

// waitingLine is what a warm runner logs on stderr once it waits for its request (and
// handles SIGTERM).
const waitingLine = "waiting for a request on stdin"

// lockedBuffer is a bytes.Buffer that a test reads while a process writes it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// warmMember is a runner started with --request=stdin, its stdin a pipe the test writes.
type warmMember struct {
	t              *testing.T
	s              *sandbox
	cmd            *exec.Cmd
	stdin          *os.File
	stdout, stderr lockedBuffer
	inputDir       string
	reportPath     string
}

// startWarm starts a warm runner for the sandbox, with a 10s, 200 MiB shape and then
// extra flags, and waits until it waits for its request.
func startWarm(t *testing.T, s *sandbox, extra ...string) *warmMember {
	t.Helper()
	return startWarmIn(t, s, nil, extra...)
}

// startWarmIn is startWarm through wrapper; with a wrapper, the runner runs as the
// sandbox's uid itself (as in a pod: the wrapper switches to it) and has no --uid.
func startWarmIn(t *testing.T, s *sandbox, wrapper []string, extra ...string) *warmMember {
	t.Helper()
	m := &warmMember{t: t, s: s, inputDir: filepath.Join(s.dir, "input"), reportPath: filepath.Join(s.dir, "termination-log")}
	if err := os.Mkdir(m.inputDir, 0o755); err != nil {
		t.Fatal(err)
	}
	args := append([]string(nil), wrapper...)
	args = append(args, runnerBin)
	switch {
	case wrapper != nil:
		// The runner runs as the program's uid: the input directory and report file are its.
		if err := os.WriteFile(m.reportPath, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, path := range []string{m.inputDir, m.reportPath} {
			if err := os.Chown(path, s.uid, s.uid); err != nil {
				t.Fatal(err)
			}
		}
	case s.uid != 0:
		args = append(args, "--uid", strconv.Itoa(s.uid))
	}
	args = append(args, "--request=stdin", "--input-dir", m.inputDir, "--python", runnertest.Python(t),
		"--workdir", s.workdir, "--timeout", "10s", "--memory-limit", "200MiB", "--report", m.reportPath)
	args = append(args, extra...)
	m.cmd = exec.Command(args[0], args[1:]...)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	m.stdin = w
	m.cmd.Stdin, m.cmd.Stdout, m.cmd.Stderr = r, &m.stdout, &m.stderr
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.Close() // the runner holds the only read end
	t.Cleanup(func() {
		m.stdin.Close()
		if m.cmd.ProcessState == nil {
			_ = m.cmd.Process.Kill()
			_ = m.cmd.Wait()
		}
	})
	m.waitFor(func() bool { return strings.Contains(m.stderr.String(), waitingLine) }, "the runner to wait for its request")
	if out := m.stdout.String(); out != "" {
		t.Fatalf("the runner wrote to stdout before its request: %q", out)
	}
	return m
}

// waitFor polls cond for up to 20 s.
func (m *warmMember) waitFor(cond func() bool, what string) {
	m.t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			m.t.Fatalf("timed out waiting for %s (stderr %q)", what, m.stderr.String())
		}
	}
}

func (m *warmMember) send(data []byte) error {
	_, err := m.stdin.Write(data)
	return err
}

func (m *warmMember) sendRequest(req delivery.Request) {
	m.t.Helper()
	frame, err := delivery.Encode(req)
	if err != nil {
		m.t.Fatal(err)
	}
	if err := m.send(frame); err != nil {
		m.t.Fatalf("writing the request: %v", err)
	}
}

// wait waits for the runner to exit and checks its report: one line on stdout, the same
// in the report file.
func (m *warmMember) wait() result {
	t := m.t
	t.Helper()
	res := exited(t, m.cmd.Wait(), result{stdout: m.stdout.String(), stderr: m.stderr.String()})
	expectReportFile(t, m.reportPath, res)
	return res
}

// request returns a request for program within the test shape.
func request(program, stdin string) delivery.Request {
	return delivery.Request{Source: program, Stdin: stdin, TimeoutSeconds: 10, MemoryBytes: 200 << 20, Run: "runs/test"}
}

// TestWarmRuns: a request over a pipe runs as the same program does in cold mode, with
// the request's limits.
func TestWarmRuns(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		req      delivery.Request
		reason   report.Reason
		exitCode int
		output   string
		message  string
	}{
		{
			name:   "stdin",
			req:    request("name = input()\nprint(f'Hello, {name}!')\n", "Ada\nignored\n"),
			reason: report.Completed,
			output: "Hello, Ada!\n",
		},
		{
			name:     "no stdin",
			req:      request("input()\n", ""),
			reason:   report.NonZeroExit,
			exitCode: 1,
		},
		{
			name:     "exit code",
			req:      request("import sys\nprint('bye')\nsys.exit(3)\n", ""),
			reason:   report.NonZeroExit,
			exitCode: 3,
			output:   "bye\n",
		},
		{
			name:     "the request's timeout",
			req:      delivery.Request{Source: "import time\ntime.sleep(60)\n", TimeoutSeconds: 1, MemoryBytes: 200 << 20},
			reason:   report.TimeLimitExceeded,
			exitCode: 137,
			message:  "time limit of 1s exceeded",
		},
		{
			name:     "the request's memory limit",
			req:      delivery.Request{Source: "chunks = []\nwhile True:\n    chunks.append(b'x' * (10 << 20))\n", TimeoutSeconds: 10, MemoryBytes: 50 << 20},
			reason:   report.MemoryLimitExceeded,
			exitCode: 137,
			message:  "memory limit of 50Mi exceeded",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newSandbox(t, tt.req.Source)
			m := startWarm(t, s)
			m.sendRequest(tt.req)
			res := m.wait()
			res.check(t, tt.reason, tt.exitCode)
			r := res.report
			if r.NotRun {
				t.Errorf("notRun on a run: %s", res.stdout)
			}
			if tt.output != "" && r.Output != tt.output {
				t.Errorf("output %q, want %q", r.Output, tt.output)
			}
			if tt.message != "" && r.Message != tt.message {
				t.Errorf("message %q, want %q", r.Message, tt.message)
			}
			if tt.name == "no stdin" && !strings.Contains(r.Stderr, "EOFError") {
				t.Errorf("stderr %q", r.Stderr)
			}
			s.checkNoProcessLeft()
		})
	}
}

// TestWarmSameAsCold: the same program, warm and cold, gives the same report but for
// its times and memory.
func TestWarmSameAsCold(t *testing.T) {
	t.Parallel()
	const program = "import sys\nprint(input().upper())\nprint('to stderr', file=sys.stderr)\nsys.exit(4)\n"
	s := newSandbox(t, program)
	in := filepath.Join(s.dir, "stdin.txt")
	if err := os.WriteFile(in, []byte("ada\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cold := runRunner(t, nil, s.args("--stdin", in, "--timeout", "10s", "--memory-limit", "200MiB")...)

	w := newSandbox(t, "")
	m := startWarm(t, w)
	m.sendRequest(request(program, "ada\n"))
	warm := m.wait()
	for _, r := range []*report.Report{&cold.report, &warm.report} {
		r.WallTimeMicros, r.CPUTimeMicros, r.PeakMemoryBytes = 0, 0, 0
	}
	if cold.report != warm.report || warm.exitCode != cold.exitCode {
		t.Errorf("warm %+v (exit %d)\ncold %+v (exit %d)", warm.report, warm.exitCode, cold.report, cold.exitCode)
	}
}

// freshProgram prints what it finds of its working directory and source.
const freshProgram = `import os, stat
cwd = os.getcwd()
print("workdir:", os.listdir(cwd), os.listdir(os.environ["TMPDIR"]), cwd == os.environ["TMPDIR"])
src = os.path.abspath(__file__)
print("source in workdir:", os.path.dirname(src) == cwd)
print("source mode:", oct(stat.S_IMODE(os.stat(src).st_mode)))
print("stdin:", input())
`

// TestWarmFreshWorkdir: the program's working directory (its /tmp in a pod) is empty
// when it starts, and its source and stdin are read-only files elsewhere.
func TestWarmFreshWorkdir(t *testing.T) {
	t.Parallel()
	s := newSandbox(t, "")
	m := startWarm(t, s)
	m.sendRequest(request(freshProgram, "line"))
	res := m.wait()
	res.check(t, report.Completed, 0)
	want := "workdir: [] [] True\nsource in workdir: False\nsource mode: 0o444\nstdin: line\n"
	if res.report.Output != want {
		t.Errorf("output %q, want %q", res.report.Output, want)
	}
	for _, name := range []string{"main.py", "stdin"} {
		info, err := os.Stat(filepath.Join(m.inputDir, name))
		if err != nil || info.Mode().Perm() != 0o444 {
			t.Errorf("%s: %v, %v", name, info, err)
		}
	}
}

// secondProgram signals that it started, waits for the test, and prints which it is.
const secondProgram = `import os, time
open("started", "w").close()
for _ in range(2000):
    if os.path.exists("go"):
        break
    time.sleep(0.01)
print(%q)
`

// TestWarmSecondRequest: a member runs one program. A request written right after the
// first is never read; one written once the program runs fails with EPIPE.
func TestWarmSecondRequest(t *testing.T) {
	t.Parallel()
	s := newSandbox(t, "")
	m := startWarm(t, s)
	first, err := delivery.Encode(request(strings.Replace(secondProgram, "%q", `"first"`, 1), ""))
	if err != nil {
		t.Fatal(err)
	}
	second, err := delivery.Encode(request(strings.Replace(secondProgram, "%q", `"second"`, 1), ""))
	if err != nil {
		t.Fatal(err)
	}
	// Both in one write: the runner must read the first frame and nothing past it.
	if err := m.send(append(append([]byte(nil), first...), second...)); err != nil {
		t.Fatal(err)
	}
	m.waitFor(func() bool {
		_, err := os.Stat(filepath.Join(s.workdir, "started"))
		return err == nil
	}, "the program to start")
	if err := m.send(second); !errors.Is(err, syscall.EPIPE) {
		t.Errorf("writing a request while the program runs: %v, want EPIPE", err)
	}
	if err := os.WriteFile(filepath.Join(s.workdir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	res := m.wait()
	res.check(t, report.Completed, 0)
	if res.report.Output != "first\n" {
		t.Errorf("output %q, want the first program's only", res.report.Output)
	}
	if strings.Count(res.stderr, "request for") != 1 {
		t.Errorf("the runner's log: %q", res.stderr)
	}
}

// TestWarmNotRun: whenever no program runs, the report is a SystemError marked NotRun
// that says why, the runner exits 0 and wrote nothing to the input directory.
func TestWarmNotRun(t *testing.T) {
	t.Parallel()
	frame, err := delivery.Encode(request("print('never')", ""))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		flags   []string
		act     func(t *testing.T, m *warmMember)
		message string
	}{
		{
			name:    "idle timeout",
			flags:   []string{"--idle-timeout", "300ms"},
			act:     func(*testing.T, *warmMember) {},
			message: "no request arrived within 300ms; the member was not used",
		},
		{
			name:    "idle timeout in the middle of a request",
			flags:   []string{"--idle-timeout", "1s"},
			act:     func(t *testing.T, m *warmMember) { mustSend(t, m, frame[:len(frame)-3]) },
			message: "the request was incomplete after 1s: ",
		},
		{
			name:    "stdin closed",
			act:     func(t *testing.T, m *warmMember) { m.stdin.Close() },
			message: "stdin was closed before a request arrived; the member was not used",
		},
		{
			name: "incomplete, then EOF",
			act: func(t *testing.T, m *warmMember) {
				mustSend(t, m, frame[:len(frame)-3])
				m.stdin.Close()
			},
			message: "the request was incomplete: ",
		},
		{
			name: "incomplete header, then EOF",
			act: func(t *testing.T, m *warmMember) {
				mustSend(t, m, []byte("coderun-request/v1 12"))
				m.stdin.Close()
			},
			message: "the request was incomplete: ",
		},
		{
			name:    "garbage header",
			act:     func(t *testing.T, m *warmMember) { mustSend(t, m, []byte("print('hello')\n")) },
			message: "the request was refused: bad request header",
		},
		{
			name:    "too large",
			act:     func(t *testing.T, m *warmMember) { mustSend(t, m, []byte("coderun-request/v1 99999999\n")) },
			message: "the request was refused: the request is too large",
		},
		{
			name:    "bad JSON",
			act:     func(t *testing.T, m *warmMember) { mustSend(t, m, []byte("coderun-request/v1 2\n{]")) },
			message: "the request was refused: invalid request",
		},
		{
			name: "timeout over the shape",
			act: func(t *testing.T, m *warmMember) {
				req := request("print('never')", "")
				req.TimeoutSeconds = 20
				m.sendRequest(req)
			},
			message: "the request asks for 20s but this member serves at most 10s; the member was not used",
		},
		{
			name: "memory over the shape",
			act: func(t *testing.T, m *warmMember) {
				req := request("print('never')", "")
				req.MemoryBytes = 200<<20 + 1
				m.sendRequest(req)
			},
			message: "the request asks for 209715201 bytes of memory but this member serves at most 209715200",
		},
		{
			name:    "SIGTERM while waiting",
			act:     func(t *testing.T, m *warmMember) { _ = m.cmd.Process.Signal(syscall.SIGTERM) },
			message: "the runner was stopped before a request arrived; the member was not used",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newSandbox(t, "")
			m := startWarm(t, s, tt.flags...)
			tt.act(t, m)
			res := m.wait()
			r := res.report
			if res.exitCode != 0 || !r.NotRun || r.Reason != report.SystemError || !strings.HasPrefix(r.Message, tt.message) {
				t.Errorf("exit %d, report %s; want notRun, message %q", res.exitCode, res.stdout, tt.message)
			}
			if entries, err := os.ReadDir(m.inputDir); err != nil || len(entries) > 0 {
				t.Errorf("the input directory holds %v (%v)", entries, err)
			}
		})
	}
}

func mustSend(t *testing.T, m *warmMember, data []byte) {
	t.Helper()
	if err := m.send(data); err != nil {
		t.Fatal(err)
	}
}

// TestWarmBadFlags: warm mode's flags are checked like the others; a warm runner that
// stops on bad flags says it ran nothing.
func TestWarmBadFlags(t *testing.T) {
	t.Parallel()
	s := newSandbox(t, `print("never")`)
	in := filepath.Join(s.dir, "input")
	warm := []string{"--request=stdin", "--input-dir", in, "--workdir", s.workdir, "--memory-limit", "1MiB"}
	tests := []struct {
		name    string
		args    []string
		message string
		notRun  bool
	}{
		{"source with a request", append(warm, "--source", s.source), "--source and --request=stdin", true},
		{"stdin with a request", append(warm, "--stdin", s.source), "--stdin and --request=stdin", true},
		{"no input dir", []string{"--request=stdin", "--memory-limit", "1MiB"}, "--input-dir", true},
		{"relative input dir", []string{"--request=stdin", "--input-dir", "input", "--memory-limit", "1MiB"}, "--input-dir", true},
		{"input dir is the workdir", append(warm, "--input-dir", s.workdir), "overlap", true},
		{"input dir in the workdir", append(warm, "--input-dir", filepath.Join(s.workdir, "in")), "overlap", true},
		{"no memory limit", []string{"--request=stdin", "--input-dir", in, "--workdir", s.workdir}, "--memory-limit", true},
		{"negative idle timeout", append(warm, "--idle-timeout", "-1s"), "--idle-timeout", true},
		{"other request source", s.args("--request", "tcp"), `the only request source is "stdin"`, false},
		{"idle timeout without a request", s.args("--idle-timeout", "1s"), "--idle-timeout needs --request=stdin", false},
		{"input dir without a request", s.args("--input-dir", in), "--input-dir needs --request=stdin", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := runRunner(t, nil, tt.args...)
			r := res.report
			if res.exitCode != 2 || r.Reason != report.SystemError || r.NotRun != tt.notRun || !strings.Contains(r.Message, tt.message) {
				t.Errorf("exit %d, report %s; want 2, notRun %v, a message about %q", res.exitCode, res.stdout, tt.notRun, tt.message)
			}
		})
	}
}

// TestWarmPID1 runs a warm runner as in a pod: PID 1 of its own PID namespace, as the
// program's uid.
func TestWarmPID1(t *testing.T) {
	t.Parallel()
	testneed.Root(t, "for a PID namespace and a uid of the program's own")
	if err := exec.Command("unshare", "-p", "-f", "--mount-proc", "true").Run(); err != nil {
		testneed.Skip(t, "cannot make a PID namespace here: %v", err)
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		testneed.Skip(t, "no setpriv here")
	}
	asPod := func(s *sandbox) []string {
		id := strconv.Itoa(s.uid)
		return []string{"unshare", "-p", "-f", "--mount-proc", "setpriv", "--reuid=" + id, "--regid=" + id, "--clear-groups"}
	}
	t.Run("a request", func(t *testing.T) {
		t.Parallel()
		s := newSandbox(t, "")
		m := startWarmIn(t, s, asPod(s))
		m.sendRequest(request(freshProgram, "line"))
		res := m.wait()
		res.check(t, report.Completed, 0)
		if want := "workdir: [] [] True\nsource in workdir: False\nsource mode: 0o444\nstdin: line\n"; res.report.Output != want {
			t.Errorf("output %q, want %q", res.report.Output, want)
		}
		s.checkNoProcessLeft()
	})
	t.Run("SIGTERM while waiting", func(t *testing.T) {
		t.Parallel()
		s := newSandbox(t, "")
		m := startWarmIn(t, s, asPod(s))
		// unshare does not forward signals: the runner, PID 1 of the namespace, is its
		// child (setpriv executes it).
		children := procfs.Children(m.cmd.Process.Pid)
		if len(children) != 1 {
			t.Fatalf("unshare's children: %v", children)
		}
		if err := syscall.Kill(children[0], syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		res := m.wait()
		if r := res.report; res.exitCode != 0 || !r.NotRun || !strings.Contains(r.Message, "stopped before a request arrived") {
			t.Errorf("exit %d, report %s", res.exitCode, res.stdout)
		}
	})
}
