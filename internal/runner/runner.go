// Package runner runs one untrusted Python program under limits and reports how it went,
// as a report.Report. It is the library behind cmd/runner, the entrypoint of the Python
// image: in a pod the runner is PID 1 of its container and shares the container's uid with
// the program.
//
// The program is started through an exec shim (the runner's own binary re-executed, see
// RunHelperIfRequested) that applies the rlimits before python starts. It runs in its own
// process group with a clean environment and only fds 0, 1 and 2: its stdin file and two
// pipes that the runner reads, capping the total output. When the main process exits or
// is killed for a limit, the runner kills everything the program started (see
// cleanupMode), drains the pipes for a bounded time and classifies the run.
package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/coderun-dev/coderun/internal/report"
)

const (
	// programPath is the program's PATH.
	programPath = "/usr/local/bin:/usr/bin:/bin"
	// sampleInterval is how often the memory of the program's processes is sampled.
	sampleInterval = 10 * time.Millisecond
	// drainTimeout bounds reading the pipes once every process is killed: a process that
	// escaped with a copy of a pipe cannot hold the runner.
	drainTimeout = 500 * time.Millisecond
	// exitAfterKillTimeout bounds the wait for the main process to exit after SIGKILL.
	exitAfterKillTimeout = 5 * time.Second
	// startTimeout bounds the wait for the shim to execute python.
	startTimeout = 10 * time.Second
	// maxMessage bounds Report.Message (report.Parse refuses longer ones).
	maxMessage = 1024
)

// StoppedMessage is the report's message when the runner is stopped (its context is
// cancelled: SIGTERM or SIGINT) before the program finished.
const StoppedMessage = "the run was stopped before the program finished"

// processWide serializes runs that use process-wide state, a wait4(-1) reaper as PID 1
// or a child subreaper that kills all its children, with every other run. Runs as a
// dedicated uid only touch their own processes and may overlap with each other.
var processWide sync.RWMutex

// Run runs the program that cfg describes and reports how it ended. It always returns a
// report; a failure of the runner itself is a SystemError report. Cancelling ctx kills
// the program and gives a SystemError report with StoppedMessage.
//
// Run makes the calling process non-dumpable (so the program, even as the same uid,
// cannot read the runner's memory or open its fds through /proc) and, for a run as its
// own user outside a container, a child subreaper for the duration of the run. Runs
// with cfg.RunAsUID may overlap; others are serialized with every run.
func Run(ctx context.Context, cfg Config) report.Report {
	if err := cfg.Validate(); err != nil {
		return systemError("invalid configuration: %v", err)
	}
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return systemError("could not make the runner non-dumpable: %v", err)
	}
	r := &run{cfg: cfg, cleanup: chooseCleanup(cfg)}
	if r.cleanup == cleanupUID {
		processWide.RLock()
		defer processWide.RUnlock()
	} else {
		processWide.Lock()
		defer processWide.Unlock()
	}
	if r.cleanup == cleanupDescendants {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			return systemError("could not make the runner a child subreaper: %v", err)
		}
		defer func() { _ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) }()
	}
	return r.run(ctx)
}

// run is the state of one Run.
type run struct {
	cfg     Config
	cleanup cleanupMode
	devNull *os.File
}

func (r *run) logf(format string, args ...any) {
	if r.cfg.Logf != nil {
		r.cfg.Logf(format, args...)
	}
}

// started is what the reaper goroutine says once it has forked the program.
type started struct {
	pid   int
	start time.Time
	err   error
}

// exited is the main process's end, as wait4 reported it.
type exited struct {
	status syscall.WaitStatus
	rusage syscall.Rusage
	end    time.Time
	err    error // wait4 failed: status and rusage are unknown
}

// cause is the first event that ended the run, besides the main process's exit.
type cause int

const (
	causeNone cause = iota
	causeTime
	causeOutput
	causeMemory
	causeStopped
)

