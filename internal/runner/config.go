package runner

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/coderun-dev/coderun/internal/report"
)

// Defaults of a Config; DefaultConfig returns them.
const (
	DefaultPython       = "python3"
	DefaultWorkdir      = "/tmp"
	DefaultTimeout      = 10 * time.Second
	DefaultOutputLimit  = 64 * 1024
	DefaultMaxProcesses = 64
	DefaultMaxFileSize  = 16 << 20
	DefaultMaxOpenFiles = 256

	// DefaultCompileTimeout is a compile step's time limit when none is given.
	DefaultCompileTimeout = 10 * time.Second
	// MaxFilesBytes bounds what FilesDir may hold in total: the API allows 64 KiB of
	// files, and a huge input must not fill the scratch directory the compiler needs.
	MaxFilesBytes = 1 << 20

	// MaxTimeout bounds Config.Timeout (and so the CPU time limit derived from it).
	MaxTimeout = 24 * time.Hour
	// minOpenFiles is the smallest RLIMIT_NOFILE the interpreter can start with.
	minOpenFiles = 16
	// maxUID is the largest valid uid (uid_t is 32 bits and -1 means "no change").
	maxUID = 1<<32 - 2
)

// Config describes one run. Start from DefaultConfig: the zero value is not valid.
//
// The program is RunCommand (plus Args) when it is set, and otherwise the legacy python
// Source. With FilesDir, its files are copied into Workdir first; with Compile, the
// compiler runs before the program, and a compile that fails ends the run.
type Config struct {
	// RunCommand is the program's argument vector, run in Workdir. Its first element is
	// looked up in the program's PATH (the one Env gives, if any) unless it holds a '/';
	// a relative path is relative to Workdir (such as "./main", which a compile step may
	// have built). Empty: the program is python running Source.
	RunCommand []string
	// Args follow the program's argument vector (RunCommand, or python's).
	Args []string
	// Compile, if set, runs before the program.
	Compile *CompileConfig
	// FilesDir, if set, is a directory whose regular files (symlinks followed; names
	// starting with '.' skipped, such as a downward API volume's ..data) are copied into
	// Workdir before anything runs, at most MaxFilesBytes in total.
	FilesDir string
	// Env holds NAME=VALUE entries added to the environment of the program and the
	// compiler, replacing the runner's own for the same name (PATH, HOME, TMPDIR...).
	Env []string

	// Source is the program file; python runs it by this path, so tracebacks show it.
	// Only without RunCommand.
	Source string
	// Stdin, if set, is the file the program reads as its standard input. A missing
	// file gives an empty stdin, as does an empty Stdin.
	Stdin string
	// Python is the interpreter: a path, or a name looked up in the runner's PATH.
	Python string
	// Workdir is the program's working directory, HOME and TMPDIR.
	Workdir string

	// Timeout is the wall-clock limit. The CPU time limit (RLIMIT_CPU) is derived from
	// it: ceil(Timeout)+1 s soft, one second more hard.
	Timeout time.Duration
	// OutputLimit is the limit on the total bytes the program writes to stdout and
	// stderr together, 1..report.MaxOutputLimit.
	OutputLimit int
	// MemoryLimit, if positive, is the limit on the resident memory of the program's
	// process tree, as sampled by the runner. Zero means no limit of the runner's own
	// (the container's memory limit still applies).
	MemoryLimit int64
	// MaxProcesses is RLIMIT_NPROC: the processes (threads, in fact) that the program's
	// user may have. Root is not subject to it.
	MaxProcesses int
	// MaxFileSize is RLIMIT_FSIZE: the largest file the program may write, in bytes.
	MaxFileSize int64
	// MaxOpenFiles is RLIMIT_NOFILE.
	MaxOpenFiles int

	// RunAsUID, when not zero, runs the program as that uid, with the same gid and no
	// supplementary groups. The runner must be root for it. The uid must be dedicated
	// to the program: when the program ends the runner kills every process of that uid.
	// Zero means the runner's own user (the program is never run as root this way).
	RunAsUID int

	// Self is the executable that is re-executed as the exec shim and the kill helper;
	// its main must call RunHelperIfRequested first. Default "/proc/self/exe".
	Self string
	// Logf, if set, receives the runner's diagnostics (never the program's output).
	Logf func(format string, args ...any)
}

