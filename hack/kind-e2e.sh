#!/usr/bin/env bash
# Runs the end-to-end suite (test/e2e) against a kind cluster (`make test-e2e-kind`, here and
# in the GitHub workflow): creates the cluster if it is not there, from the node image that
# hack/kind-node-image.sh builds when it is missing (kindest/node is on a registry), with the
# bridge CNI and kube-network-policies as the NetworkPolicy enforcer (kindnetd is not
# available); builds the three images with Docker under IMG_TAG and E2E_UPGRADE_TAG and the
# suite's PostgreSQL image (test/images/postgres, for TestChartWithPostgres) under IMG_TAG,
# loads them with `kind load docker-image`, installs the chart as a user would (helm upgrade
# --install, images from the `localhost` registry), forwards the front service to
# 127.0.0.1:PORT and runs the suite. On failure it prints the pods, the Deployments and the
# operator's and front's logs, and exports kind's logs to test/artifacts/kind. The cluster is
# left running: `make kind-down` deletes it.
#
# Docker: the machine's daemon when there is one (DOCKER_HOST, or `docker info` works: a CI
# runner). Otherwise, as root with Debian's docker.io installed, hack/docker.sh starts two
# daemons of the project's own (a kind daemon in the network namespace coderun-kind, a build
# daemon with no bridge or rules) and the host keeps nothing but two listeners on 127.0.0.1:
# the API server (KIND_API_PORT) and the front (PORT), both hack/netns-forward into the kind
# node's network namespace. `make kind-down` deletes the cluster and stops the daemons.
#   KIND=bin/kind-<v> HELM=bin/helm-<v> KIND_CLUSTER=coderun IMG_TAG=0.1.0 \
#     E2E_UPGRADE_TAG=0.1.0-upgrade hack/kind-e2e.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" # ROOT, IMG_TAG's default, log, die, wait_for, quiet_grep
LOG_PREFIX=kind-e2e

# abs PATH: PATH made absolute (the suite runs helm from test/e2e, not from here); a bare
# name is looked up in PATH.
abs() {
	case "$1" in
	/*) printf '%s\n' "$1" ;;
	*/*) printf '%s/%s\n' "$PWD" "$1" ;;
	*) command -v "$1" || printf '%s\n' "$1" ;;
	esac
}
KIND="$(abs "${KIND:-kind}")"
HELM="$(abs "${HELM:-helm}")"
KIND_CLUSTER="${KIND_CLUSTER:-coderun}"
E2E_UPGRADE_TAG="${E2E_UPGRADE_TAG:-$IMG_TAG-upgrade}"
# Ports of their own, not make dev's (8080, 6443): both clusters may run at once.
PORT="${PORT:-8090}"
KIND_API_PORT="${KIND_API_PORT:-6445}"
GO="${GO:-go}"
RELEASE_NAMESPACE=coderun-system
COMPONENTS=(python operator front)
KNP_IMG=localhost/kube-network-policies:v0.8.0-coderun

FWD_DIR="$DEV_DIR/kind"

