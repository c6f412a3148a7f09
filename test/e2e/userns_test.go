//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
)

// usernsSource names itself (its comm, which the host sees in /proc/PID/comm) after the
// marker it reads from stdin, prints its ids and its user namespace's maps, and stays alive
// for a while so that the host can find it.
const usernsSource = `import json, os, sys, time

cfg = json.loads(sys.stdin.read())
try:
    with open('/proc/self/comm', 'w') as f:
        f.write(cfg['marker'])
except OSError:
    import ctypes
    ctypes.CDLL(None).prctl(15, cfg['marker'].encode(), 0, 0, 0)  # PR_SET_NAME
out = {'uid': os.getuid(), 'gid': os.getgid(),
       'uidMap': open('/proc/self/uid_map').read(), 'gidMap': open('/proc/self/gid_map').read()}
print(json.dumps(out), flush=True)
time.sleep(cfg['hold'])
`

type usernsReport struct {
	UID, GID       int64
	UIDMap, GIDMap string
}

// idMapping is one line of /proc/PID/uid_map: inside, outside, length.
type idMapping struct{ inside, outside, length int64 }

func parseIDMap(t *testing.T, text string) []idMapping {
	t.Helper()
	var maps []idMapping
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			t.Fatalf("id map line %q: want three fields", line)
		}
		var m [3]int64
		for i := range f {
			v, err := strconv.ParseInt(f[i], 10, 64)
			if err != nil {
				t.Fatalf("id map line %q: %v", line, err)
			}
			m[i] = v
		}
		maps = append(maps, idMapping{m[0], m[1], m[2]})
	}
	return maps
}

// hostID maps id through maps, as the kernel does for a process in that user namespace.
func hostID(maps []idMapping, id int64) (int64, bool) {
	for _, m := range maps {
		if id >= m.inside && id < m.inside+m.length {
			return m.outside + id - m.inside, true
		}
	}
	return 0, false
}

// wantHostUsers is the hostUsers the operator gives run pods: its configuration's when set;
// in auto mode (unset), false where every node supports user namespaces for the run pods'
// runtime handler, else unset. (The operator also leaves out nodes that run pods cannot
// land on; the suite's clusters have none.)
func wantHostUsers(t *testing.T) *bool {
	t.Helper()
	if operatorConfig.HostUsers != nil {
		return operatorConfig.HostUsers
	}
	if ok, _ := nodesSupportUserNamespaces(t); ok {
		return ptr.To(false)
	}
	return nil
}

// runUIDs bounds the uids of run pods: the operator's range, folded below 65536 in a user
// namespace of the pod's own.
func runUIDs(t *testing.T) (lo, hi int64) {
	t.Helper()
	if h := wantHostUsers(t); h != nil && !*h {
		return execv1alpha1.UserNamespaceRunUIDMin, execv1alpha1.UserNamespaceRunUIDEnd
	}
	return operatorConfig.RunUIDMin, operatorConfig.RunUIDMin + operatorConfig.RunUIDCount
}

// runtimeHandler is the runtime handler of run pods: the default one, named "" in a node's
// status, or the handler of the operator's RuntimeClass.
func runtimeHandler(t *testing.T) string {
	t.Helper()
	if operatorConfig.RuntimeClassName == "" {
		return ""
	}
	var rc nodev1.RuntimeClass
	if err := k8s.Get(context.Background(), client.ObjectKey{Name: operatorConfig.RuntimeClassName}, &rc); err != nil {
		t.Fatalf("reading RuntimeClass %s: %v", operatorConfig.RuntimeClassName, err)
	}
	return rc.Handler
}

