package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/coderun-dev/coderun/internal/delivery"
	"github.com/coderun-dev/coderun/internal/report"
	"github.com/coderun-dev/coderun/internal/runner"
)

// A warm pool member's runner (--request=stdin) is started before its program exists. It
// waits for one request (internal/delivery) on its stdin, then closes its stdin for good,
// so that a member never accepts a second program. It writes the request's source, files
// and stdin as read-only files in --input-dir (a writable memory volume, apart from the
// program's working directory, which so starts empty; the files are then copied into the
// working directory, as a cold run's --files are) and runs the program as a cold run's
// runner does, with the request's args, time and memory limits and compile limits, which
// must fit the limits its flags give (the member's shape). A member of a Runtime has the
// Runtime's --run-command, --compile-command and --env in its own flags, and gets the
// program as files; the built-in python's gets it as source.
//
// When it runs no program (no request before --idle-timeout, stdin closed, a request
// incomplete, malformed or outside the shape, SIGTERM before the request arrived), its
// report is a SystemError marked NotRun: the run may then safely be given to another
// member or pod.

// stdinFD is the descriptor the request arrives on.
const stdinFD = 0

// Names of the files the request's source and stdin, and of the directory its files, are
// written to in --input-dir.
const (
	sourceFile = "main.py"
	stdinFile  = "stdin"
	filesDir   = "files"
)

// warmFlags are the flags of warm mode.
type warmFlags struct {
	request     string
	inputDir    string
	idleTimeout time.Duration
}

func (w *warmFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&w.request, "request", "",
		`"stdin": wait for one framed request (source, stdin, limits) on stdin instead of --source and --stdin (a warm pool member)`)
	fs.StringVar(&w.inputDir, "input-dir", "",
		"with --request: the writable directory, not the workdir, that the request's source and stdin are written to")
	fs.DurationVar(&w.idleTimeout, "idle-timeout", 0,
		"with --request: how long to wait for the request before exiting without running anything (0: forever)")
}

func (w *warmFlags) enabled() bool { return w.request == "stdin" }

// apply checks the flags of warm mode against the others and, in warm mode, points cfg at
// the files the request will be written to.
func (w *warmFlags) apply(cfg *runner.Config, isSet map[string]bool) error {
	if !w.enabled() {
		if w.request != "" {
			return fmt.Errorf(`--request %q: the only request source is "stdin"`, w.request)
		}
		for _, name := range []string{"input-dir", "idle-timeout"} {
			if isSet[name] {
				return fmt.Errorf("--%s needs --request=stdin", name)
			}
		}
		return nil
	}
	for _, name := range []string{"source", "stdin", "files"} {
		if isSet[name] {
			return fmt.Errorf("--%s and --request=stdin: the request brings the program and its stdin", name)
		}
	}
	if !filepath.IsAbs(w.inputDir) {
		return fmt.Errorf("--input-dir %q: an absolute path is required with --request=stdin", w.inputDir)
	}
	in, work := filepath.Clean(w.inputDir), filepath.Clean(cfg.Workdir)
	if filepath.IsAbs(work) && (in == work || strings.HasPrefix(in+"/", work+"/") || strings.HasPrefix(work+"/", in+"/")) {
		return fmt.Errorf("--input-dir %s and --workdir %s overlap: the program's working directory must start empty", in, work)
	}
	if w.idleTimeout < 0 {
		return fmt.Errorf("--idle-timeout %s is negative", w.idleTimeout)
	}
	if cfg.MemoryLimit <= 0 {
		return errors.New("--memory-limit: a member's shape needs a memory limit above 0")
	}
	if len(cfg.RunCommand) == 0 {
		cfg.Source = filepath.Join(in, sourceFile)
	}
	cfg.Stdin = filepath.Join(in, stdinFile)
	w.inputDir = in
	return nil
}

