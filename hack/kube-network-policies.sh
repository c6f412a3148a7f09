#!/usr/bin/env bash
# The local cluster's NetworkPolicy enforcer: sigs.k8s.io/kube-network-policies, built from
# the Go module proxy with coderun's patch (hack/kube-network-policies/v0.8.0.patch: the xt
# NFQUEUE target for kernels without CONFIG_NFT_QUEUE, an INPUT chain so that a pod's
# connections to the node itself are policed, and every new connection of the pod range
# queued so that a cold pod is policed from its first packet; the patch header says why).
#   hack/kube-network-policies.sh build   build it (cached); prints the binary's path last
# Sourced (by hack/local-cluster.sh) it only defines network_policy_up and network_policy_down.
KNP_VERSION="${KNP_VERSION:-v0.8.0}"
KNP_MODULE=sigs.k8s.io/kube-network-policies
# The table the enforcer owns in the cluster's network namespace (upstream's default name).
KNP_TABLE=kube-network-policies
# The NFQUEUE number it listens on (upstream's default; passed explicitly so the check agrees).
KNP_QUEUE=100
# Its Prometheus metrics, on the loopback of the cluster's network namespace only.
KNP_METRICS_ADDR="${KNP_METRICS_ADDR:-127.0.0.1:9080}"

# knp_paths sets the paths once lib.sh is loaded (ROOT, CLUSTER_DIR).
knp_paths() {
	KNP_BIN_DIR="$ROOT/bin/kube-network-policies/$KNP_VERSION"
	KNP_BIN="$KNP_BIN_DIR/kube-network-policies"
	KNP_WORK_DIR="$ROOT/bin/kube-network-policies/.build-$KNP_VERSION"
	KNP_PATCH="$ROOT/hack/kube-network-policies/$KNP_VERSION.patch"
	# containerd's NRI socket (local-cluster.sh's containerd config): the enforcer learns each
	# new pod's address there in RunPodSandbox, before the pod's containers start.
	KNP_NRI_SOCK="$CLUSTER_DIR/containerd/nri.sock"
}

# knp_build builds the patched enforcer into KNP_BIN, unless a build of the same patch is there.
knp_build() {
	knp_paths
	local stamp want src start=$SECONDS
	want="$KNP_VERSION $(sha256sum "$KNP_PATCH" | cut -d' ' -f1)"
	stamp="$KNP_BIN_DIR/.built-from"
	if [ -x "$KNP_BIN" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
		log "kube-network-policies $KNP_VERSION: cached at ${KNP_BIN#"$ROOT"/}"
		return 0
	fi
	log "kube-network-policies $KNP_VERSION: downloading the module from the Go module proxy"
	src="$(go mod download -json "$KNP_MODULE@$KNP_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
	[ -d "$src" ] || die "go mod download $KNP_MODULE@$KNP_VERSION gave no source folder"
	# A writable copy of the module (the module cache is read-only), patched: the throw-away
	# module that is built. Its own go.mod and go.sum pin every dependency.
	rm -rf "$KNP_WORK_DIR" && mkdir -p "$KNP_WORK_DIR" "$KNP_BIN_DIR"
	cp -r "$src/." "$KNP_WORK_DIR/" && chmod -R u+w "$KNP_WORK_DIR"
	log "kube-network-policies $KNP_VERSION: applying ${KNP_PATCH#"$ROOT"/}"
	(cd "$KNP_WORK_DIR" && patch -p1 --quiet --no-backup-if-mismatch <"$KNP_PATCH") ||
		die "the patch ${KNP_PATCH#"$ROOT"/} does not apply to $KNP_MODULE@$KNP_VERSION"
	log "kube-network-policies $KNP_VERSION: building (5 s with warm Go caches; 4.5 min with an empty build cache on two busy cores)"
	(cd "$KNP_WORK_DIR" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$KNP_BIN.tmp" ./cmd) ||
		die "building kube-network-policies $KNP_VERSION in ${KNP_WORK_DIR#"$ROOT"/} failed"
	mv "$KNP_BIN.tmp" "$KNP_BIN"
	echo "$want" >"$stamp"
	log "kube-network-policies $KNP_VERSION: built in $((SECONDS - start)) s"
}

# knp_listening: the enforcer's nftables table is in the cluster's network namespace and a
# program listens on its queue. The table alone is not enough: a stopped enforcer leaves it
# (fail closed), so after a restart it is there before the new one judges anything.
knp_listening() {
	in_netns nft list table inet "$KNP_TABLE" >/dev/null 2>&1 &&
		in_netns awk -v q="$KNP_QUEUE" '$1 == q { found = 1 } END { exit !found }' /proc/net/netfilter/nfnetlink_queue
}

# network_policy_up starts the enforcer in the cluster's network namespace (after the API
# server and containerd, before the kubelet starts pods) and waits until it listens.
# Uses local-cluster.sh's cert and kubeconfig functions and lib.sh's process helpers.
network_policy_up() {
	knp_paths
	knp_build
	cert kube-network-policies system:kube-network-policies "" ""
	kubeconfig "$PKI/kube-network-policies.kubeconfig" kube-network-policies
	log "applying the enforcer's RBAC (hack/kube-network-policies/rbac.yaml)"
	kubectl_dev apply -f "$ROOT/hack/kube-network-policies/rbac.yaml" >/dev/null
	local nri=(--nri-socket "$KNP_NRI_SOCK")
	if [ ! -S "$KNP_NRI_SOCK" ]; then
		# Without NRI a new pod's address is known only once the kubelet posts its status.
		log "warning: no NRI socket at ${KNP_NRI_SOCK#"$ROOT"/}: a new pod's first connections are judged without its policies"
		nri=(--disable-nri)
	fi
	# --queue-cidrs: every new connection of the pod range is queued, not only those of pods
	# the API server already lists with an address. --fail-open=false: when the enforcer is
	# not listening, queued packets are dropped, not let through. -v=2 logs each verdict
	# (source and destination pod, packet, accept or drop) to logs/kube-network-policies.log.
	start_process_in_netns kube-network-policies "$KNP_BIN" \
		--kubeconfig "$PKI/kube-network-policies.kubeconfig" \
		--hostname-override "$NODE_NAME" \
		--metrics-bind-address "$KNP_METRICS_ADDR" \
		--fail-open=false \
		--queue-cidrs "$POD_CIDR" \
		--nfqueue-id "$KNP_QUEUE" \
		"${nri[@]}" \
		-v=2
	wait_for "kube-network-policies listening (nftables table, NFQUEUE $KNP_QUEUE)" 60 knp_listening
}

# network_policy_down stops the enforcer. Its nftables table stays (SIGTERM ends it at once):
# until an enforcer listens again, the packets it would judge are dropped, not let through
# (fail closed, also across `hack/local-cluster.sh restart`); the namespace's deletion at
# teardown removes the table.
network_policy_down() {
	stop_process kube-network-policies
}

# Executed rather than sourced: the command line.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -euo pipefail
	source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
	LOG_PREFIX=kube-network-policies
	case "${1:-}" in
	build)
		knp_build
		echo "$KNP_BIN"
		;;
	*)
		sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
		exit 2
		;;
	esac
fi
