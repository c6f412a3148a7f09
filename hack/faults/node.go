package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	corev1 "k8s.io/api/core/v1"
)

// The node is this machine (hack/local-cluster.sh), so a pod's container is a cgroup here:
// the kubelet's cgroupfs driver puts it at kubepods[/<qos>]/pod<uid>/<container id> under
// each cgroup v1 controller. The suite kills containers and reads their memory there, as an
// operator of the node would, not through the API it is breaking.
const memoryCgroupRoot = "/sys/fs/cgroup/memory/kubepods"

// containerCgroup returns the memory cgroup folder of pod's container name.
func containerCgroup(pod *corev1.Pod, name string) (string, error) {
	var id string
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name == name && cs.State.Running != nil {
			_, id, _ = strings.Cut(cs.ContainerID, "://")
		}
	}
	if id == "" {
		return "", fmt.Errorf("pod %s/%s: container %s is not running", pod.Namespace, pod.Name, name)
	}
	podDir := "pod" + string(pod.UID)
	for _, pattern := range []string{
		filepath.Join(memoryCgroupRoot, podDir, id),
		filepath.Join(memoryCgroupRoot, "*", podDir, id),
	} {
		if found, _ := filepath.Glob(pattern); len(found) == 1 {
			return found[0], nil
		}
	}
	return "", fmt.Errorf("pod %s/%s: no cgroup for container %s (%s) under %s", pod.Namespace, pod.Name, name, id, memoryCgroupRoot)
}

// mainProcess returns the container's first process: the one in its cgroup whose parent
// is not (containerd's shim started it).
func mainProcess(cgroup string) (int, error) {
	data, err := os.ReadFile(filepath.Join(cgroup, "cgroup.procs"))
	if err != nil {
		return 0, err
	}
	pids := map[int]bool{}
	for _, f := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids[pid] = true
		}
	}
	for pid := range pids {
		if ppid, err := parentOf(pid); err == nil && !pids[ppid] {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no process in %s", cgroup)
}

func parentOf(pid int) (int, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// pid (comm) state ppid ...; comm may hold spaces and parentheses.
	rest := data[bytes.LastIndexByte(data, ')')+1:]
	fields := strings.Fields(string(rest))
	if len(fields) < 2 {
		return 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	return strconv.Atoi(fields[1])
}

// killContainer sends SIGKILL to the main process of pod's container name, as a crash (or
// the kernel's OOM killer) would: no shutdown code runs. The kubelet restarts the container
// in the same pod. It returns the PID killed.
func killContainer(pod *corev1.Pod, name string) (int, error) {
	cg, err := containerCgroup(pod, name)
	if err != nil {
		return 0, err
	}
	pid, err := mainProcess(cg)
	if err != nil {
		return 0, err
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return 0, fmt.Errorf("killing pid %d of %s/%s: %w", pid, pod.Name, name, err)
	}
	return pid, nil
}

// containerMemory returns the anonymous memory (rss, the heap and stacks; not the page
// cache, which the kernel reclaims at will) of pod's container name, from its memory cgroup.
func containerMemory(pod *corev1.Pod, name string) (int64, error) {
	cg, err := containerCgroup(pod, name)
	if err != nil {
		return 0, err
	}
	f, err := os.Open(filepath.Join(cg, "memory.stat"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, value, _ := strings.Cut(sc.Text(), " ")
		if key == "total_rss" {
			return strconv.ParseInt(value, 10, 64)
		}
	}
	return 0, fmt.Errorf("%s/memory.stat has no total_rss", cg)
}
