package runner

import (
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coderun-dev/coderun/internal/report"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	valid := DefaultConfig()
	valid.Source = "/code/main.py"
	if err := valid.Validate(); err != nil {
		t.Fatalf("default config with a source: %v", err)
	}
	tests := []struct {
		name    string
		change  func(*Config)
		wantErr string
	}{
		{"no source", func(c *Config) { c.Source = "" }, "source file is required"},
		{"no python", func(c *Config) { c.Python = "" }, "python"},
		{"no workdir", func(c *Config) { c.Workdir = "" }, "working directory"},
		{"zero timeout", func(c *Config) { c.Timeout = 0 }, "timeout"},
		{"negative timeout", func(c *Config) { c.Timeout = -time.Second }, "timeout"},
		{"huge timeout", func(c *Config) { c.Timeout = MaxTimeout + 1 }, "timeout"},
		{"zero output limit", func(c *Config) { c.OutputLimit = 0 }, "output limit"},
		{"output limit over the maximum", func(c *Config) { c.OutputLimit = report.MaxOutputLimit + 1 }, "output limit"},
		{"output limit at the maximum", func(c *Config) { c.OutputLimit = report.MaxOutputLimit }, ""},
		{"negative memory limit", func(c *Config) { c.MemoryLimit = -1 }, "memory limit"},
		{"zero processes", func(c *Config) { c.MaxProcesses = 0 }, "max processes"},
		{"negative file size", func(c *Config) { c.MaxFileSize = -1 }, "file size"},
		{"zero file size", func(c *Config) { c.MaxFileSize = 0 }, ""},
		{"too few open files", func(c *Config) { c.MaxOpenFiles = 3 }, "open files"},
		{"negative uid", func(c *Config) { c.RunAsUID = -5 }, "uid"},
		{"uid too large", func(c *Config) { c.RunAsUID = 1 << 32 }, "uid"},
		{"no self", func(c *Config) { c.Self = "" }, "executable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid
			tt.change(&c)
			err := c.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("error %v, want one about %q", err, tt.wantErr)
			}
		})
	}
	t.Run("uid needs root", func(t *testing.T) {
		c := valid
		c.RunAsUID = 12345
		err := c.Validate()
		if root := os.Geteuid() == 0; root != (err == nil) {
			t.Errorf("root %v, error %v", root, err)
		}
	})
}

func TestCPULimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		timeout    time.Duration
		soft, hard uint64
	}{
		{time.Millisecond, 2, 3},
		{time.Second, 2, 3},
		{time.Second + time.Nanosecond, 3, 4},
		{1500 * time.Millisecond, 3, 4},
		{10 * time.Second, 11, 12},
	}
	for _, tt := range tests {
		c := Config{Timeout: tt.timeout}
		if soft, hard := c.cpuLimitSeconds(); soft != tt.soft || hard != tt.hard {
			t.Errorf("timeout %v: RLIMIT_CPU %d/%d, want %d/%d", tt.timeout, soft, hard, tt.soft, tt.hard)
		}
	}
}

