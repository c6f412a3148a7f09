# Shared by the hack/ scripts of the local cluster: paths, versions, logging and the
# processes they start. Source it; it does not run anything by itself.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KUBE_VERSION="${KUBE_VERSION:-v1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-v3.7.3}"
KUBE_BIN_DIR="${KUBE_BIN_DIR:-$ROOT/bin/k8s/$KUBE_VERSION}"
# The node's container runtime, built from the Go module proxy (hack/runtime-binaries.sh):
# user namespaces (hostUsers: false) need containerd >= 2.0 and runc >= 1.2. These machines
# mount cgroup v1 controllers (hybrid: an empty cgroup2 at /sys/fs/cgroup/unified), so the
# versions must still run on cgroup v1. containerd deprecated cgroup v1 in v2.2 and runc in
# v1.4; both keep it until at least May 2029 (containerd's RELEASES.md, runc's
# docs/deprecated.md) and only log a deprecation warning. So: the newest of each, containerd
# v2.4.2 and runc v1.5.3 (the proxy also lists runc v1.6.0-rc.1: a release candidate, no).
CONTAINERD_VERSION="${CONTAINERD_VERSION:-v2.4.2}"
RUNC_VERSION="${RUNC_VERSION:-v1.5.3}"
CONTAINERD_BIN_DIR="${CONTAINERD_BIN_DIR:-$ROOT/bin/containerd/$CONTAINERD_VERSION}"
RUNC_BIN_DIR="${RUNC_BIN_DIR:-$ROOT/bin/runc/$RUNC_VERSION}"
IMG_TAG="${IMG_TAG:-0.1.0}"

# Everything the local cluster writes lives under DEV_DIR (git-ignored): cluster/ is the
# running cluster (removed by `down`), cache/ holds built images (kept, so a second `up` is
# fast; `hack/local-cluster.sh clean` removes it too).
DEV_DIR="${DEV_DIR:-$ROOT/.dev}"
CLUSTER_DIR="$DEV_DIR/cluster"
CACHE_DIR="$DEV_DIR/cache"
KUBECONFIG_FILE="$DEV_DIR/kubeconfig"
# Where `make dev` forwards the front service (page and HTTP API), on 127.0.0.1 of the host,
# and the API server (the host's .dev/kubeconfig points there): hack/netns-forward.
DEV_WEB_PORT="${DEV_WEB_PORT:-8080}"
DEV_API_PORT="${DEV_API_PORT:-6443}"
CONTAINERD_SOCK="$CLUSTER_DIR/containerd/containerd.sock"

# The whole cluster (every component, the node address, pods, services, the bridge and every
# iptables/nftables rule) lives in the named network namespace NETNS, which `up` creates and
# `down` deletes; the host gets nothing but hack/netns-forward's listeners on 127.0.0.1.
NETNS=coderun-dev
NETNS_PATH=/run/netns/$NETNS

# `ip netns add` creates /run/netns when it is missing and bind-mounts it onto itself. Both
# namespaces of the project (the cluster's, hack/docker.sh's) record how /run/netns was
# before the first of them, in one file, and the last one deleted puts it back as it was, so
# `make dev` and `make test-e2e-kind` may start and stop in any order.
RUN_NETNS_RECORD="$DEV_DIR/run-netns.before"
# run_netns_record: before `ip netns add`; a record that exists is from the first namespace.
run_netns_record() {
	[ -f "$RUN_NETNS_RECORD" ] && return 0
	local state=""
	if [ -e /run/netns ]; then state=existed; fi
	if findmnt -rn /run/netns >/dev/null 2>&1; then state="$state mounted"; fi
	mkdir -p "$DEV_DIR"
	echo "$state" >"$RUN_NETNS_RECORD"
}
# run_netns_restore: after `ip netns del`; a namespace still there (another project's, or
# our other one) leaves /run/netns as it is, and the record for the last one.
run_netns_restore() {
	[ -f "$RUN_NETNS_RECORD" ] || return 0
	[ -z "$(ls -A /run/netns 2>/dev/null)" ] || return 0
	if ! grep -qw mounted "$RUN_NETNS_RECORD"; then
		while findmnt -rn /run/netns >/dev/null 2>&1; do umount /run/netns 2>/dev/null || break; done
	fi
	grep -qw existed "$RUN_NETNS_RECORD" || rmdir /run/netns 2>/dev/null || true
	rm -f "$RUN_NETNS_RECORD"
}

