#!/usr/bin/env bash
# A real single-node Kubernetes on this machine, without Docker or a registry: etcd and the
# kube-* components built from the Go module proxy (hack/kube-binaries.sh), containerd 2 and
# runc built from it too (hack/runtime-binaries.sh; pods may use user namespaces), Debian's
# CNI plugins, and a pause image compiled from pause.c.
#   hack/local-cluster.sh up      start (or finish starting) the cluster; idempotent
#   hack/local-cluster.sh down    stop what `up` started and undo every host change
#   hack/local-cluster.sh status  show the components and the node
#   hack/local-cluster.sh clean   down, then also remove the image cache
#   hack/local-cluster.sh import IMAGE...   load images from buildah into the node's containerd
#   hack/local-cluster.sh restart COMPONENT  kill -9 one of the components (containerd,
#                                            etcd, kube-apiserver, kubelet...: the node faults
#                                            of make test-faults), start it again and wait
#                                            until it is healthy
# Everything lives under .dev/ (see hack/lib.sh). Every component runs in the network
# namespace coderun-dev (NETNS), which has no link to the host at all: the node address
# 10.200.0.1 on its lo, pods 10.244.0.0/24 on its bridge cni0, services 10.96.0.0/16, every
# iptables and nftables rule. The host gets two listeners on 127.0.0.1 (hack/netns-forward):
# the API server (DEV_API_PORT) and, from dev-deploy.sh, the front (DEV_WEB_PORT). Debug
# inside with `ip netns exec coderun-dev CMD` (iptables-save, ss -ltnp, curl...).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/gvisor.sh" # GVISOR_DIR, gvisor_runsc_toml (runs nothing)
# network_policy_up/down: the NetworkPolicy enforcer (runs nothing when sourced).
if [ -f "$(dirname "${BASH_SOURCE[0]}")/kube-network-policies.sh" ]; then
	source "$(dirname "${BASH_SOURCE[0]}")/kube-network-policies.sh"
fi
LOG_PREFIX=local-cluster

PKI="$CLUSTER_DIR/pki"
# Host files and folders that containerd and the kubelet create outside their configured
# roots (containerd 2 puts its shims' sockets in /run/containerd/s whatever its config says;
# /etc/cni is buildah's lock); `down` removes the ones that did not exist before `up`. With
# the configuration below, containerd 2.4 writes nothing else outside .dev (checked by
# listing /run, /var, /etc and /opt before `up`, while up and after `down`).
HOST_PATHS=(/etc/cni /run/containerd /var/lib/cni /var/lib/kubelet /var/log/pods /var/log/containers /run/netns /var/run/netns)
# Kernel settings that the kubelet changes (not per network namespace); `down` restores
# them. The network ones are set inside the namespace and go with it.
SYSCTLS=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys kernel.keys.root_maxbytes)

# The processes `up` starts in the namespace, in start order (kube-network-policies, the
# NetworkPolicy enforcer of hack/kube-network-policies.sh, between the API server and the
# kubelet), and the forwards on the host.
COMPONENTS=(containerd etcd kube-apiserver kube-controller-manager kube-scheduler kube-network-policies kubelet kube-proxy)
FORWARDS=(forward-api forward-web)

need_root() { [ "$(id -u)" -eq 0 ] || die "the local cluster needs root (network setup, containerd, kubelet)"; }

# ---- host baseline -------------------------------------------------------------------------

record_baseline() {
	local b="$CLUSTER_DIR/baseline"
	[ -f "$b/done" ] && return 0
	mkdir -p "$b"
	local p s
	for p in "${HOST_PATHS[@]}"; do [ -e "$p" ] && echo "$p"; done >"$b/paths"
	for s in "${SYSCTLS[@]}"; do echo "$s=$(sysctl -n "$s" 2>/dev/null || echo '?')"; done >"$b/sysctls"
	run_netns_record
	touch "$b/done"
	log "recorded the host's baseline (paths, sysctls) in ${b#"$ROOT"/}"
}

# ---- certificates and kubeconfigs ---------------------------------------------------------

