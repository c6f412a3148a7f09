#!/usr/bin/env bash
# Deploys coderun into the local cluster the way a user deploys it: `helm upgrade --install`
# of charts/coderun, release coderun in coderun-system, with hack/dev-values.yaml (the
# images make images built, limits for a 2-core node). Restarts the Deployments when
# `make dev` loaded new images under the same tags, waits until everything is ready, and
# forwards 127.0.0.1:DEV_WEB_PORT on the host to the front service in the cluster's network
# namespace (hack/netns-forward). DEV_HELM_SET adds chart values for
# this deployment only (helm --set syntax; hack/e2e-gvisor.sh moves the runs to gVisor so).
# The Runtimes enabled are RUNTIMES (names of images/<name>/, as make dev passes them), else
# those of the last deployment (.dev/cluster/runtimes, written here), else python.
#   HELM=bin/helm-<version> [RUNTIMES="python c"] [DEV_HELM_SET=key=value,...] hack/dev-deploy.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_PREFIX=dev-deploy
start=$SECONDS

# The front service keeps its SQLite file on a PersistentVolume; this single-node cluster has
# no storage provisioner, so a hostPath volume under .dev/cluster stands in for one.
volume_dir="$CLUSTER_DIR/volumes/coderun-front-data"
mkdir -p "$volume_dir"
chown 65532:65532 "$volume_dir"
kubectl_dev apply -f - >/dev/null <<EOF2
apiVersion: v1
kind: PersistentVolume
metadata:
  name: coderun-dev-front-data
  labels: {app.kubernetes.io/part-of: coderun-dev}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: ""
  claimRef: {namespace: coderun-system, name: coderun-front-data}
  hostPath: {path: $volume_dir, type: Directory}
EOF2

helm="${HELM:?HELM must name the helm binary (make dev sets it)}"
# Before the chart, make dev applied config/dev with kubectl; Helm cannot adopt those objects.
if kubectl_dev -n coderun-system get deployment coderun-operator -o jsonpath='{.metadata.labels}' 2>/dev/null |
	quiet_grep -v '"app.kubernetes.io/managed-by":"Helm"'; then
	die "coderun was deployed here without Helm (an older make dev): run make dev-down, then make dev"
fi
# `make dev` rebuilds images under the same tag; the image id as a pod annotation makes Helm
# roll the pods of a Deployment whose image changed, and only those. With no storage
# provisioner here, the front's claim binds the PersistentVolume above (no storage class).
image_id() { cat "$CLUSTER_DIR/images/localhost_coderun-$1_$IMG_TAG.id"; }
# The Runtimes keep the tag their images were loaded under (runtimes.imageTag), so a release
# moved to other operator and front images (the e2e suite's helm upgrade) keeps its languages.
runtimes="$(echo "${RUNTIMES:-$(cat "$CLUSTER_DIR/runtimes" 2>/dev/null || echo python)}" | tr ', ' '\n\n' | grep . | paste -sd, -)"
cat >"$CLUSTER_DIR/local-values.yaml" <<EOF2
runtimes: {enabled: [$runtimes], imageTag: "$IMG_TAG"}
operator: {podAnnotations: {dev.coderun.dev/image-id: "$(image_id operator)"}}
front:
  podAnnotations: {dev.coderun.dev/image-id: "$(image_id front)"}
  persistence: {storageClassName: ""}
EOF2
for c in operator front; do
	current="$(kubectl_dev -n coderun-system get deployment "coderun-$c" -o jsonpath='{.spec.template.metadata.annotations.dev\.coderun\.dev/image-id}' 2>/dev/null || true)"
	if [ -n "$current" ] && [ "$current" != "$(image_id "$c")" ]; then
		log "a new $c image was loaded; Helm restarts the $c Deployment"
	fi
done
# Helm installs the CRDs of crds/ once and never upgrades them; the API types change under
# development, so apply them first (what the README tells users to do before an upgrade).
kubectl_dev apply --server-side --force-conflicts --field-manager=coderun-dev -f "$ROOT/charts/coderun/crds/" >/dev/null
log "helm upgrade --install coderun charts/coderun (values: hack/dev-values.yaml, image tag $IMG_TAG, runtimes $runtimes${DEV_HELM_SET:+, $DEV_HELM_SET})"
"$helm" --kubeconfig "$KUBECONFIG_FILE" upgrade --install coderun "$ROOT/charts/coderun" \
	--namespace coderun-system --create-namespace --values "$ROOT/hack/dev-values.yaml" \
	--values "$CLUSTER_DIR/local-values.yaml" --set image.tag="$IMG_TAG" \
	${DEV_HELM_SET:+--set "$DEV_HELM_SET"} >/dev/null

# What make dev (and this script, run again without RUNTIMES) keeps enabled from now on.
echo "$runtimes" >"$CLUSTER_DIR/runtimes"

for d in $(kubectl_dev -n coderun-system get deployment -o name); do
	log "waiting for $d"
	kubectl_dev -n coderun-system rollout status "$d" --timeout=180s >/dev/null ||
		{ kubectl_dev -n coderun-system describe "$d" >&2; die "$d did not become ready"; }
done

stop_process port-forward # the kubectl port-forward loop of earlier versions
if kubectl_dev -n coderun-system get service coderun-front >/dev/null 2>&1; then
	# To the Service's ClusterIP, the chart's default type (a NodePort would deploy the
	# chart unlike a user's default install): kube-proxy picks a ready front pod for each
	# connection, so the forward outlives pod replacements, and one connection's reset or
	# rejection ends that connection only (kubectl port-forward ends for everyone). A new
	# ClusterIP (the Service made anew) restarts the forward.
	front="$(kubectl_dev -n coderun-system get service coderun-front -o jsonpath='{.spec.clusterIP}:{.spec.ports[?(@.name=="http")].port}')"
	start_forward forward-web "127.0.0.1:$DEV_WEB_PORT" "$front"
	wait_for "front service on http://127.0.0.1:$DEV_WEB_PORT" 60 curl -sf "http://127.0.0.1:$DEV_WEB_PORT/readyz"
fi
log "deployed in $((SECONDS - start))s"
