package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coderun-dev/coderun/internal/delivery"
	"github.com/coderun-dev/coderun/internal/report"
	"github.com/coderun-dev/coderun/internal/runner/runnertest"
	"github.com/coderun-dev/coderun/internal/testneed"
)

// helloC reads a line and prints it with its arguments and an environment variable.
const helloC = `#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
	char line[100] = "";
	if (!fgets(line, sizeof line, stdin)) return 2;
	printf("%s, %s", getenv("GREETING"), line);
	for (int i = 1; i < argc; i++) printf("arg %d: [%s]\n", i, argv[i]);
	return 0;
}
`

// gccCommand is the compile command of the tests, as a Runtime writes it.
const gccCommand = `["gcc","-O2","-o","main","main.c"]`

func needGCC(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("gcc"); err != nil {
		testneed.Skip(t, "no gcc here")
	}
}

// filesDir writes files as a downward API volume has them: in a timestamped directory
// that ..data links to, each name a link through ..data. It returns the directory.
func (s *sandbox) filesDir(files map[string]string) string {
	t := s.t
	t.Helper()
	dir := filepath.Join(s.dir, "files")
	data := filepath.Join(dir, "..2026_11_30_16_00_00.1")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Base(data), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(data, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// commandArgs are the runner's flags for a run of files with a run command, as the
// operator passes them (--uid when the sandbox has one), then extra.
func (s *sandbox) commandArgs(files map[string]string, runCommand string, extra ...string) []string {
	args := []string{"--files", s.filesDir(files), "--run-command", runCommand, "--workdir", s.workdir}
	if s.uid != 0 {
		args = append(args, "--uid", strconv.Itoa(s.uid))
	}
	return append(args, extra...)
}

func (s *sandbox) writeStdin(data string) string {
	s.t.Helper()
	path := filepath.Join(s.dir, "stdin")
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		s.t.Fatal(err)
	}
	return path
}

func TestCompiledProgram(t *testing.T) {
	t.Parallel()
	needGCC(t)
	s := newSandbox(t, "")
	path := filepath.Join(s.dir, "termination-log")
	res := runRunner(t, nil, s.commandArgs(map[string]string{"main.c": helloC},
		`["./main","one arg","$HOME"]`,
		"--compile-command", gccCommand, "--compile-timeout", "60s", "--compile-memory-limit", "512MiB",
		"--env", "GREETING=Hello", "--env", "UNUSED=a=b",
		"--stdin", s.writeStdin("World\n"), "--report", path)...)
	res.check(t, report.Completed, 0)
	if want := "Hello, World\narg 1: [one arg]\narg 2: [$HOME]\n"; res.report.Stdout != want {
		t.Errorf("stdout %q, want %q", res.report.Stdout, want)
	}
	if c := res.report.Compile; c == nil || c.Reason != report.Completed || c.CPUTimeMicros <= 0 {
		t.Errorf("compile stage %+v", c)
	}
	expectReportFile(t, path, res)
	s.checkNoProcessLeft()
}

func TestCompileErrorFromFlags(t *testing.T) {
	t.Parallel()
	needGCC(t)
	s := newSandbox(t, "")
	path := filepath.Join(s.dir, "termination-log")
	res := runRunner(t, nil, s.commandArgs(map[string]string{"main.c": "int main(void) { syntax error }\n"},
		`["./main"]`, "--compile-command", gccCommand, "--report", path)...)
	res.check(t, report.CompileError, 0)
	c := res.report.Compile
	if c == nil || c.Reason != report.NonZeroExit || !strings.Contains(c.Stderr, "main.c:1:") || !strings.Contains(c.Stderr, "error") {
		t.Fatalf("compile stage %+v", c)
	}
	if res.report.Output != "" {
		t.Errorf("program output %q", res.report.Output)
	}
	expectReportFile(t, path, res)
}

func TestCompileLimitsFromFlags(t *testing.T) {
	t.Parallel()
	s := newSandbox(t, "")
	start := time.Now()
	res := runRunner(t, nil, s.commandArgs(nil, `["sh","-c","echo ran > ran"]`,
		"--compile-command", `["sleep","30"]`, "--compile-timeout", "1s", "--timeout", "60s")...)
	res.check(t, report.CompileError, 0)
	if c := res.report.Compile; c == nil || c.Reason != report.TimeLimitExceeded || c.Message != "time limit of 1s exceeded" {
		t.Errorf("compile stage %+v", c)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("took %v", d)
	}
	if _, err := os.Stat(filepath.Join(s.workdir, "ran")); !os.IsNotExist(err) {
		t.Errorf("the program ran (stat: %v)", err)
	}

	s = newSandbox(t, "")
	res = runRunner(t, nil, s.commandArgs(nil, `["true"]`,
		"--compile-command", `["`+runnertest.Python(t)+`","-c","import time\nb = bytearray(300 << 20)\ntime.sleep(30)"]`,
		"--compile-memory-limit", "64MiB", "--memory-limit", "1GiB")...)
	res.check(t, report.CompileError, 0)
	if c := res.report.Compile; c == nil || c.Reason != report.MemoryLimitExceeded || c.Message != "memory limit of 64Mi exceeded" {
		t.Errorf("compile stage %+v", c)
	}
}

// TestFilesFlag: the files are copied (through the volume's links), the volume's own
// entries are not, and the program owns its copies.
func TestFilesFlag(t *testing.T) {
	t.Parallel()
	s := newSandbox(t, "")
	res := runRunner(t, nil, s.commandArgs(map[string]string{"a.txt": "A\n", "b.txt": "B\n"},
		`["sh","-c","ls -A; cat a.txt b.txt; echo more >> a.txt && echo writable"]`)...)
	res.check(t, report.Completed, 0)
	if want := "a.txt\nb.txt\nA\nB\nwritable\n"; res.report.Stdout != want {
		t.Errorf("stdout %q, want %q (stderr %q)", res.report.Stdout, want, res.report.Stderr)
	}
	// The volume is untouched.
	if data, err := os.ReadFile(filepath.Join(s.dir, "files", "a.txt")); err != nil || string(data) != "A\n" {
		t.Errorf("the volume's a.txt: %q, %v", data, err)
	}
}

func TestCommandBadFlags(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"run command not JSON", []string{"--run-command", "./main"}, "is not a JSON array of strings"},
		{"run command empty", []string{"--run-command", "[]"}, "has no program name"},
		{"run command of numbers", []string{"--run-command", "[1]"}, "is not a JSON array of strings"},
		{"compile command not JSON", []string{"--run-command", `["x"]`, "--compile-command", "gcc main.c"}, "is not a JSON array of strings"},
		{"compile timeout alone", []string{"--run-command", `["x"]`, "--compile-timeout", "5s"}, "need --compile-command"},
		{"compile memory alone", []string{"--run-command", `["x"]`, "--compile-memory-limit", "5Mi"}, "need --compile-command"},
		{"env without =", []string{"--run-command", `["x"]`, "--env", "PATH"}, `"PATH" is not NAME=VALUE`},
		{"source and run command", []string{"--run-command", `["x"]`, "--source", "main.py"}, "the run command names the program"},
		{"no program", []string{"--workdir", "/tmp"}, "source file is required (or a run command)"},
	} {
		res := runRunner(t, nil, tt.args...)
		if res.exitCode != 2 || res.report.Reason != report.SystemError || !strings.Contains(res.report.Message, tt.want) {
			t.Errorf("%s: exit %d, report %s; want 2 and a message with %q", tt.name, res.exitCode, res.stdout, tt.want)
		}
	}
}