# cert NAME CN ORG SANS [USAGE]: a key and a certificate signed by the cluster CA, for client
# authentication unless USAGE says otherwise (serverAuth).
cert() {
	local name="$1" cn="$2" org="$3" sans="$4" subj="/CN=$2"
	[ -f "$PKI/$name.crt" ] && return 0
	[ -n "$org" ] && subj="/O=$org/CN=$cn"
	openssl req -new -newkey rsa:2048 -nodes -keyout "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
	{
		echo "basicConstraints=CA:FALSE"
		echo "keyUsage=critical,digitalSignature,keyEncipherment"
		echo "extendedKeyUsage=${5:-clientAuth}"
		[ -n "$sans" ] && echo "subjectAltName=$sans"
	} >"$PKI/$name.ext"
	openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
		-days 365 -sha256 -extfile "$PKI/$name.ext" -out "$PKI/$name.crt" 2>/dev/null
	rm -f "$PKI/$name.csr" "$PKI/$name.ext"
}

kubeconfig() {
	local file="$1" user="$2" server="${3:-https://$NODE_IP:$API_PORT}"
	[ -f "$file" ] && return 0
	kubectl config --kubeconfig="$file" set-cluster coderun-dev --server="$server" \
		--certificate-authority="$PKI/ca.crt" --embed-certs=true >/dev/null
	kubectl config --kubeconfig="$file" set-credentials "$user" \
		--client-certificate="$PKI/$user.crt" --client-key="$PKI/$user.key" --embed-certs=true >/dev/null
	kubectl config --kubeconfig="$file" set-context coderun-dev --cluster=coderun-dev --user="$user" >/dev/null
	kubectl config --kubeconfig="$file" use-context coderun-dev >/dev/null
}

make_pki() {
	mkdir -p "$PKI"
	[ -f "$PKI/done" ] && return 0
	log "generating certificates and kubeconfigs"
	openssl req -x509 -new -newkey rsa:2048 -nodes -keyout "$PKI/ca.key" -subj "/CN=coderun-dev-ca" \
		-days 365 -sha256 -out "$PKI/ca.crt" 2>/dev/null
	openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
	openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
	cert apiserver kube-apiserver "" \
		"IP:$NODE_IP,IP:127.0.0.1,IP:$API_SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local" serverAuth
	cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters ""
	cert admin coderun-dev-admin system:masters ""
	cert controller-manager system:kube-controller-manager "" ""
	cert scheduler system:kube-scheduler "" ""
	cert kube-proxy system:kube-proxy "" ""
	cert kubelet "system:node:$NODE_NAME" system:nodes ""
	cert kubelet-serving "system:node:$NODE_NAME" system:nodes "IP:$NODE_IP,DNS:$NODE_NAME" serverAuth
	local c
	for c in admin controller-manager scheduler kube-proxy kubelet; do kubeconfig "$PKI/$c.kubeconfig" "$c"; done
	# The host's kubeconfig goes through the forward on 127.0.0.1 (in the serving cert's
	# SANs); admin.kubeconfig (the node address) is for processes inside the namespace.
	kubeconfig "$KUBECONFIG_FILE" admin "https://127.0.0.1:$DEV_API_PORT"
	touch "$PKI/done"
}

# ---- network namespace ---------------------------------------------------------------------

netns_exists() { [ -e "$NETNS_PATH" ] && findmnt -rn "$NETNS_PATH" >/dev/null 2>&1; }

# setup_netns creates the cluster's network namespace (idempotent). It gets no link to the
# host: pods have no route off the machine by construction (the iptables GUARD chain that
# used to drop it is gone), and whatever the cluster adds (the bridge, kube-proxy's and the
# enforcer's rules, routes) disappears with `ip netns del`.
setup_netns() {
	if ! netns_exists; then
		log "creating the network namespace $NETNS"
		ip netns add "$NETNS"
	fi
	in_netns ip link set lo up
	# The node address on the namespace's lo: the kubelet refuses loopback node addresses,
	# and an address on lo needs no link; NodePorts (nodePortAddresses) live on it too.
	if ! in_netns ip -o -4 addr show dev lo | quiet_grep -F " $NODE_IP/32 "; then
		in_netns ip addr add "$NODE_IP/32" dev lo
	fi
	# A connection from the namespace itself (the API server's webhook calls, the web
	# forward) to a ClusterIP needs a route before kube-proxy's OUTPUT DNAT re-routes it to
	# a pod on cni0; the namespace has no default route, so the service range gets one, from
	# the node address. A ClusterIP without a Service goes nowhere.
	in_netns ip route replace "$SERVICE_CIDR" dev lo src "$NODE_IP"
	# Forwarding between pods and the node; bridged pod-to-pod packets through iptables
	# (and so through the enforcer's queue), per namespace since Linux 5.3.
	in_netns sysctl -qw net.ipv4.ip_forward=1
	in_netns sysctl -qw net.bridge.bridge-nf-call-iptables=1
}

