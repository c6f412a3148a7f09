#!/usr/bin/env bash
# Deploys coderun into the local cluster the way a user deploys it (kubectl apply -k of the
# project's kustomize config, here the config/dev overlay), restarts the Deployments when
# `make dev` loaded new images under the same tags, waits until everything is ready, and
# keeps a port-forward to the front service on 127.0.0.1.
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

log "applying config/dev (CRD, operator, front service, runs namespace)"
kubectl_dev apply --server-side --force-conflicts -k "$ROOT/config/dev" >/dev/null
kubectl_dev wait --for=condition=Established crd/coderuns.exec.coderun.dev --timeout=60s >/dev/null

if [ -f "$CLUSTER_DIR/images/changed" ]; then
	log "new images were loaded; restarting the Deployments"
	kubectl_dev -n coderun-system rollout restart deployment >/dev/null
	rm -f "$CLUSTER_DIR/images/changed"
fi
for d in $(kubectl_dev -n coderun-system get deployment -o name); do
	log "waiting for $d"
	kubectl_dev -n coderun-system rollout status "$d" --timeout=180s >/dev/null ||
		{ kubectl_dev -n coderun-system describe "$d" >&2; die "$d did not become ready"; }
done

if kubectl_dev -n coderun-system get service coderun-front >/dev/null 2>&1; then
	# A loop, so the forward survives the front pod being replaced. Listens on 127.0.0.1 only.
	if ! pid_alive port-forward; then
		start_process port-forward bash -c "while :; do kubectl --kubeconfig '$KUBECONFIG_FILE' -n coderun-system port-forward --address 127.0.0.1 service/coderun-front $DEV_WEB_PORT:http; sleep 1; done"
	fi
	wait_for "front service on http://127.0.0.1:$DEV_WEB_PORT" 60 curl -sf "http://127.0.0.1:$DEV_WEB_PORT/readyz"
fi
log "deployed in $((SECONDS - start))s"