// serve waits for the request on fd, runs its program with shape's limits replaced by
// the request's, and returns the report. ctx cancelled (a stop signal) while waiting
// gives a NotRun report; once a request has arrived, stop signals are ignored, as in a
// cold run.
func (w *warmFlags) serve(ctx context.Context, shape runner.Config, fd int) report.Report {
	req, err := w.receive(ctx, fd, shape.Logf)
	// Whatever arrived, nothing more is read: a member runs at most one program.
	closeForGood(fd, shape.Logf)
	// From here on a program may exist, and may send the stop signals itself.
	ignoreStopSignals()
	if err == nil && ctx.Err() != nil {
		err = errors.New("the runner was stopped before the program started")
	}
	if err != nil {
		return notRun(err.Error())
	}
	shape.Logf("request for %q: %d bytes of source, %d files, %d args, %d bytes of stdin, %ds, %d bytes of memory, compile %ds and %d bytes",
		req.Run, len(req.Source), len(req.Files), len(req.Args), len(req.Stdin), req.TimeoutSeconds, req.MemoryBytes,
		req.CompileTimeoutSeconds, req.CompileMemoryBytes)
	if err := fits(req, shape); err != nil {
		return notRun(err.Error())
	}
	cfg := shape
	if cfg.Source != "" {
		if err := writeInput(cfg.Source, req.Source); err != nil {
			return notRun(fmt.Sprintf("could not write the program: %v", err))
		}
	}
	if len(req.Files) > 0 {
		cfg.FilesDir = filepath.Join(w.inputDir, filesDir)
		if err := writeFiles(cfg.FilesDir, req.Files); err != nil {
			return notRun(fmt.Sprintf("could not write the program's files: %v", err))
		}
	}
	if err := writeInput(cfg.Stdin, req.Stdin); err != nil {
		return notRun(fmt.Sprintf("could not write the program's stdin: %v", err))
	}
	cfg.Args = req.Args
	cfg.Timeout = time.Duration(req.TimeoutSeconds) * time.Second
	cfg.MemoryLimit = req.MemoryBytes
	if shape.Compile != nil {
		c := *shape.Compile
		if req.CompileTimeoutSeconds > 0 {
			c.Timeout = time.Duration(req.CompileTimeoutSeconds) * time.Second
		}
		if req.CompileMemoryBytes > 0 {
			c.MemoryLimit = req.CompileMemoryBytes
		}
		cfg.Compile = &c
	}
	// Not ctx: nothing may stop the program now but its own limits.
	return runner.Run(context.WithoutCancel(ctx), cfg)
}

// notRun is the report of a member that started no program, saying why.
func notRun(why string) report.Report {
	r := runner.SystemErrorReport(why + "; the member was not used")
	r.NotRun = true
	return r
}

// fits checks the request against the member's shape: its limits, and that it brings the
// program the way this member runs it (files for a run command, source for python).
func fits(req delivery.Request, shape runner.Config) error {
	switch {
	case len(shape.RunCommand) > 0 && len(req.Files) == 0:
		return errors.New("the request has no files, and this member runs a command on its files")
	case len(shape.RunCommand) > 0 && req.Source != "":
		return errors.New("the request has a source, and this member runs a command on its files (the main file goes among them)")
	case shape.Compile == nil && (req.CompileTimeoutSeconds != 0 || req.CompileMemoryBytes != 0):
		return errors.New("the request has compile limits, and this member compiles nothing")
	case shape.Compile != nil && time.Duration(req.CompileTimeoutSeconds)*time.Second > shape.Compile.Timeout:
		return fmt.Errorf("the request asks for a compile time of %ds but this member serves at most %s",
			req.CompileTimeoutSeconds, shape.Compile.Timeout)
	case shape.Compile != nil && shape.Compile.MemoryLimit > 0 && req.CompileMemoryBytes > shape.Compile.MemoryLimit:
		return fmt.Errorf("the request asks for %d bytes of compile memory but this member serves at most %d",
			req.CompileMemoryBytes, shape.Compile.MemoryLimit)
	}
	if t := time.Duration(req.TimeoutSeconds) * time.Second; t > shape.Timeout {
		return fmt.Errorf("the request asks for %s but this member serves at most %s", t, shape.Timeout)
	}
	if req.MemoryBytes > shape.MemoryLimit {
		return fmt.Errorf("the request asks for %d bytes of memory but this member serves at most %d",
			req.MemoryBytes, shape.MemoryLimit)
	}
	return nil
}

// errIdle and errStopped end the wait for a request.
var (
	errIdle    = errors.New("idle")
	errStopped = errors.New("stopped")
)

