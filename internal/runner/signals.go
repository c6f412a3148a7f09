package runner

import (
	"fmt"
	"os/signal"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The program runs as the runner's own user, as in a pod, so it may send the runner any
// signal, with kill, tgkill, sigqueue, a pidfd or an fcntl(F_SETSIG) owner. Go turns
// many signals into a crash: SIGQUIT, SIGABRT, SIGILL, SIGTRAP, SIGSYS and SIGSTKFLT
// always; SIGSEGV, SIGBUS and SIGFPE whenever the sender chose a code other than
// SI_USER (sigqueue does), because the runtime then takes them for a fault of its own;
// SIGHUP and SIGTERM end the process, and real-time signal 32 or 34 kills it by default.
// A runner that dies loses the program's output and reports a SystemError, blaming the
// platform for what the program did.
//
// So the runner ignores every signal (SIG_IGN) but the few the Go runtime needs and
// whose handlers do nothing when someone else sends them. An ignored signal is discarded
// when it is sent, whoever sends it and however. SIGKILL and SIGSTOP cannot be ignored:
// as PID 1 of its container the runner never receives them from inside (the kernel
// drops them), and outside a container the program should run as a uid of its own.
//
// SIGTERM and SIGINT are the platform's way to stop the runner (the kubelet sends
// SIGTERM when the pod is deleted); the runner's main decides when to honour them.

// keptSignals keep the Go runtime's handlers.
var keptSignals = map[syscall.Signal]string{
	unix.SIGKILL: "cannot be caught",
	unix.SIGSTOP: "cannot be caught",
	// Ignoring SIGCHLD would make the kernel reap the program itself, and wait4 fail.
	unix.SIGCHLD: "the runner waits for its children",
	// The scheduler's preemption signal; a stray one only preempts a goroutine.
	unix.SIGURG: "Go's goroutine preemption",
	// The runtime's per-thread syscall signal (setuid and the like without cgo); its
	// handler does nothing unless the runtime itself asked.
	sigPerThreadSyscall: "Go's per-thread syscalls",
	unix.SIGTERM:        "the platform's stop signal, for the runner's main",
	unix.SIGINT:         "the platform's stop signal, for the runner's main",
}

// sigPerThreadSyscall is SIGRTMIN+1, as the Go runtime uses it on Linux.
const sigPerThreadSyscall = syscall.Signal(33)

// numSignals is the highest signal number on Linux (SIGRTMAX).
const numSignals = 64

// IgnoreSignals makes the calling process ignore every signal but keptSignals. Call it
// once, first thing in the runner's main; never in a process that needs Go's panics on
// nil pointers (a fault while SIGSEGV is ignored kills the process outright).
func IgnoreSignals() error {
	for sig := syscall.Signal(1); sig <= numSignals; sig++ {
		if _, kept := keptSignals[sig]; kept {
			continue
		}
		if goNotifiable(sig) {
			// Through os/signal, so that the runtime's bookkeeping agrees.
			signal.Ignore(sig)
			continue
		}
		if err := setDisposition(sig, sigIgn); err != nil {
			return fmt.Errorf("ignoring signal %d: %w", int(sig), err)
		}
	}
	return nil
}

// goNotifiable reports whether os/signal can change sig's disposition: the runtime
// refuses for the signals it turns into panics or crashes, and for the real-time signals
// it leaves to the C library.
func goNotifiable(sig syscall.Signal) bool {
	switch sig {
	case unix.SIGILL, unix.SIGTRAP, unix.SIGBUS, unix.SIGFPE, unix.SIGSEGV, unix.SIGSTKFLT, unix.SIGSYS,
		unix.SIGPROF, 32, 34:
		return false
	}
	return true
}

// resetSignals gives every signal its default disposition and unblocks all of them, so
// that the program starts as a freshly executed process would, whatever the runner (or
// the Go runtime of the exec shim) ignored or blocked. Only for the exec shim, right
// before it executes the program, on a locked OS thread.
func resetSignals() error {
	for sig := syscall.Signal(1); sig <= numSignals; sig++ {
		if sig == unix.SIGKILL || sig == unix.SIGSTOP {
			continue
		}
		if err := setDisposition(sig, sigDfl); err != nil {
			return fmt.Errorf("resetting signal %d: %w", int(sig), err)
		}
	}
	var none unix.Sigset_t
	return unix.PthreadSigmask(unix.SIG_SETMASK, &none, nil)
}

// The handler values of rt_sigaction(2).
const (
	sigDfl = 0
	sigIgn = 1
)

// kernelSigaction is struct sigaction as rt_sigaction(2) takes it. Only the handler is
// set: the flags, the restorer (absent on some architectures) and the mask are zero, so
// the layout is right whether or not the restorer field exists.
type kernelSigaction struct {
	handler uintptr
	_       [3]uint64
}

// setDisposition sets sig's handler to SIG_IGN or SIG_DFL with rt_sigaction, behind the
// Go runtime's back: os/signal cannot change the signals the runtime keeps for itself.
func setDisposition(sig syscall.Signal, handler uintptr) error {
	sa := kernelSigaction{handler: handler}
	const sigsetSize = 8 // the kernel's sigset_t: 64 signals
	_, _, errno := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&sa)), 0, sigsetSize, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}