# `hack/kind-e2e.sh down` (make kind-down): deletes the cluster, stops our forwards and, when
# they run, the project's own Docker daemons (hack/docker.sh down).
if [ "${1:-}" = down ]; then
	[ -x "$KIND" ] || die "KIND=$KIND is not an executable (make kind-down installs kind into bin/)"
	docker_env=()
	if "$ROOT/hack/docker.sh" status | quiet_grep 'dockerd-kind: running'; then
		eval "$("$ROOT/hack/docker.sh" env)"
		docker_env=(DOCKER_HOST="$KIND_DOCKER_HOST" PATH="$DOCKER_CLIENT_DIR:$PATH")
	fi
	if env "${docker_env[@]}" "$KIND" get clusters 2>/dev/null | quiet_grep -x "$KIND_CLUSTER"; then
		log "deleting kind cluster $KIND_CLUSTER"
		env "${docker_env[@]}" "$KIND" delete cluster --name "$KIND_CLUSTER"
	fi
	for name in kind-front kind-api; do (CLUSTER_DIR="$FWD_DIR" && stop_process "$name"); done
	rm -rf "$FWD_DIR"
	if [ ${#docker_env[@]} -gt 0 ]; then "$ROOT/hack/docker.sh" down; fi
	exit 0
fi

[ -x "$KIND" ] || die "KIND=$KIND is not an executable (make test-e2e-kind installs kind into bin/)"
[ -x "$HELM" ] || die "HELM=$HELM is not an executable (make test-e2e-kind installs helm into bin/)"
[ "$IMG_TAG" != "$E2E_UPGRADE_TAG" ] || die "E2E_UPGRADE_TAG must differ from IMG_TAG ($IMG_TAG)"
for tool in kubectl curl make setsid "$GO"; do
	command -v "$tool" >/dev/null || die "$tool is needed and not in PATH"
done
cd "$ROOT"

# 0. Docker. hermetic=1: the project's own daemons (hack/docker.sh). BUILD_DOCKER_HOST is the
# daemon that builds (it has the network), DOCKER_HOST the one kind runs in.
hermetic=0
if [ -z "${DOCKER_HOST:-}" ] && ! docker info >/dev/null 2>&1; then
	[ "$(id -u)" = 0 ] || die "no Docker daemon (docker info failed), and starting one of the project's own (hack/docker.sh) needs root"
	log "no Docker daemon on this machine: starting the project's own (hack/docker.sh up)"
	"$ROOT/hack/docker.sh" up
	eval "$("$ROOT/hack/docker.sh" env)" # KIND_DOCKER_HOST, BUILD_DOCKER_HOST, DOCKER_CLIENT_DIR
	export DOCKER_HOST="$KIND_DOCKER_HOST" BUILD_DOCKER_HOST
	# Debian's client first in PATH, for kind too: it matches the daemon and has BuildKit.
	export PATH="$DOCKER_CLIENT_DIR:$PATH"
	hermetic=1
else
	export BUILD_DOCKER_HOST="${DOCKER_HOST:-}"
fi
docker info >/dev/null 2>&1 || die "docker cannot reach its engine (docker info failed)"
bdocker() { env ${BUILD_DOCKER_HOST:+DOCKER_HOST="$BUILD_DOCKER_HOST"} DOCKER_BUILDKIT=1 docker "$@"; }
# forward=1: hack/netns-forward into the kind node's network namespace (root: it enters it);
# else a kubectl port-forward loop (a CI runner's unprivileged user).
forward=0
[ "$(id -u)" = 0 ] && forward=1
# The forwards of the host's ports are processes of their own, recorded in FWD_DIR
# (.dev/kind): they outlive this script, as the cluster does (make kind-down stops them).
# The suite must reach this cluster, not whatever else listens on PORT or KIND_API_PORT
# (curl's exit code 7: connection refused); our own forwards from an earlier run may.
for p in "$PORT" "$KIND_API_PORT"; do
	rc=0
	curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$p/" || rc=$?
	if [ "$rc" != 7 ] && ! grep -qs "^127.0.0.1:$p " "$FWD_DIR"/pids/*.target; then
		die "127.0.0.1:$p is already in use; set PORT (front) or KIND_API_PORT (API server) to a free port"
	fi
done

tmpdir="$(mktemp -d)"
pf_pid=""
diagnose=0 # set from the install on: a failure after that prints what the cluster shows

diagnostics() {
	log "diagnostics (KUBECONFIG=$KUBECONFIG reaches the cluster, which is left running)"
	echo "--- kubectl get pods -A -o wide"
	kubectl get pods -A -o wide
	echo "--- kubectl -n $RELEASE_NAMESPACE describe deployments"
	kubectl -n "$RELEASE_NAMESPACE" describe deployments
	for c in operator front; do
		echo "--- kubectl -n $RELEASE_NAMESPACE logs deployment/coderun-$c --tail=200"
		kubectl -n "$RELEASE_NAMESPACE" logs "deployment/coderun-$c" --all-containers --tail=200
	done
	echo "--- kubectl -n $RELEASE_NAMESPACE get events"
	kubectl -n "$RELEASE_NAMESPACE" get events --sort-by=.lastTimestamp | tail -n 40
	if [ -s "$tmpdir/port-forward.log" ]; then
		echo "--- port-forward (last 20 lines)"
		tail -n 20 "$tmpdir/port-forward.log"
	fi
	log "exporting kind's logs to test/artifacts/kind"
	"$KIND" export logs --name "$KIND_CLUSTER" "$ROOT/test/artifacts/kind" >/dev/null
}

cleanup() {
	local rc=$?
	set +e
	if [ "$rc" -ne 0 ] && [ "$diagnose" = 1 ]; then
		diagnostics >&2
	fi
	# The port-forward loop runs in its own session (setsid): stop that process group only.
	if [ -n "$pf_pid" ]; then
		kill -TERM -- "-$pf_pid" 2>/dev/null || kill -TERM "$pf_pid" 2>/dev/null
	fi
	rm -rf "$tmpdir"
	if [ "$rc" -ne 0 ]; then
		log "failed (exit $rc); the kind cluster $KIND_CLUSTER is left running (make kind-down deletes it)"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
start=$SECONDS

# node_forward NAME LISTEN TARGET: hack/netns-forward from LISTEN on the host to TARGET in the
# kind node's network namespace (/proc/PID/ns/net of the node container). Restarted when the
# node (its PID) or TARGET changed. start_process keeps its pid file and log in FWD_DIR.
node_forward() {
	local name="$1" listen="$2" target="$3" pid netns
	pid="$(docker inspect -f '{{.State.Pid}}' "$KIND_CLUSTER-control-plane")"
	netns="/proc/$pid/ns/net"
	(
		CLUSTER_DIR="$FWD_DIR"
		if pid_alive "$name" && [ "$(cat "$FWD_DIR/pids/$name.target")" != "$listen $netns $target" ]; then
			stop_process "$name"
		fi
		pid_alive "$name" && exit 0
		if [ ! -x "$NETNS_FORWARD" ] || [ -n "$(find "$ROOT/hack/netns-forward" -name '*.go' ! -name '*_test.go' -newer "$NETNS_FORWARD")" ]; then
			log "building hack/netns-forward"
			CGO_ENABLED=0 "$GO" build -o "$NETNS_FORWARD" ./hack/netns-forward
		fi
		start_process "$name" "$NETNS_FORWARD" -listen "$listen" -netns "$netns" -target "$target"
		echo "$listen $netns $target" >"$FWD_DIR/pids/$name.target"
	)
}

# 1. The node image, then the cluster. kind also writes its context into ~/.kube/config (or
# $KUBECONFIG); the suite and everything below use a kubeconfig of this cluster only.
if "$KIND" get clusters 2>/dev/null | quiet_grep -x "$KIND_CLUSTER"; then
	log "kind cluster $KIND_CLUSTER exists"
else
	node_image="$(KIND_DOCKER_HOST="${DOCKER_HOST:-}" "$ROOT/hack/kind-node-image.sh")"
	log "creating kind cluster $KIND_CLUSTER from $node_image"
	t=$SECONDS
	"$KIND" create cluster --name "$KIND_CLUSTER" --image "$node_image" --config "$ROOT/hack/kind/cluster.yaml" \
		--kubeconfig "$tmpdir/kind-kubeconfig" --wait 180s
	log "kind cluster created in $((SECONDS - t))s"
fi
"$KIND" get kubeconfig --name "$KIND_CLUSTER" >"$tmpdir/kubeconfig"
if [ "$forward" = 1 ]; then
	# The API server, reached from the host through the node's namespace: its certificate
	# names 127.0.0.1 (kind's apiServerAddress), so only the port changes.
	node_forward kind-api "127.0.0.1:$KIND_API_PORT" 127.0.0.1:6443
	sed -i -E "s#server: https://127\.0\.0\.1:[0-9]+#server: https://127.0.0.1:$KIND_API_PORT#" "$tmpdir/kubeconfig"
fi
export KUBECONFIG="$tmpdir/kubeconfig"
wait_for "API server of kind cluster $KIND_CLUSTER" 60 kubectl get --raw /readyz
# CoreDNS asks 100m of CPU per replica; make dev's node runs none, and the runs need the room
# on 2 cores (as the control plane's patches in the node image: hack/kind/node/Dockerfile).
kubectl -n kube-system set resources deployment coredns --requests=cpu=10m >/dev/null

# 2. The NetworkPolicy enforcer's image: kube-network-policies, patched for kernels without
# nft's queue (hack/kube-network-policies.sh build), as a DaemonSet (step 4).
knp_bin="$("$ROOT/hack/kube-network-policies.sh" build | tail -n 1)"
[ -x "$knp_bin" ] || die "hack/kube-network-policies.sh build did not print the binary's path (got: $knp_bin)"
mkdir -p "$tmpdir/knp/bin"
cp "$knp_bin" "$tmpdir/knp/bin/kube-network-policies"
bdocker build -q -f "$ROOT/hack/kind/images/Dockerfile.kube-network-policies" -t "$KNP_IMG" "$tmpdir/knp" >/dev/null

# 3. The images: IMG_TAG for the install, E2E_UPGRADE_TAG for the suite's helm upgrade (the
# same build; the second one comes from the build cache). With the project's daemons they are
# built by the build daemon (--network host: RUN steps fetch Debian packages) and copied to
# the kind daemon, from which `kind load docker-image` takes them.
images=()
for tag in "$IMG_TAG" "$E2E_UPGRADE_TAG"; do
	log "building the images with docker, tag $tag"
	t=$SECONDS
	env ${BUILD_DOCKER_HOST:+DOCKER_HOST="$BUILD_DOCKER_HOST"} DOCKER_BUILDKIT=1 \
		make -C "$ROOT" images CONTAINER_TOOL=docker CONTAINER_BUILD="build --network host" IMG_TAG="$tag"
	log "images tagged $tag built in $((SECONDS - t))s"
	for c in "${COMPONENTS[@]}"; do
		images+=("localhost/coderun-$c:$tag")
	done
done
POSTGRES_IMG="localhost/coderun-e2e-postgres:$IMG_TAG"
log "building $POSTGRES_IMG with docker (test/images/postgres)"
t=$SECONDS
bdocker build --network host -t "$POSTGRES_IMG" "$ROOT/test/images/postgres"
log "$POSTGRES_IMG built in $((SECONDS - t))s"
images+=("$POSTGRES_IMG" "$KNP_IMG")
if [ "$hermetic" = 1 ]; then
	log "copying ${#images[@]} images from the build daemon to the kind daemon (docker save | docker load)"
	t=$SECONDS
	bdocker save "${images[@]}" | docker load >/dev/null
	log "copied in $((SECONDS - t))s"
fi
log "loading ${#images[@]} images into kind cluster $KIND_CLUSTER"
t=$SECONDS
"$KIND" load docker-image --name "$KIND_CLUSTER" "${images[@]}"
log "images loaded in $((SECONDS - t))s"

# 4. The enforcer, before any run exists.
log "starting kube-network-policies (hack/kind/kube-network-policies.yaml)"
kubectl apply -f "$ROOT/hack/kind/kube-network-policies.yaml" >/dev/null
# A rerun may have loaded a new image under the same tag.
kubectl -n kube-system rollout restart daemonset/kube-network-policies >/dev/null
kubectl -n kube-system rollout status daemonset/kube-network-policies --timeout 120s

# 5. The chart, as a user installs it, with the values of local clusters (hack/dev-values.yaml:
# the localhost images, limits for a runner of 2 to 4 cores). No storage provisioner runs here
# (kind's is on a registry): the front's claim binds a hostPath PersistentVolume in the node,
# as on make dev's cluster (hack/dev-deploy.sh). A rerun may have loaded new images under the
# same tags: their ids as pod annotations make Helm roll the operator and the front when (and
# only when) they changed.
docker exec "$KIND_CLUSTER-control-plane" sh -c 'mkdir -p /var/local/coderun-front-data && chown 65532:65532 /var/local/coderun-front-data'
kubectl apply -f - >/dev/null <<PV
apiVersion: v1
kind: PersistentVolume
metadata:
  name: coderun-kind-front-data
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: ""
  claimRef: {namespace: $RELEASE_NAMESPACE, name: coderun-front-data}
  hostPath: {path: /var/local/coderun-front-data, type: Directory}
PV
operator_id="$(docker image inspect --format '{{.Id}}' "localhost/coderun-operator:$IMG_TAG")"
front_id="$(docker image inspect --format '{{.Id}}' "localhost/coderun-front:$IMG_TAG")"
cat >"$tmpdir/image-ids.yaml" <<VALUES
operator: {podAnnotations: {e2e.coderun.dev/image-id: "$operator_id"}}
front:
  podAnnotations: {e2e.coderun.dev/image-id: "$front_id"}
  persistence: {storageClassName: ""}
runtimes: {imageTag: "$IMG_TAG"}
VALUES
diagnose=1
log "helm upgrade --install coderun charts/coderun (namespace $RELEASE_NAMESPACE, images localhost/coderun-*:$IMG_TAG)"
t=$SECONDS
"$HELM" upgrade --install coderun "$ROOT/charts/coderun" --namespace "$RELEASE_NAMESPACE" --create-namespace \
	--values "$ROOT/hack/dev-values.yaml" --set image.tag="$IMG_TAG" --values "$tmpdir/image-ids.yaml" \
	--wait --timeout 5m
log "chart installed and ready in $((SECONDS - t))s"

# 6. The front service on 127.0.0.1:PORT.
if [ "$forward" = 1 ]; then
	# Into the node's namespace, to the Service's ClusterIP: a forward of its own per
	# connection, which a rejected or reset connection does not end (unlike kubectl
	# port-forward), and which outlives the suite's helm upgrade and rollback.
	front_ip="$(kubectl -n "$RELEASE_NAMESPACE" get service coderun-front -o jsonpath='{.spec.clusterIP}')"
	front_port="$(kubectl -n "$RELEASE_NAMESPACE" get service coderun-front -o jsonpath='{.spec.ports[?(@.name=="http")].port}')"
	log "forwarding 127.0.0.1:$PORT to service/coderun-front ($front_ip:$front_port in the kind node)"
	node_forward kind-front "127.0.0.1:$PORT" "$front_ip:$front_port"
else
	# A loop, because the forward ends whenever the front's pod is replaced (the suite's helm
	# upgrade and rollback do that).
	log "port-forwarding service/coderun-front to 127.0.0.1:$PORT"
	setsid bash -c "while :; do kubectl -n '$RELEASE_NAMESPACE' port-forward --address 127.0.0.1 service/coderun-front '$PORT:http'; sleep 1; done" \
		>"$tmpdir/port-forward.log" 2>&1 </dev/null &
	pf_pid=$!
fi
wait_for "front service on http://127.0.0.1:$PORT" 60 curl -sf "http://127.0.0.1:$PORT/readyz"

# 7. The suite. E2E_RUN (a go test -run pattern) narrows it.
log "running test/e2e against kind cluster $KIND_CLUSTER"
t=$SECONDS
FRONT_URL="http://127.0.0.1:$PORT" HELM="$HELM" E2E_UPGRADE_TAG="$E2E_UPGRADE_TAG" E2E_POSTGRES_IMAGE="$POSTGRES_IMG" \
	"$GO" test -tags e2e ./test/e2e -count=1 -v -timeout 60m ${E2E_RUN:+-run "$E2E_RUN"}
log "test/e2e passed in $((SECONDS - t))s; all done in $((SECONDS - start))s (make kind-down deletes the cluster)"