// TestClassify covers the precedence of reasons, including what no real run here can
// produce: the CPU rlimit backstop and the cgroup's OOM killer.
func TestClassify(t *testing.T) {
	t.Parallel()
	exitCode := func(code int) syscall.WaitStatus { return syscall.WaitStatus(code << 8) }
	killedBy := func(sig syscall.Signal) syscall.WaitStatus { return syscall.WaitStatus(sig) }
	cfg := DefaultConfig()
	cfg.Timeout = 2 * time.Second // RLIMIT_CPU 3 s soft, 4 s hard
	cfg.MemoryLimit = 1 << 20
	start := time.Unix(1000, 0)
	end := start.Add(1500 * time.Millisecond)
	cpu := func(d time.Duration) syscall.Rusage {
		return syscall.Rusage{Utime: syscall.NsecToTimeval(int64(d) / 2), Stime: syscall.NsecToTimeval(int64(d) / 2), Maxrss: 2048}
	}
	tests := []struct {
		name     string
		in       classifyInput
		reason   report.Reason
		exitCode int
		signal   string
		message  string
	}{
		{"completed", classifyInput{exit: exited{status: exitCode(0)}}, report.Completed, 0, "", ""},
		{"non-zero exit", classifyInput{exit: exited{status: exitCode(3)}}, report.NonZeroExit, 3, "", ""},
		{"signal", classifyInput{exit: exited{status: killedBy(syscall.SIGSEGV)}}, report.Signaled, 139, "SIGSEGV", "the program was killed by signal SIGSEGV (segmentation fault)"},
		{"SIGKILL from elsewhere", classifyInput{exit: exited{status: killedBy(syscall.SIGKILL), rusage: cpu(time.Second)}}, report.Signaled, 137, "SIGKILL", "SIGKILL"},
		{"wall-clock timeout", classifyInput{first: causeTime, exit: exited{status: killedBy(syscall.SIGKILL)}}, report.TimeLimitExceeded, 137, "SIGKILL", "time limit of 2s exceeded"},
		{"timeout wins over output and memory", classifyInput{first: causeTime, output: collected{exceeded: true}, memExceeded: true, exit: exited{status: killedBy(syscall.SIGKILL)}}, report.TimeLimitExceeded, 137, "SIGKILL", "time limit"},
		{"SIGXCPU at the soft CPU limit", classifyInput{exit: exited{status: killedBy(syscall.SIGXCPU), rusage: cpu(3 * time.Second)}}, report.TimeLimitExceeded, 152, "SIGXCPU", "CPU time limit of 3s exceeded"},
		{"SIGKILL at the hard CPU limit", classifyInput{exit: exited{status: killedBy(syscall.SIGKILL), rusage: cpu(4 * time.Second)}}, report.TimeLimitExceeded, 137, "SIGKILL", "CPU time limit"},
		{"SIGXCPU raised by the program", classifyInput{exit: exited{status: killedBy(syscall.SIGXCPU), rusage: cpu(time.Second)}}, report.Signaled, 152, "SIGXCPU", "SIGXCPU"},
		{"output limit", classifyInput{first: causeOutput, output: collected{exceeded: true}, exit: exited{status: killedBy(syscall.SIGKILL)}}, report.OutputLimitExceeded, 137, "SIGKILL", "output limit of 65536 bytes exceeded"},
		{"output limit found after a clean exit", classifyInput{output: collected{exceeded: true}, exit: exited{status: exitCode(0)}}, report.OutputLimitExceeded, 0, "", "output limit"},
		{"output wins over memory", classifyInput{output: collected{exceeded: true}, memExceeded: true, exit: exited{status: killedBy(syscall.SIGKILL)}}, report.OutputLimitExceeded, 137, "SIGKILL", "output limit"},
		{"memory sampler", classifyInput{first: causeMemory, memExceeded: true, exit: exited{status: killedBy(syscall.SIGKILL)}}, report.MemoryLimitExceeded, 137, "SIGKILL", "memory limit of 1Mi exceeded"},
		{"cgroup OOM kill", classifyInput{cgroupOOM: true, exit: exited{status: killedBy(syscall.SIGKILL), rusage: cpu(5 * time.Second)}}, report.MemoryLimitExceeded, 137, "SIGKILL", "out-of-memory"},
		{"cgroup OOM count but a normal exit", classifyInput{cgroupOOM: true, exit: exited{status: exitCode(1)}}, report.NonZeroExit, 1, "", ""},
		{"stopped", classifyInput{first: causeStopped, exit: exited{status: killedBy(syscall.SIGKILL)}}, report.SystemError, 137, "SIGKILL", StoppedMessage},
		{"start failure", classifyInput{startFailure: "exec /x: permission denied", exit: exited{status: exitCode(127)}}, report.SystemError, 0, "", "could not start the program: exec /x: permission denied"},
		{"wait failure", classifyInput{exit: exited{err: errors.New("the program did not exit after SIGKILL")}}, report.SystemError, 0, "", "did not exit"},
	}
	r := &run{cfg: cfg}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.in.start = start
			if tt.in.exit.end.IsZero() {
				tt.in.exit.end = end
			}
			got := r.classify(tt.in)
			if got.Reason != tt.reason || got.ExitCode != tt.exitCode || got.Signal != tt.signal {
				t.Errorf("got %s exit %d signal %q, want %s exit %d signal %q", got.Reason, got.ExitCode, got.Signal, tt.reason, tt.exitCode, tt.signal)
			}
			if !strings.Contains(got.Message, tt.message) || (tt.message == "") != (got.Message == "") {
				t.Errorf("message %q, want one with %q", got.Message, tt.message)
			}
			if got.WallTimeMicros != 1_500_000 {
				t.Errorf("wall time %d µs", got.WallTimeMicros)
			}
			if tt.in.exit.err == nil && got.PeakMemoryBytes != tt.in.exit.rusage.Maxrss*1024 {
				t.Errorf("peak memory %d, want %d", got.PeakMemoryBytes, tt.in.exit.rusage.Maxrss*1024)
			}
			if _, err := report.Parse(report.Encode(got)); err != nil {
				t.Errorf("the report does not parse: %v", err)
			}
		})
	}
}

