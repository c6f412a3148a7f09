package runner

import (
	"fmt"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// The program runs as the runner's own user, so without more the kernel lets it change
// the runner's resource limits (prlimit: no open files, no file size for the report, no
// new threads, a CPU limit that kills it), its scheduling (SCHED_IDLE, nice 19, pinned to
// a busy CPU) and its I/O priority: a runner so crippled or slowed fails, or misses its
// deadline, and the run ends as a SystemError that the program caused. Signals are
// handled apart (signals.go), and the runner is non-dumpable, which shuts /proc/1/mem,
// ptrace, process_vm_writev, pidfd_getfd and /proc/1/oom_score_adj.
//
// The exec shim therefore installs a seccomp filter before it executes the program: the
// program and its descendants may change these settings of themselves only (the target
// 0, which means "the caller"), never of another process. Reading another process's
// limits stays allowed. The filter is on top of the container's own seccomp profile.
//
// The checks compare the 32 low bits of pid arguments: the kernel takes a pid as an int,
// so a check of all 64 bits could be dodged by setting the high ones.

// ioprioWhoProcess is ioprio_set(2)'s "which" for one process (linux/ioprio.h); x/sys/unix
// does not define it.
const ioprioWhoProcess = 1

// errnoEPERM is the filter's answer to a refused call: what the kernel itself says
// when a process may not act on another.
const errnoEPERM = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)

// seccomp_data offsets: nr, arch, instruction pointer, then six 64-bit arguments.
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

// argLow and argHigh load the low or high 32 bits of argument i (little-endian).
func argLow(i int) bpf.Instruction {
	return bpf.LoadAbsolute{Off: uint32(offArgs + 8*i), Size: 4}
}

func argHigh(i int) bpf.Instruction {
	return bpf.LoadAbsolute{Off: uint32(offArgs + 8*i + 4), Size: 4}
}

var (
	allow = bpf.RetConstant{Val: unix.SECCOMP_RET_ALLOW}
	deny  = bpf.RetConstant{Val: errnoEPERM}
)

// onlySelf allows a call whose first argument (a pid) is 0, the caller, and refuses
// others.
func onlySelf() []bpf.Instruction {
	return []bpf.Instruction{
		argLow(0),
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0, SkipFalse: 1},
		allow,
		deny,
	}
}

// onlySelfWhich allows a call whose "which" (argument 0) is the given one and whose
// "who" (argument 1) is 0: the caller. Every other which is refused: a process group
// (the program may join the runner's, which is in the same session) and "every process
// of my user" (the runner's too).
func onlySelfWhich(which uint32) []bpf.Instruction {
	return []bpf.Instruction{
		argLow(0),
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: which, SkipFalse: 3},
		argLow(1),
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0, SkipFalse: 1},
		allow,
		deny,
	}
}

// readOnlyOrSelf is prlimit64(pid, resource, new, old): allowed when new is NULL (a
// read) or pid is 0.
func readOnlyOrSelf() []bpf.Instruction {
	return []bpf.Instruction{
		argLow(2),
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0, SkipFalse: 3},
		argHigh(2),
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0, SkipFalse: 1},
		allow,
		argLow(0),
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0, SkipFalse: 1},
		allow,
		deny,
	}
}

// programFilter returns the filter's instructions for this architecture.
func programFilter() []bpf.Instruction {
	rules := []struct {
		nr    uint32
		check []bpf.Instruction
	}{
		{unix.SYS_PRLIMIT64, readOnlyOrSelf()},
		{unix.SYS_SETPRIORITY, onlySelfWhich(unix.PRIO_PROCESS)},
		{unix.SYS_IOPRIO_SET, onlySelfWhich(ioprioWhoProcess)},
		{unix.SYS_SCHED_SETAFFINITY, onlySelf()},
		{unix.SYS_SCHED_SETSCHEDULER, onlySelf()},
		{unix.SYS_SCHED_SETPARAM, onlySelf()},
		{unix.SYS_SCHED_SETATTR, onlySelf()},
	}
	prog := []bpf.Instruction{
		// Another ABI (i386's int 0x80 on x86-64) has other syscall numbers: refuse it all.
		bpf.LoadAbsolute{Off: offArch, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: auditArch, SkipTrue: 1},
		deny,
		bpf.LoadAbsolute{Off: offNr, Size: 4},
	}
	prog = append(prog, foreignABI()...)
	for _, r := range rules {
		// Skip this rule's checks when the number is another.
		prog = append(prog, bpf.JumpIf{Cond: bpf.JumpEqual, Val: r.nr, SkipFalse: uint8(len(r.check))})
		prog = append(prog, r.check...)
	}
	return append(prog, allow)
}

// installSeccompFilter sets no_new_privs (a filter needs it without CAP_SYS_ADMIN; a
// locked-down pod has it already) and installs programFilter on every thread of the
// calling process, which its exec'd program and all descendants inherit.
func installSeccompFilter() error {
	raw, err := bpf.Assemble(programFilter())
	if err != nil {
		return fmt.Errorf("assembling the seccomp filter: %w", err)
	}
	filter := make([]unix.SockFilter, len(raw))
	for i, ins := range raw {
		filter[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("setting no_new_privs: %w", err)
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	_, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
		unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&prog)))
	if errno != 0 {
		return fmt.Errorf("installing the seccomp filter: %w", errno)
	}
	return nil
}
