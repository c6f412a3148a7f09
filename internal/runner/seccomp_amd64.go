package runner

import (
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

const auditArch = unix.AUDIT_ARCH_X86_64

// x32Bit marks the x32 ABI's syscall numbers, which share x86-64's audit arch.
const x32Bit = 0x40000000

// foreignABI refuses x32 calls, with the syscall number loaded: they would bypass the
// rules, which name x86-64's numbers.
func foreignABI() []bpf.Instruction {
	return []bpf.Instruction{
		bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: x32Bit, SkipFalse: 1},
		deny,
	}
}
