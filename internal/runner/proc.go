package runner

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"
)

// procRoot is where procfs is mounted.
const procRoot = "/proc"

// maxTreeSize bounds a walk of a process tree (the program's RLIMIT_NPROC bounds it too).
const maxTreeSize = 4096

var pageSize = int64(os.Getpagesize())

// childrenOf returns the direct children of pid, from /proc/<pid>/task/*/children (a
// child belongs to the thread that forked it), or from every process's parent pid where
// the kernel lacks those files (CONFIG_PROC_CHILDREN). It returns nothing for a process
// that is gone.
func childrenOf(pid int) []int {
	dir := procRoot + "/" + strconv.Itoa(pid) + "/task"
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
	entries, err := os.ReadDir(procRoot)
	if err != nil {
		return nil
	}
	var kids []int
	for _, e := range entries {
		k, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(procRoot + "/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		if ppid, ok := parentFromStat(string(data)); ok && ppid == pid {
			kids = append(kids, k)
		}
	}
	return kids
}

// parentFromStat returns the parent pid from the text of /proc/<pid>/stat: the fourth
// field, after a command name in parentheses that may itself hold spaces and parentheses.
func parentFromStat(stat string) (int, bool) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	fields := strings.Fields(stat[i+1:])
	if len(fields) < 2 {
		return 0, false
	}
	ppid, err := strconv.Atoi(fields[1])
	return ppid, err == nil
}

// residentBytes returns the resident set size of pid, 0 if it is gone.
func residentBytes(pid int) int64 {
	data, err := os.ReadFile(procRoot + "/" + strconv.Itoa(pid) + "/statm")
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

// treeMemory measures the memory of the roots and all their descendants. For one process
// it is the resident set size. For several it is the sum of their proportional set sizes
// (PSS): pages shared after fork are split between the processes that share them instead
// of being counted once per process, so a program with a few worker processes is not
// charged several times for the same interpreter. PSS costs a page-table walk, so the
// common single-process case reads only statm.
func treeMemory(roots []int) int64 {
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
		queue = append(queue, childrenOf(pid)...)
	}
	var total int64
	for _, pid := range pids {
		if len(pids) > 1 {
			if pss, ok := proportionalBytes(pid); ok {
				total += pss
				continue
			}
		}
		total += residentBytes(pid)
	}
	return total
}

// proportionalBytes returns the proportional set size of pid from smaps_rollup (Linux
// 4.14 and later).
func proportionalBytes(pid int) (int64, bool) {
	data, err := os.ReadFile(procRoot + "/" + strconv.Itoa(pid) + "/smaps_rollup")
	if err != nil {
		return 0, false
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "Pss:"); ok {
			fields := strings.Fields(rest) // "1234 kB"
			if len(fields) == 2 && fields[1] == "kB" {
				if kb, err := strconv.ParseInt(fields[0], 10, 64); err == nil {
					return kb * 1024, true
				}
			}
			return 0, false
		}
	}
	return 0, false
}

// cgroupOOMFiles hold the container cgroup's OOM-kill counter: cgroup v2, then v1.
var cgroupOOMFiles = []string{
	"/sys/fs/cgroup/memory.events",
	"/sys/fs/cgroup/memory/memory.oom_control",
}

// readOOMKills returns the "oom_kill N" counter of the first of files that has one; ok is
// false when none has (the count is unknown).
func readOOMKills(files []string) (n int64, ok bool) {
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			continue
		}
		if n, ok := parseOOMKills(data); ok {
			return n, true
		}
	}
	return 0, false
}

// parseOOMKills finds the "oom_kill N" line of memory.events or memory.oom_control.
func parseOOMKills(data []byte) (int64, bool) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 2 && fields[0] == "oom_kill" {
			n, err := strconv.ParseInt(fields[1], 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}