# The cluster's addresses, all inside NETNS. The node address is accepted by the kubelet
# (which refuses loopback addresses).
NODE_NAME=coderun-dev
NODE_IP=10.200.0.1
POD_CIDR=10.244.0.0/16
POD_SUBNET=10.244.0.0/24
SERVICE_CIDR=10.96.0.0/16
API_SERVICE_IP=10.96.0.1
API_PORT=6443
ETCD_PORT=12379

PAUSE_IMG=localhost/pause:local
BASE_IMG=docker.io/library/debian:trixie-slim

# buildah keeps the project's images in the cache folder, not in /var/lib/containers, and
# its network configuration there too, not in /etc/cni. runc, because crun 1.8 fails on
# these machines' hybrid cgroups.
BUILDAH=(buildah --root "$CACHE_DIR/containers/storage" --runroot "$CACHE_DIR/containers/run")
BUILDAH_BUD=(bud --quiet --layers --pull=never --runtime runc --network host --cni-config-dir "$CACHE_DIR/containers/cni")

# tidy_buildah CMD...: runs CMD and then removes /etc/cni if CMD's buildah calls created it
# (buildah 1.28 takes a lock in /etc/cni/net.d even when given --cni-config-dir).
tidy_buildah() {
	local existed=0 rc=0
	[ -e /etc/cni ] && existed=1
	"$@" || rc=$?
	if [ "$existed" = 0 ] && [ -z "$(find /etc/cni -type f ! -name cni.lock 2>/dev/null)" ]; then
		rm -rf /etc/cni
	fi
	return "$rc"
}

# quiet_grep ARGS...: grep that reads all of its input. `cmd | grep -q` stops reading at the
# first match, so under pipefail cmd may die of SIGPIPE and the pipeline fail on a match.
quiet_grep() { grep "$@" >/dev/null; }

