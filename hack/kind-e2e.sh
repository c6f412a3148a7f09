#!/usr/bin/env bash
# Runs the end-to-end suite (test/e2e) against a kind cluster, on a machine with Docker (CI
# uses it through `make test-e2e-kind`): creates the cluster if it is not there, builds the
# three images with Docker under IMG_TAG and E2E_UPGRADE_TAG and the suite's PostgreSQL
# image (test/images/postgres, for TestChartWithPostgres) under IMG_TAG, loads them into
# kind, installs the chart as a user would (helm upgrade --install, images from the
# `localhost` registry), port-forwards the front service to 127.0.0.1:PORT and runs the
# suite. On failure it prints the pods, the Deployments and the operator's and front's logs,
# and exports kind's logs to test/artifacts/kind. The cluster is left running: `make
# kind-down` deletes it.
#   KIND=bin/kind-<v> HELM=bin/helm-<v> KIND_CLUSTER=coderun IMG_TAG=0.1.0 \
#     E2E_UPGRADE_TAG=0.1.0-upgrade CONTAINER_TOOL=docker hack/kind-e2e.sh
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
CONTAINER_TOOL="${CONTAINER_TOOL:-docker}"
PORT="${PORT:-8080}"
GO="${GO:-go}"
RELEASE_NAMESPACE=coderun-system
COMPONENTS=(python operator front)

[ -x "$KIND" ] || die "KIND=$KIND is not an executable (make test-e2e-kind installs kind into bin/)"
[ -x "$HELM" ] || die "HELM=$HELM is not an executable (make test-e2e-kind installs helm into bin/)"
[ "$IMG_TAG" != "$E2E_UPGRADE_TAG" ] || die "E2E_UPGRADE_TAG must differ from IMG_TAG ($IMG_TAG)"
for tool in "$CONTAINER_TOOL" kubectl curl make setsid "$GO"; do
	command -v "$tool" >/dev/null || die "$tool is needed and not in PATH"
done
"$CONTAINER_TOOL" info >/dev/null 2>&1 || die "$CONTAINER_TOOL cannot reach its engine ($CONTAINER_TOOL info failed)"
# The suite must reach this cluster's front service, not whatever else listens on PORT
# (curl's exit code 7: connection refused).
rc=0
curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$PORT/" || rc=$?
[ "$rc" = 7 ] || die "127.0.0.1:$PORT is already in use (make dev's port-forward?); set PORT to a free port"
cd "$ROOT"

tmpdir="$(mktemp -d)"
pf_pid=""
diagnose=0 # set from the install on: a failure after that prints what the cluster shows

diagnostics() {
	log "diagnostics (kubectl --context kind-$KIND_CLUSTER reaches the cluster, which is left running)"
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

# 1. The cluster. kind also writes its context into ~/.kube/config (or $KUBECONFIG); the
# suite and everything below use a kubeconfig of this cluster only.
if "$KIND" get clusters 2>/dev/null | quiet_grep -x "$KIND_CLUSTER"; then
	log "kind cluster $KIND_CLUSTER exists"
else
	log "creating kind cluster $KIND_CLUSTER"
	"$KIND" create cluster --name "$KIND_CLUSTER" --wait 120s
fi
"$KIND" get kubeconfig --name "$KIND_CLUSTER" >"$tmpdir/kubeconfig"
export KUBECONFIG="$tmpdir/kubeconfig"
kubectl get nodes >/dev/null || die "cannot reach the API server of kind cluster $KIND_CLUSTER"

# 2. The images: IMG_TAG for the install, E2E_UPGRADE_TAG for the suite's helm upgrade (the
# same build; the second one comes from the build cache).
images=()
for tag in "$IMG_TAG" "$E2E_UPGRADE_TAG"; do
	log "building the images with $CONTAINER_TOOL, tag $tag"
	t=$SECONDS
	make -C "$ROOT" images CONTAINER_TOOL="$CONTAINER_TOOL" CONTAINER_BUILD=build IMG_TAG="$tag"
	log "images tagged $tag built in $((SECONDS - t))s"
	for c in "${COMPONENTS[@]}"; do
		images+=("localhost/coderun-$c:$tag")
	done
done
POSTGRES_IMG="localhost/coderun-e2e-postgres:$IMG_TAG"
log "building $POSTGRES_IMG with $CONTAINER_TOOL (test/images/postgres)"
t=$SECONDS
"$CONTAINER_TOOL" build -t "$POSTGRES_IMG" "$ROOT/test/images/postgres"
log "$POSTGRES_IMG built in $((SECONDS - t))s"
images+=("$POSTGRES_IMG")
log "loading ${#images[@]} images into kind cluster $KIND_CLUSTER"
t=$SECONDS
"$KIND" load docker-image --name "$KIND_CLUSTER" "${images[@]}"
log "images loaded in $((SECONDS - t))s"

# 3. The chart, as a user installs it, with the values of local clusters (hack/dev-values.yaml:
# the localhost images, limits for a runner of 2 to 4 cores). kind's default StorageClass
# provisions the front's volume. A rerun may have loaded new images under the same tags: their ids as pod
# annotations make Helm roll the operator and the front when (and only when) they changed.
operator_id="$("$CONTAINER_TOOL" image inspect --format '{{.Id}}' "localhost/coderun-operator:$IMG_TAG")"
front_id="$("$CONTAINER_TOOL" image inspect --format '{{.Id}}' "localhost/coderun-front:$IMG_TAG")"
cat >"$tmpdir/image-ids.yaml" <<EOF
operator: {podAnnotations: {e2e.coderun.dev/image-id: "$operator_id"}}
front: {podAnnotations: {e2e.coderun.dev/image-id: "$front_id"}}
EOF
diagnose=1
log "helm upgrade --install coderun charts/coderun (namespace $RELEASE_NAMESPACE, images localhost/coderun-*:$IMG_TAG)"
t=$SECONDS
"$HELM" upgrade --install coderun "$ROOT/charts/coderun" --namespace "$RELEASE_NAMESPACE" --create-namespace \
	--values "$ROOT/hack/dev-values.yaml" --set image.tag="$IMG_TAG" --values "$tmpdir/image-ids.yaml" \
	--wait --timeout 5m
log "chart installed and ready in $((SECONDS - t))s"

# 4. The front service on 127.0.0.1:PORT. A loop, because the forward ends whenever the
# front's pod is replaced (the suite's helm upgrade and rollback do that).
log "port-forwarding service/coderun-front to 127.0.0.1:$PORT"
setsid bash -c "while :; do kubectl -n '$RELEASE_NAMESPACE' port-forward --address 127.0.0.1 service/coderun-front '$PORT:http'; sleep 1; done" \
	>"$tmpdir/port-forward.log" 2>&1 </dev/null &
pf_pid=$!
wait_for "front service on http://127.0.0.1:$PORT" 60 curl -sf "http://127.0.0.1:$PORT/readyz"

# 5. The suite.
log "running test/e2e against kind cluster $KIND_CLUSTER"
t=$SECONDS
FRONT_URL="http://127.0.0.1:$PORT" HELM="$HELM" E2E_UPGRADE_TAG="$E2E_UPGRADE_TAG" E2E_POSTGRES_IMAGE="$POSTGRES_IMG" \
	"$GO" test -tags e2e ./test/e2e -count=1 -v -timeout 40m
log "test/e2e passed in $((SECONDS - t))s; all done in $((SECONDS - start))s (make kind-down deletes the cluster)"
