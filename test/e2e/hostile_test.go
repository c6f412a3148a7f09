//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/runtimes"
	"github.com/coderun-dev/coderun/internal/testneed"
)

// attackRunnerSource attacks the runner, PID 1 of the run's container and of the
// program's own uid, in every way the runner's suite covers one by one (cmd/runner's
// hostile tests): the signals that used to end it, sent with kill and with sigqueue's
// code; SIGKILL and SIGSTOP; its limits and priority; its /proc entries; and a full /tmp.
// Each attempt prints what happened; the program then exits 3.
const attackRunnerSource = `import ctypes, errno, json, os, platform, resource, signal, struct, sys, time
RT_SIGQUEUEINFO = {"x86_64": 129, "aarch64": 138}[platform.machine()]
libc = ctypes.CDLL(None, use_errno=True)

def sigqueue(sig):
    info = ctypes.create_string_buffer(128)
    struct.pack_into("iii", info, 0, sig, 0, -1)
    struct.pack_into("II", info, 16, os.getpid(), os.getuid())
    if libc.syscall(RT_SIGQUEUEINFO, 1, sig, info) != 0:
        raise OSError(ctypes.get_errno(), "rt_sigqueueinfo")

def fill(dir):
    # In files of 4 MiB: one file would meet the file size limit before /tmp is full.
    for i in range(1 << 20):
        with open(os.path.join(dir, "fill%d" % i), "wb") as f:
            for _ in range(4):
                f.write(b"x" * (1 << 20))
                f.flush()

def attempt(name, f):
    try:
        f()
        print(name + ": allowed", flush=True)
    except OSError as e:
        print(name + ": " + errno.errorcode[e.errno], flush=True)

runner_uid = [int(l.split()[1]) for l in open("/proc/1/status") if l.startswith("Uid:")][0]
print("runner is pid 1 of my uid:", os.getppid() == 1 and runner_uid == os.getuid())
signals = json.load(sys.stdin)
for sig in signals:
    os.kill(1, sig)
    sigqueue(sig)
time.sleep(0.3)
print("signalled the runner with %d signals, twice each" % len(signals))
attempt("runner's RLIMIT_NOFILE", lambda: resource.prlimit(1, resource.RLIMIT_NOFILE, (0, 0)))
attempt("runner's nice", lambda: os.setpriority(os.PRIO_PROCESS, 1, 19))
attempt("runner's oom_score_adj", lambda: open("/proc/1/oom_score_adj", "w").write("1000"))
attempt("fill /tmp", lambda: fill("/tmp"))
raise SystemExit(3)
`

const attackRunnerOutput = `runner is pid 1 of my uid: True
signalled the runner with %d signals, twice each
runner's RLIMIT_NOFILE: EPERM
runner's nice: EPERM
runner's oom_score_adj: EACCES
fill /tmp: ENOSPC
`

// TestProgramAttacksRunner: whatever the program does to the runner, the run ends with
// the program's own result and output, in a cold run's pod and in a warm member alike.
//
// Under gVisor, SIGKILL and SIGSTOP are left out, and TestGVisorDeliversSIGKILLToInit
// shows why.
func TestProgramAttacksRunner(t *testing.T) {
	t.Parallel()
	gvisor := underGVisor(t)
	var signals []int
	for sig := 1; sig <= 64; sig++ {
		if gvisor && (sig == int(syscall.SIGKILL) || sig == int(syscall.SIGSTOP)) {
			continue
		}
		signals = append(signals, sig)
	}
	stdin, err := json.Marshal(signals)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(attackRunnerOutput, len(signals))
	for _, path := range bothPaths {
		t.Run(pathName(path), func(t *testing.T) {
			t.Parallel()
			run := runOnPath(t, "attack-runner", execv1alpha1.CodeRunSpec{
				Source: attackRunnerSource,
				Stdin:  string(stdin),
				Limits: timeout(limitTimeout(t, path)),
			}, path)
			expectEnd(t, run, execv1alpha1.PhaseFailed, execv1alpha1.ReasonNonZeroExit, ptr.To[int32](3))
			if got := run.Status.Result.Output; got != want {
				t.Errorf("output:\n%s\nwant:\n%s", got, want)
			}
			expectNextRunWorks(t)
		})
	}
}

