package procfs

import (
	"os"
	"os/exec"
	"testing"
)

func TestOwnedBy(t *testing.T) {
	// A child that exits and is not yet reaped is a zombie of our uid.
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	defer func() { _ = cmd.Wait() }()

	find := func(ps []Process, pid int) *Process {
		for i := range ps {
			if ps[i].PID == pid {
				return &ps[i]
			}
		}
		return nil
	}
	self := find(OwnedBy(os.Getuid()), os.Getpid())
	if self == nil || self.Name == "" || self.Zombie() {
		t.Fatalf("this process in OwnedBy(%d): %+v, want it, named and alive", os.Getuid(), self)
	}
	if find(LiveOwnedBy(os.Getuid()), os.Getpid()) == nil {
		t.Error("LiveOwnedBy leaves out this live process")
	}
	// Wait until the child has exited: then only OwnedBy lists it.
	for range 1000 {
		if p := find(OwnedBy(os.Getuid()), cmd.Process.Pid); p == nil || p.Zombie() {
			break
		}
	}
	if p := find(OwnedBy(os.Getuid()), cmd.Process.Pid); p != nil && p.Zombie() && find(LiveOwnedBy(os.Getuid()), cmd.Process.Pid) != nil {
		t.Error("LiveOwnedBy lists a zombie")
	}
	if ps := OwnedBy(2_000_000_123); len(ps) != 0 {
		t.Errorf("an unused uid owns %v", ps)
	}
}
