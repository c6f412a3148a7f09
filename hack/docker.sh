#!/usr/bin/env bash
# Debian's Docker engine (apt-get install docker.io: dockerd 20.10) for the kind suite on a
# machine without a Docker daemon of its own, started and stopped here without touching the
# host: every file under .dev/docker, no /var/run/docker.sock, no /var/lib/docker.
#
# Two daemons, because one cannot do both jobs without adding interfaces or rules to the host:
#   - kind: the daemon the kind cluster runs in. It lives in the network namespace
#     coderun-kind (created by `up`, deleted by `down`): its bridges (docker0 and kind's
#     network), its iptables rules and the kind node's published ports (the API server on
#     127.0.0.1:<port>) exist only there. Clients reach it through its socket; anything that
#     talks to the cluster runs in that namespace (`hack/docker.sh exec CMD...`).
#   - build: a daemon for `docker build` only. A RUN step's apt-get needs the network, which
#     the namespace above does not have, so this one stays in the host's namespace with
#     --bridge=none --iptables=false --ip-forward=false --ip-masq=false: it adds no interface,
#     route, rule or sysctl, and builds run with `--network host`. Its images reach the kind
#     daemon with `docker save | docker load` (a local pipe; no registry).
# Usage:
#   hack/docker.sh up|down|status
#   hack/docker.sh env            prints KIND_DOCKER_HOST=..., BUILD_DOCKER_HOST=... and
#                                 DOCKER_CLIENT_DIR=... (a folder with Debian's `docker`)
#   hack/docker.sh exec CMD...    runs CMD in the kind daemon's network namespace, with
#                                 DOCKER_HOST set to the kind daemon
# `down` stops both daemons, removes their containers' cgroups and the namespace; the data
# (images, kind's node) stays in .dev/docker unless `hack/docker.sh clean`.
# hack/host-state.sh's snapshot before `up` and after `down` is the same.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" # ROOT, DEV_DIR, log, die, start_process, stop_process, wait_for
LOG_PREFIX=docker

DOCKER_DIR="$DEV_DIR/docker"
KIND_NETNS=coderun-kind
KIND_NETNS_PATH=/run/netns/$KIND_NETNS
# start_process and stop_process keep their pid files and logs under CLUSTER_DIR: here, ours.
CLUSTER_DIR="$DOCKER_DIR"
# Debian's client (20.10) speaks the daemon's API and has BuildKit built in; a newer client
# found first in PATH (say /usr/local/bin/docker 28) wants the buildx plugin for BuildKit.
DOCKER_CLIENT="${DOCKER_CLIENT:-/usr/bin/docker}"

sock() { echo "unix://$DOCKER_DIR/$1/docker.sock"; }

# dockerd_args NAME: the flags that keep a daemon's files in .dev/docker/NAME. Its containerd
# (dockerd starts one of its own) keeps its files under the same two roots. cgroupfs under a
# parent of our own, which `down` removes.
dockerd_args() {
	local d="$DOCKER_DIR/$1"
	echo --data-root "$d/data" --exec-root "$d/exec" --pidfile "$d/dockerd.pid" -H "$(sock "$1")" \
		--config-file "$d/daemon.json" --storage-driver overlay2 --exec-opt native.cgroupdriver=cgroupfs \
		--cgroup-parent "coderun-docker-$1" --log-level warn
}