// underGVisor reports whether run pods run under gVisor (runsc).
func underGVisor(t *testing.T) bool {
	t.Helper()
	return runtimeHandler(t) == "runsc"
}

// TestGVisorDeliversSIGKILLToInit pins a known difference of gVisor (runsc): its sentry
// does not implement the rule that a PID namespace's init receives from inside only the
// signals it handles ("We don't currently do this for child namespaces, though we should",
// pkg/sentry/kernel/task_signals.go). So under gVisor a program that sends SIGKILL to PID 1,
// its runner, ends its own run as a SystemError, where runc's kernel drops the signal. When
// gVisor fixes it, this test fails: then SIGKILL and SIGSTOP join TestProgramAttacksRunner.
func TestGVisorDeliversSIGKILLToInit(t *testing.T) {
	t.Parallel()
	if !underGVisor(t) {
		t.Skip("run pods do not run under gVisor here")
	}
	run := runProgram(t, "gvisor-sigkill", execv1alpha1.CodeRunSpec{
		Source: "import os\nprint('killing my runner', flush=True)\nos.kill(1, 9)\n",
	})
	if res := run.Status.Result; run.Status.Phase != execv1alpha1.PhaseFailed || res.Reason != execv1alpha1.ReasonSystemError {
		t.Errorf("ended %s/%s (%s): gVisor no longer delivers SIGKILL to init from inside; add SIGKILL and SIGSTOP back to TestProgramAttacksRunner under gVisor", run.Status.Phase, res.Reason, res.Message)
	}
	expectNextRunWorks(t)
}

// TestMemoryHogInManyProcesses: sixteen processes that allocate together, and fill /tmp
// (which counts toward the pod's memory) first, are stopped with MemoryLimitExceeded: the
// kernel's OOM killer, if it strikes first, picks a process of the program, never the
// runner (whose report would be lost, a SystemError).
func TestMemoryHogInManyProcesses(t *testing.T) {
	t.Parallel()
	for _, path := range bothPaths {
		t.Run(pathName(path), func(t *testing.T) {
			t.Parallel()
			run := runOnPath(t, "memory-hog-processes", execv1alpha1.CodeRunSpec{
				Source: `import errno, os, time
try:
    for i in range(1 << 20):
        with open("/tmp/fill%d" % i, "wb") as f:
            for _ in range(4):
                f.write(b"x" * (1 << 20))
                f.flush()
except OSError as e:
    print("/tmp full:", errno.errorcode[e.errno], flush=True)
for _ in range(4):
    os.fork()
chunks = []
for i in range(1, 65):
    chunks.append(b'x' * (1 << 20))
    time.sleep(0.001)
print("survived")
`,
				Limits: execv1alpha1.Limits{Memory: ptr.To(resource.MustParse("64Mi")), TimeoutSeconds: ptr.To(limitTimeout(t, path))},
			}, path)
			expectEnd(t, run, execv1alpha1.PhaseFailed, execv1alpha1.ReasonMemoryLimitExceeded, nil)
			res := run.Status.Result
			if strings.Count(res.Output, "survived") == 16 {
				t.Errorf("output %q: every process survived", res.Output)
			}
			// Under gVisor the pod's cgroup limit may kill the whole sandbox, runner included,
			// before the runner stops the program: the reason stays right (the operator reads
			// the OOM kill), the output is lost.
			if !strings.HasPrefix(res.Output, "/tmp full: ENOSPC\n") && !underGVisor(t) {
				t.Errorf("output %q: want /tmp full (ENOSPC) first", res.Output)
			}
			expectHealthyNodes(t)
			expectNextRunWorks(t)
		})
	}
}

