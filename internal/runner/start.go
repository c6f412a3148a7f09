package runner

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

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

// process is the started program, as the later phases see it.
type process struct {
	pid   int
	start time.Time
	grp   *group
	// exited receives the main process's end once.
	exited <-chan exited
	// reaped is closed when the reaper has nothing left to reap.
	reaped <-chan struct{}
	// timer is the wall-clock limit, running from the fork.
	timer *time.Timer
	// startFailure is what the shim said when it could not execute the program; empty
	// when it runs.
	startFailure string
}

// start forks the program (path, with argv) through the exec shim and waits until it runs
// (or the shim failed to execute it). The error is the fork's: nothing was started.
func (r *run) start(path string, argv []string, f *childFiles) (*process, error) {
	startedCh := make(chan started, 1)
	exitedCh := make(chan exited, 1)
	reaped := make(chan struct{})
	grp := &group{}
	go r.reap(r.cfg.Self, shimArgs(r.cfg, path, argv), r.procAttr(f), grp, startedCh, exitedCh, reaped)
	st := <-startedCh
	if st.err != nil {
		return nil, st.err
	}
	p := &process{pid: st.pid, start: st.start, grp: grp, exited: exitedCh, reaped: reaped,
		timer: time.NewTimer(r.cfg.Timeout)}
	f.closeChildEnds()
	p.startFailure = f.readStartFailure()
	return p, nil
}

// procAttr is how the shim is forked: in the workdir, with the program's environment and
// files, in its own process group, killed with the thread that forked it, and as the
// configured uid.
func (r *run) procAttr(f *childFiles) *syscall.ProcAttr {
	attr := &syscall.ProcAttr{
		Dir:   r.cfg.Workdir,
		Env:   programEnv(r.cfg.Workdir, r.cfg.Env),
		Files: f.fds(),
		Sys: &syscall.SysProcAttr{
			Setpgid:   true,
			Pdeathsig: syscall.SIGKILL,
		},
	}
	if r.cfg.RunAsUID != 0 {
		id := uint32(r.cfg.RunAsUID)
		attr.Sys.Credential = &syscall.Credential{Uid: id, Gid: id, Groups: []uint32{}}
	}
	return attr
}

// programEnv is the program's whole environment: nothing comes from the runner's own. The
// entries of extra (a Runtime's env) are added, replacing a default of the same name.
func programEnv(workdir string, extra []string) []string {
	env := []string{
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
	for _, kv := range extra {
		name, _, _ := strings.Cut(kv, "=")
		env = slices.DeleteFunc(env, func(e string) bool { return strings.HasPrefix(e, name+"=") })
		env = append(env, kv)
	}
	return env
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
	if r.cleanup == cleanupNamespace {
		reapAll(pid, grp, exitedCh)
	} else {
		exitedCh <- reapMain(pid, grp)
	}
}

// reapMain waits for the main process pid to exit, kills its group before the pid can be
// reused, and reaps it.
func reapMain(pid int, grp *group) exited {
	var info unix.Siginfo
	var err error
	for {
		err = unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			break
		}
	}
	end := time.Now()
	var ws syscall.WaitStatus
	var ru syscall.Rusage
	grp.reap(func() {
		for {
			_, err = syscall.Wait4(pid, &ws, 0, &ru)
			if err != syscall.EINTR {
				break
			}
		}
	})
	if err != nil {
		return exited{err: fmt.Errorf("waiting for the program: %w", err), end: end}
	}
	return exited{status: ws, rusage: ru, end: end}
}

// reapAll reaps every child of the runner as PID 1 until none is left, and sends the main
// process pid's end to exitedCh.
func reapAll(pid int, grp *group, exitedCh chan<- exited) {
	var ws syscall.WaitStatus
	var ru syscall.Rusage
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
