#!/usr/bin/env bash
# Prints the parts of this machine's state that the local cluster touches, normalised so that
# two snapshots can be diffed: `make dev-down` must leave the machine as it was before
# `make dev`, and while the cluster runs the host's network must be as it was before too,
# but for the forwards on 127.0.0.1 (.ci/run checks both around the end-to-end suite).
#   hack/host-state.sh           everything below
#   hack/host-state.sh network   the network sections only (addresses, links, routes,
#                                iptables, ip6tables, nftables, listening sockets but the
#                                forwards of make dev: 127.0.0.1:DEV_WEB_PORT, DEV_API_PORT)
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
section() { printf '## %s\n' "$1"; }

network() {
	section addresses; ip -o addr show | awk '{print $2, $3, $4}' | sort
	section links; ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort
	section routes; ip route show table all 2>/dev/null | grep -v '^local\|^broadcast\|^multicast\|fe80::\|ff00::' | sort
	section iptables; iptables-save 2>/dev/null | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//' | sort
	section ip6tables; ip6tables-save 2>/dev/null | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//' | sort
	# The whole ruleset, also tables iptables does not show (an enforcer's nftables table).
	section nftables; nft list ruleset 2>/dev/null | sed -E 's/counter packets [0-9]+ bytes [0-9]+/counter/' | sort
	# Listening sockets by address and program; make dev's own forwards are expected.
	section listening
	ss -ltnuH 2>/dev/null | awk '{print $1, $5}' |
		grep -vxF -e "tcp 127.0.0.1:$DEV_WEB_PORT" -e "tcp 127.0.0.1:$DEV_API_PORT" | sort -u
}

if [ "${1:-}" = network ]; then
	network
	exit 0
fi
network
section mounts; findmnt -rn -o TARGET,FSTYPE | grep -v '^/proc\|^/sys/kernel\|^/dev/' | sort
section sysctls
for s in net.ipv4.ip_forward vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys kernel.keys.root_maxbytes net.bridge.bridge-nf-call-iptables; do
	echo "$s=$(sysctl -n "$s" 2>/dev/null || echo '?')"
done
section paths
for p in /run/containerd /var/lib/containerd /opt/containerd /run/nri /etc/nri /opt/nri /etc/cdi /run/cdi /var/lib/cni /var/lib/kubelet /var/log/pods /var/log/containers /run/netns /var/run/netns /etc/cni /opt/cni /usr/libexec/kubernetes "$CLUSTER_DIR"; do
	[ -e "$p" ] && echo "$p"
done
ls -d /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods 2>/dev/null || true
section processes
ps -eo comm= | grep -E '^(containerd|containerd-shim|etcd|kube-|kubelet|runc|pause|netns-forward)' | sort | uniq -c || true