// warmC starts a warm member of a C runtime: its flags hold the Runtime's commands.
func warmC(t *testing.T, s *sandbox) *warmMember {
	return startWarm(t, s, "--run-command", `["./main"]`, "--compile-command", gccCommand,
		"--compile-timeout", "60s", "--compile-memory-limit", "512MiB", "--env", "GREETING=Hi")
}

func cRequest(files ...delivery.File) delivery.Request {
	return delivery.Request{Files: files, Stdin: "warm\n", TimeoutSeconds: 10, MemoryBytes: 200 << 20, Run: "runs/c"}
}

func TestWarmCompiled(t *testing.T) {
	t.Parallel()
	needGCC(t)
	s := newSandbox(t, "")
	m := warmC(t, s)
	req := cRequest(delivery.File{Name: "main.c", Content: helloC}, delivery.File{Name: "notes.txt", Content: "n"})
	req.Args = []string{"x y", ""}
	req.CompileTimeoutSeconds, req.CompileMemoryBytes = 30, 256<<20
	m.sendRequest(req)
	res := m.wait()
	res.check(t, report.Completed, 0)
	if want := "Hi, warm\narg 1: [x y]\narg 2: []\n"; res.report.Stdout != want {
		t.Errorf("stdout %q, want %q", res.report.Stdout, want)
	}
	if c := res.report.Compile; c == nil || c.Reason != report.Completed {
		t.Errorf("compile stage %+v", c)
	}
	for _, name := range []string{"main.c", "notes.txt", "main"} {
		if _, err := os.Stat(filepath.Join(s.workdir, name)); err != nil {
			t.Errorf("workdir: %v", err)
		}
	}
	s.checkNoProcessLeft()

	// A compile error, and the compile limits of the request, not the member's.
	s = newSandbox(t, "")
	m = warmC(t, s)
	req = cRequest(delivery.File{Name: "main.c", Content: "int main(void) { return }\n"})
	m.sendRequest(req)
	res = m.wait()
	res.check(t, report.CompileError, 0)
	if c := res.report.Compile; c == nil || !strings.Contains(c.Stderr, "error") {
		t.Errorf("compile stage %+v", c)
	}

	s = newSandbox(t, "")
	m = startWarm(t, s, "--run-command", `["true"]`, "--compile-command", `["sleep","30"]`, "--compile-timeout", "60s")
	req = cRequest(delivery.File{Name: "x", Content: ""})
	req.CompileTimeoutSeconds = 1
	m.sendRequest(req)
	res = m.wait()
	res.check(t, report.CompileError, 0)
	if c := res.report.Compile; c == nil || c.Reason != report.TimeLimitExceeded || c.Message != "time limit of 1s exceeded" {
		t.Errorf("compile stage %+v", c)
	}
}