# ---- containerd ---------------------------------------------------------------------------

cni_config() {
	local bin="$CLUSTER_DIR/cni/bin" conf="$CLUSTER_DIR/cni/net.d" p
	mkdir -p "$bin" "$conf" "$CLUSTER_DIR/cni/ipam"
	for p in bridge host-local portmap loopback; do ln -sf "/usr/lib/cni/$p" "$bin/$p"; done
	write_if_changed "$conf/10-coderun-dev.conflist" <<-EOF
		{
		  "cniVersion": "1.0.0",
		  "name": "coderun-dev",
		  "plugins": [
		    {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
		     "ipam": {"type": "host-local", "dataDir": "$CLUSTER_DIR/cni/ipam",
		              "ranges": [[{"subnet": "$POD_SUBNET"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
		    {"type": "portmap", "capabilities": {"portMappings": true}}
		  ]
		}
	EOF
}

# runtime_handler NAME RUNTIME_TYPE SHIM [OPTION...]: the containerd config of one runtime
# handler (a RuntimeClass's `handler`): its shim binary and the shim's options, one TOML
# `key = value` each. runtime_handlers lists the handlers the node offers.
runtime_handler() {
	local name="$1" type="$2" shim="$3" opt p="plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.$1"
	shift 3
	[ -x "$shim" ] || die "runtime handler $name: shim $shim missing"
	printf "[%s]\n  runtime_type = '%s'\n  runtime_path = '%s'\n[%s.options]\n" "$p" "$type" "$shim" "$p"
	for opt in "$@"; do printf '  %s\n' "$opt"; done
}

# runtime_handlers: runc (the default handler, "") runs every pod unless its RuntimeClass names
# another handler; runsc (gVisor, RuntimeClass gvisor: hack/gvisor-runtimeclass.yaml) runs the
# pods that ask for it, when hack/gvisor.sh has built it (make dev does).
runtime_handlers() {
	runtime_handler runc io.containerd.runc.v2 "$CONTAINERD_BIN_DIR/containerd-shim-runc-v2" \
		"BinaryName = '$RUNC_BIN_DIR/runc'" \
		"Root = '$CLUSTER_DIR/containerd/runc'" \
		"SystemdCgroup = false"
	if gvisor_built; then
		# runsc keeps its state (and, with network = 'none', a null-netns mount that `down`
		# unmounts with everything under the cluster folder) under the cluster folder too.
		gvisor_runsc_toml "$CLUSTER_DIR/containerd/runsc" | write_if_changed "$CLUSTER_DIR/containerd/runsc.toml"
		runtime_handler runsc io.containerd.runsc.v1 "$GVISOR_DIR/containerd-shim-runsc-v1" \
			"TypeUrl = 'io.containerd.runsc.v1.options'" \
			"ConfigPath = '$CLUSTER_DIR/containerd/runsc.toml'"
	fi
}

gvisor_built() { [ -x "$GVISOR_DIR/runsc" ] && [ -x "$GVISOR_DIR/containerd-shim-runsc-v1" ]; }

# gvisor_runtimeclass registers RuntimeClass gvisor when the node has the runsc handler.
gvisor_runtimeclass() {
	gvisor_built || return 0
	kubectl_dev apply -f "$ROOT/hack/gvisor-runtimeclass.yaml" >/dev/null
	log "RuntimeClass gvisor (runsc $GVISOR_VERSION) registered"
}

# start_containerd runs containerd 2 and runc built by hack/runtime-binaries.sh, not Debian's
# containerd 1.6 and runc 1.1: user namespaces (pods with hostUsers: false) need containerd >=
# 2.0 and runc >= 1.2. Debian's runc is still what buildah runs RUN steps with (lib.sh).
start_containerd() {
	local d="$CLUSTER_DIR/containerd" handlers
	mkdir -p "$d/root" "$d/state" "$d/opt" "$d/tmp" "$d/runc" "$d/cdi" "$d/nri/plugins" "$d/nri/conf.d"
	handlers="$(runtime_handlers)"
	# Config version 3 (containerd 2.x; 2.4 migrates it to its own version 4 in memory).
	# Everything stays under $d except the shim sockets, which containerd 2 always puts in
	# /run/containerd/s (HOST_PATHS): temp is where it mounts idmapped views of the image
	# layers for pods in user namespaces, runc's Root its containers' state.
	write_if_changed "$d/config.toml" <<-EOF
		version = 3
		root = '$d/root'
		state = '$d/state'
		temp = '$d/tmp'
		[grpc]
		  address = '$CONTAINERD_SOCK'
		[ttrpc]
		  address = '$CONTAINERD_SOCK.ttrpc'
		[debug]
		  address = ''
		[metrics]
		  address = ''
		[plugins.'io.containerd.internal.v1.opt']
		  path = '$d/opt'
		# NRI: the enforcer (hack/kube-network-policies.sh) learns each new pod's address from
		# it in RunPodSandbox, before any container of the pod starts, rather than from the
		# pod's status later (a cold run's first connection would be unpoliced until then).
		# Its socket and plugin folders under .dev, not /var/run/nri, /etc/nri, /opt/nri.
		[plugins.'io.containerd.nri.v1.nri']
		  disable = false
		  socket_path = '$d/nri.sock'
		  plugin_path = '$d/nri/plugins'
		  plugin_config_path = '$d/nri/conf.d'
		[plugins.'io.containerd.cri.v1.images']
		  snapshotter = 'overlayfs'
		[plugins.'io.containerd.cri.v1.images'.pinned_images]
		  sandbox = '$PAUSE_IMG'
		[plugins.'io.containerd.cri.v1.runtime']
		  # root on these machines lacks CAP_SYS_RESOURCE; without this every sandbox fails.
		  restrict_oom_score_adj = true
		  # Pod network namespaces under the state dir, not /var/run/netns.
		  netns_mounts_under_state_dir = true
		  cdi_spec_dirs = ['$d/cdi']
		[plugins.'io.containerd.cri.v1.runtime'.containerd]
		  default_runtime_name = 'runc'
		$handlers
		[plugins.'io.containerd.cri.v1.runtime'.cni]
		  bin_dirs = ['$CLUSTER_DIR/cni/bin']
		  conf_dir = '$CLUSTER_DIR/cni/net.d'
		[plugins.'io.containerd.grpc.v1.cri']
		  stream_server_address = '127.0.0.1'
		  stream_server_port = '0'
	EOF
	# In the namespace: CNI makes cni0 and the pods' veth ends in containerd's own namespace,
	# and the kubelet reaches its stream server on 127.0.0.1 there.
	start_process_in_netns containerd "$CONTAINERD_BIN_DIR/containerd" --config "$d/config.toml"
	wait_for containerd 30 "$CONTAINERD_BIN_DIR/ctr" -a "$CONTAINERD_SOCK" version
}

ctr_k8s() { "$CONTAINERD_BIN_DIR/ctr" -a "$CONTAINERD_SOCK" -n k8s.io "$@"; }

# import_images IMAGE...: copies images from buildah's store into containerd, skipping those
# whose image ID containerd already has under that name.
import_images() {
	local img id id_file
	for img in "$@"; do
		id="$("${BUILDAH[@]}" inspect --type image --format '{{.FromImageID}}' "$img")" ||
			die "image $img is not in the build cache; build it first"
		id_file="$CLUSTER_DIR/images/${img//[\/:]/_}.id"
		if ctr_k8s images ls -q "name==$img" 2>/dev/null | quiet_grep . && [ "$(cat "$id_file" 2>/dev/null)" = "$id" ]; then
			continue
		fi
		log "loading $img into the node's containerd"
		mkdir -p "$CLUSTER_DIR/images"
		tidy_buildah "${BUILDAH[@]}" push --quiet "$img" "docker-archive:$CLUSTER_DIR/images/load.tar:$img" >/dev/null
		# containerd 2.2+ warns on every call that cgroup v1 is deprecated (see lib.sh); keep
		# any other message.
		ctr_k8s images import --no-unpack=false "$CLUSTER_DIR/images/load.tar" 2>&1 >/dev/null |
			{ grep -v 'DEPRECATION: The support for cgroup v1' || true; } >&2
		rm -f "$CLUSTER_DIR/images/load.tar"
		# dev-deploy.sh puts the id on the Deployments' pods, so a new image under the same
		# tag rolls them.
		echo "$id" >"$id_file"
	done
}

# ---- control plane -------------------------------------------------------------------------

start_etcd() {
	start_process_in_netns etcd "$KUBE_BIN_DIR/etcd" --name "$NODE_NAME" --data-dir "$CLUSTER_DIR/etcd" \
		--listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
		--listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
		--initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
		--initial-cluster "$NODE_NAME=http://127.0.0.1:$((ETCD_PORT + 1))" \
		--listen-metrics-urls "http://127.0.0.1:$((ETCD_PORT + 2))" --log-level warn
	wait_for etcd 30 in_netns curl -sf "http://127.0.0.1:$((ETCD_PORT + 2))/health"
}

start_apiserver() {
	start_process_in_netns kube-apiserver "$KUBE_BIN_DIR/kube-apiserver" \
		--etcd-servers="http://127.0.0.1:$ETCD_PORT" \
		--bind-address="$NODE_IP" --advertise-address="$NODE_IP" --secure-port="$API_PORT" \
		--tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
		--client-ca-file="$PKI/ca.crt" \
		--kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" \
		--kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
		--kubelet-certificate-authority="$PKI/ca.crt" \
		--kubelet-preferred-address-types=InternalIP \
		--service-cluster-ip-range="$SERVICE_CIDR" \
		--service-account-issuer=https://kubernetes.default.svc.cluster.local \
		--service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
		--authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
		--profiling=false
	start_forward forward-api "127.0.0.1:$DEV_API_PORT" "$NODE_IP:$API_PORT"
	wait_for "kube-apiserver /readyz" 90 kubectl_dev get --raw /readyz
}

start_controllers() {
	start_process_in_netns kube-controller-manager "$KUBE_BIN_DIR/kube-controller-manager" \
		--kubeconfig="$PKI/controller-manager.kubeconfig" \
		--authentication-kubeconfig="$PKI/controller-manager.kubeconfig" \
		--authorization-kubeconfig="$PKI/controller-manager.kubeconfig" \
		--bind-address=127.0.0.1 --leader-elect=false \
		--service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
		--cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
		--use-service-account-credentials=true --service-cluster-ip-range="$SERVICE_CIDR" \
		--flex-volume-plugin-dir="$CLUSTER_DIR/controller-manager/volume-plugins"
	start_process_in_netns kube-scheduler "$KUBE_BIN_DIR/kube-scheduler" \
		--kubeconfig="$PKI/scheduler.kubeconfig" \
		--authentication-kubeconfig="$PKI/scheduler.kubeconfig" \
		--authorization-kubeconfig="$PKI/scheduler.kubeconfig" \
		--bind-address=127.0.0.1 --leader-elect=false
}

# ---- node ----------------------------------------------------------------------------------

# User namespaces need nothing here: kubelet 1.37 has them on (GA) and, with no `kubelet` user
# in /etc/passwd (so no /etc/subuid entry to read with getsubids), gives each pod with
# hostUsers: false 65536 ids of its own from its default range (host ids 65536 up to 2^32,
# userNamespaces.idsPerPod left at 65536). So no host file to add, and none to restore.
start_kubelet() {
	local d="$CLUSTER_DIR/kubelet"
	mkdir -p "$d/root" "$d/volume-plugins"
	write_if_changed "$d/config.yaml" <<-EOF
		apiVersion: kubelet.config.k8s.io/v1beta1
		kind: KubeletConfiguration
		address: $NODE_IP
		port: 10250
		readOnlyPort: 0
		healthzBindAddress: 127.0.0.1
		healthzPort: 10248
		authentication:
		  anonymous: {enabled: false}
		  webhook: {enabled: true}
		  x509: {clientCAFile: $PKI/ca.crt}
		authorization: {mode: Webhook}
		tlsCertFile: $PKI/kubelet-serving.crt
		tlsPrivateKeyFile: $PKI/kubelet-serving.key
		containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
		cgroupDriver: cgroupfs
		failCgroupV1: false
		failSwapOn: false
		podPidsLimit: 1024
		serializeImagePulls: false
		volumePluginDir: $d/volume-plugins
		# Images cannot be pulled again here (no registry), so never garbage-collect them, and
		# evict only when the disk is really full.
		imageGCHighThresholdPercent: 100
		imageGCLowThresholdPercent: 99
		evictionHard: {memory.available: 100Mi, nodefs.available: 2%, imagefs.available: 2%}
	EOF
	start_process_in_netns kubelet "$KUBE_BIN_DIR/kubelet" --config="$d/config.yaml" \
		--kubeconfig="$PKI/kubelet.kubeconfig" --root-dir="$d/root" \
		--hostname-override="$NODE_NAME" --node-ip="$NODE_IP"
	wait_for "node $NODE_NAME Ready" 90 node_ready
}

kube_proxy_synced() { in_netns iptables -w -S FORWARD | quiet_grep -- '-j KUBE-FORWARD'; }

node_ready() {
	[ "$(kubectl_dev get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True ]
}

start_kube_proxy() {
	local d="$CLUSTER_DIR/kube-proxy"
	mkdir -p "$d"
	write_if_changed "$d/config.yaml" <<-EOF
		apiVersion: kubeproxy.config.k8s.io/v1alpha1
		kind: KubeProxyConfiguration
		clientConnection: {kubeconfig: $PKI/kube-proxy.kubeconfig}
		hostnameOverride: $NODE_NAME
		mode: iptables
		clusterCIDR: $POD_CIDR
		bindAddress: $NODE_IP
		healthzBindAddress: 127.0.0.1:10256
		metricsBindAddress: 127.0.0.1:10249
		# NodePorts only on the node address (the namespace has no other anyway).
		nodePortAddresses: ["$NODE_IP/32"]
		# 0 leaves the conntrack settings as they are (some are the host's, not per namespace).
		conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
	EOF
	start_process_in_netns kube-proxy "$KUBE_BIN_DIR/kube-proxy" --config="$d/config.yaml"
}

# ---- up / down -----------------------------------------------------------------------------

pause_image() {
	if "${BUILDAH[@]}" inspect --type image "$PAUSE_IMG" >/dev/null 2>&1; then return 0; fi
	local src ctx="$CACHE_DIR/pause"
	src="$(cd "$ROOT/bin/k8s/.build-$KUBE_VERSION/kubernetes" 2>/dev/null && go list -m -f '{{.Dir}}' k8s.io/kubernetes)/build/pause/linux/pause.c"
	[ -f "$src" ] || die "pause.c not found at $src (hack/kube-binaries.sh prepares k8s.io/kubernetes)"
	log "building the pause image from $src"
	mkdir -p "$ctx"
	gcc -Os -static -o "$ctx/pause" "$src"
	printf 'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n' >"$ctx/Dockerfile"
	tidy_buildah "${BUILDAH[@]}" "${BUILDAH_BUD[@]}" -t "$PAUSE_IMG" "$ctx" >/dev/null
}

up() {
	need_root
	local start=$SECONDS
	for b in etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy; do
		[ -x "$KUBE_BIN_DIR/$b" ] || die "$KUBE_BIN_DIR/$b missing: run hack/kube-binaries.sh (make dev does)"
	done
	for b in "$CONTAINERD_BIN_DIR/containerd" "$CONTAINERD_BIN_DIR/containerd-shim-runc-v2" "$CONTAINERD_BIN_DIR/ctr" "$RUNC_BIN_DIR/runc"; do
		[ -x "$b" ] || die "$b missing: run hack/runtime-binaries.sh (make dev does)"
	done
	mkdir -p "$CLUSTER_DIR" "$CACHE_DIR"
	record_baseline
	make_pki
	setup_netns
	cni_config
	pause_image
	start_containerd
	import_images "$PAUSE_IMG"
	start_etcd
	start_apiserver
	start_controllers
	start_network_policy
	start_kubelet
	start_kube_proxy
	wait_for "kube-proxy rules" 60 kube_proxy_synced
	wait_for "default ServiceAccount" 60 kubectl_dev -n default get serviceaccount default
	gvisor_runtimeclass
	check_listeners
	log "cluster up in $((SECONDS - start))s; export KUBECONFIG=${KUBECONFIG_FILE}"
}

# start_network_policy starts the NetworkPolicy enforcer (hack/kube-network-policies.sh)
# before the kubelet starts any pod, so that no pod ever runs unpoliced.
start_network_policy() {
	if declare -F network_policy_up >/dev/null; then
		network_policy_up
	else
		log "warning: hack/kube-network-policies.sh has no network_policy_up; NetworkPolicy is NOT enforced"
	fi
}

# check_listeners fails when a component listens on anything but loopback or the node
# address in the namespace, or a forward on anything but 127.0.0.1 of the host: nothing of
# the cluster may be reachable from other machines.
check_listeners() {
	local name pid line addr ok bad=0
	for name in "${COMPONENTS[@]}" "${FORWARDS[@]}"; do
		pid_alive "$name" || continue
		pid="$(cat "$CLUSTER_DIR/pids/$name.pid")"
		while read -r line; do
			addr="$(awk '{print $5}' <<<"$line")" ok=1
			case "$name:$addr" in
			forward-*:127.*) ;;
			forward-*:*) ok=0 ;;
			*:127.* | *:\[::1\]:* | *:"$NODE_IP":* | *:\[::ffff:127.*\]:* | *:"[::ffff:$NODE_IP]":*) ;;
			*) ok=0 ;;
			esac
			if [ "$ok" = 0 ]; then
				log "$name listens on $addr, beyond this machine"
				bad=1
			fi
		done < <({
			case "$name" in forward-*) ss -ltnupH ;; *) in_netns ss -ltnupH ;; esac
		} 2>/dev/null | grep -F "pid=$pid," || true)
	done
	[ "$bad" = 0 ] || die "a component listens beyond this machine (see above)"
	log "every component listens only on 127.0.0.1 or $NODE_IP in $NETNS, the forwards on the host's 127.0.0.1"
}