// receive reads one request from fd, within the idle timeout and until ctx is done. It
// returns an error whose text says, for a report, why there is no request.
func (w *warmFlags) receive(ctx context.Context, fd int, logf func(string, ...any)) (delivery.Request, error) {
	wakeR, wakeW, err := os.Pipe()
	if err != nil {
		return delivery.Request{}, fmt.Errorf("could not wait for a request: %v", err)
	}
	defer wakeR.Close()
	defer wakeW.Close()
	// An *os.File is safe to write after Close (it fails), so this cannot hit a reused fd.
	stopWaking := context.AfterFunc(ctx, func() { _, _ = wakeW.Write([]byte{0}) })
	defer stopWaking()

	r := &fdReader{fd: fd, wake: int(wakeR.Fd())}
	if w.idleTimeout > 0 {
		r.deadline = time.Now().Add(w.idleTimeout)
	}
	logf("waiting for a request on stdin (idle timeout %s)", w.idleTimeout)
	req, err := delivery.Read(r)
	switch {
	case err == nil:
		return req, nil
	case errors.Is(err, errIdle) && r.read == 0:
		return req, fmt.Errorf("no request arrived within %s", w.idleTimeout)
	case errors.Is(err, errIdle):
		return req, fmt.Errorf("the request was incomplete after %s: %d bytes arrived", w.idleTimeout, r.read)
	case errors.Is(err, errStopped):
		return req, errors.New("the runner was stopped before a request arrived")
	case errors.Is(err, delivery.ErrNoRequest):
		return req, errors.New("stdin was closed before a request arrived")
	case errors.Is(err, delivery.ErrIncomplete):
		return req, fmt.Errorf("the request was incomplete: %v", err)
	case errors.Is(err, delivery.ErrBadHeader) || errors.Is(err, delivery.ErrTooLarge) || errors.Is(err, delivery.ErrInvalid):
		return req, fmt.Errorf("the request was refused: %v", err)
	}
	return req, fmt.Errorf("could not read the request: %v", err)
}

// fdReader reads a descriptor, blocking or not, until a deadline or until wake is
// readable. It reads only what it is asked for: nothing past the frame is consumed.
type fdReader struct {
	fd, wake int
	deadline time.Time // zero: none
	read     int       // bytes read so far
}

func (r *fdReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		timeout := -1
		if !r.deadline.IsZero() {
			left := time.Until(r.deadline)
			if left <= 0 {
				return 0, errIdle
			}
			timeout = int((left + time.Millisecond - 1) / time.Millisecond)
		}
		fds := []unix.PollFd{{Fd: int32(r.fd), Events: unix.POLLIN}, {Fd: int32(r.wake), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, timeout); err != nil {
			if err == unix.EINTR {
				continue
			}
			return 0, fmt.Errorf("waiting for stdin: %w", err)
		}
		if fds[1].Revents != 0 {
			return 0, errStopped
		}
		if fds[0].Revents == 0 {
			continue // the deadline, checked above
		}
		n, err := unix.Read(r.fd, p)
		switch {
		case err == unix.EINTR || err == unix.EAGAIN:
			continue
		case err != nil:
			return 0, fmt.Errorf("reading stdin: %w", err)
		case n == 0:
			return 0, io.EOF
		}
		r.read += n
		return n, nil
	}
}

// closeForGood closes fd and puts /dev/null in its place, so that the writer of a second
// request gets EPIPE (once no process holds the pipe) and a later open cannot take fd's
// number.
func closeForGood(fd int, logf func(string, ...any)) {
	null, err := unix.Open(os.DevNull, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err == nil {
		err = unix.Dup3(null, fd, 0)
		_ = unix.Close(null)
	}
	if err != nil {
		logf("could not put %s on stdin: %v; closing it", os.DevNull, err)
		_ = unix.Close(fd)
	}
}

// writeFiles creates dir, which must not exist, with files in it, read-only. The names
// are delivery's (checked by delivery.Read): no '/', not starting with '.'.
func writeFiles(dir string, files []delivery.File) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	for _, f := range files {
		if !delivery.FileNamePattern.MatchString(f.Name) {
			return fmt.Errorf("refusing the file name %q", f.Name)
		}
		if err := writeInput(filepath.Join(dir, f.Name), f.Content); err != nil {
			return err
		}
	}
	return nil
}

// writeInput creates path, which must not exist, with data, read-only.
func writeInput(path, data string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o444); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