// CompileConfig is a compile step: a command run like the program, with the program's
// rlimits, uid and output limit but its own time and memory limits and stdin /dev/null.
type CompileConfig struct {
	// Command is the compiler's argument vector, resolved as Config.RunCommand is.
	Command []string
	// Timeout is the compiler's wall-clock limit; its CPU time limit derives from it.
	Timeout time.Duration
	// MemoryLimit, if positive, bounds the compiler's resident memory.
	MemoryLimit int64
}

// DefaultConfig returns a Config with every default set and no Source.
func DefaultConfig() Config {
	return Config{
		Python:       DefaultPython,
		Workdir:      DefaultWorkdir,
		Timeout:      DefaultTimeout,
		OutputLimit:  DefaultOutputLimit,
		MaxProcesses: DefaultMaxProcesses,
		MaxFileSize:  DefaultMaxFileSize,
		MaxOpenFiles: DefaultMaxOpenFiles,
		Self:         "/proc/self/exe",
	}
}

// Validate checks every field; it also refuses RunAsUID when the runner is not root.
func (c Config) Validate() error {
	var errs []string
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Sprintf(format, args...))
		}
	}
	if len(c.RunCommand) == 0 {
		check(c.Source != "", "the source file is required (or a run command)")
		check(c.Python != "", "the python interpreter must be set")
	} else {
		check(c.Source == "", "a source file and a run command: the run command names the program")
		checkArgv(check, "run command", c.RunCommand)
	}
	check(len(c.Args) == 0 || !slices.ContainsFunc(c.Args, hasNUL), "an argument contains a NUL byte")
	if c.Compile != nil {
		checkArgv(check, "compile command", c.Compile.Command)
		check(c.Compile.Timeout > 0 && c.Compile.Timeout <= MaxTimeout, "compile timeout %s is not in (0, %s]", c.Compile.Timeout, MaxTimeout)
		check(c.Compile.MemoryLimit >= 0, "compile memory limit %d is negative", c.Compile.MemoryLimit)
	}
	for _, kv := range c.Env {
		name, _, ok := strings.Cut(kv, "=")
		check(ok && validEnvName(name) && !hasNUL(kv), "environment entry %q is not NAME=VALUE", kv)
	}
	check(c.Workdir != "", "the working directory must be set")
	check(c.Self != "", "the runner's own executable must be set")
	check(c.Timeout > 0 && c.Timeout <= MaxTimeout, "timeout %s is not in (0, %s]", c.Timeout, MaxTimeout)
	check(c.OutputLimit >= 1 && c.OutputLimit <= report.MaxOutputLimit,
		"output limit %d is not in 1..%d bytes", c.OutputLimit, report.MaxOutputLimit)
	check(c.MemoryLimit >= 0, "memory limit %d is negative", c.MemoryLimit)
	check(c.MaxProcesses >= 1, "max processes %d is less than 1", c.MaxProcesses)
	check(c.MaxFileSize >= 0, "max file size %d is negative", c.MaxFileSize)
	check(c.MaxOpenFiles >= minOpenFiles, "max open files %d is less than %d", c.MaxOpenFiles, minOpenFiles)
	check(c.RunAsUID >= 0 && c.RunAsUID <= maxUID, "uid %d is not valid", c.RunAsUID)
	check(c.RunAsUID == 0 || os.Geteuid() == 0, "running the program as another uid needs the runner to run as root")
	if len(errs) == 0 {
		return nil
	}
	// One line, for a report's message.
	return errors.New(strings.Join(errs, "; "))
}

// checkArgv checks an argument vector: at least a name, and no NUL byte (exec cannot pass
// one).
func checkArgv(check func(bool, string, ...any), what string, argv []string) {
	check(len(argv) > 0 && argv[0] != "", "the %s has no program name", what)
	check(!slices.ContainsFunc(argv, hasNUL), "the %s contains a NUL byte", what)
}

func hasNUL(s string) bool { return strings.ContainsRune(s, 0) }

// validEnvName reports whether name is a portable environment variable name.
func validEnvName(name string) bool {
	if name == "" || (name[0] >= '0' && name[0] <= '9') {
		return false
	}
	return strings.IndexFunc(name, func(c rune) bool {
		return c != '_' && (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') && (c < '0' || c > '9')
	}) < 0
}

// cpuLimitSeconds returns the soft and hard RLIMIT_CPU for the configured timeout.
func (c Config) cpuLimitSeconds() (soft, hard uint64) {
	secs := uint64((c.Timeout + time.Second - 1) / time.Second) // ceil
	return secs + 1, secs + 2
}
