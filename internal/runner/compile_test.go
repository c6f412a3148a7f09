package runner

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coderun-dev/coderun/internal/report"
	"github.com/coderun-dev/coderun/internal/runner/runnertest"
	"github.com/coderun-dev/coderun/internal/testneed"
)

// commandConfig writes files into a files directory and returns a Config that copies them
// into a fresh workdir and runs run there, as a fresh uid when root.
func commandConfig(t *testing.T, files map[string]string, run ...string) Config {
	t.Helper()
	uid := runnertest.UID(t)
	filesDir, workdir := testDirs(t, uid)
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(filesDir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := DefaultConfig()
	cfg.RunCommand = run
	cfg.FilesDir = filesDir
	cfg.Workdir = workdir
	cfg.RunAsUID = uid
	cfg.Timeout = 10 * time.Second
	cfg.Logf = t.Logf
	return cfg
}

func gcc(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("gcc")
	if err != nil {
		testneed.Skip(t, "no gcc here")
	}
	return p
}

const helloC = `#include <stdio.h>
int main(int argc, char **argv) {
	char line[100] = "";
	if (!fgets(line, sizeof line, stdin)) return 2;
	printf("hello %s", line);
	for (int i = 1; i < argc; i++) printf("arg %d: [%s]\n", i, argv[i]);
	fprintf(stderr, "bye\n");
	return 0;
}
`

func TestRunCompiledC(t *testing.T) {
	t.Parallel()
	cfg := commandConfig(t, map[string]string{"main.c": helloC}, "./main")
	cfg.Compile = &CompileConfig{Command: []string{gcc(t), "-O2", "-o", "main", "main.c"}, Timeout: 30 * time.Second, MemoryLimit: 512 << 20}
	cfg.Args = []string{"a b", "$HOME"}
	stdin := filepath.Join(t.TempDir(), "stdin")
	if err := os.WriteFile(stdin, []byte("world\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.Stdin = stdin
	r := Run(context.Background(), cfg)
	checkReport(t, r, report.Completed, 0)
	if want := "hello world\narg 1: [a b]\narg 2: [$HOME]\n"; r.Stdout != want || r.Stderr != "bye\n" {
		t.Errorf("stdout %q, stderr %q; want %q and \"bye\\n\"", r.Stdout, r.Stderr, want)
	}
	c := r.Compile
	if c == nil {
		t.Fatal("no compile stage in the report")
	}
	if c.Reason != report.Completed || c.ExitCode != 0 || c.Output != "" || c.CPUTimeMicros <= 0 || c.WallTimeMicros <= 0 || c.PeakMemoryBytes <= 0 {
		t.Errorf("compile stage %+v", *c)
	}
}

func TestRunCompileError(t *testing.T) {
	t.Parallel()
	// The program would leave a file behind, had it run.
	cfg := commandConfig(t, map[string]string{"main.c": "int main(void) { return 0 }\n"}, "sh", "-c", "echo ran > ran")
	cfg.Compile = &CompileConfig{Command: []string{gcc(t), "-o", "main", "main.c"}, Timeout: 30 * time.Second}
	r := Run(context.Background(), cfg)
	checkReport(t, r, report.CompileError, 0)
	c := r.Compile
	if c == nil || c.Reason != report.NonZeroExit || c.ExitCode != 1 {
		t.Fatalf("compile stage %+v", c)
	}
	if !strings.Contains(c.Stderr, "main.c:1:") || !strings.Contains(c.Stderr, "error") || c.Output != c.Stderr {
		t.Errorf("compile stderr %q, output %q: want gcc's error message in both", c.Stderr, c.Output)
	}
	if r.Stdout != "" || r.Stderr != "" || r.Output != "" || r.WallTimeMicros != 0 {
		t.Errorf("program fields set: %s", report.Encode(r))
	}
	if _, err := os.Stat(filepath.Join(cfg.Workdir, "ran")); !os.IsNotExist(err) {
		t.Errorf("the program ran after a failed compile (stat: %v)", err)
	}
	if r.Message != "the compiler exited with code 1" {
		t.Errorf("message %q", r.Message)
	}
}

func TestRunCompileLimits(t *testing.T) {
	t.Parallel()
	python := runnertest.Python(t)
	for _, tt := range []struct {
		name    string
		compile CompileConfig
		reason  report.Reason
		message string
	}{
		{"time", CompileConfig{Command: []string{"sleep", "30"}, Timeout: time.Second}, report.TimeLimitExceeded, "time limit of 1s exceeded"},
		{"cpu time", CompileConfig{Command: []string{python, "-c", "while True: pass"}, Timeout: time.Second}, report.TimeLimitExceeded, "time limit"},
		{"memory", CompileConfig{Command: []string{python, "-c", "import time\nb = bytearray(300 << 20)\ntime.sleep(30)"},
			Timeout: 20 * time.Second, MemoryLimit: 64 << 20}, report.MemoryLimitExceeded, "memory limit of 64Mi exceeded"},
		{"output", CompileConfig{Command: []string{python, "-c", "while True: print('x' * 1000)"}, Timeout: 20 * time.Second},
			report.OutputLimitExceeded, "output limit of 65536 bytes exceeded"},
		{"signal", CompileConfig{Command: []string{"sh", "-c", "kill -SEGV $$"}, Timeout: 20 * time.Second}, report.Signaled, "the compiler was killed by signal SIGSEGV"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := commandConfig(t, nil, "sh", "-c", "echo ran > ran")
			// The program's own limits are generous: only the compiler's may apply.
			cfg.Timeout, cfg.MemoryLimit = 60*time.Second, 1<<30
			cfg.Compile = &tt.compile
			start := time.Now()
			r := Run(context.Background(), cfg)
			checkReport(t, r, report.CompileError, 0)
			if r.Compile == nil || r.Compile.Reason != tt.reason || !strings.Contains(r.Compile.Message, tt.message) {
				t.Fatalf("compile stage %+v, want reason %s and a message with %q", r.Compile, tt.reason, tt.message)
			}
			if !strings.Contains(r.Message, tt.message) {
				t.Errorf("message %q", r.Message)
			}
			if d := time.Since(start); d > 25*time.Second {
				t.Errorf("the run took %v: the compiler's limit did not stop it", d)
			}
			if _, err := os.Stat(filepath.Join(cfg.Workdir, "ran")); !os.IsNotExist(err) {
				t.Errorf("the program ran after a failed compile (stat: %v)", err)
			}
		})
	}
}

// TestRunCompilerOutputApart checks that what the compiler writes is in the compile
// stage only, never in the program's output.
func TestRunCompilerOutputApart(t *testing.T) {
	t.Parallel()
	cfg := commandConfig(t, nil, "echo", "program")
	cfg.Compile = &CompileConfig{Command: []string{"sh", "-c", "echo compiler-out; echo compiler-err >&2"}, Timeout: 10 * time.Second}
	r := Run(context.Background(), cfg)
	checkReport(t, r, report.Completed, 0)
	if r.Output != "program\n" || r.Stdout != "program\n" || r.Stderr != "" {
		t.Errorf("program output %q, stdout %q, stderr %q", r.Output, r.Stdout, r.Stderr)
	}
	if c := r.Compile; c == nil || c.Stdout != "compiler-out\n" || c.Stderr != "compiler-err\n" || c.Output != "compiler-out\ncompiler-err\n" {
		t.Errorf("compile stage %+v", c)
	}
}

// TestRunCompilerLeftovers checks that a process the compiler leaves behind (in its own
// session) is dead before the program starts.
func TestRunCompilerLeftovers(t *testing.T) {
	t.Parallel()
	// The leftover appends to "beat" every 20 ms; the program says whether it grows.
	cfg := commandConfig(t, nil, "sh", "-c", `a=$(wc -c < beat); sleep 0.3; b=$(wc -c < beat); if [ "$a" = "$b" ]; then echo dead; else echo alive; fi`)
	cfg.Compile = &CompileConfig{Command: []string{"sh", "-c",
		`setsid sh -c 'while :; do echo x >> beat; sleep 0.02; done' </dev/null >/dev/null 2>&1 & while [ ! -s beat ]; do sleep 0.01; done`},
		Timeout: 10 * time.Second}
	r := Run(context.Background(), cfg)
	checkReport(t, r, report.Completed, 0)
	if r.Compile == nil || r.Compile.Reason != report.Completed {
		t.Fatalf("compile stage %+v", r.Compile)
	}
	if r.Stdout != "dead\n" {
		t.Errorf("the program saw the compiler's leftover: %q (stderr %q)", r.Stdout, r.Stderr)
	}
}

func TestRunEnv(t *testing.T) {
	t.Parallel()
	cfg := commandConfig(t, nil, "sh", "-c", `echo "$GREETING|$PATH|$HOME|$LANG"`)
	cfg.Env = []string{"GREETING=hi there", "PATH=/bin:/usr/bin", "HOME=/nowhere"}
	cfg.Compile = &CompileConfig{Command: []string{"sh", "-c", `echo "$GREETING|$PATH"`}, Timeout: 10 * time.Second}
	r := Run(context.Background(), cfg)
	checkReport(t, r, report.Completed, 0)
	if want := "hi there|/bin:/usr/bin|/nowhere|C.UTF-8\n"; r.Stdout != want {
		t.Errorf("program stdout %q, want %q", r.Stdout, want)
	}
	if r.Compile == nil || r.Compile.Stdout != "hi there|/bin:/usr/bin\n" {
		t.Errorf("compile stage %+v", r.Compile)
	}

	// The command is looked up in the program's PATH, not the runner's.
	cfg = commandConfig(t, nil, "sh", "-c", "true")
	cfg.Env = []string{"PATH=/nonexistent"}
	r = Run(context.Background(), cfg)
	checkReport(t, r, report.SystemError, 0)
	if !strings.Contains(r.Message, `could not start the program: "sh" was not found in the program's PATH /nonexistent`) {
		t.Errorf("message %q", r.Message)
	}
}

func TestRunCommandNotFound(t *testing.T) {
	t.Parallel()
	cfg := commandConfig(t, nil, "echo", "never")
	cfg.Compile = &CompileConfig{Command: []string{"no-such-compiler"}, Timeout: 10 * time.Second}
	r := Run(context.Background(), cfg)
	// The image lacks its compiler: the platform's failure, not the program's.
	checkReport(t, r, report.SystemError, 0)
	if r.Compile == nil || r.Compile.Reason != report.SystemError || !strings.Contains(r.Message, `the compile step failed: could not start the compiler: "no-such-compiler" was not found`) {
		t.Errorf("message %q, compile stage %+v", r.Message, r.Compile)
	}
	if r.Output != "" {
		t.Errorf("the program ran: %q", r.Output)
	}
}

// TestRunFiles checks what is copied from FilesDir: regular files, through symlinks as a
// downward API volume has them, not the names starting with '.', and at most
// MaxFilesBytes.
func TestRunFiles(t *testing.T) {
	t.Parallel()
	cfg := commandConfig(t, map[string]string{"main.py": "print('main')\n", "data.txt": "some data\n", ".hidden": "no"},
		"sh", "-c", "ls -A; cat data.txt; cat linked.txt")
	// A downward API volume: the files live in a timestamped directory, ..data links to
	// it, and each name links through ..data.
	ts := filepath.Join(cfg.FilesDir, "..2026_11_30_16_00_00.000")
	if err := os.Mkdir(ts, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ts, "linked.txt"), []byte("through a link\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Base(ts), filepath.Join(cfg.FilesDir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..data/linked.txt", filepath.Join(cfg.FilesDir, "linked.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(cfg.FilesDir, "subdir"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := Run(context.Background(), cfg)
	checkReport(t, r, report.Completed, 0)
	if want := "data.txt\nlinked.txt\nmain.py\nsome data\nthrough a link\n"; r.Stdout != want {
		t.Errorf("stdout %q, want %q (stderr %q)", r.Stdout, want, r.Stderr)
	}
	// The program owns its copies, as it owns the rest of its workdir.
	if fi, err := os.Stat(filepath.Join(cfg.Workdir, "data.txt")); err != nil {
		t.Error(err)
	} else if st := fi.Sys().(*syscall.Stat_t); cfg.RunAsUID != 0 && int(st.Uid) != cfg.RunAsUID {
		t.Errorf("data.txt is owned by uid %d, not the program's %d", st.Uid, cfg.RunAsUID)
	}

	// Too much: refused before anything runs.
	cfg = commandConfig(t, map[string]string{"a": strings.Repeat("a", MaxFilesBytes/2), "b": strings.Repeat("b", MaxFilesBytes/2+1)}, "sh", "-c", "echo ran > ran")
	r = Run(context.Background(), cfg)
	checkReport(t, r, report.SystemError, 0)
	if !strings.Contains(r.Message, "could not copy the program's files") || !strings.Contains(r.Message, "more than 1048576 bytes") {
		t.Errorf("message %q", r.Message)
	}
	if _, err := os.Stat(filepath.Join(cfg.Workdir, "ran")); !os.IsNotExist(err) {
		t.Errorf("the program ran (stat: %v)", err)
	}
}
