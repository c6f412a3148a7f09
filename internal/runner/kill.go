package runner

import (
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/coderun-dev/coderun/internal/procfs"
)

// cleanupMode is how the runner finds and kills what the program left behind once the
// main process has exited: processes in other process groups or sessions (setsid) are
// out of reach of kill(-pgid).
type cleanupMode int

const (
	// cleanupDescendants: the runner is a child subreaper; orphans become its children,
	// and it kills and reaps its children until it has none. For runs as one's own user
	// outside a container.
	cleanupDescendants cleanupMode = iota
	// cleanupNamespace: the runner is PID 1 of its PID namespace (a container); kill(-1)
	// kills every other process of the namespace, and the runner reaps every zombie.
	cleanupNamespace
	// cleanupUID: the program runs as a dedicated uid; a helper running as that uid kills
	// every process of it with kill(-1).
	cleanupUID
)

// chooseCleanup picks how a run with c cleans up: see cleanupMode.
func chooseCleanup(c Config) cleanupMode {
	switch {
	case os.Getpid() == 1:
		return cleanupNamespace
	case c.RunAsUID != 0:
		return cleanupUID
	default:
		return cleanupDescendants
	}
}

// cleanupTimeout bounds each way of cleaning up.
const cleanupTimeout = 2 * time.Second

// cleanUp kills whatever the program left behind, drains the output pipes for a bounded
// time and, as PID 1, waits (also bounded) until reaped is closed: every process of the
// namespace is reaped.
func (r *run) cleanUp(pipes *pipeReader, reaped <-chan struct{}) {
	r.killLeftovers()
	if err := pipes.stop(time.Now().Add(drainTimeout)); err != nil {
		r.logf("reading the program's output: %v", err)
	}
	if r.cleanup == cleanupNamespace {
		select {
		case <-reaped:
		case <-time.After(cleanupTimeout):
			r.logf("processes left unreaped")
			r.unreaped = true
		}
	}
}

// killLeftovers kills the processes that escaped the program's process group, the way
// r.cleanup says. The reaper has killed the process group already, before it reaped the
// main process.
func (r *run) killLeftovers() {
	switch r.cleanup {
	case cleanupNamespace:
		killNamespace()
	case cleanupUID:
		r.killUID(r.cfg.RunAsUID)
	case cleanupDescendants:
		r.killDescendants()
	}
}

// killGroup kills the program's process group. (Never kill(-1): see killNamespace.)
func killGroup(pgid int) {
	if pgid > 1 {
		_ = unix.Kill(-pgid, unix.SIGKILL)
	}
}

// killNamespace kills every process of the PID namespace but the runner. Only PID 1 may:
// anywhere else kill(-1) would reach the rest of the machine.
func killNamespace() {
	if os.Getpid() == 1 {
		_ = unix.Kill(-1, unix.SIGKILL)
	}
}

// killUID runs the kill helper as uid and waits for it; it logs a helper that failed
// to leave no process of the uid alive.
func (r *run) killUID(uid int) {
	if uid <= 0 {
		return
	}
	files := []uintptr{r.devNull.Fd(), r.devNull.Fd(), os.Stderr.Fd()}
	pid, err := syscall.ForkExec(r.cfg.Self, []string{r.cfg.Self, killHelperArg}, &syscall.ProcAttr{
		Dir:   "/",
		Env:   []string{},
		Files: files,
		Sys: &syscall.SysProcAttr{
			Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid), Groups: []uint32{}},
			Pdeathsig:  syscall.SIGKILL,
		},
	})
	if err != nil {
		r.logf("starting the kill helper: %v", err)
		return
	}
	done := make(chan syscall.WaitStatus, 1)
	go func() {
		var ws syscall.WaitStatus
		for {
			_, err := syscall.Wait4(pid, &ws, 0, nil)
			if err != syscall.EINTR {
				break
			}
		}
		done <- ws
	}()
	select {
	case ws := <-done:
		if !ws.Exited() || ws.ExitStatus() != 0 {
			r.logf("the kill helper ended with status %#x: processes of uid %d may be left", uint32(ws), uid)
		}
	case <-time.After(cleanupTimeout + time.Second):
		r.logf("the kill helper did not finish: processes of uid %d may be left", uid)
		_ = unix.Kill(pid, unix.SIGKILL)
	}
}

// killDescendants kills and reaps the runner's children until it has none left, as a
// child subreaper: killing a child makes its own children the runner's. It only signals
// direct children, whose pids cannot be reused before the runner reaps them.
func (r *run) killDescendants() {
	self := os.Getpid()
	deadline := time.Now().Add(cleanupTimeout)
	for {
		kids := procfs.Children(self)
		if len(kids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			r.logf("children left after cleanup: %v", kids)
			return
		}
		for _, k := range kids {
			if k > 1 {
				_ = unix.Kill(k, unix.SIGKILL)
			}
		}
		for _, k := range kids {
			reapWithin(k, deadline)
		}
	}
}

// reapWithin waits for the child pid to exit until deadline.
func reapWithin(pid int, deadline time.Time) {
	for {
		var ws syscall.WaitStatus
		got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		if got == pid || (err != nil && err != syscall.EINTR) || time.Now().After(deadline) {
			return
		}
		time.Sleep(time.Millisecond)
	}
}
