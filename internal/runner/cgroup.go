package runner

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
)

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