// The hostile checks in other images than python's: the sandbox probe (non-root, no
// capabilities, no token, read-only root, no network) and the time, memory, output and
// process limits, in the C, JavaScript and Java images. The probes do what probeSource
// does and print the same JSON report, which expectSandbox checks; they read the
// addresses to try from stdin as lines ("timeout 2", "connect <ip> <port>", "resolve
// <name>"), which a C program parses more easily than JSON.

// probeC is probeSource in C.
const probeC = `#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;
static int first;

/* str prints s as a JSON string: the probe's strings are ASCII. */
static void str(const char *s) {
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\') putchar('\\');
		if ((unsigned char)*s >= 0x20) putchar(*s);
	}
	putchar('"');
}
static void key(const char *k) { if (!first) putchar(','); first = 0; str(k); putchar(':'); }

static char status[8192];
static void status_field(const char *name) {
	char want[64], *p;
	snprintf(want, sizeof want, "\n%s:", name);
	key(name);
	if (!(p = strstr(status, want))) { str("missing"); return; }
	p += strlen(want);
	while (*p == ' ' || *p == '\t') p++;
	char value[128]; size_t n = strcspn(p, "\n");
	snprintf(value, sizeof value, "%.*s", (int)n, p);
	str(value);
}

static void try_write(const char *path) {
	char msg[256];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd >= 0 && write(fd, "x", 1) == 1) snprintf(msg, sizeof msg, "written");
	else snprintf(msg, sizeof msg, "errno %d: %s", errno, strerror(errno));
	if (fd >= 0) close(fd);
	key(path); str(msg);
}

/* try_connect connects to host:port within timeout seconds. */
static void try_connect(const char *name, const char *host, int port, int timeout) {
	char msg[256] = "connected";
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	inet_pton(AF_INET, host, &a.sin_addr);
	int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (connect(s, (struct sockaddr *)&a, sizeof a) != 0) {
		if (errno != EINPROGRESS) snprintf(msg, sizeof msg, "errno %d: %s", errno, strerror(errno));
		else {
			struct pollfd p = {.fd = s, .events = POLLOUT};
			int err = 0; socklen_t len = sizeof err;
			if (poll(&p, 1, timeout * 1000) == 0) snprintf(msg, sizeof msg, "timed out");
			else if (getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0)
				snprintf(msg, sizeof msg, "errno %d: %s", err, strerror(err));
		}
	}
	close(s);
	key(name); str(msg);
}

int main(void) {
	int timeout = 2;
	char line[512], targets[64][2][128], names[16][256];
	int nt = 0, nn = 0;
	while (fgets(line, sizeof line, stdin)) {
		char a[256], b[128];
		if (sscanf(line, "timeout %d", &timeout) == 1) continue;
		if (sscanf(line, "connect %127s %127s", a, b) == 2 && nt < 64) { strcpy(targets[nt][0], a); strcpy(targets[nt++][1], b); }
		else if (sscanf(line, "resolve %255s", a) == 1 && nn < 16) strcpy(names[nn++], a);
	}
	FILE *f = fopen("/proc/self/status", "r");
	status[0] = '\n';
	size_t n = fread(status + 1, 1, sizeof status - 2, f); status[n + 1] = 0; fclose(f);

	first = 1; putchar('{');
	key("uid"); printf("%d", (int)getuid());
	key("euid"); printf("%d", (int)geteuid());
	key("gid"); printf("%d", (int)getgid());
	const char *fields[] = {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp"};
	for (int i = 0; i < 7; i++) status_field(fields[i]);
	struct stat st;
	key("serviceAccountDir"); printf(stat("/var/run/secrets/kubernetes.io/serviceaccount", &st) == 0 ? "true" : "false");
	key("tokenEnv"); putchar('[');
	int any = 0;
	for (char **e = environ; *e; e++) if (strncmp(*e, "KUBERNETES", 10) == 0) {
		char name[256]; snprintf(name, sizeof name, "%.*s", (int)strcspn(*e, "="), *e);
		if (any++) putchar(',');
		str(name);
	}
	putchar(']');
	key("write"); putchar('{'); first = 1;
	const char *paths[] = {"/coderun-e2e", "/usr/coderun-e2e", "/var/tmp/coderun-e2e", "/tmp/coderun-e2e"};
	for (int i = 0; i < 4; i++) try_write(paths[i]);
	putchar('}'); first = 0;
	f = fopen("/proc/self/mountinfo", "r");
	while (fgets(line, sizeof line, f)) {
		char mnt[256], opts[256];
		if (sscanf(line, "%*s %*s %*s %*s %255s %255s", mnt, opts) == 2 && strcmp(mnt, "/") == 0) { key("rootMountOptions"); str(opts); }
	}
	fclose(f);
	/* A listener inside the sandbox: if connecting to it works, a failure below is
	   isolation, not a broken socket layer. */
	int l = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in la = {.sin_family = AF_INET}; socklen_t ll = sizeof la;
	inet_pton(AF_INET, "127.0.0.1", &la.sin_addr);
	bind(l, (struct sockaddr *)&la, sizeof la); listen(l, 1); getsockname(l, (struct sockaddr *)&la, &ll);
	char port[16]; snprintf(port, sizeof port, "%d", ntohs(la.sin_port));
	try_connect("connectLocal", "127.0.0.1", ntohs(la.sin_port), timeout);
	key("connect"); putchar('{'); first = 1;
	for (int i = 0; i < nt; i++) {
		char name[300];
		snprintf(name, sizeof name, "%.127s:%.127s", targets[i][0], targets[i][1]);
		try_connect(name, targets[i][0], atoi(targets[i][1]), timeout);
	}
	putchar('}'); first = 0;
	key("resolve"); putchar('{'); first = 1;
	for (int i = 0; i < nn; i++) {
		struct addrinfo *res; char msg[300];
		int rc = getaddrinfo(names[i], "443", NULL, &res);
		if (rc == 0) { snprintf(msg, sizeof msg, "resolved"); freeaddrinfo(res); }
		else snprintf(msg, sizeof msg, "gaierror: %s", gai_strerror(rc));
		key(names[i]); str(msg);
	}
	printf("}}\n");
	return 0;
}
`

