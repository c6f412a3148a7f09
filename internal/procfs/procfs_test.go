package procfs

import (
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/coderun-dev/coderun/internal/testneed"
)

// missingPID is above the kernel's largest pid (2^22): no process has it.
const missingPID = 1 << 30

// start starts name with args as a child of the test, or skips (see testneed).
func start(t *testing.T, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(name, args...)
	if err := cmd.Start(); err != nil {
		testneed.Skip(t, "cannot start %s: %v", name, err)
	}
	return cmd
}

// waitZombie waits until the child pid has exited and is not yet reaped.
func waitZombie(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if p := find(OwnedBy(os.Getuid()), pid); p != nil && p.Zombie() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the child %d did not become a zombie", pid)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func find(ps []Process, pid int) *Process {
	for i := range ps {
		if ps[i].PID == pid {
			return &ps[i]
		}
	}
	return nil
}

func TestOwnedBy(t *testing.T) {
	t.Parallel()
	// A child that exits and is not yet reaped is a zombie of our uid.
	cmd := start(t, "true")
	defer func() { _ = cmd.Wait() }()

	self := find(OwnedBy(os.Getuid()), os.Getpid())
	if self == nil || self.Name == "" || self.Zombie() {
		t.Fatalf("this process in OwnedBy(%d): %+v, want it, named and alive", os.Getuid(), self)
	}
	if find(LiveOwnedBy(os.Getuid()), os.Getpid()) == nil {
		t.Error("LiveOwnedBy leaves out this live process")
	}
	waitZombie(t, cmd.Process.Pid)
	if find(LiveOwnedBy(os.Getuid()), cmd.Process.Pid) != nil {
		t.Error("LiveOwnedBy lists a zombie")
	}
	if ps := OwnedBy(2_000_000_123); len(ps) != 0 {
		t.Errorf("an unused uid owns %v", ps)
	}
}

func TestAlive(t *testing.T) {
	t.Parallel()
	if !Alive(os.Getpid()) {
		t.Error("this process is not alive")
	}
	if Alive(missingPID) {
		t.Error("a missing process is alive")
	}
	cmd := start(t, "true")
	waitZombie(t, cmd.Process.Pid)
	if Alive(cmd.Process.Pid) {
		t.Error("a zombie is alive")
	}
	_ = cmd.Wait()
	if Alive(cmd.Process.Pid) {
		t.Error("a reaped process is alive")
	}
}

func TestParseStat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		stat  string
		state byte
		ppid  int
		ok    bool
	}{
		{"1234 (python3) S 1 1234 1234 0 -1", 'S', 1, true},
		{"1234 (a b) c) R 77 1 1", 'R', 77, true},
		{"1234 (x) Z 5 5", 'Z', 5, true},
		{"1234 (x) S", 0, 0, false},
		{"1234 (x)", 0, 0, false},
		{"1234 (x) S y", 0, 0, false},
		{"garbage", 0, 0, false},
	}
	for _, tt := range tests {
		state, ppid, ok := parseStat(tt.stat)
		if ok != tt.ok || (ok && (state != tt.state || ppid != tt.ppid)) {
			t.Errorf("parseStat(%q) = %q, %d, %v; want %q, %d, %v", tt.stat, state, ppid, ok, tt.state, tt.ppid, tt.ok)
		}
	}
}

func TestParseKB(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"   1234 kB\n", 1234 * 1024, true},
		{"0 kB", 0, true},
		{"1234", 0, false},
		{"1234 MB", 0, false},
		{"x kB", 0, false},
	}
	for _, tt := range tests {
		if got, ok := parseKB(tt.in); got != tt.want || ok != tt.ok {
			t.Errorf("parseKB(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestProcessTree(t *testing.T) {
	t.Parallel()
	cmd := start(t, "sleep", "10")
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	self, child := os.Getpid(), cmd.Process.Pid
	if kids := Children(self); !slices.Contains(kids, child) {
		t.Errorf("Children(self) = %v, missing %d", kids, child)
	}
	if kids := childrenByParent(self); !slices.Contains(kids, child) {
		t.Errorf("childrenByParent(self) = %v, missing %d", kids, child)
	}
	if pids := tree([]int{self, self}); len(pids) < 2 || pids[0] != self || !slices.Contains(pids, child) || slices.Index(pids[1:], self) >= 0 {
		t.Errorf("tree(self, self) = %v, want self once, then its child %d among the rest", pids, child)
	}
	own, kid := ResidentBytes(self), ResidentBytes(child)
	if all := TreeMemory([]int{self}); own <= 0 || kid <= 0 || all <= kid {
		t.Errorf("own RSS %d, the child's %d, the tree's %d", own, kid, all)
	}
	if single := TreeMemory([]int{child}); single != ResidentBytes(child) {
		t.Errorf("TreeMemory of one process %d, want its RSS %d", single, ResidentBytes(child))
	}
	if pss, ok := ProportionalBytes(self); !ok || pss <= 0 || pss > ResidentBytes(self) {
		t.Errorf("own PSS %d (ok %v), want positive and at most the RSS", pss, ok)
	}
	if Children(missingPID) != nil || ResidentBytes(missingPID) != 0 || TreeMemory([]int{missingPID}) != 0 {
		t.Error("a missing process has children or memory")
	}
	if _, ok := ProportionalBytes(missingPID); ok {
		t.Error("a missing process has a PSS")
	}
}