# ---- teardown ------------------------------------------------------------------------------

remove_pods() {
	if pid_alive kube-apiserver && pid_alive kubelet; then
		log "deleting workloads so the kubelet stops their containers"
		kubectl_dev delete namespace --wait=false coderun-runs coderun-system coderun-bench --ignore-not-found >/dev/null 2>&1 || true
		kubectl_dev delete pods --all --all-namespaces --grace-period=1 --wait=false >/dev/null 2>&1 || true
		local i
		for i in $(seq 1 60); do
			[ -z "$(ctr_k8s tasks ls -q 2>/dev/null)" ] && break
			sleep 1
		done
	fi
}

# stop_containers removes what is left through CRI's own tools, so CNI DEL runs for each pod.
stop_containers() {
	pid_alive containerd || return 0
	local id
	for id in $(ctr_k8s tasks ls -q 2>/dev/null); do ctr_k8s tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true; done
	sleep 1
	for id in $(ctr_k8s tasks ls -q 2>/dev/null); do ctr_k8s tasks delete -f "$id" >/dev/null 2>&1 || true; done
	for id in $(ctr_k8s containers ls -q 2>/dev/null); do ctr_k8s containers delete "$id" >/dev/null 2>&1 || true; done
}

# kill_shims ends containerd shims of our containerd (found by our socket in their command line).
kill_shims() {
	local pid
	for pid in $(pgrep -f containerd-shim 2>/dev/null); do
		if grep -qF -- "$CONTAINERD_SOCK" "/proc/$pid/cmdline" 2>/dev/null; then
			kill -KILL "$pid" 2>/dev/null || true
		fi
	done
}