// probeJavaScript is probeSource in JavaScript (Node.js).
const probeJavaScript = `const fs = require('fs'), net = require('net'), dns = require('dns');

async function main() {
  const cfg = { timeout: 2, targets: [], names: [] };
  for (const line of fs.readFileSync(0, 'utf8').split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[0] === 'timeout') cfg.timeout = Number(f[1]);
    if (f[0] === 'connect') cfg.targets.push([f[1], Number(f[2])]);
    if (f[0] === 'resolve') cfg.names.push(f[1]);
  }
  const out = { uid: process.getuid(), euid: process.geteuid(), gid: process.getgid() };
  const status = {};
  for (const line of fs.readFileSync('/proc/self/status', 'utf8').split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) status[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  for (const k of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb', 'NoNewPrivs', 'Seccomp']) out[k] = status[k] ?? 'missing';
  out.serviceAccountDir = fs.existsSync('/var/run/secrets/kubernetes.io/serviceaccount');
  out.tokenEnv = Object.keys(process.env).filter((k) => k.startsWith('KUBERNETES')).sort();
  const errnoOf = (e) => 'errno ' + (require('os').constants.errno[e.code] ?? '?') + ': ' + e.code;
  out.write = {};
  for (const p of ['/coderun-e2e', '/usr/coderun-e2e', '/var/tmp/coderun-e2e', '/tmp/coderun-e2e']) {
    try { fs.writeFileSync(p, 'x'); out.write[p] = 'written'; } catch (e) { out.write[p] = errnoOf(e); }
  }
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    if (f[4] === '/') out.rootMountOptions = f[5];
  }
  const connect = (host, port) => new Promise((resolve) => {
    const s = net.connect({ host, port, timeout: cfg.timeout * 1000 });
    s.on('connect', () => { s.destroy(); resolve('connected'); });
    s.on('timeout', () => { s.destroy(); resolve('timed out'); });
    s.on('error', (e) => resolve(errnoOf(e)));
  });
  // A listener inside the sandbox: if connecting to it works, a failure below is
  // isolation, not a broken socket layer.
  const server = net.createServer((c) => c.destroy());
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  out.connectLocal = await connect('127.0.0.1', server.address().port);
  server.close();
  out.connect = {};
  for (const [h, p] of cfg.targets) out.connect[h + ':' + p] = await connect(h, p);
  out.resolve = {};
  for (const n of cfg.names) {
    out.resolve[n] = await dns.promises.lookup(n, { all: true }).then(
      (as) => 'resolved: ' + as.map((a) => a.address).join(' '), (e) => 'error: ' + e.code);
  }
  console.log(JSON.stringify(out));
}
main();
`