func (r *run) run(ctx context.Context) report.Report {
	cfg := r.cfg
	if ctx.Err() != nil {
		return stopped()
	}
	python, err := lookPython(cfg.Python)
	if err != nil {
		return systemError("could not find the python interpreter: %v", err)
	}
	// The program runs in the workdir: a relative path means one from the runner's.
	source, err := filepath.Abs(cfg.Source)
	if err != nil {
		return systemError("could not resolve the source path: %v", err)
	}
	if fi, err := os.Stat(source); err != nil {
		return systemError("could not read the source file: %v", err)
	} else if fi.IsDir() {
		return systemError("the source %s is a directory", cfg.Source)
	}
	if fi, err := os.Stat(cfg.Workdir); err != nil || !fi.IsDir() {
		return systemError("the working directory %s is not a directory", cfg.Workdir)
	}

	// Everything the child gets. Go opens every fd close-on-exec, so the child has
	// exactly these.
	if r.devNull, err = os.Open(os.DevNull); err != nil {
		return systemError("opening %s: %v", os.DevNull, err)
	}
	defer r.devNull.Close()
	stdin, err := openStdin(cfg.Stdin)
	if err != nil {
		return systemError("could not open the stdin file: %v", err)
	}
	defer stdin.Close()
	var readEnds, writeEnds [2]int
	for i := range readEnds {
		if readEnds[i], writeEnds[i], err = outputPipe(); err != nil {
			closeFDs(readEnds[:i]...)
			closeFDs(writeEnds[:i]...)
			return systemError("creating a pipe: %v", err)
		}
	}
	col := newCollector(cfg.OutputLimit)
	// Reading starts before the fork, so nothing can fail after it.
	pipes, err := newPipeReader(col, readEnds)
	if err != nil {
		closeFDs(readEnds[:]...)
		closeFDs(writeEnds[:]...)
		return systemError("reading the program's output: %v", err)
	}
	// The reader owns the read ends now; stopping it closes them.
	defer func() { _ = pipes.stop(time.Now()) }()
	writeEndsOpen := true
	closeWriteEnds := func() {
		if writeEndsOpen {
			closeFDs(writeEnds[:]...)
			writeEndsOpen = false
		}
	}
	defer closeWriteEnds()
	statusR, statusW, err := os.Pipe()
	if err != nil {
		return systemError("creating a pipe: %v", err)
	}
	defer statusR.Close()
	defer statusW.Close()
	files := []uintptr{stdin.Fd(), uintptr(writeEnds[0]), uintptr(writeEnds[1]), statusW.Fd()}

	argv := []string{python, "-u", "-B", "-s", source}
	attr := &syscall.ProcAttr{
		Dir:   cfg.Workdir,
		Env:   programEnv(cfg.Workdir),
		Files: files,
		Sys: &syscall.SysProcAttr{
			Setpgid:   true,
			Pdeathsig: syscall.SIGKILL,
		},
	}
	if cfg.RunAsUID != 0 {
		id := uint32(cfg.RunAsUID)
		attr.Sys.Credential = &syscall.Credential{Uid: id, Gid: id, Groups: []uint32{}}
	}

	oomBefore, oomKnown := readOOMKills(cgroupOOMFiles)

	startedCh := make(chan started, 1)
	exitedCh := make(chan exited, 1)
	reaped := make(chan struct{})
	grp := &group{}
	go r.reap(cfg.Self, shimArgs(cfg, python, argv), attr, grp, startedCh, exitedCh, reaped)
	st := <-startedCh
	if st.err != nil {
		return systemError("could not start the program: %v", st.err)
	}
	pid := st.pid
	timer := time.NewTimer(cfg.Timeout)
	defer timer.Stop()
	// Only the child holds the write ends now, so the reads end at its exit.
	closeWriteEnds()
	statusW.Close()
	stdin.Close()

	// The shim says nothing and closes the status pipe when it executes python.
	_ = statusR.SetReadDeadline(time.Now().Add(startTimeout))
	msg, _ := io.ReadAll(io.LimitReader(statusR, maxMessage))
	startFailure := strings.TrimSpace(string(msg))

	// Sample the memory of the program's processes until the main process exits.
	memExceeded := make(chan struct{})
	stopSampler := make(chan struct{})
	peakCh := make(chan int64, 1)
	go r.sample(pid, stopSampler, memExceeded, peakCh)

	var first cause
	var exit exited
	timeCh := timer.C
	outputCh, memCh, doneCh := col.exceededCh, memExceeded, ctx.Done()
	var giveUp <-chan time.Time
wait:
	for {
		var c cause
		select {
		case exit = <-exitedCh:
			break wait
		case <-timeCh:
			c, timeCh = causeTime, nil
		case <-outputCh:
			c, outputCh = causeOutput, nil
		case <-memCh:
			c, memCh = causeMemory, nil
		case <-doneCh:
			c, doneCh = causeStopped, nil
		case <-giveUp:
			exit = exited{err: errors.New("the program did not exit after SIGKILL"), end: time.Now()}
			break wait
		}
		// An exit that came at the same time wins over the event.
		select {
		case exit = <-exitedCh:
			break wait
		default:
		}
		if first == causeNone {
			first = c
			giveUp = time.After(exitAfterKillTimeout)
		}
		grp.kill()
	}
	close(stopSampler)
	sampledPeak := <-peakCh

	// Kill whatever the program left behind. The reaper has killed the process group
	// already, before it reaped the main process.
	switch r.cleanup {
	case cleanupNamespace:
		killNamespace()
	case cleanupUID:
		r.killUID(cfg.RunAsUID)
	case cleanupDescendants:
		r.killDescendants()
	}

	// Drain the pipes, for a bounded time.
	if err := pipes.stop(time.Now().Add(drainTimeout)); err != nil {
		r.logf("reading the program's output: %v", err)
	}
	if r.cleanup == cleanupNamespace {
		select {
		case <-reaped:
		case <-time.After(cleanupTimeout):
			r.logf("processes left unreaped")
		}
	}
	oomAfter, oomAfterKnown := readOOMKills(cgroupOOMFiles)

	rep := r.classify(classifyInput{
		startFailure: startFailure,
		first:        first,
		exit:         exit,
		start:        st.start,
		output:       col.result(),
		memExceeded:  isClosed(memExceeded),
		cgroupOOM:    oomKnown && oomAfterKnown && oomAfter > oomBefore,
		sampledPeak:  sampledPeak,
	})
	return rep
}

