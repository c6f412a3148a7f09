package runner

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// resolvePaths returns the path to execute and the argument vector: the run command's
// (whose first element the exec shim looks up in the program's PATH), or python's with
// the source file; cfg.Args follow either. It checks the source and the working
// directory.
func (r *run) resolvePaths() (path string, argv []string, err error) {
	cfg := r.cfg
	if fi, err := os.Stat(cfg.Workdir); err != nil || !fi.IsDir() {
		return "", nil, fmt.Errorf("the working directory %s is not a directory", cfg.Workdir)
	}
	if len(cfg.RunCommand) > 0 {
		argv = append(slices.Clone(cfg.RunCommand), cfg.Args...)
		return argv[0], argv, nil
	}
	python, err := lookPython(cfg.Python)
	if err != nil {
		return "", nil, fmt.Errorf("could not find the python interpreter: %w", err)
	}
	// The program runs in the workdir: a relative path means one from the runner's.
	source, err := filepath.Abs(cfg.Source)
	if err != nil {
		return "", nil, fmt.Errorf("could not resolve the source path: %w", err)
	}
	if fi, err := os.Stat(source); err != nil {
		return "", nil, fmt.Errorf("could not read the source file: %w", err)
	} else if fi.IsDir() {
		return "", nil, fmt.Errorf("the source %s is a directory", cfg.Source)
	}
	argv = append([]string{python, "-u", "-B", "-s", source}, cfg.Args...)
	return python, argv, nil
}

// childFiles are everything the child gets, and the runner's ends of its pipes. Go opens
// every fd close-on-exec, so the child has exactly these.
type childFiles struct {
	devNull *os.File // for the kill helper
	stdin   *os.File
	// writeEnds are the output pipes' write ends, the child's stdout and stderr; the
	// pipeReader owns the read ends.
	writeEnds     [2]int
	writeEndsOpen bool
	// statusW is the shim's statusFD; statusR reads what it says.
	statusR, statusW *os.File
	col              *collector
	pipes            *pipeReader
}

// openFiles opens the child's files and starts reading its output: reading starts before
// the fork, so that nothing can fail after it. On error it closes what it opened.
func (r *run) openFiles() (_ *childFiles, err error) {
	f := &childFiles{writeEnds: [2]int{-1, -1}}
	defer func() {
		if err != nil {
			f.close()
		}
	}()
	if f.devNull, err = os.Open(os.DevNull); err != nil {
		return nil, fmt.Errorf("opening %s: %w", os.DevNull, err)
	}
	r.devNull = f.devNull
	if f.stdin, err = openStdin(r.cfg.Stdin); err != nil {
		return nil, fmt.Errorf("could not open the stdin file: %w", err)
	}
	readEnds, writeEnds, err := outputPipes()
	if err != nil {
		return nil, fmt.Errorf("creating a pipe: %w", err)
	}
	f.col = newCollector(r.cfg.OutputLimit)
	if f.pipes, err = newPipeReader(f.col, readEnds); err != nil {
		closeFDs(readEnds[:]...)
		closeFDs(writeEnds[:]...)
		return nil, fmt.Errorf("reading the program's output: %w", err)
	}
	f.writeEnds, f.writeEndsOpen = writeEnds, true
	if f.statusR, f.statusW, err = os.Pipe(); err != nil {
		return nil, fmt.Errorf("creating a pipe: %w", err)
	}
	return f, nil
}

// outputPipes creates the stdout and stderr pipes; on error it closes what it created.
func outputPipes() (readEnds, writeEnds [2]int, err error) {
	for i := range readEnds {
		if readEnds[i], writeEnds[i], err = outputPipe(); err != nil {
			closeFDs(readEnds[:i]...)
			closeFDs(writeEnds[:i]...)
			return readEnds, writeEnds, err
		}
	}
	return readEnds, writeEnds, nil
}

// fds are the child's fds 0 to 3: stdin, stdout, stderr and the shim's status pipe.
func (f *childFiles) fds() []uintptr {
	return []uintptr{f.stdin.Fd(), uintptr(f.writeEnds[0]), uintptr(f.writeEnds[1]), f.statusW.Fd()}
}

// closeChildEnds closes the runner's copies of the child's ends once it is forked: only
// the child holds the write ends then, so the reads end at its exit.
func (f *childFiles) closeChildEnds() {
	if f.writeEndsOpen {
		closeFDs(f.writeEnds[:]...)
		f.writeEndsOpen = false
	}
	if f.statusW != nil {
		f.statusW.Close()
	}
	if f.stdin != nil {
		f.stdin.Close()
	}
}

// readStartFailure waits, for at most startTimeout, for the shim to execute the program: it
// says nothing and the status pipe closes. Otherwise it returns what the shim wrote.
func (f *childFiles) readStartFailure() string {
	_ = f.statusR.SetReadDeadline(time.Now().Add(startTimeout))
	msg, _ := io.ReadAll(io.LimitReader(f.statusR, maxMessage))
	return strings.TrimSpace(string(msg))
}

// close closes every file and stops reading the output at once (cleanUp has drained it
// by then, in a run that started).
func (f *childFiles) close() {
	f.closeChildEnds()
	if f.statusR != nil {
		f.statusR.Close()
	}
	if f.pipes != nil {
		_ = f.pipes.stop(time.Now())
	}
	if f.devNull != nil {
		f.devNull.Close()
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

// closeFDs closes fds, skipping the ones that are not set (negative).
func closeFDs(fds ...int) {
	for _, fd := range fds {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}