// probeJava is probeSource in Java (a single-file source launch).
const probeJava = `import java.io.*;
import java.net.*;
import java.nio.file.*;
import java.util.*;

public class Main {
    static String q(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') b.append('\\');
            if (c >= 0x20) b.append(c);
        }
        return b.append('"').toString();
    }

    static String obj(Map<String, String> m) {
        StringJoiner j = new StringJoiner(",", "{", "}");
        m.forEach((k, v) -> j.add(q(k) + ":" + q(v)));
        return j.toString();
    }

    // errno of a failed system call: Java gives its strerror text only.
    static String errno(String reason) {
        Map<String, Integer> known = Map.of("Read-only file system", 30, "Permission denied", 13,
            "Connection refused", 111, "Network is unreachable", 101, "No route to host", 113);
        String r = reason == null ? "?" : reason;
        for (var e : known.entrySet()) if (r.contains(e.getKey())) return "errno " + e.getValue() + ": " + r;
        return "error: " + r;
    }

    static String connect(String host, int port, int timeout) {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress(host, port), timeout * 1000);
            return "connected";
        } catch (SocketTimeoutException e) {
            return "timed out";
        } catch (IOException e) {
            return errno(e.getMessage());
        }
    }

    public static void main(String[] args) throws Exception {
        int timeout = 2;
        List<String[]> targets = new ArrayList<>();
        List<String> names = new ArrayList<>();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        for (String line; (line = in.readLine()) != null; ) {
            String[] f = line.trim().split("\\s+");
            if (f[0].equals("timeout")) timeout = Integer.parseInt(f[1]);
            if (f[0].equals("connect")) targets.add(new String[] {f[1], f[2]});
            if (f[0].equals("resolve")) names.add(f[1]);
        }
        Map<String, String> status = new HashMap<>();
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            int i = line.indexOf(':');
            if (i > 0) status.put(line.substring(0, i), line.substring(i + 1).trim());
        }
        String[] uid = status.get("Uid").split("\\s+"), gid = status.get("Gid").split("\\s+");
        StringJoiner out = new StringJoiner(",", "{", "}");
        out.add("\"uid\":" + uid[0]).add("\"euid\":" + uid[1]).add("\"gid\":" + gid[0]);
        for (String k : new String[] {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp"})
            out.add(q(k) + ":" + q(status.getOrDefault(k, "missing")));
        out.add("\"serviceAccountDir\":" + Files.exists(Path.of("/var/run/secrets/kubernetes.io/serviceaccount")));
        StringJoiner env = new StringJoiner(",", "[", "]");
        new TreeSet<>(System.getenv().keySet()).stream().filter(k -> k.startsWith("KUBERNETES")).forEach(k -> env.add(q(k)));
        out.add("\"tokenEnv\":" + env);
        Map<String, String> write = new LinkedHashMap<>();
        for (String p : new String[] {"/coderun-e2e", "/usr/coderun-e2e", "/var/tmp/coderun-e2e", "/tmp/coderun-e2e"}) {
            try {
                Files.writeString(Path.of(p), "x");
                write.put(p, "written");
            } catch (AccessDeniedException e) {
                write.put(p, "errno 13: Permission denied");
            } catch (FileSystemException e) {
                write.put(p, errno(e.getReason()));
            }
        }
        out.add("\"write\":" + obj(write));
        for (String line : Files.readAllLines(Path.of("/proc/self/mountinfo"))) {
            String[] f = line.split(" ");
            if (f[4].equals("/")) out.add("\"rootMountOptions\":" + q(f[5]));
        }
        // A listener inside the sandbox: if connecting to it works, a failure below is
        // isolation, not a broken socket layer.
        try (ServerSocket listener = new ServerSocket(0, 1, InetAddress.getByName("127.0.0.1"))) {
            out.add("\"connectLocal\":" + q(connect("127.0.0.1", listener.getLocalPort(), timeout)));
        }
        Map<String, String> connect = new LinkedHashMap<>();
        for (String[] t : targets) connect.put(t[0] + ":" + t[1], connect(t[0], Integer.parseInt(t[1]), timeout));
        out.add("\"connect\":" + obj(connect));
        Map<String, String> resolve = new LinkedHashMap<>();
        for (String n : names) {
            try {
                StringJoiner as = new StringJoiner(" ", "resolved: ", "");
                for (InetAddress a : InetAddress.getAllByName(n)) as.add(a.getHostAddress());
                resolve.put(n, as.toString());
            } catch (UnknownHostException e) {
                resolve.put(n, "UnknownHostException: " + e.getMessage());
            }
        }
        out.add("\"resolve\":" + obj(resolve));
        System.out.println(out);
    }
}
`

