package runner

import (
	"encoding/binary"
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// seccompData is struct seccomp_data as the filter reads it: the kernel loads each 32-bit
// word in native (little-endian) order, but x/net/bpf's interpreter loads big-endian, as
// for a packet. So each word is written big-endian where the kernel keeps it: the low
// word of an argument first.
func seccompData(arch, nr uint32, args ...uint64) []byte {
	b := make([]byte, 64)
	binary.BigEndian.PutUint32(b[offNr:], nr)
	binary.BigEndian.PutUint32(b[offArch:], arch)
	for i, a := range args {
		binary.BigEndian.PutUint32(b[offArgs+8*i:], uint32(a))
		binary.BigEndian.PutUint32(b[offArgs+8*i+4:], uint32(a>>32))
	}
	return b
}

// TestSeccompFilter runs the program's filter in x/net/bpf's interpreter: the kernel's
// shim test (cmd/runner) shows the filter installed; this one covers each rule's edges.
func TestSeccompFilter(t *testing.T) {
	vm, err := bpf.NewVM(programFilter())
	if err != nil {
		t.Fatal(err)
	}
	const (
		allowed = unix.SECCOMP_RET_ALLOW
		refused = errnoEPERM
		runner  = 1
		nofile  = unix.RLIMIT_NOFILE
		newPtr  = 0x7fff0000
	)
	highBits := uint64(1) << 32
	for _, tt := range []struct {
		name string
		data []byte
		want uint32
	}{
		{"write", seccompData(auditArch, unix.SYS_WRITE, 1, newPtr, 5), allowed},
		{"kill of the runner (signals are the runner's business)", seccompData(auditArch, unix.SYS_KILL, runner, 9), allowed},
		{"prlimit of self", seccompData(auditArch, unix.SYS_PRLIMIT64, 0, nofile, newPtr, 0), allowed},
		{"prlimit read of the runner", seccompData(auditArch, unix.SYS_PRLIMIT64, runner, nofile, 0, newPtr), allowed},
		{"prlimit of the runner", seccompData(auditArch, unix.SYS_PRLIMIT64, runner, nofile, newPtr, 0), refused},
		{"prlimit with a pointer whose low bits are 0", seccompData(auditArch, unix.SYS_PRLIMIT64, runner, nofile, highBits, 0), refused},
		{"prlimit of pid 0 with high bits", seccompData(auditArch, unix.SYS_PRLIMIT64, highBits, nofile, newPtr, 0), allowed},
		{"prlimit of the runner with high bits", seccompData(auditArch, unix.SYS_PRLIMIT64, highBits|runner, nofile, newPtr, 0), refused},
		{"nice of self", seccompData(auditArch, unix.SYS_SETPRIORITY, unix.PRIO_PROCESS, 0, 5), allowed},
		{"nice of the runner", seccompData(auditArch, unix.SYS_SETPRIORITY, unix.PRIO_PROCESS, runner, 19), refused},
		{"nice of own group", seccompData(auditArch, unix.SYS_SETPRIORITY, unix.PRIO_PGRP, 0, 19), refused},
		{"nice of own user", seccompData(auditArch, unix.SYS_SETPRIORITY, unix.PRIO_USER, 0, 19), refused},
		{"I/O priority of self", seccompData(auditArch, unix.SYS_IOPRIO_SET, ioprioWhoProcess, 0, 3<<13), allowed},
		{"I/O priority of the runner", seccompData(auditArch, unix.SYS_IOPRIO_SET, ioprioWhoProcess, runner, 3<<13), refused},
		{"I/O priority of own user", seccompData(auditArch, unix.SYS_IOPRIO_SET, 3, 0, 3<<13), refused},
		{"affinity of self", seccompData(auditArch, unix.SYS_SCHED_SETAFFINITY, 0, 8, newPtr), allowed},
		{"affinity of the runner", seccompData(auditArch, unix.SYS_SCHED_SETAFFINITY, runner, 8, newPtr), refused},
		{"scheduler of the runner", seccompData(auditArch, unix.SYS_SCHED_SETSCHEDULER, runner, 5, newPtr), refused},
		{"parameters of the runner", seccompData(auditArch, unix.SYS_SCHED_SETPARAM, runner, newPtr), refused},
		{"attributes of the runner", seccompData(auditArch, unix.SYS_SCHED_SETATTR, runner, newPtr, 0), refused},
		{"attributes of self", seccompData(auditArch, unix.SYS_SCHED_SETATTR, 0, newPtr, 0), allowed},
		{"another ABI", seccompData(unix.AUDIT_ARCH_I386, unix.SYS_WRITE, 1, newPtr, 5), refused},
	} {
		got, err := vm.Run(tt.data)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if uint32(got) != tt.want {
			t.Errorf("%s: %#x, want %#x", tt.name, got, tt.want)
		}
	}
}