// nodesSupportUserNamespaces reports whether every node says that the run pods' runtime
// handler supports user namespaces (status.runtimeHandlers[].features.userNamespaces).
func nodesSupportUserNamespaces(t *testing.T) (bool, string) {
	t.Helper()
	handler := runtimeHandler(t)
	var nodes corev1.NodeList
	if err := k8s.List(context.Background(), &nodes); err != nil {
		t.Fatalf("listing nodes: %v", err)
	}
	var seen []string
	all := len(nodes.Items) > 0
	for _, n := range nodes.Items {
		supported := false
		for _, h := range n.Status.RuntimeHandlers {
			if h.Name == handler && h.Features != nil && h.Features.UserNamespaces != nil && *h.Features.UserNamespaces {
				supported = true
			}
		}
		handlers, _ := json.Marshal(n.Status.RuntimeHandlers)
		seen = append(seen, fmt.Sprintf("%s: %s", n.Name, handlers))
		all = all && supported
	}
	return all, strings.Join(seen, "; ")
}

// nodeOnThisMachine reports whether a node's InternalIP is an address of this machine (the
// local cluster of make dev: the node runs here, and its pods' processes are ours to see).
func nodeOnThisMachine(t *testing.T) bool {
	t.Helper()
	var nodes corev1.NodeList
	if err := k8s.List(context.Background(), &nodes); err != nil {
		t.Fatalf("listing nodes: %v", err)
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatalf("reading this machine's addresses: %v", err)
	}
	for _, n := range nodes.Items {
		for _, a := range n.Status.Addresses {
			if a.Type != corev1.NodeInternalIP {
				continue
			}
			for _, local := range addrs {
				if ipNet, ok := local.(*net.IPNet); ok && ipNet.IP.Equal(net.ParseIP(a.Address)) {
					return true
				}
			}
		}
	}
	return false
}

// hostProcess is what the host's /proc says about a process.
type hostProcess struct {
	pid    int
	uid    int64 // real uid, as the host sees it
	uidMap string
}