// hostileLanguage is one image the hostile checks run in, and its programs.
type hostileLanguage struct {
	language string
	probe    string
	// busyLoop prints "before the loop" and loops forever.
	busyLoop string
	// memoryHog prints "allocated N MiB" for each 10 MiB it allocates and fills, up to
	// 1 GiB, then "survived 1 GiB".
	memoryHog string
	// memory is the run's memory limit: enough for the runtime itself to start.
	memory string
	// flood prints lines of 99 x's forever.
	flood string
	// timeLimit is the busy loop's limit: it includes a compile at run time (Java).
	timeLimit time.Duration
}

var hostileLanguages = []hostileLanguage{
	{
		language: "c", probe: probeC, memory: "64Mi", timeLimit: 2 * time.Second,
		busyLoop: "#include <stdio.h>\nint main(void) {\n\tputs(\"before the loop\");\n\tfflush(stdout);\n\tfor (volatile unsigned long i = 0;; i++) {}\n}\n",
		memoryHog: `#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(void) {
	for (int i = 1; i <= 102; i++) {
		char *p = malloc(10 << 20);
		if (!p) return 1;
		memset(p, 'x', 10 << 20);
		printf("allocated %d MiB\n", i * 10);
		fflush(stdout);
	}
	puts("survived 1 GiB");
}
`,
		flood: "#include <stdio.h>\nint main(void) {\n\tfor (;;) puts(\"" + strings.Repeat("x", 99) + "\");\n}\n",
	},
	{
		language: "javascript", probe: probeJavaScript, memory: "128Mi", timeLimit: 2 * time.Second,
		busyLoop: "console.log('before the loop');\nfor (;;) {}\n",
		memoryHog: `const chunks = [];
for (let i = 1; i <= 102; i++) {
  chunks.push(Buffer.alloc(10 << 20, 'x'));
  console.log('allocated ' + i * 10 + ' MiB');
}
console.log('survived 1 GiB');
`,
		flood: "for (;;) console.log('x'.repeat(99));\n",
	},
	{
		language: "java", probe: probeJava, memory: "256Mi", timeLimit: 8 * time.Second,
		busyLoop: "public class Main {\n    public static void main(String[] args) {\n        System.out.println(\"before the loop\");\n        System.out.flush();\n        for (long i = 0;; i++) {}\n    }\n}\n",
		memoryHog: `import java.util.*;
public class Main {
    public static void main(String[] args) {
        List<byte[]> chunks = new ArrayList<>();
        for (int i = 1; i <= 102; i++) {
            byte[] b = new byte[10 << 20];
            Arrays.fill(b, (byte) 'x');
            chunks.add(b);
            System.out.println("allocated " + i * 10 + " MiB");
        }
        System.out.println("survived 1 GiB");
    }
}
`,
		flood: "public class Main {\n    public static void main(String[] args) {\n        String line = \"x\".repeat(99);\n        for (;;) System.out.println(line);\n    }\n}\n",
	},
}