func TestParseOOMKills(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in     string
		n      int64
		wantOK bool
	}{
		{"low 0\nhigh 0\nmax 3\noom 2\noom_kill 2\noom_group_kill 0\n", 2, true},
		{"oom_kill_disable 0\nunder_oom 0\noom_kill 17\n", 17, true},
		{"oom_kill_disable 0\nunder_oom 0\n", 0, false},
		{"", 0, false},
		{"oom_kill x\n", 0, false},
	}
	for _, tt := range tests {
		n, ok := parseOOMKills([]byte(tt.in))
		if n != tt.n || ok != tt.wantOK {
			t.Errorf("parseOOMKills(%q) = %d, %v; want %d, %v", tt.in, n, ok, tt.n, tt.wantOK)
		}
	}
	if _, ok := readOOMKills([]string{"/nonexistent/memory.events"}); ok {
		t.Error("a missing file gave a count")
	}
}

func TestClip(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", maxMessage) // 2 bytes each
	got := clip("x" + long)
	if len(got) > maxMessage || !strings.HasPrefix(got, "xé") || strings.ContainsRune(got, '\uFFFD') {
		t.Errorf("clip gave %d bytes ending in %q", len(got), got[len(got)-4:])
	}
	if clip("short") != "short" {
		t.Error("clip changed a short message")
	}
}

// TestProcessTree is not parallel: as a child subreaper (a run as one's own user), Run
// kills every child of the process, the sleep below too.
func TestProcessTree(t *testing.T) {
	tests := []struct {
		stat string
		ppid int
		ok   bool
	}{
		{"1234 (python3) S 1 1234 1234 0 -1", 1, true},
		{"1234 (a b) c) R 77 1 1", 77, true},
		{"1234 (x)", 0, false},
		{"garbage", 0, false},
	}
	for _, tt := range tests {
		if ppid, ok := parentFromStat(tt.stat); ppid != tt.ppid || ok != tt.ok {
			t.Errorf("parentFromStat(%q) = %d, %v", tt.stat, ppid, ok)
		}
	}

	cmd := exec.Command("sleep", "10")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	self := os.Getpid()
	if kids := childrenOf(self); !slices.Contains(kids, cmd.Process.Pid) {
		t.Errorf("childrenOf(self) = %v, missing %d", kids, cmd.Process.Pid)
	}
	if kids := childrenByParent(self); !slices.Contains(kids, cmd.Process.Pid) {
		t.Errorf("childrenByParent(self) = %v, missing %d", kids, cmd.Process.Pid)
	}
	if own, child, tree := residentBytes(self), residentBytes(cmd.Process.Pid), treeMemory([]int{self}); own <= 0 || child <= 0 || tree <= child {
		t.Errorf("own RSS %d, the child's %d, the tree's %d", own, child, tree)
	}
	if pss, ok := proportionalBytes(self); !ok || pss <= 0 || pss > residentBytes(self) {
		t.Errorf("own PSS %d (ok %v), want positive and at most the RSS", pss, ok)
	}
	if childrenOf(1<<30) != nil || residentBytes(1<<30) != 0 {
		t.Error("a missing process has children or memory")
	}
}
