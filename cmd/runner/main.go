// Command runner is the entrypoint of every coderun language image. It runs one untrusted
// program under limits and prints one machine-readable report (internal/report) as the
// last line of its stdout, and optionally to a file such as /dev/termination-log.
//
// The program is --run-command (a JSON array: its argv), after --files are copied into
// --workdir and --compile-command, if given, has compiled it; or, without --run-command,
// python running --source (the built-in python, as before Runtimes).
//
// With --request=stdin it is a warm pool member's runner: it waits for one request
// (internal/delivery) on its stdin instead of reading --source and --stdin; see warm.go.
//
// Exit status: 0 whenever the report was produced and written (the program's own exit code
// is in the report), 2 on bad flags (a SystemError report is still printed), 3 when the
// report file could not be written (the report is still printed). Only a 0 tells a reader
// of the report file that the runner wrote what it holds.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/coderun-dev/coderun/internal/report"
	"github.com/coderun-dev/coderun/internal/runner"
)

func main() {
	// The runner re-executes itself as the exec shim and the kill helper: those never
	// get to flag parsing.
	runner.RunHelperIfRequested(os.Args)
	// Before anything else: the program, which runs as this process's user, must not be
	// able to end it with a signal (see internal/runner/signals.go).
	if err := runner.IgnoreSignals(); err != nil {
		fmt.Fprintf(os.Stderr, "runner: %v\n", err)
		emit(runner.SystemErrorReport(err.Error()), nil, os.Stdout, os.Stderr)
		os.Exit(2)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cfg := runner.DefaultConfig()
	var reportPath string
	var uid int64
	var warm warmFlags
	var compile runner.CompileConfig
	compile.Timeout = runner.DefaultCompileTimeout
	fs := flag.NewFlagSet("runner", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Var(jsonArgv{&cfg.RunCommand}, "run-command",
		`the program's argv as a JSON array, e.g. ["./main"]; argv[0] is looked up in the program's PATH; without it, python runs --source`)
	fs.Var(jsonArgv{&compile.Command}, "compile-command",
		`the compiler's argv as a JSON array, e.g. ["gcc","-o","main","main.c"], run in --workdir before the program`)
	fs.DurationVar(&compile.Timeout, "compile-timeout", compile.Timeout, "with --compile-command: the compiler's wall-clock time limit")
	fs.Var(byteSize{int64Ptr: &compile.MemoryLimit}, "compile-memory-limit",
		"with --compile-command: the limit on the compiler's resident memory in bytes (0: none)")
	fs.StringVar(&cfg.FilesDir, "files", "",
		"a directory whose regular files (names not starting with '.'; symlinks followed) are copied into --workdir first")
	fs.Func("env", "NAME=VALUE added to the program's and the compiler's environment (repeatable; may override PATH, HOME, TMPDIR)",
		func(s string) error {
			cfg.Env = append(cfg.Env, s)
			return nil
		})
	fs.StringVar(&cfg.Source, "source", "", "without --run-command: the program file, which python runs by this path")
	fs.StringVar(&cfg.Stdin, "stdin", "", "a file to use as the program's stdin (missing or empty: empty stdin)")
	fs.StringVar(&cfg.Python, "python", cfg.Python, "the python interpreter, a path or a name looked up in PATH")
	fs.StringVar(&cfg.Workdir, "workdir", cfg.Workdir, "the program's working directory, HOME and TMPDIR")
	fs.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "the wall-clock time limit")
	fs.Var(byteSize{intPtr: &cfg.OutputLimit}, "output-limit",
		fmt.Sprintf("the limit on the total bytes written to stdout and stderr, at most %d", report.MaxOutputLimit))
	fs.Var(byteSize{int64Ptr: &cfg.MemoryLimit}, "memory-limit", "the limit on the program's resident memory in bytes (0: none)")
	fs.IntVar(&cfg.MaxProcesses, "max-processes", cfg.MaxProcesses, "RLIMIT_NPROC for the program")
	fs.Var(byteSize{int64Ptr: &cfg.MaxFileSize}, "max-file-size", "RLIMIT_FSIZE for the program, in bytes")
	fs.IntVar(&cfg.MaxOpenFiles, "max-open-files", cfg.MaxOpenFiles, "RLIMIT_NOFILE for the program")
	fs.StringVar(&reportPath, "report", "", "also write the report (or its summary, if the whole does not fit) to this file, e.g. /dev/termination-log")
	fs.Int64Var(&uid, "uid", 0, "run the program as this dedicated uid (and gid), which the runner kills every process of afterwards; needs root; for tests")
	warm.register(fs)

	badFlags := func(err error) int {
		fmt.Fprintf(stderr, "runner: %v\n", err)
		r := runner.SystemErrorReport("the runner was given bad flags: " + err.Error())
		// A warm member's runner that stops here never read a request.
		r.NotRun = warm.enabled()
		emit(r, openReport(reportPath, stderr), stdout, stderr)
		return 2
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return badFlags(err)
	}
	if fs.NArg() > 0 {
		return badFlags(fmt.Errorf("unexpected arguments: %q", fs.Args()))
	}
	if uid < 0 || uid > 1<<32-2 {
		return badFlags(fmt.Errorf("--uid %d is not a valid uid", uid))
	}
	isSet := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { isSet[f.Name] = true })
	if isSet["uid"] && uid == 0 {
		return badFlags(errors.New("--uid 0: the program never runs as root"))
	}
	cfg.RunAsUID = int(uid)
	if isSet["compile-command"] {
		cfg.Compile = &compile
	} else if isSet["compile-timeout"] || isSet["compile-memory-limit"] {
		return badFlags(errors.New("--compile-timeout and --compile-memory-limit need --compile-command"))
	}
	if err := warm.apply(&cfg, isSet); err != nil {
		return badFlags(err)
	}
	if err := cfg.Validate(); err != nil {
		return badFlags(err)
	}
	cfg.Logf = func(format string, args ...any) {
		fmt.Fprintf(stderr, "runner: "+format+"\n", args...)
	}

	// The report file is opened before the program starts. The program runs as the
	// runner's user, so it can write the file (a pod's termination log is writable by all)
	// and lower the runner's own rlimits with prlimit(2): with RLIMIT_NOFILE at 0, opening
	// the file at the end would fail and leave a report forged by the program in it.
	reportFile := openReport(reportPath, stderr)

	var r report.Report
	if warm.enabled() {
		// An idle member has no program yet: a stop signal can only be the platform's
		// (the pool scaled down), and ends the wait. serve ignores them once a request
		// has arrived.
		ctx, stop := signal.NotifyContext(context.Background(), stopSignals...)
		defer stop()
		r = warm.serve(ctx, cfg, stdinFD)
	} else {
		ignoreStopSignals()
		r = runner.Run(context.Background(), cfg)
	}
	written := emit(r, reportFile, stdout, stderr)
	if !written || (reportPath != "" && reportFile == nil) {
		return 3
	}
	return 0
}