// readyRuntime waits up to 3 minutes (its smoke test may still run) for a Ready Runtime
// of language; without one on the cluster, the test skips (or fails: see testneed).
func readyRuntime(t *testing.T, language string) {
	t.Helper()
	if only := onlyRuntimes(); only != nil && !only[language] {
		t.Skipf("E2E_RUNTIMES (%s) leaves out %s", os.Getenv("E2E_RUNTIMES"), language)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		var list execv1alpha1.RuntimeList
		if err := k8s.List(context.Background(), &list); err != nil {
			t.Fatalf("listing Runtimes: %v", err)
		}
		var found []string
		for i := range list.Items {
			rt := &list.Items[i]
			if runtimes.Matches(rt, language) {
				if runtimes.Ready(rt) {
					return
				}
				found = append(found, rt.Name)
			}
		}
		if len(found) == 0 {
			testneed.Skip(t, "no Runtime offers %s on this cluster (make dev RUNTIMES=all installs every shipped one)", language)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Runtimes %v of %s are not Ready after 3 minutes", found, language)
		}
		time.Sleep(2 * time.Second)
	}
}

// TestSandboxInOtherImages runs the sandbox probe in the C, JavaScript and Java images,
// on the cold path (pools serve the built-in python).
func TestSandboxInOtherImages(t *testing.T) {
	t.Parallel()
	targets := clusterTargets(t)
	const connectTimeout = 2
	var stdin strings.Builder
	fmt.Fprintf(&stdin, "timeout %d\n", connectTimeout)
	for _, target := range targets {
		fmt.Fprintf(&stdin, "connect %s %d\n", target[0], target[1])
	}
	for _, name := range []string{"kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "kubernetes.default", "kubernetes"} {
		fmt.Fprintf(&stdin, "resolve %s\n", name)
	}
	for _, lang := range hostileLanguages {
		t.Run(lang.language, func(t *testing.T) {
			t.Parallel()
			readyRuntime(t, lang.language)
			run := runProgram(t, "sandbox-"+lang.language, execv1alpha1.CodeRunSpec{
				Language: execv1alpha1.Language(lang.language), Source: lang.probe, Stdin: stdin.String(), Limits: timeout(60),
			})
			expectSandbox(t, run, targets)
		})
	}
}