// group is the program's process group, whose id is the main process's pid. Killing it
// is safe until the main process is reaped: until then no other process can get that
// pid, so no other group can have that id.
type group struct {
	mu     sync.Mutex
	pgid   int
	reaped bool
}

// kill kills the group unless the main process has been reaped.
func (g *group) kill() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.reaped {
		killGroup(g.pgid)
	}
}

// reap kills the group one last time and reaps the main process with reapFn.
func (g *group) reap(reapFn func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	killGroup(g.pgid)
	reapFn()
	g.reaped = true
}

// reap forks the program and waits for it. It runs on a locked OS thread because
// Pdeathsig follows the thread that forked, not the process.
//
// Outside a container it waits for the main process's exit without reaping it
// (waitid WNOWAIT), kills the process group while the pid cannot be reused, then reaps
// it. As PID 1 it reaps every orphan too, with one wait4(-1) loop that picks out the main
// process's status, and closes reaped when no child is left; there the namespace holds
// only the program's processes, and kill(-1) follows.
func (r *run) reap(self string, args []string, attr *syscall.ProcAttr, grp *group, startedCh chan<- started, exitedCh chan<- exited, reaped chan<- struct{}) {
	defer close(reaped)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := time.Now()
	grp.mu.Lock()
	pid, err := syscall.ForkExec(self, append([]string{self}, args...), attr)
	grp.pgid = pid
	grp.mu.Unlock()
	startedCh <- started{pid: pid, start: start, err: err}
	if err != nil {
		return
	}
	var ws syscall.WaitStatus
	var ru syscall.Rusage
	if r.cleanup != cleanupNamespace {
		var info unix.Siginfo
		for {
			err = unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
			if err != unix.EINTR {
				break
			}
		}
		end := time.Now()
		grp.reap(func() {
			for {
				_, err = syscall.Wait4(pid, &ws, 0, &ru)
				if err != syscall.EINTR {
					break
				}
			}
		})
		if err != nil {
			exitedCh <- exited{err: fmt.Errorf("waiting for the program: %w", err), end: end}
		} else {
			exitedCh <- exited{status: ws, rusage: ru, end: end}
		}
		return
	}
	mainDone := false
	for {
		got, err := syscall.Wait4(-1, &ws, 0, &ru)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			if !mainDone {
				exitedCh <- exited{err: fmt.Errorf("waiting for the program: %w", err), end: time.Now()}
			}
			return
		}
		if got == pid {
			end := time.Now()
			grp.reap(func() {})
			exitedCh <- exited{status: ws, rusage: ru, end: end}
			mainDone = true
		}
	}
}

