package runner

import (
	"errors"
	"fmt"
	"os"
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

	// MaxTimeout bounds Config.Timeout (and so the CPU time limit derived from it).
	MaxTimeout = 24 * time.Hour
	// minOpenFiles is the smallest RLIMIT_NOFILE the interpreter can start with.
	minOpenFiles = 16
	// maxUID is the largest valid uid (uid_t is 32 bits and -1 means "no change").
	maxUID = 1<<32 - 2
)

// Config describes one run. Start from DefaultConfig: the zero value is not valid.
type Config struct {
	// Source is the program file; python runs it by this path, so tracebacks show it.
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
	check(c.Source != "", "the source file is required")
	check(c.Python != "", "the python interpreter must be set")
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

// cpuLimitSeconds returns the soft and hard RLIMIT_CPU for the configured timeout.
func (c Config) cpuLimitSeconds() (soft, hard uint64) {
	secs := uint64((c.Timeout + time.Second - 1) / time.Second) // ceil
	return secs + 1, secs + 2
}
