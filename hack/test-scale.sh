#!/usr/bin/env bash
# make test-scale: the operator at scale, on a control plane of its own with kwok's fake
# nodes. It starts etcd, kube-apiserver, kube-controller-manager (Job, TTL-after-finished,
# garbage collector and service account controllers) and kube-scheduler from bin/k8s on
# 127.0.0.1 ports of their own (not the local dev cluster's), kwok managing SCALE_NODES fake
# nodes, and the operator as a process; then hack/scale creates SCALE_N CodeRuns in waves,
# and as many plain Jobs of the same pod shape, and prints the table (see hack/scale).
# Everything it starts is stopped, and its temp dir removed, when it ends, also on failure
# or Ctrl-C (SCALE_KEEP=1 keeps the temp dir and its logs). Needs no root and no network
# beyond 127.0.0.1.
#
# Settings (environment): SCALE_N (10000), SCALE_WAVE (500), SCALE_NODES (100),
# SCALE_SLOTS (the operator's maxConcurrentRuns, 200; the fake nodes' 10 CPUs hold 1,000
# 1-CPU run pods, but with 1,000 slots the Job controller, creating pods at ~8/s on a busy
# 2-core machine, fell more than startTimeout (2m) behind and most runs failed to start:
# slots are sized by what the control plane starts within startTimeout, not by nodes),
# SCALE_TTL (the Jobs' TTL after finishing, 30s),
# SCALE_PHASE_TIMEOUT (20m per phase: what finished by then is measured),
# SCALE_CLEANUP_TIMEOUT (5m), SCALE_PORT_BASE (23000: uses the ports base+80..base+443
# listed below).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" # ROOT, KUBE_BIN_DIR, log, die, start/stop_process, wait_for
LOG_PREFIX=test-scale

SCALE_N="${SCALE_N:-10000}"
SCALE_WAVE="${SCALE_WAVE:-500}"
SCALE_NODES="${SCALE_NODES:-100}"
SCALE_SLOTS="${SCALE_SLOTS:-200}"
SCALE_TTL="${SCALE_TTL:-30s}"
base="${SCALE_PORT_BASE:-23000}"
ETCD_PORT=$((base + 379)) # and the two after it: peer, metrics
API_PORT=$((base + 443))
KCM_PORT=$((base + 257))
SCHEDULER_PORT=$((base + 259))
KWOK_PORT=$((base + 247))
OPERATOR_METRICS_PORT=$((base + 80))
OPERATOR_PROBE_PORT=$((base + 81))
OPERATOR_PPROF_PORT=$((base + 82)) # go tool pprof http://127.0.0.1:23082/debug/pprof/profile
NAMESPACE=scale
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok operator)

start=$SECONDS
for p in "$ETCD_PORT" $((ETCD_PORT + 1)) $((ETCD_PORT + 2)) "$API_PORT" "$KCM_PORT" "$SCHEDULER_PORT" "$KWOK_PORT" "$OPERATOR_METRICS_PORT" "$OPERATOR_PROBE_PORT" "$OPERATOR_PPROF_PORT"; do
	if ss -Htln "sport = :$p" | quiet_grep .; then
		die "port $p on this machine is taken; set SCALE_PORT_BASE to another base"
	fi
done

# lib.sh's start_process and stop_process keep pids and logs under CLUSTER_DIR.
CLUSTER_DIR="$(mktemp -d "${TMPDIR:-/tmp}/coderun-scale.XXXXXX")"
PKI="$CLUSTER_DIR/pki"
KUBECONFIG_SCALE="$CLUSTER_DIR/kubeconfig"
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	local i
	if [ -n "${driver_pid:-}" ]; then
		kill -TERM "$driver_pid" 2>/dev/null || true
		wait "$driver_pid" 2>/dev/null || true
	fi
	for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do stop_process "${COMPONENTS[i]}"; done
	if [ "$rc" != 0 ]; then
		for c in "${COMPONENTS[@]}"; do
			[ -f "$CLUSTER_DIR/logs/$c.log" ] || continue
			log "last lines of $c's log:"
			tail -n 15 "$CLUSTER_DIR/logs/$c.log" >&2 || true
		done
	fi
	if [ "${SCALE_KEEP:-}" = 1 ]; then
		log "kept $CLUSTER_DIR"
	else
		rm -rf "$CLUSTER_DIR"
	fi
	log "done in $((SECONDS - start)) s (exit $rc)"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

k() { kubectl --kubeconfig "$KUBECONFIG_SCALE" "$@"; }