// TestLimitsInOtherImages: a busy loop, a memory hog, an output flood and (in C) a fork
// bomb are stopped by their limits in the C, JavaScript and Java images, as in python's,
// and the node and the next run are fine.
func TestLimitsInOtherImages(t *testing.T) {
	t.Parallel()
	for _, lang := range hostileLanguages {
		t.Run(lang.language, func(t *testing.T) {
			t.Parallel()
			readyRuntime(t, lang.language)
			t.Run("time", func(t *testing.T) {
				t.Parallel()
				run := runProgram(t, "busy-loop-"+lang.language, execv1alpha1.CodeRunSpec{
					Language: execv1alpha1.Language(lang.language), Source: lang.busyLoop, Limits: timeout(int32(lang.timeLimit / time.Second)),
				})
				expectEnd(t, run, execv1alpha1.PhaseFailed, execv1alpha1.ReasonTimeLimitExceeded, nil)
				res := run.Status.Result
				if res.Output != "before the loop\n" {
					t.Errorf("output %q, want what was printed before the timeout", res.Output)
				}
				if res.WallTime == nil || res.WallTime.Duration < lang.timeLimit || res.WallTime.Duration > lang.timeLimit+20*time.Second {
					t.Errorf("wall time %s, want between %s and %s", durationString(res.WallTime), lang.timeLimit, lang.timeLimit+20*time.Second)
				}
			})
			t.Run("memory", func(t *testing.T) {
				t.Parallel()
				run := runProgram(t, "memory-hog-"+lang.language, execv1alpha1.CodeRunSpec{
					Language: execv1alpha1.Language(lang.language), Source: lang.memoryHog,
					Limits: execv1alpha1.Limits{Memory: ptr.To(resource.MustParse(lang.memory)), TimeoutSeconds: ptr.To[int32](30)},
				})
				res := run.Status.Result
				// A JVM sizes its heap from the container's memory and stops the program
				// itself, with an OutOfMemoryError, before the run's limit: the limit held
				// all the same.
				if lang.language == "java" && res.Reason == execv1alpha1.ReasonNonZeroExit {
					if !strings.Contains(res.Stderr, "java.lang.OutOfMemoryError") {
						t.Errorf("exit code %s, stderr %q: want an OutOfMemoryError", ptrString(res.ExitCode), res.Stderr)
					}
				} else {
					expectEnd(t, run, execv1alpha1.PhaseFailed, execv1alpha1.ReasonMemoryLimitExceeded, nil)
				}
				if strings.Contains(res.Output, "survived") {
					t.Errorf("output %s: the program was not stopped", abbreviate(res.Output))
				}
				expectHealthyNodes(t)
				expectNextRunWorks(t)
			})
			t.Run("output", func(t *testing.T) {
				t.Parallel()
				run := runProgram(t, "flood-"+lang.language, execv1alpha1.CodeRunSpec{
					Language: execv1alpha1.Language(lang.language), Source: lang.flood, Limits: timeout(30),
				})
				expectEnd(t, run, execv1alpha1.PhaseFailed, execv1alpha1.ReasonOutputLimitExceeded, nil)
				res := run.Status.Result
				limit := operatorConfig.OutputLimitBytes
				if len(res.Output) > limit || !res.OutputTruncated {
					t.Errorf("output of %d bytes, truncated %v: want it cut at the limit of %d bytes", len(res.Output), res.OutputTruncated, limit)
				}
				if want := strings.Repeat(strings.Repeat("x", 99)+"\n", limit/100+1); len(res.Output) < limit/2 || !strings.HasPrefix(want, res.Output) {
					t.Errorf("output %s is not the first part of what the program printed", abbreviate(res.Output))
				}
			})
			if lang.language != "c" {
				return
			}
			t.Run("processes", func(t *testing.T) {
				t.Parallel()
				const limit = 3 * time.Second
				run := runProgram(t, "fork-bomb-c", execv1alpha1.CodeRunSpec{
					Language: "c", Source: "#include <stdio.h>\n#include <unistd.h>\nint main(void) {\n\tputs(\"forking\");\n\tfflush(stdout);\n\tfor (;;) fork();\n}\n",
					Limits: timeout(int32(limit / time.Second)),
				})
				res := run.Status.Result
				if run.Status.Phase != execv1alpha1.PhaseFailed || res.Reason == execv1alpha1.ReasonSystemError {
					t.Errorf("ended %s/%s (%s), want Failed by one of the run's limits", run.Status.Phase, res.Reason, res.Message)
				}
				if !strings.HasPrefix(res.Output, "forking\n") {
					t.Errorf("output %s, want it to start with %q", abbreviate(res.Output), "forking\n")
				}
				if res.WallTime != nil && res.WallTime.Duration > limit+20*time.Second {
					t.Errorf("wall time %s: the forked processes outlived the %s limit", res.WallTime.Duration, limit)
				}
				expectHealthyNodes(t)
				expectNextRunWorks(t)
			})
		})
	}
}
