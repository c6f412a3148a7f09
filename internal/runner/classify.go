package runner

import (
	"cmp"
	"fmt"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/coderun-dev/coderun/internal/report"
	"github.com/coderun-dev/coderun/internal/textcut"
)

// classifyInput is everything a run's report is made of.
type classifyInput struct {
	startFailure string
	first        cause
	exit         exited
	start        time.Time
	output       collected
	memExceeded  bool
	cgroupOOM    bool
	sampledPeak  int64
}

// classify builds the report. Precedence: the runner's time limit (wall clock, or the CPU
// rlimit), the output limit, the memory limit (sampled, or the cgroup's OOM killer), a
// stop, a signal, the exit code.
func (r *run) classify(in classifyInput) report.Report {
	cfg := r.cfg
	what := cmp.Or(r.what, "program")
	rep := report.Report{
		Stdout:          in.output.stdout,
		Stderr:          in.output.stderr,
		Output:          in.output.combined,
		StdoutTruncated: in.output.stdoutTruncated,
		StderrTruncated: in.output.stderrTruncated,
		WallTimeMicros:  max(in.exit.end.Sub(in.start).Microseconds(), 0),
		PeakMemoryBytes: max(in.sampledPeak, 0),
	}
	if in.exit.err != nil {
		rep.Reason = report.SystemError
		rep.Message = message(in.exit.err.Error())
		return rep
	}
	ws, ru := in.exit.status, in.exit.rusage
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	rep.CPUTimeMicros = cpu.Microseconds()
	rep.PeakMemoryBytes = max(rep.PeakMemoryBytes, ru.Maxrss*1024)
	var sig syscall.Signal
	switch {
	case ws.Exited():
		rep.ExitCode = ws.ExitStatus()
	case ws.Signaled():
		sig = ws.Signal()
		rep.ExitCode = min(128+int(sig), 255)
		rep.Signal = signalName(sig)
	}
	if in.startFailure != "" {
		rep.Reason = report.SystemError
		rep.Message = message("could not start the " + what + ": " + in.startFailure)
		rep.ExitCode, rep.Signal = 0, ""
		return rep
	}

	cpuSoft, cpuHard := cfg.cpuLimitSeconds()
	const slack = 500 * time.Millisecond
	cpuLimited := (sig == syscall.SIGXCPU && cpu >= time.Duration(cpuSoft)*time.Second-slack) ||
		(sig == syscall.SIGKILL && !in.cgroupOOM && cpu >= time.Duration(cpuHard)*time.Second-slack)

	switch {
	case in.first == causeTime:
		rep.Reason = report.TimeLimitExceeded
		rep.Message = fmt.Sprintf("time limit of %s exceeded", cfg.Timeout)
	case cpuLimited:
		rep.Reason = report.TimeLimitExceeded
		rep.Message = fmt.Sprintf("CPU time limit of %ds exceeded (the time limit is %s)", cpuSoft, cfg.Timeout)
	case in.output.exceeded:
		rep.Reason = report.OutputLimitExceeded
		rep.Message = fmt.Sprintf("output limit of %d bytes exceeded", cfg.OutputLimit)
	case in.memExceeded:
		rep.Reason = report.MemoryLimitExceeded
		rep.Message = fmt.Sprintf("memory limit of %s exceeded", formatBytes(cfg.MemoryLimit))
	case in.cgroupOOM && sig == syscall.SIGKILL:
		rep.Reason = report.MemoryLimitExceeded
		rep.Message = "the " + what + " was killed by the out-of-memory killer: the container's memory limit was reached"
	case in.first == causeStopped:
		rep.Reason = report.SystemError
		rep.Message = StoppedMessage
	case sig != 0:
		rep.Reason = report.Signaled
		rep.Message = fmt.Sprintf("the %s was killed by signal %s (%s)", what, rep.Signal, sig)
	case rep.ExitCode == 0:
		rep.Reason = report.Completed
	default:
		rep.Reason = report.NonZeroExit
	}
	return rep
}

// signalName returns the conventional name of sig, such as "SIGSEGV".
func signalName(sig syscall.Signal) string {
	if name := unix.SignalName(sig); name != "" {
		return name
	}
	return fmt.Sprintf("SIG%d", int(sig))
}

// formatBytes writes n the way Kubernetes quantities do when it is a whole number of
// MiB or KiB ("256Mi"), so that messages match the limits users wrote.
func formatBytes(n int64) string {
	switch {
	case n > 0 && n%(1<<30) == 0:
		return fmt.Sprintf("%dGi", n>>30)
	case n > 0 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMi", n>>20)
	case n > 0 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKi", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// message bounds a report's message to maxMessage bytes, not splitting a character. Bytes
// that are not UTF-8 become U+FFFD first, as JSON encoding would make them, so the
// message keeps its bound once encoded and parses back unchanged.
func message(s string) string {
	return textcut.Prefix(strings.ToValidUTF8(s, "\uFFFD"), maxMessage)
}
