package runner

import (
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// TestSeccompFilterX32: x32 calls carry x86-64's audit arch but other numbers.
func TestSeccompFilterX32(t *testing.T) {
	vm, err := bpf.NewVM(programFilter())
	if err != nil {
		t.Fatal(err)
	}
	got, err := vm.Run(seccompData(auditArch, x32Bit|unix.SYS_WRITE, 1, 0x7fff0000, 5))
	if err != nil || uint32(got) != errnoEPERM {
		t.Errorf("x32 write: %#x, %v", got, err)
	}
}