// stopSignals are how the platform stops the runner: the kubelet sends SIGTERM when the
// pod is deleted. The program can send them too, so they are honoured only while no
// program exists; from then on the run ends on its own limits, which the pod's 2-second
// grace period bounds when the pod is deleted (the kubelet then kills the runner).
var stopSignals = []os.Signal{syscall.SIGTERM, syscall.SIGINT}

// ignoreStopSignals makes the runner ignore stopSignals from now on.
func ignoreStopSignals() { signal.Ignore(stopSignals...) }

// openReport opens the report file at path, or returns nil when there is none or it
// cannot be opened (and says so on stderr).
func openReport(path string, stderr io.Writer) *os.File {
	if path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		fmt.Fprintf(stderr, "runner: opening the report file: %v\n", err)
		return nil
	}
	return f
}

// emit writes the report, in full, as one line to stdout and then to the report file f (if
// any; for the termination message), replacing what the file held. It reports whether
// the file, when there is one, now holds the report.
func emit(r report.Report, f *os.File, stdout, stderr io.Writer) bool {
	line := append(report.Encode(r), '\n')
	if _, err := stdout.Write(line); err != nil {
		fmt.Fprintf(stderr, "runner: writing the report: %v\n", err)
	}
	if f == nil {
		return true
	}
	data := report.ForTerminationMessage(r)
	err := f.Truncate(0)
	if err == nil {
		_, err = f.WriteAt(data, 0)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintf(stderr, "runner: writing the report file: %v\n", err)
		return false
	}
	return true
}

// jsonArgv is a flag holding an argument vector as a JSON array of strings: a Runtime's
// command goes through the pod's args unchanged, with no shell quoting to get wrong.
type jsonArgv struct{ argv *[]string }

func (j jsonArgv) String() string {
	if j.argv == nil || *j.argv == nil {
		return ""
	}
	data, _ := json.Marshal(*j.argv)
	return string(data)
}

func (j jsonArgv) Set(s string) error {
	var argv []string
	if err := json.Unmarshal([]byte(s), &argv); err != nil {
		return fmt.Errorf("%q is not a JSON array of strings: %v", s, err)
	}
	if len(argv) == 0 || argv[0] == "" {
		return fmt.Errorf("%q has no program name", s)
	}
	*j.argv = argv
	return nil
}

// byteSize is a flag of a number of bytes: a plain integer, or one with a binary suffix
// (KiB, MiB, GiB; also Ki, Mi, Gi). It sets whichever of its pointers is not nil.
type byteSize struct {
	int64Ptr *int64
	intPtr   *int
}

var byteSuffixes = []struct {
	suffix string
	factor int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30},
}

func (b byteSize) String() string {
	switch {
	case b.int64Ptr != nil:
		return strconv.FormatInt(*b.int64Ptr, 10)
	case b.intPtr != nil:
		return strconv.Itoa(*b.intPtr)
	}
	return "0"
}

func (b byteSize) Set(s string) error {
	num, factor := s, int64(1)
	for _, suf := range byteSuffixes {
		if rest, ok := strings.CutSuffix(s, suf.suffix); ok {
			num, factor = rest, suf.factor
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/factor {
		return fmt.Errorf("%q is not a number of bytes", s)
	}
	n *= factor
	switch {
	case b.int64Ptr != nil:
		*b.int64Ptr = n
	case b.intPtr != nil:
		if n > int64(^uint(0)>>1) {
			return fmt.Errorf("%q is too large", s)
		}
		*b.intPtr = int(n)
	}
	return nil
}