undo_host_changes() {
	local b="$CLUSTER_DIR/baseline"
	# Unmount everything under the cluster folder, deepest first (kubelet volumes, its root
	# dir's bind mount, containerd's rootfs and shm mounts, the pods' network namespaces).
	local m
	for m in $(findmnt -rn -o TARGET | grep -F "$CLUSTER_DIR" | sort -r); do umount -l "$m" 2>/dev/null || true; done
	# The namespace's bridge, routes, addresses and every iptables/nftables rule of
	# kube-proxy, the enforcer and CNI go with it: nothing of them was ever on the host.
	if netns_exists; then
		ip netns del "$NETNS" && log "deleted the network namespace $NETNS"
	fi
	run_netns_restore
	# cgroups the kubelet made under each controller (children first).
	local cg
	for cg in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
		[ -d "$cg" ] || continue
		find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null || true
	done
	if [ -f "$b/done" ]; then
		local s key val p
		while IFS= read -r s; do
			key="${s%%=*}" val="${s#*=}"
			[ "$val" = "?" ] || sysctl -qw "$key=$val" 2>/dev/null || true
		done <"$b/sysctls"
		for p in "${HOST_PATHS[@]}"; do
			case "$p" in /run/netns | /var/run/netns) continue ;; esac # above
			grep -qxF "$p" "$b/paths" || rm -rf "$p"
		done
	fi
}