// findHostProcess polls this machine's /proc until a process named comm appears.
func findHostProcess(ctx context.Context, comm string) (hostProcess, error) {
	for {
		dirs, _ := filepath.Glob("/proc/[0-9]*")
		for _, dir := range dirs {
			name, err := os.ReadFile(filepath.Join(dir, "comm"))
			if err != nil || strings.TrimSpace(string(name)) != comm {
				continue
			}
			status, err := os.ReadFile(filepath.Join(dir, "status"))
			if err != nil {
				continue
			}
			uidMap, _ := os.ReadFile(filepath.Join(dir, "uid_map"))
			for _, line := range strings.Split(string(status), "\n") {
				if f := strings.Fields(line); len(f) >= 2 && f[0] == "Uid:" {
					uid, err := strconv.ParseInt(f[1], 10, 64)
					if err != nil {
						return hostProcess{}, fmt.Errorf("%s/status: %q", dir, line)
					}
					pid, _ := strconv.Atoi(filepath.Base(dir))
					return hostProcess{pid: pid, uid: uid, uidMap: string(uidMap)}, nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return hostProcess{}, fmt.Errorf("no process named %q appeared in /proc: %w", comm, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestUserNamespaces checks, on a cluster whose nodes support user namespaces, that a run
// (cold and warm) lives in a user namespace of its own: its uid_map is not the identity map
// and maps its uid to an unprivileged host uid. When the node runs on this machine and the
// suite runs as root (make test-e2e on the local cluster), it also finds the run's process in
// the host's /proc and checks the uid the host sees: not the pod's runAsUser, and >= 65536.
func TestUserNamespaces(t *testing.T) {
	t.Parallel()
	_, handlers := nodesSupportUserNamespaces(t)
	t.Logf("nodes' runtime handlers: %s", handlers)
	if h := wantHostUsers(t); h == nil || *h {
		t.Skipf("run pods get no user namespace of their own here (hostUsers %v: the operator's %v)", ptrString(h), ptrString(operatorConfig.HostUsers))
	}
	fromHost := os.Geteuid() == 0 && nodeOnThisMachine(t)
	if !fromHost {
		t.Log("the node is not on this machine, or the suite is not root: checking from inside the run only")
	}
	for _, path := range bothPaths {
		t.Run(pathName(path), func(t *testing.T) {
			t.Parallel()
			var b [4]byte
			if _, err := rand.Read(b[:]); err != nil {
				t.Fatal(err)
			}
			marker := "uns" + hex.EncodeToString(b[:]) // comm holds 15 bytes
			// Hold the process long enough for the host to see it, within the pool's
			// timeout on the warm path.
			hold, limits := 8, timeout(60)
			if path == execv1alpha1.PathWarm {
				limits = timeout(*poolShape(t).TimeoutSeconds)
				hold = min(hold, int(*limits.TimeoutSeconds)-3)
			}
			stdin, err := json.Marshal(map[string]any{"marker": marker, "hold": hold})
			if err != nil {
				t.Fatal(err)
			}

			type found struct {
				p   hostProcess
				err error
			}
			seen := make(chan found, 1)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			if fromHost {
				go func() {
					p, err := findHostProcess(ctx, marker)
					seen <- found{p, err}
				}()
			}
			run := runOnPath(t, "userns", execv1alpha1.CodeRunSpec{Source: usernsSource, Stdin: string(stdin), Limits: limits}, path)
			expectEnd(t, run, execv1alpha1.PhaseSucceeded, execv1alpha1.ReasonCompleted, nil)
			var got usernsReport
			if err := json.Unmarshal([]byte(strings.TrimSpace(run.Status.Result.Stdout)), &got); err != nil {
				t.Fatalf("the program's output is not its report: %v\n%s", err, run.Status.Result.Output)
			}
			t.Logf("inside the run: uid %d, gid %d, uid_map %q, gid_map %q", got.UID, got.GID, got.UIDMap, got.GIDMap)

			uidMap := parseIDMap(t, got.UIDMap)
			if len(uidMap) == 1 && uidMap[0] == (idMapping{0, 0, 4294967295}) {
				t.Fatalf("uid_map is the identity map %q: the run is in the host's user namespace", got.UIDMap)
			}
			hostUID, ok := hostID(uidMap, got.UID)
			if !ok {
				t.Fatalf("uid %d is not in the uid_map %q", got.UID, got.UIDMap)
			}
			if hostUID < 65536 || hostUID == got.UID {
				t.Errorf("uid %d maps to host uid %d: want a host uid >= 65536 other than the pod's own", got.UID, hostUID)
			}
			for _, m := range uidMap {
				if m.outside < 65536 {
					t.Errorf("uid_map line %v maps onto host uids below 65536 (root and system users)", m)
				}
			}
			gidMap := parseIDMap(t, got.GIDMap)
			if hostGID, ok := hostID(gidMap, got.GID); !ok || hostGID < 65536 {
				t.Errorf("gid %d maps to host gid %d (%v in %q): want a host gid >= 65536", got.GID, hostGID, ok, got.GIDMap)
			}

			if !fromHost {
				return
			}
			var f found
			select {
			case f = <-seen:
			case <-time.After(10 * time.Second):
				cancel()
				f = <-seen
			}
			if f.err != nil {
				t.Fatalf("the host never saw the run's process: %v", f.err)
			}
			t.Logf("on the host: pid %d, uid %d, uid_map %q", f.p.pid, f.p.uid, strings.TrimSpace(f.p.uidMap))
			if f.p.uid != hostUID {
				t.Errorf("the host sees the run's process as uid %d, want %d (uid %d through %q)", f.p.uid, hostUID, got.UID, got.UIDMap)
			}
			if f.p.uid < 65536 || f.p.uid == got.UID {
				t.Errorf("the host sees the run's process as uid %d: want an unprivileged mapped uid >= 65536, not the pod's uid %d", f.p.uid, got.UID)
			}
			if strings.Join(strings.Fields(f.p.uidMap), " ") != strings.Join(strings.Fields(got.UIDMap), " ") {
				t.Errorf("the host reads uid_map %q of the process, the run read %q", f.p.uidMap, got.UIDMap)
			}
		})
	}
}
