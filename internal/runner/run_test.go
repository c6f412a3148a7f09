package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/coderun-dev/coderun/internal/procfs"
	"github.com/coderun-dev/coderun/internal/report"
	"github.com/coderun-dev/coderun/internal/runner/runnertest"
)

// The test binary is the runner here: Run re-executes /proc/self/exe as its exec shim
// and kill helper.
func TestMain(m *testing.M) {
	RunHelperIfRequested(os.Args)
	// Each run starts goroutines (the reaper, pipe readers, the memory sampler): none may
	// outlive its run.
	goleak.VerifyTestMain(m)
}

// testDirs makes a source directory that uid can read and a workdir it can write.
func testDirs(t *testing.T, uid int) (srcDir, workdir string) {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{root, filepath.Dir(root)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	srcDir, workdir = filepath.Join(root, "src"), filepath.Join(root, "work")
	if err := os.Mkdir(srcDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(workdir, 0o700); err != nil {
		t.Fatal(err)
	}
	if uid != 0 {
		if err := os.Chown(workdir, uid, uid); err != nil {
			t.Fatal(err)
		}
	}
	return srcDir, workdir
}

// testConfig writes program to a file and returns a Config that runs it, as a fresh uid
// when root.
func testConfig(t *testing.T, program string) Config {
	t.Helper()
	uid := runnertest.UID(t)
	srcDir, workdir := testDirs(t, uid)
	src := filepath.Join(srcDir, "main.py")
	if err := os.WriteFile(src, []byte(program), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Source = src
	cfg.Python = runnertest.Python(t)
	cfg.Workdir = workdir
	cfg.RunAsUID = uid
	cfg.Timeout = 10 * time.Second
	cfg.Logf = t.Logf
	return cfg
}

func checkReport(t *testing.T, r report.Report, reason report.Reason, exitCode int) {
	t.Helper()
	if r.Reason != reason || r.ExitCode != exitCode {
		t.Errorf("reason %s, exit code %d; want %s, %d\nreport: %s", r.Reason, r.ExitCode, reason, exitCode, report.Encode(r))
	}
	if _, err := report.Parse(report.Encode(r)); err != nil {
		t.Errorf("the report does not parse back: %v", err)
	}
}

func TestRunHelloWorld(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, `print("Hello, World!")`)
	r := Run(context.Background(), cfg)
	checkReport(t, r, report.Completed, 0)
	if r.Output != "Hello, World!\n" || r.Stdout != r.Output || r.Stderr != "" {
		t.Errorf("output %q, stdout %q, stderr %q", r.Output, r.Stdout, r.Stderr)
	}
	if r.WallTimeMicros <= 0 || r.CPUTimeMicros <= 0 || r.PeakMemoryBytes < 1<<20 {
		t.Errorf("implausible measurements: wall %d µs, cpu %d µs, memory %d bytes", r.WallTimeMicros, r.CPUTimeMicros, r.PeakMemoryBytes)
	}
	if r.Message != "" || r.Signal != "" || r.StdoutTruncated || r.StderrTruncated {
		t.Errorf("unexpected fields: %s", report.Encode(r))
	}
}

// TestRunSandbox checks what the program finds around it: its fds, environment, limits,
// directory and OOM score, and that the runner's /proc entries are closed to it.
func TestRunSandbox(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, `
import json, os, resource, sys
def can_open(path):
    try:
        open(path, "rb").close()
        return True
    except OSError:
        return False
runner = os.getppid()
print(json.dumps({
    "fds": sorted(int(fd) for fd in os.listdir("/proc/self/fd")),
    "env": dict(os.environ),
    "cwd": os.getcwd(),
    "argv": sys.argv,
    "flags": [sys.flags.dont_write_bytecode, sys.flags.no_user_site, sys.flags.ignore_environment],
    "limits": {name: resource.getrlimit(getattr(resource, name)) for name in
               ["RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_FSIZE", "RLIMIT_CPU", "RLIMIT_CORE"]},
    "oom_score_adj": open("/proc/self/oom_score_adj").read().strip(),
    "pgid_is_own": os.getpgid(0) == os.getpid(),
    "uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(),
    "runner_fd": can_open(f"/proc/{runner}/fd/1"),
    "runner_mem": can_open(f"/proc/{runner}/mem"),
    "runner_environ": can_open(f"/proc/{runner}/environ"),
}))
`)
	cfg.Timeout = 2500 * time.Millisecond
	cfg.MaxProcesses = 40
	cfg.MaxFileSize = 1 << 20
	cfg.MaxOpenFiles = 100
	r := Run(context.Background(), cfg)
	checkReport(t, r, report.Completed, 0)
	var got struct {
		FDs           []int               `json:"fds"`
		Env           map[string]string   `json:"env"`
		Cwd           string              `json:"cwd"`
		Argv          []string            `json:"argv"`
		Flags         []int               `json:"flags"`
		Limits        map[string][2]int64 `json:"limits"`
		OOMScoreAdj   string              `json:"oom_score_adj"`
		PgidIsOwn     bool                `json:"pgid_is_own"`
		UID, GID      int
		Groups        []int
		RunnerFD      bool `json:"runner_fd"`
		RunnerMem     bool `json:"runner_mem"`
		RunnerEnviron bool `json:"runner_environ"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &got); err != nil {
		t.Fatalf("decoding %q: %v (stderr %q)", r.Stdout, err, r.Stderr)
	}
	// 3 is listdir's own fd.
	if !slices.Equal(got.FDs, []int{0, 1, 2, 3}) {
		t.Errorf("the program has fds %v, want 0 1 2 (and listdir's 3)", got.FDs)
	}
	wantEnv := map[string]string{
		"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": cfg.Workdir, "TMPDIR": cfg.Workdir,
		"LANG": "C.UTF-8", "PYTHONIOENCODING": "utf-8", "PYTHONUNBUFFERED": "1",
		"PYTHONDONTWRITEBYTECODE": "1", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
		"MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg",
	}
	for k, v := range got.Env {
		if want, ok := wantEnv[k]; !ok && k != "LC_CTYPE" { // python may set LC_CTYPE (locale coercion)
			t.Errorf("unexpected environment variable %s=%q", k, v)
		} else if ok && v != want {
			t.Errorf("%s=%q, want %q", k, v, want)
		}
	}
	if got.Cwd != cfg.Workdir {
		t.Errorf("cwd %q, want %q", got.Cwd, cfg.Workdir)
	}
	if !slices.Equal(got.Argv, []string{cfg.Source}) {
		t.Errorf("argv %q", got.Argv)
	}
	if !slices.Equal(got.Flags, []int{1, 1, 0}) {
		t.Errorf("sys.flags (dont_write_bytecode, no_user_site, ignore_environment) = %v", got.Flags)
	}
	wantLimits := map[string][2]int64{
		"RLIMIT_NOFILE": {100, 100}, "RLIMIT_NPROC": {40, 40}, "RLIMIT_FSIZE": {1 << 20, 1 << 20},
		"RLIMIT_CPU": {4, 5}, "RLIMIT_CORE": {0, 0},
	}
	for name, want := range wantLimits {
		if got.Limits[name] != want {
			t.Errorf("%s = %v, want %v", name, got.Limits[name], want)
		}
	}
	if got.OOMScoreAdj != "1000" {
		t.Errorf("oom_score_adj %q", got.OOMScoreAdj)
	}
	if !got.PgidIsOwn {
		t.Error("the program is not the leader of its own process group")
	}
	if cfg.RunAsUID != 0 && (got.UID != cfg.RunAsUID || got.GID != cfg.RunAsUID || len(got.Groups) != 0) {
		t.Errorf("uid %d gid %d groups %v, want %d, %d, none", got.UID, got.GID, got.Groups, cfg.RunAsUID, cfg.RunAsUID)
	}
	if got.RunnerFD || got.RunnerMem || got.RunnerEnviron {
		t.Errorf("the program could open the runner's fd %v, mem %v, environ %v", got.RunnerFD, got.RunnerMem, got.RunnerEnviron)
	}
}

func TestRunTimeout(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "print('started', flush=True)\nwhile True:\n    pass\n")
	cfg.Timeout = time.Second
	start := time.Now()
	r := Run(context.Background(), cfg)
	elapsed := time.Since(start)
	checkReport(t, r, report.TimeLimitExceeded, 137)
	if r.Message != "time limit of 1s exceeded" || r.Signal != "SIGKILL" || r.Output != "started\n" {
		t.Errorf("message %q, signal %q, output %q", r.Message, r.Signal, r.Output)
	}
	if wall := time.Duration(r.WallTimeMicros) * time.Microsecond; wall < time.Second || wall > 2*time.Second {
		t.Errorf("wall time %v, want about 1s", wall)
	}
	if elapsed > 4*time.Second {
		t.Errorf("Run took %v", elapsed)
	}
}

func TestRunOutputLimit(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "import sys\nsys.stderr.write('e' * 10)\nwhile True:\n    print('x' * 1000)\n")
	cfg.OutputLimit = 10000
	r := Run(context.Background(), cfg)
	checkReport(t, r, report.OutputLimitExceeded, 137)
	if len(r.Output) != 10000 || len(r.Stdout) != 9990 || r.Stderr != strings.Repeat("e", 10) {
		t.Errorf("output %d bytes, stdout %d, stderr %q", len(r.Output), len(r.Stdout), r.Stderr)
	}
	if !r.StdoutTruncated || r.StderrTruncated {
		t.Errorf("truncated: stdout %v, stderr %v", r.StdoutTruncated, r.StderrTruncated)
	}
	if r.Message != "output limit of 10000 bytes exceeded" {
		t.Errorf("message %q", r.Message)
	}
}

func TestRunStdin(t *testing.T) {
	t.Parallel()
	const program = "import sys\ndata = sys.stdin.read()\nprint(repr(data))\n"
	for _, tt := range []struct {
		name  string
		stdin func(t *testing.T) string
		want  string
	}{
		{"file", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "in.txt")
			if err := os.WriteFile(p, []byte("alice\nbob\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}, "'alice\\nbob\\n'\n"},
		{"missing file", func(t *testing.T) string { return filepath.Join(t.TempDir(), "missing") }, "''\n"},
		{"none", func(t *testing.T) string { return "" }, "''\n"},
		{"/dev/null", func(t *testing.T) string { return os.DevNull }, "''\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(t, program)
			cfg.Stdin = tt.stdin(t)
			r := Run(context.Background(), cfg)
			checkReport(t, r, report.Completed, 0)
			if r.Stdout != tt.want {
				t.Errorf("stdout %q, want %q (stderr %q)", r.Stdout, tt.want, r.Stderr)
			}
		})
	}
}

func TestRunStopped(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "import time\nprint('waiting', flush=True)\ntime.sleep(60)\n")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(500*time.Millisecond, cancel)
	start := time.Now()
	r := Run(ctx, cfg)
	checkReport(t, r, report.SystemError, 137)
	if r.Message != StoppedMessage || r.Output != "waiting\n" {
		t.Errorf("message %q, output %q", r.Message, r.Output)
	}
	// Not a timing: without the stop, the program sleeps 60 s.
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("Run took %v after the stop", d)
	}

	// A context already cancelled runs nothing.
	r = Run(ctx, cfg)
	if r.Reason != report.SystemError || r.Message != StoppedMessage || r.WallTimeMicros != 0 {
		t.Errorf("with a cancelled context: %s", report.Encode(r))
	}
}

func TestRunSystemErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		change  func(*Config)
		message string
	}{
		{"invalid config", func(c *Config) { c.OutputLimit = 0 }, "invalid configuration"},
		{"python missing", func(c *Config) { c.Python = "/nonexistent/python3" }, "could not find the python interpreter"},
		{"python not found in PATH", func(c *Config) { c.Python = "no-such-python-here" }, "could not find the python interpreter"},
		{"python not executable", func(c *Config) { c.Python = c.Source }, "could not start the program: exec "},
		{"source missing", func(c *Config) { c.Source += ".missing" }, "could not read the source file"},
		{"workdir missing", func(c *Config) { c.Workdir += "/missing" }, "working directory"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(t, "print('never')")
			tt.change(&cfg)
			r := Run(context.Background(), cfg)
			checkReport(t, r, report.SystemError, 0)
			if !strings.Contains(r.Message, tt.message) || r.Output != "" {
				t.Errorf("message %q, want one with %q; output %q", r.Message, tt.message, r.Output)
			}
		})
	}
}

// TestRunLeavesNothing checks that a process that escaped the program's process group
// and session is killed when the main process exits, whichever way the runner cleans up.
func TestRunLeavesNothing(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, `
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        path = os.path.join(os.environ["TMPDIR"], "escaped")
        with open(path + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.rename(path + ".tmp", path)
        time.sleep(60)
    os._exit(0)
while not os.path.exists(os.path.join(os.environ["TMPDIR"], "escaped")):
    time.sleep(0.01)
print("parent done")
`)
	start := time.Now()
	r := Run(context.Background(), cfg)
	checkReport(t, r, report.Completed, 0)
	// Not a timing: had it waited for the escaped process, Run would take 60 s.
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("Run took %v: the escaped process held it", d)
	}
	data, err := os.ReadFile(filepath.Join(cfg.Workdir, "escaped"))
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	if _, err := fmt.Sscan(string(data), &pid); err != nil {
		t.Fatal(err)
	}
	if procfs.Alive(pid) {
		t.Errorf("the escaped process %d is still alive", pid)
	}
	if cfg.RunAsUID != 0 {
		if left := runnertest.LiveProcessesOf(cfg.RunAsUID); len(left) > 0 {
			t.Errorf("processes of uid %d left: %v", cfg.RunAsUID, left)
		}
	}
}
