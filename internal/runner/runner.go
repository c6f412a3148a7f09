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
	"fmt"
	"os"
	"sync"
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
	// maxMessage bounds the runner's messages: report.Parse refuses one over
	// report.MaxMessage, and this leaves room for the rest of a report's Summary in a
	// termination message (report.TerminationMessageLimit).
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

// run runs the program in four phases: open what the program gets, start it, wait for
// its end or a limit, and clean up after it; then it classifies what happened.
func (r *run) run(ctx context.Context) report.Report {
	if ctx.Err() != nil {
		return stopped()
	}
	python, source, err := r.resolvePaths()
	if err != nil {
		return systemError("%v", err)
	}
	f, err := r.openFiles()
	if err != nil {
		return systemError("%v", err)
	}
	defer f.close()
	oomBefore, oomKnown := readOOMKills(cgroupOOMFiles)
	p, err := r.start(python, source, f)
	if err != nil {
		return systemError("could not start the program: %v", err)
	}
	defer p.timer.Stop()
	w := r.wait(ctx, p, f.col)
	r.cleanUp(f.pipes, p.reaped)
	oomAfter, oomAfterKnown := readOOMKills(cgroupOOMFiles)
	return r.classify(classifyInput{
		startFailure: p.startFailure,
		first:        w.first,
		exit:         w.exit,
		start:        p.start,
		output:       f.col.result(),
		memExceeded:  w.memExceeded,
		cgroupOOM:    oomKnown && oomAfterKnown && oomAfter > oomBefore,
		sampledPeak:  w.sampledPeak,
	})
}

func systemError(format string, args ...any) report.Report {
	return report.Report{Reason: report.SystemError, Message: message(fmt.Sprintf(format, args...))}
}

func stopped() report.Report {
	return report.Report{Reason: report.SystemError, Message: StoppedMessage}
}

// SystemErrorReport returns a SystemError report with message, for a runner that cannot
// even run (bad flags).
func SystemErrorReport(message string) report.Report {
	return systemError("%s", message)
}
