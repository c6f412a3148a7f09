// Package runner runs one untrusted program (and, before it, its compiler, if it has one)
// under limits and reports how it went, as a report.Report. It is the library behind
// cmd/runner, the entrypoint of every language's image: in a pod the runner is PID 1 of
// its container and shares the container's uid with the program.
//
// The program is started through an exec shim (the runner's own binary re-executed, see
// RunHelperIfRequested) that applies the rlimits before the program starts. It runs in its own
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
	// startTimeout bounds the wait for the shim to execute the program.
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
// With cfg.FilesDir the files are copied into the workdir first; with cfg.Compile the
// compiler runs next, as the program would (same uid, rlimits, seccomp filter and
// output limit; its own time and memory limits), every process it left is killed, and
// only a compiler that exited 0 lets the program run. Otherwise the report's reason is
// CompileError (SystemError when the compiler could not even start) and its Compile
// stage says why.
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
	cleanup := chooseCleanup(cfg)
	if cleanup == cleanupUID {
		processWide.RLock()
		defer processWide.RUnlock()
	} else {
		processWide.Lock()
		defer processWide.Unlock()
	}
	if cleanup == cleanupDescendants {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			return systemError("could not make the runner a child subreaper: %v", err)
		}
		defer func() { _ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) }()
	}
	if ctx.Err() != nil {
		return stopped()
	}
	if cfg.FilesDir != "" {
		if err := copyFiles(cfg.FilesDir, cfg.Workdir, cfg.RunAsUID); err != nil {
			return systemError("could not copy the program's files: %v", err)
		}
	}
	var compile *report.Stage
	if cfg.Compile != nil {
		// The compiler is run like a program: every phase, the cleanup included (which
		// kills whatever it left behind before the program starts), is the same.
		step := &run{cfg: cfg.compileStep(), cleanup: cleanup, what: "compiler"}
		rep := step.run(ctx)
		stage := report.StageOf(rep)
		compile = &stage
		if rep.Reason != report.Completed {
			return compileFailed(stage)
		}
		if step.unreaped {
			return report.Report{Reason: report.SystemError, Compile: compile,
				Message: "processes the compiler left behind could not be reaped; the program was not run"}
		}
	}
	rep := (&run{cfg: cfg, cleanup: cleanup, what: "program"}).run(ctx)
	rep.Compile = compile
	return rep
}

// compileStep is the Config of c's compile step: c's, with the compiler as the program,
// its own limits and no stdin.
func (c Config) compileStep() Config {
	s := c
	s.RunCommand, s.Args, s.Source = c.Compile.Command, nil, ""
	s.Timeout, s.MemoryLimit = c.Compile.Timeout, c.Compile.MemoryLimit
	s.Stdin, s.FilesDir, s.Compile = "", "", nil
	return s
}

// compileFailed is the report of a run whose compile step did not complete: the
// program was not run. A compiler that could not start, or a stopped runner, is the
// platform's failure, not the program's.
func compileFailed(stage report.Stage) report.Report {
	r := report.Report{Reason: report.CompileError, Compile: &stage}
	switch {
	case stage.Reason == report.SystemError:
		r.Reason = report.SystemError
		r.Message = message("the compile step failed: " + stage.Message)
	case stage.Message != "":
		r.Message = message("the compile step failed: " + stage.Message)
	default:
		r.Message = fmt.Sprintf("the compiler exited with code %d", stage.ExitCode)
	}
	return r
}

// run is the state of one step of a Run: the compiler's or the program's.
type run struct {
	cfg     Config
	cleanup cleanupMode
	devNull *os.File
	// what the step runs, "program" or "compiler", for messages.
	what string
	// unreaped: as PID 1, processes were left that cleanUp could not reap in time. Its
	// reaper still waits for any child, so no other step may start.
	unreaped bool
}

func (r *run) logf(format string, args ...any) {
	if r.cfg.Logf != nil {
		r.cfg.Logf(format, args...)
	}
}

// run runs the step in four phases: open what it gets, start it, wait for its end or a
// limit, and clean up after it; then it classifies what happened.
func (r *run) run(ctx context.Context) report.Report {
	if ctx.Err() != nil {
		return stopped()
	}
	path, argv, err := r.resolvePaths()
	if err != nil {
		return systemError("%v", err)
	}
	f, err := r.openFiles()
	if err != nil {
		return systemError("%v", err)
	}
	defer f.close()
	oomBefore, oomKnown := readOOMKills(cgroupOOMFiles)
	p, err := r.start(path, argv, f)
	if err != nil {
		return systemError("could not start the %s: %v", r.what, err)
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