up() {
	"$ROOT/hack/host-tools.sh" docker # Debian's docker.io, jq, and what the node image needs
	command -v dockerd >/dev/null || die "dockerd is missing after hack/host-tools.sh docker (Debian's docker.io)"
	[ -x "$DOCKER_CLIENT" ] || die "$DOCKER_CLIENT is missing (Debian's docker.io package installs it)"
	mkdir -p "$DOCKER_DIR/kind" "$DOCKER_DIR/build" "$DOCKER_DIR/bin"
	ln -sf "$DOCKER_CLIENT" "$DOCKER_DIR/bin/docker"
	# dockerd's containerd makes /opt/containerd (its plugins' folder; dockerd's generated
	# configuration has no setting for it): remember whether it was there, so `down` removes
	# only what we made.
	[ -e /opt/containerd ] || [ -e "$DOCKER_DIR/opt-containerd-ours" ] || touch "$DOCKER_DIR/opt-containerd-ours"
	# The daemon's identity key goes to /etc/docker/key.json unless its configuration file says
	# otherwise (dockerd 20.10 has no flag for it). The runtime is runc through hack/docker-runc,
	# which keeps a privileged container (a kind node) within this machine's capabilities.
	for n in kind build; do
		jq -n --arg key "$DOCKER_DIR/$n/key.json" --arg runc "$ROOT/hack/docker-runc" \
			'{"deprecated-key-path": $key, "runtimes": {"runc-bounded": {"path": $runc}}, "default-runtime": "runc-bounded"}' \
			>"$DOCKER_DIR/$n/daemon.json"
	done
	if [ ! -e "$KIND_NETNS_PATH" ]; then
		run_netns_record
		log "creating network namespace $KIND_NETNS"
		ip netns add "$KIND_NETNS"
	fi
	nsenter --net="$KIND_NETNS_PATH" -- ip link set lo up
	# shellcheck disable=SC2046 # dockerd_args prints words without spaces
	start_process dockerd-build dockerd $(dockerd_args build) --bridge=none --iptables=false --ip6tables=false \
		--ip-forward=false --ip-masq=false
	# In its own namespace the kind daemon may change what it likes: bridges, iptables, forwarding.
	# shellcheck disable=SC2046
	start_process dockerd-kind nsenter --net="$KIND_NETNS_PATH" -- dockerd $(dockerd_args kind)
	printf '%s' dockerd >"$DOCKER_DIR/pids/dockerd-kind.cmd"
	wait_for "build daemon ($(sock build))" 60 "$DOCKER_CLIENT" -H "$(sock build)" info
	wait_for "kind daemon ($(sock kind), network namespace $KIND_NETNS)" 60 "$DOCKER_CLIENT" -H "$(sock kind)" info
}

down() {
	stop_process dockerd-kind
	stop_process dockerd-build
	# The containers' cgroups (kind's node, under our parent) outlive a stopped daemon.
	local c
	for c in /sys/fs/cgroup/*/coderun-docker-*; do
		[ -d "$c" ] || continue
		find "$c" -depth -type d -exec rmdir {} + 2>/dev/null || log "could not remove cgroup $c"
	done
	if [ -e "$DOCKER_DIR/opt-containerd-ours" ]; then
		rm -rf /opt/containerd "$DOCKER_DIR/opt-containerd-ours"
	fi
	if [ -e "$KIND_NETNS_PATH" ]; then
		log "deleting network namespace $KIND_NETNS"
		ip netns delete "$KIND_NETNS"
	fi
	run_netns_restore
}

case "${1:-}" in
up) up ;;
down) down ;;
status)
	for n in kind build; do
		if pid_alive "dockerd-$n"; then echo "dockerd-$n: running, $(sock "$n")"; else echo "dockerd-$n: stopped"; fi
	done
	;;
env)
	echo "KIND_DOCKER_HOST=$(sock kind)"
	echo "BUILD_DOCKER_HOST=$(sock build)"
	echo "KIND_NETNS_PATH=$KIND_NETNS_PATH"
	echo "DOCKER_CLIENT_DIR=$DOCKER_DIR/bin"
	;;
exec)
	shift
	DOCKER_HOST="$(sock kind)" exec nsenter --net="$KIND_NETNS_PATH" -- "$@"
	;;
clean)
	down
	log "removing $DOCKER_DIR"
	rm -rf "$DOCKER_DIR"
	;;
*)
	echo "usage: $0 up|down|status|env|exec CMD...|clean" >&2
	exit 2
	;;
esac