// sample measures the resident memory of the program's processes every sampleInterval
// until stop is closed, closes exceeded when it goes over the memory limit, and then
// sends the peak. As PID 1 or a subreaper, the runner's other children (orphans of the
// program) count too.
func (r *run) sample(pid int, stop <-chan struct{}, exceeded chan<- struct{}, peakCh chan<- int64) {
	ticker := time.NewTicker(sampleInterval)
	defer ticker.Stop()
	roots := func() []int { return []int{pid} }
	if r.cleanup != cleanupUID {
		self := os.Getpid()
		roots = func() []int { return append([]int{pid}, childrenOf(self)...) }
	}
	var peak int64
	fired := false
	for {
		rss := treeMemory(roots())
		peak = max(peak, rss)
		if !fired && r.cfg.MemoryLimit > 0 && rss > r.cfg.MemoryLimit {
			fired = true
			close(exceeded)
		}
		select {
		case <-stop:
			peakCh <- peak
			return
		case <-ticker.C:
		}
	}
}

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
		rep.Message = clip(in.exit.err.Error())
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
		rep.Message = clip("could not start the program: " + in.startFailure)
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
		rep.Message = "the program was killed by the out-of-memory killer: the container's memory limit was reached"
	case in.first == causeStopped:
		rep.Reason = report.SystemError
		rep.Message = StoppedMessage
	case sig != 0:
		rep.Reason = report.Signaled
		rep.Message = fmt.Sprintf("the program was killed by signal %s (%s)", rep.Signal, sig)
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

// programEnv is the program's whole environment: nothing comes from the runner's own.
func programEnv(workdir string) []string {
	return []string{
		"PATH=" + programPath,
		"HOME=" + workdir,
		"TMPDIR=" + workdir,
		"LANG=C.UTF-8",
		"PYTHONIOENCODING=utf-8",
		"PYTHONUNBUFFERED=1",
		"PYTHONDONTWRITEBYTECODE=1",
		"OPENBLAS_NUM_THREADS=1",
		"OMP_NUM_THREADS=1",
		"MKL_NUM_THREADS=1",
		"MPLBACKEND=Agg",
	}
}

// lookPython resolves the interpreter: a name without a slash is looked up in the
// runner's PATH, then in the program's.
func lookPython(name string) (string, error) {
	if strings.Contains(name, "/") {
		// The program starts in the workdir: a relative path means one from the runner's.
		abs, err := filepath.Abs(name)
		if err != nil {
			return "", err
		}
		if _, err := os.Stat(abs); err != nil {
			return "", err
		}
		return abs, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range strings.Split(programPath, ":") {
		p := dir + "/" + name
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%q not found in PATH", name)
}

// openStdin opens the program's stdin: the file, or /dev/null when there is none.
func openStdin(name string) (*os.File, error) {
	if name != "" {
		f, err := os.Open(name)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	return os.Open(os.DevNull)
}

func closeFDs(fds ...int) {
	for _, fd := range fds {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func systemError(format string, args ...any) report.Report {
	return report.Report{Reason: report.SystemError, Message: clip(fmt.Sprintf(format, args...))}
}

func stopped() report.Report {
	return report.Report{Reason: report.SystemError, Message: StoppedMessage}
}

// SystemErrorReport returns a SystemError report with message, for a runner that cannot
// even run (bad flags).
func SystemErrorReport(message string) report.Report {
	return systemError("%s", message)
}

// clip bounds a message to maxMessage bytes without cutting a character.
func clip(s string) string {
	if len(s) <= maxMessage {
		return s
	}
	s = s[:maxMessage]
	return strings.ToValidUTF8(s[:len(s)-incompleteTail([]byte(s))], "")
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