log() { printf '%s %s: %s\n' "$(date +%H:%M:%S)" "${LOG_PREFIX:-dev}" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# kubectl_dev: kubectl on the local cluster. On the host through the forward on
# 127.0.0.1:DEV_API_PORT (.dev/kubeconfig); inside the cluster's namespace (a script run
# with in_netns, such as hack/faults' restarts) at the node address directly.
kubectl_dev() {
	if in_cluster_netns; then
		kubectl --kubeconfig "$CLUSTER_DIR/pki/admin.kubeconfig" "$@"
	else
		kubectl --kubeconfig "$KUBECONFIG_FILE" "$@"
	fi
}

# in_cluster_netns: whether this shell runs in the cluster's network namespace.
in_cluster_netns() {
	[ -e "$NETNS_PATH" ] && [ "$(stat -L -c %i /proc/self/ns/net)" = "$(stat -L -c %i "$NETNS_PATH" 2>/dev/null)" ]
}

# pid_alive NAME: the process recorded for NAME runs and is still the binary we started
# (a reused PID of another program must never be signalled).
pid_alive() {
	local f="$CLUSTER_DIR/pids/$1.pid" pid
	[ -f "$f" ] || return 1
	pid="$(cat "$f")"
	[ -d "/proc/$pid" ] || return 1
	grep -qF -- "$(cat "$CLUSTER_DIR/pids/$1.cmd")" "/proc/$pid/cmdline" 2>/dev/null
}

# start_process NAME BINARY ARGS...: starts BINARY in its own session with its output in
# logs/NAME.log and records its PID, unless it already runs.
start_process() {
	local name="$1"
	shift
	if pid_alive "$name"; then
		log "$name already running (pid $(cat "$CLUSTER_DIR/pids/$name.pid"))"
		return 0
	fi
	mkdir -p "$CLUSTER_DIR/pids" "$CLUSTER_DIR/logs"
	log "starting $name (log: ${CLUSTER_DIR#"$ROOT"/}/logs/$name.log)"
	# Without the caller's other open files: a daemon that inherited one would hold it as
	# long as it runs, such as the lock of `flock /tmp/coderun-cluster.lock make dev`
	# (shared by everyone using the cluster), which then never comes free.
	(
		close_inherited_fds
		exec setsid "$@" >>"$CLUSTER_DIR/logs/$name.log" 2>&1 </dev/null
	) &
	echo $! >"$CLUSTER_DIR/pids/$name.pid"
	printf '%s' "$1" >"$CLUSTER_DIR/pids/$name.cmd"
}

# in_netns CMD...: runs CMD in the cluster's network namespace. Only the network namespace
# changes (nsenter --net), not the mount namespace: `ip netns exec` would give CMD a private
# mount namespace, so mounts made by the kubelet there would not be seen by containerd.
in_netns() { nsenter --net="$NETNS_PATH" -- "$@"; }

# start_process_in_netns NAME BINARY ARGS...: start_process, with the process in the
# cluster's network namespace. nsenter execs BINARY in place, so the PID recorded is
# BINARY's and pid_alive recognises it by its command line as for start_process.
start_process_in_netns() {
	local name="$1"
	shift
	start_process "$name" nsenter --net="$NETNS_PATH" -- "$@"
	printf '%s' "$1" >"$CLUSTER_DIR/pids/$name.cmd"
}

# start_forward NAME LISTEN TARGET: hack/netns-forward from LISTEN on the host to TARGET in
# the cluster's namespace, built into bin/ when its source changed. A forward that runs to
# another TARGET, or an older build, is restarted; otherwise it is left alone.
NETNS_FORWARD="$ROOT/bin/netns-forward"
start_forward() {
	local name="$1" listen="$2" target="$3" f="$CLUSTER_DIR/pids/$1.target" want
	# From inside the namespace (hack/faults restarts the API server under in_netns) a
	# forward started here would listen in the namespace, not on the host: leave it as is.
	if in_cluster_netns; then
		pid_alive "$name" || log "warning: $name is not running; run make dev on the host"
		return 0
	fi
	if [ ! -x "$NETNS_FORWARD" ] || [ -n "$(find "$ROOT/hack/netns-forward" -name '*.go' ! -name '*_test.go' -newer "$NETNS_FORWARD")" ]; then
		log "building hack/netns-forward"
		(cd "$ROOT" && CGO_ENABLED=0 go build -o "$NETNS_FORWARD" ./hack/netns-forward)
	fi
	want="$listen $target build $(stat -c %Y "$NETNS_FORWARD")"
	if pid_alive "$name" && [ "$(cat "$f" 2>/dev/null)" != "$want" ]; then
		log "$name now goes to $target (or a new build)"
		stop_process "$name"
	fi
	pid_alive "$name" && return 0
	start_process "$name" "$NETNS_FORWARD" -listen "$listen" -netns "$NETNS_PATH" -target "$target"
	echo "$want" >"$f"
}

# close_inherited_fds closes every file descriptor above 2 of the current (sub)shell.
close_inherited_fds() {
	local fd
	for fd in /proc/self/fd/*; do
		fd="${fd##*/}"
		if [ "$fd" -gt 2 ] 2>/dev/null; then eval "exec $fd>&-" 2>/dev/null || true; fi
	done
	return 0
}

# stop_process NAME: SIGTERM, then SIGKILL after 15 s, to the process group of the PID we
# recorded (start_process made it a session leader, so the group is what it started).
stop_process() {
	local name="$1" pid i
	if pid_alive "$name"; then
		pid="$(cat "$CLUSTER_DIR/pids/$name.pid")"
		log "stopping $name (pid $pid)"
		kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
		# Gone, or a zombie: it has ended, and its parent (often init, after the script that
		# started it exited) reaps it when it gets to it.
		for i in $(seq 1 150); do
			[ -d "/proc/$pid" ] && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ] || break
			sleep 0.1
		done
		if [ -d "/proc/$pid" ] && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]; then
			log "$name did not stop in 15 s; killing it"
			kill -KILL -- "-$pid" 2>/dev/null || true
		fi
	fi
	rm -f "$CLUSTER_DIR/pids/$name.pid" "$CLUSTER_DIR/pids/$name.cmd"
}

# write_if_changed FILE: writes stdin to FILE only when the content differs, because some
# components (kube-proxy) exit when their configuration file is rewritten.
write_if_changed() {
	local tmp
	tmp="$(mktemp "$1.XXXXXX")"
	cat >"$tmp"
	if cmp -s "$tmp" "$1"; then rm -f "$tmp"; else mv "$tmp" "$1"; fi
}

# wait_for DESCRIPTION SECONDS COMMAND...: retries COMMAND every half second.
wait_for() {
	local what="$1" timeout="$2" start=$SECONDS
	shift 2
	until "$@" >/dev/null 2>&1; do
		if ((SECONDS - start >= timeout)); then
			die "$what: not ready after ${timeout}s"
		fi
		sleep 0.5
	done
	log "$what: ready after $((SECONDS - start))s"
}