# ---- binaries -----------------------------------------------------------------------------
KWOK="$("$ROOT/hack/kwok-binary.sh" | tail -n 1)"
for b in etcd kube-apiserver kube-controller-manager kube-scheduler; do
	[ -x "$KUBE_BIN_DIR/$b" ] || die "$KUBE_BIN_DIR/$b is missing: run make kube-binaries"
done
log "building the operator and the driver"
(cd "$ROOT" && go build -o "$CLUSTER_DIR/operator" ./cmd && go build -o "$CLUSTER_DIR/scale" ./hack/scale)

# ---- certificates: a CA, the API server's serving cert, one admin client cert ---------------
mkdir -p "$PKI"
openssl req -x509 -new -newkey rsa:2048 -nodes -keyout "$PKI/ca.key" -subj "/CN=coderun-scale-ca" \
	-days 2 -sha256 -out "$PKI/ca.crt" 2>/dev/null
signed() { # NAME SUBJECT EXTENSIONS
	openssl req -new -newkey rsa:2048 -nodes -keyout "$PKI/$1.key" -subj "$2" -out "$PKI/$1.csr" 2>/dev/null
	printf '%b' "$3" >"$PKI/$1.ext"
	openssl x509 -req -in "$PKI/$1.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
		-days 2 -sha256 -extfile "$PKI/$1.ext" -out "$PKI/$1.crt" 2>/dev/null
}
signed apiserver "/CN=kube-apiserver" "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost"
signed admin "/O=system:masters/CN=coderun-scale-admin" "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth"
openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
k config set-cluster scale --server="https://127.0.0.1:$API_PORT" --certificate-authority="$PKI/ca.crt" --embed-certs=true >/dev/null
k config set-credentials admin --client-certificate="$PKI/admin.crt" --client-key="$PKI/admin.key" --embed-certs=true >/dev/null
k config set-context scale --cluster=scale --user=admin >/dev/null
k config use-context scale >/dev/null

# ---- control plane ------------------------------------------------------------------------
# No fsync: the cluster lives for one test, and both phases see the same etcd.
start_process etcd "$KUBE_BIN_DIR/etcd" --name scale --data-dir "$CLUSTER_DIR/etcd" \
	--listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
	--listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
	--initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
	--initial-cluster "scale=http://127.0.0.1:$((ETCD_PORT + 1))" \
	--listen-metrics-urls "http://127.0.0.1:$((ETCD_PORT + 2))" \
	--unsafe-no-fsync --quota-backend-bytes=$((8 << 30)) --log-level warn
wait_for etcd 30 curl -sf "http://127.0.0.1:$((ETCD_PORT + 2))/health"

# The endpoint reconciler is off: it would publish 127.0.0.1 as the kubernetes Service's
# endpoint, which validation refuses; nothing here needs that Service. TaintNodesByCondition
# is off: it taints new nodes not-ready until the node lifecycle controller sees them Ready,
# and that controller (with its leases and heartbeats) has nothing to do here.
start_process kube-apiserver "$KUBE_BIN_DIR/kube-apiserver" \
	--etcd-servers="http://127.0.0.1:$ETCD_PORT" \
	--bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$API_PORT" \
	--endpoint-reconciler-type=none \
	--tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
	--client-ca-file="$PKI/ca.crt" --service-cluster-ip-range=10.97.0.0/16 \
	--service-account-issuer=https://kubernetes.default.svc.cluster.local \
	--service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
	--authorization-mode=RBAC --disable-admission-plugins=TaintNodesByCondition --profiling=false
wait_for "kube-apiserver /readyz" 90 k get --raw /readyz

# The Job controller is what both phases go through; the default client rate (20/s)
# would make it, not the operator, the limit of both.
start_process kube-controller-manager "$KUBE_BIN_DIR/kube-controller-manager" \
	--kubeconfig="$KUBECONFIG_SCALE" --authentication-kubeconfig="$KUBECONFIG_SCALE" \
	--authorization-kubeconfig="$KUBECONFIG_SCALE" \
	--bind-address=127.0.0.1 --secure-port="$KCM_PORT" --leader-elect=false \
	--controllers=job-controller,ttl-after-finished-controller,garbage-collector-controller,serviceaccount-controller \
	--kube-api-qps=500 --kube-api-burst=1000
cat >"$CLUSTER_DIR/scheduler.yaml" <<EOF
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: $KUBECONFIG_SCALE
  qps: 500
  burst: 1000
leaderElection:
  leaderElect: false
