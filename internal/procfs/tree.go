package procfs

import (
	"errors"
	"os"
	"strconv"
	"strings"
)

// maxTreeSize bounds a walk of a process tree (the program's RLIMIT_NPROC bounds it too).
const maxTreeSize = 4096

var pageSize = int64(os.Getpagesize())

// pidFile is the path of a file of /proc/<pid>.
func pidFile(pid int, name string) string {
	return root + "/" + strconv.Itoa(pid) + "/" + name
}

// Alive reports whether pid is a process that is not a zombie. A process whose stat
// cannot be parsed counts as alive, so that a caller checking that nothing is left errs
// on the side of reporting it.
func Alive(pid int) bool {
	data, err := os.ReadFile(pidFile(pid, "stat"))
	if err != nil {
		return false
	}
	state, _, ok := parseStat(string(data))
	return !ok || (state != 'Z' && state != 'X')
}

// parseStat returns the state letter and the parent pid from the text of
// /proc/<pid>/stat: the third and fourth fields, after a command name in parentheses that
// may itself hold spaces and parentheses.
func parseStat(stat string) (state byte, ppid int, ok bool) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, 0, false
	}
	fields := strings.Fields(stat[i+1:])
	if len(fields) < 2 || fields[0] == "" {
		return 0, 0, false
	}
	ppid, err := strconv.Atoi(fields[1])
	return fields[0][0], ppid, err == nil
}

// Children returns the direct children of pid, from /proc/<pid>/task/*/children (a child
// belongs to the thread that forked it), or from every process's parent pid where the
// kernel lacks those files (CONFIG_PROC_CHILDREN). It returns nothing for a process that
// is gone.
func Children(pid int) []int {
	dir := pidFile(pid, "task")
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var kids []int
	for i, t := range tasks {
		data, err := os.ReadFile(dir + "/" + t.Name() + "/children")
		if err != nil {
			if i == 0 && errors.Is(err, os.ErrNotExist) {
				return childrenByParent(pid)
			}
			continue
		}
		for _, f := range strings.Fields(string(data)) {
			if k, err := strconv.Atoi(f); err == nil && k > 0 {
				kids = append(kids, k)
			}
		}
	}
	return kids
}

// childrenByParent finds the children of pid by the parent pid in /proc/*/stat.
func childrenByParent(pid int) []int {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil
	}
	var kids []int
	for _, e := range entries {
		k, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(pidFile(k, "stat"))
		if err != nil {
			continue
		}
		if _, ppid, ok := parseStat(string(data)); ok && ppid == pid {
			kids = append(kids, k)
		}
	}
	return kids
}

// ResidentBytes returns the resident set size of pid, 0 if it is gone.
func ResidentBytes(pid int) int64 {
	data, err := os.ReadFile(pidFile(pid, "statm"))
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(data))
	if len(fields) < 2 {
		return 0
	}
	pages, err := strconv.ParseInt(fields[1], 10, 64)
	if err != nil {
		return 0
	}
	return pages * pageSize
}

// ProportionalBytes returns the proportional set size of pid from smaps_rollup (Linux
// 4.14 and later); ok is false when it cannot be read.
func ProportionalBytes(pid int) (n int64, ok bool) {
	data, err := os.ReadFile(pidFile(pid, "smaps_rollup"))
	if err != nil {
		return 0, false
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "Pss:"); ok {
			return parseKB(rest)
		}
	}
	return 0, false
}

// parseKB parses a size of smaps ("  1234 kB") into bytes.
func parseKB(s string) (int64, bool) {
	fields := strings.Fields(s)
	if len(fields) != 2 || fields[1] != "kB" {
		return 0, false
	}
	kb, err := strconv.ParseInt(fields[0], 10, 64)
	if err != nil {
		return 0, false
	}
	return kb * 1024, true
}

// TreeMemory measures the memory of the roots and all their descendants. For one process
// it is the resident set size. For several it is the sum of their proportional set sizes
// (PSS): pages shared after fork are split between the processes that share them instead
// of being counted once per process, so a program with a few worker processes is not
// charged several times for the same interpreter. PSS costs a page-table walk, so the
// common single-process case reads only statm.
func TreeMemory(roots []int) int64 {
	pids := tree(roots)
	var total int64
	for _, pid := range pids {
		if len(pids) > 1 {
			if pss, ok := ProportionalBytes(pid); ok {
				total += pss
				continue
			}
		}
		total += ResidentBytes(pid)
	}
	return total
}

// tree lists the roots and their descendants, breadth first, each once, at most
// maxTreeSize of them.
func tree(roots []int) []int {
	seen := make(map[int]bool, len(roots))
	queue := append([]int(nil), roots...)
	var pids []int
	for len(queue) > 0 && len(seen) < maxTreeSize {
		pid := queue[0]
		queue = queue[1:]
		if seen[pid] {
			continue
		}
		seen[pid] = true
		pids = append(pids, pid)
		queue = append(queue, Children(pid)...)
	}
	return pids
}