func TestWarmCompiledNotRun(t *testing.T) {
	t.Parallel()
	main := delivery.File{Name: "main.c", Content: helloC}
	for _, tt := range []struct {
		name    string
		req     func() delivery.Request
		frame   string
		message string
	}{
		{"source instead of files", func() delivery.Request { r := cRequest(); r.Source = helloC; return r }, "",
			"the request has no files, and this member runs a command on its files"},
		{"source and files", func() delivery.Request { r := cRequest(main); r.Source = helloC; return r }, "",
			"the request has a source, and this member runs a command on its files"},
		{"compile time over the shape", func() delivery.Request { r := cRequest(main); r.CompileTimeoutSeconds = 61; return r }, "",
			"the request asks for a compile time of 61s but this member serves at most 1m0s"},
		{"compile memory over the shape", func() delivery.Request { r := cRequest(main); r.CompileMemoryBytes = 512<<20 + 1; return r }, "",
			"the request asks for 536870913 bytes of compile memory but this member serves at most 536870912"},
		{"a path as a file name", nil,
			frame(`{"source":"","files":[{"name":"../escape","content":"x"}],"timeoutSeconds":1,"memoryBytes":1}`),
			"the request was refused: invalid request"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newSandbox(t, "")
			m := warmC(t, s)
			if tt.req != nil {
				m.sendRequest(tt.req())
			} else {
				mustSend(t, m, []byte(tt.frame))
			}
			res := m.wait()
			r := res.report
			if res.exitCode != 0 || !r.NotRun || r.Reason != report.SystemError || !strings.HasPrefix(r.Message, tt.message) {
				t.Errorf("exit %d, report %s; want notRun, message %q", res.exitCode, res.stdout, tt.message)
			}
			if entries, err := os.ReadDir(s.workdir); err != nil || len(entries) > 0 {
				t.Errorf("the workdir holds %v (%v)", entries, err)
			}
			if _, err := os.Stat(filepath.Join(s.dir, "escape")); !os.IsNotExist(err) {
				t.Errorf("a file escaped the input directory (stat: %v)", err)
			}
		})
	}

	// A member without a compile command refuses compile limits.
	s := newSandbox(t, "")
	m := startWarm(t, s, "--run-command", `["cat","main.c"]`)
	req := cRequest(main)
	req.CompileTimeoutSeconds = 5
	m.sendRequest(req)
	if r := m.wait().report; !r.NotRun || !strings.HasPrefix(r.Message, "the request has compile limits, and this member compiles nothing") {
		t.Errorf("report %+v", r)
	}
}

// frame is a request frame of the given JSON, which Encode would refuse to write.
func frame(body string) string { return fmt.Sprintf("%s %d\n%s", delivery.Magic, len(body), body) }

// TestCompiledAsPod runs a compile and a program with the runner as in a pod: PID 1 of its
// PID namespace, as the program's uid. What the compiler leaves behind is killed (and
// reaped) before the program starts, and nothing is left at the end.
func TestCompiledAsPod(t *testing.T) {
	t.Parallel()
	needGCC(t)
	s := newSandbox(t, "")
	// The leftover appends to "beat" every 20 ms; the program says whether it grows.
	compile := `["sh","-c","setsid sh -c 'while :; do echo x >> beat; sleep 0.02; done' </dev/null >/dev/null 2>&1 & while [ ! -s beat ]; do sleep 0.01; done; exec gcc -o main main.c"]`
	run := `["sh","-c","a=$(wc -c < beat); sleep 0.3; b=$(wc -c < beat); [ \"$a\" = \"$b\" ] && echo leftover dead || echo leftover alive; exec ./main \"$@\"","sh","arg"]`
	res := runRunner(t, asPodWrapper(t, s, ""), "--files", s.filesDir(map[string]string{"main.c": helloC}),
		"--workdir", s.workdir, "--run-command", run, "--compile-command", compile, "--env", "GREETING=Hey",
		"--stdin", s.writeStdin("pod\n"))
	res.check(t, report.Completed, 0)
	if want := "leftover dead\nHey, pod\narg 1: [arg]\n"; res.report.Stdout != want {
		t.Errorf("stdout %q, want %q (stderr %q)", res.report.Stdout, want, res.report.Stderr)
	}
	if c := res.report.Compile; c == nil || c.Reason != report.Completed {
		t.Errorf("compile stage %+v", c)
	}
	s.checkNoProcessLeft()
}
