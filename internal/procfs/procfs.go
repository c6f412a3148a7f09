// Package procfs reads the few facts about processes that the runner and its tests need
// from /proc: which processes a uid owns, whether a process is alive, its children, and
// how much memory a process tree uses. Every function tolerates processes that exit while
// it reads: they are left out, or count as gone.
package procfs

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// root is where procfs is mounted.
const root = "/proc"

// Process is one entry of /proc.
type Process struct {
	PID   int
	Name  string
	State string // as /proc/<pid>/status shows it, e.g. "S (sleeping)"
}

// Zombie reports whether the process has exited and waits to be reaped (or is being).
func (p Process) Zombie() bool {
	return strings.HasPrefix(p.State, "Z") || strings.HasPrefix(p.State, "X")
}

// String is "pid name (state)", for messages.
func (p Process) String() string {
	return fmt.Sprintf("%d %s (%s)", p.PID, p.Name, p.State)
}

// OwnedBy lists the processes whose real, effective or saved uid is uid, zombies
// included. Processes that vanish while it reads are left out.
func OwnedBy(uid int) []Process {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil
	}
	want := strconv.Itoa(uid)
	var found []Process
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(root + "/" + e.Name() + "/status")
		if err != nil {
			continue
		}
		p := Process{PID: pid}
		var uids []string
		for line := range strings.Lines(string(data)) {
			key, value, _ := strings.Cut(strings.TrimSpace(line), ":")
			switch key {
			case "Name":
				p.Name = strings.TrimSpace(value)
			case "State":
				p.State = strings.TrimSpace(value)
			case "Uid":
				uids = strings.Fields(value)
			}
		}
		for i, u := range uids {
			if i < 3 && u == want { // real, effective, saved; not the filesystem uid
				found = append(found, p)
				break
			}
		}
	}
	return found
}

// LiveOwnedBy is OwnedBy without zombies.
func LiveOwnedBy(uid int) []Process {
	var live []Process
	for _, p := range OwnedBy(uid) {
		if !p.Zombie() {
			live = append(live, p)
		}
	}
	return live
}