down() {
	need_root
	[ -d "$CLUSTER_DIR" ] || {
		log "no cluster state in ${CLUSTER_DIR#"$ROOT"/}; nothing to do"
		return 0
	}
	local start=$SECONDS
	stop_process forward-web
	remove_pods
	stop_process kube-proxy
	stop_process kubelet
	stop_containers
	if declare -F network_policy_down >/dev/null; then network_policy_down; fi
	stop_process kube-scheduler
	stop_process kube-controller-manager
	stop_process kube-apiserver
	stop_process forward-api
	stop_process etcd
	stop_process containerd
	kill_shims
	undo_host_changes
	rm -rf "$CLUSTER_DIR" "$KUBECONFIG_FILE"
	log "cluster removed and host restored in $((SECONDS - start))s"
}

# restart COMPONENT: SIGKILL to the component's process only (not its group: containerd's
# shims, and so the containers, must outlive it, as after a crash), then the same start_*
# function `up` uses, which waits until it answers. The kubelet also gets its healthz
# waited for (the node stays Ready through a short outage).
restart() {
	need_root
	local name="${1:-}" pid start=$SECONDS
	case "$name" in
	containerd | etcd | kube-apiserver | kube-controller-manager | kube-scheduler | kube-network-policies | kubelet | kube-proxy) ;;
	*) die "restart: COMPONENT is one of ${COMPONENTS[*]} (not '$name')" ;;
	esac
	pid_alive "$name" || die "restart: $name is not running (hack/local-cluster.sh up)"
	pid="$(cat "$CLUSTER_DIR/pids/$name.pid")"
	log "killing $name (pid $pid) with SIGKILL"
	kill -KILL "$pid"
	while [ -d "/proc/$pid" ] && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]; do sleep 0.1; done
	case "$name" in
	containerd)
		start_containerd
		# The enforcer's NRI connection ended with containerd, and it does not reconnect:
		# restarted, it learns new pods' addresses from NRI again (before their containers
		# start), instead of only from their status.
		if pid_alive kube-network-policies; then
			stop_process kube-network-policies
			start_network_policy
		fi
		;;
	etcd) start_etcd ;;
	kube-apiserver) start_apiserver ;;
	kube-controller-manager | kube-scheduler) start_controllers ;;
	kube-proxy) start_kube_proxy ;;
	kube-network-policies) start_network_policy ;;
	kubelet)
		start_kubelet
		wait_for "kubelet healthz" 60 in_netns curl -sf http://127.0.0.1:10248/healthz
		;;
	esac
	log "$name restarted in $((SECONDS - start))s"
}

status() {
	local p
	for p in "${COMPONENTS[@]}" "${FORWARDS[@]}"; do
		if pid_alive "$p"; then echo "$p: running (pid $(cat "$CLUSTER_DIR/pids/$p.pid"))"; else echo "$p: stopped"; fi
	done
	pid_alive kube-apiserver && kubectl_dev get nodes -o wide
	return 0
}

case "${1:-}" in
up) up ;;
down) down ;;
status) status ;;
clean)
	down
	rm -rf "$CACHE_DIR"
	;;
import)
	shift
	import_images "$@"
	;;
restart) restart "${2:-}" ;;
*)
	sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
	;;
esac
