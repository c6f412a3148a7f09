package runner

import (
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/coderun-dev/coderun/internal/report"
)

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

func TestMessage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		check    func(got string) bool
	}{
		{"short", "short", func(got string) bool { return got == "short" }},
		// 2 bytes each: the cut falls inside a character, which is dropped whole.
		{"long", "x" + strings.Repeat("é", maxMessage), func(got string) bool {
			return len(got) == maxMessage-1 && strings.HasPrefix(got, "xé") && strings.HasSuffix(got, "é")
		}},
		{"invalid UTF-8", "a\xffb", func(got string) bool { return got == "a\uFFFDb" }},
		{"long and invalid", strings.Repeat("\xff", maxMessage), func(got string) bool {
			return len(got) <= maxMessage && strings.HasPrefix(got, "\uFFFD")
		}},
	}
	for _, tt := range tests {
		got := message(tt.in)
		if !tt.check(got) || !utf8.ValidString(got) || len(got) > maxMessage {
			t.Errorf("%s: message gave %d bytes: %q", tt.name, len(got), got)
		}
	}
}

// TestSystemErrorBound checks that the runner's longest messages fit report's bound: a
// report with one parses back unchanged.
func TestSystemErrorBound(t *testing.T) {
	t.Parallel()
	for _, long := range []string{strings.Repeat("x", 2*report.MaxMessage), strings.Repeat("世\xff", report.MaxMessage)} {
		r := SystemErrorReport(long)
		if len(r.Message) > maxMessage {
			t.Errorf("message of %d bytes, want at most %d", len(r.Message), maxMessage)
		}
		got, err := report.Parse(report.Encode(r))
		if err != nil || got.Message != r.Message {
			t.Errorf("a report with a %d-byte message does not parse back: %v", len(r.Message), err)
		}
	}
}