EOF
start_process kube-scheduler "$KUBE_BIN_DIR/kube-scheduler" --config="$CLUSTER_DIR/scheduler.yaml" \
	--authentication-kubeconfig="$KUBECONFIG_SCALE" --authorization-kubeconfig="$KUBECONFIG_SCALE" \
	--bind-address=127.0.0.1 --secure-port="$SCHEDULER_PORT"

# ---- kwok and its nodes -------------------------------------------------------------------
"$CLUSTER_DIR/scale" -print-stages >"$CLUSTER_DIR/stages.yaml"
start_process kwok "$KWOK" --kubeconfig="$KUBECONFIG_SCALE" --config="$CLUSTER_DIR/stages.yaml" \
	--manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
	--node-ip=127.0.0.1 --server-address="127.0.0.1:$KWOK_PORT" --cidr=10.98.0.0/16
log "creating $SCALE_NODES fake nodes (10 CPUs, 110 pods each)"
for i in $(seq 0 $((SCALE_NODES - 1))); do
	cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations: {kwok.x-k8s.io/node: fake}
  labels: {type: kwok, kubernetes.io/hostname: kwok-node-$i}
spec:
  taints: [{key: kwok.x-k8s.io/node, value: fake, effect: NoSchedule}]
status:
  allocatable: {cpu: "10", memory: 64Gi, pods: "110", ephemeral-storage: 100Gi}
  capacity: {cpu: "10", memory: 64Gi, pods: "110", ephemeral-storage: 100Gi}
EOF
done >"$CLUSTER_DIR/nodes.yaml"
k apply -f "$CLUSTER_DIR/nodes.yaml" >/dev/null
nodes_ready() { [ "$(k get nodes --no-headers 2>/dev/null | awk '$2 == "Ready"' | wc -l)" -ge "$SCALE_NODES" ]; }
wait_for "$SCALE_NODES kwok nodes Ready" 120 nodes_ready

# ---- the operator -------------------------------------------------------------------------
k apply --server-side -f "$ROOT/config/crd/bases" >/dev/null
k wait --for condition=established --timeout=60s crd/coderuns.exec.coderun.dev crd/coderunpools.exec.coderun.dev >/dev/null
k create namespace "$NAMESPACE" >/dev/null
sa_exists() { k -n "$NAMESPACE" get serviceaccount default; }
wait_for "namespace $NAMESPACE's default ServiceAccount" 60 sa_exists
# The chart's operator configuration format (templates/operator-config.yaml); run pods go
# to the fake nodes. No CodeRunPool exists, so every run takes the cold path.
cat >"$CLUSTER_DIR/operator-config.yaml" <<EOF
runnerImage: localhost/coderun-python:scale
maxConcurrentRuns: $SCALE_SLOTS
jobTTL: $SCALE_TTL
nodeSelector: {type: kwok}
tolerations:
- {key: kwok.x-k8s.io/node, operator: Exists, effect: NoSchedule}
EOF
start_process operator "$CLUSTER_DIR/operator" --kubeconfig="$KUBECONFIG_SCALE" \
	--config="$CLUSTER_DIR/operator-config.yaml" --namespaces="$NAMESPACE" \
	--metrics-bind-address="127.0.0.1:$OPERATOR_METRICS_PORT" --health-probe-bind-address="127.0.0.1:$OPERATOR_PROBE_PORT" \
	--pprof-bind-address="127.0.0.1:$OPERATOR_PPROF_PORT"
wait_for "operator /readyz" 60 curl -sf "http://127.0.0.1:$OPERATOR_PROBE_PORT/readyz"

# ---- the test -----------------------------------------------------------------------------
log "control plane, kwok and operator up after $((SECONDS - start)) s; running $SCALE_N CodeRuns, then $SCALE_N plain Jobs"
phase_start=$SECONDS
# In the background, waited for: a signal to this script then runs the cleanup at once
# (bash runs traps only between commands), and the cleanup stops the driver too.
"$CLUSTER_DIR/scale" --kubeconfig="$KUBECONFIG_SCALE" -namespace="$NAMESPACE" -n="$SCALE_N" -wave="$SCALE_WAVE" \
	-operator-config="$CLUSTER_DIR/operator-config.yaml" -operator-pid="$(cat "$CLUSTER_DIR/pids/operator.pid")" \
	-metrics-url="http://127.0.0.1:$OPERATOR_METRICS_PORT/metrics" \
	-phase-timeout="${SCALE_PHASE_TIMEOUT:-20m}" -cleanup-timeout="${SCALE_CLEANUP_TIMEOUT:-5m}" &
driver_pid=$!
wait "$driver_pid"
driver_pid=
log "the measurements took $((SECONDS - phase_start)) s"
