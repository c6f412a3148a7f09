package runner

import (
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

const auditArch = unix.AUDIT_ARCH_AARCH64

// foreignABI: arm64 has one syscall ABI under its audit arch.
func foreignABI() []bpf.Instruction { return nil }
