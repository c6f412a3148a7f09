#!/usr/bin/env bash
# The fault suite (make test-faults, after make dev): under a sustained mixed load, kill or
# restart one component at a time and print what was lost (hack/faults does the load, the
# faults and the checks). Two parts:
#   1. the dev release on SQLite (one front replica), with two operator replicas: no fault
#      (the baseline), the operator's leader, then the other replica, the front, and the
#      node's kube-apiserver, etcd, containerd and kubelet;
#   2. the release on PostgreSQL (test/images/postgres, as the e2e suite runs it) with two
#      front replicas: no fault, a front replica, PostgreSQL.
# For the suite the release gets runs.jobTTL and front.runRetention of 30s, so that "no
# Job or pod outlives its TTL" is checked within the suite's time. At the end (also when
# interrupted) the release is deployed as make dev deploys it and PostgreSQL is removed.
# The load reaches the front through its Service's ClusterIP: the driver runs in the
# cluster's network namespace (kube-proxy's rules there; its kubeconfig and its restarts
# use the node address), so a killed front replica is a retried request.
# Ends with the line `lost runs: N, lost submissions: M`; exits 1 if anything was lost or
# a check failed. Others sharing the cluster: run it under flock /tmp/coderun-cluster.lock.
#   HELM=bin/helm-<version> hack/test-faults.sh   (FAULTS_SQLITE, FAULTS_POSTGRES: fault lists)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_PREFIX=test-faults
: "${HELM:?HELM must name the helm binary (make test-faults sets it)}"
FAULTS_SQLITE="${FAULTS_SQLITE:-none,operator,operator,front,kube-apiserver,etcd,containerd,kubelet}"
FAULTS_POSTGRES="${FAULTS_POSTGRES:-none,front,postgres}"
SUITE_SET="operator.replicaCount=2,runs.jobTTL=30s,front.runRetention=30s"
PG_NAMESPACE=coderun-faults-pg
PG_SECRET=faults-postgres-url
export KUBECONFIG="$KUBECONFIG_FILE"
start=$SECONDS
cd "$ROOT"

work="$CLUSTER_DIR/faults"
mkdir -p "$work"
results="$work/results.jsonl"
rm -f "$results"
log "building the driver (hack/faults)"
go build -o "$work/faults" ./hack/faults

deploy() { # deploy [HELM --set values]: the release as make dev deploys it, plus these values
	DEV_HELM_SET="$1" "$ROOT/hack/dev-deploy.sh"
}

restore() {
	local rc=0
	log "restoring the release as make dev deploys it (SQLite, one replica each)"
	# Helm's server-side apply of the chart's Recreate strategy (SQLite) over RollingUpdate
	# (PostgreSQL) keeps the defaulted rollingUpdate field, which the API server refuses
	# with type Recreate (and patching it makes kubectl own the field, a conflict for the
	# next helm upgrade). The front stops for the switch anyway: delete its Deployment, and
	# Helm makes it anew.
	if [ "$(kubectl_dev -n coderun-system get deployment coderun-front -o jsonpath='{.spec.strategy.type}')" = RollingUpdate ]; then
		kubectl_dev -n coderun-system delete deployment coderun-front --wait=true >/dev/null || rc=1
	fi
	deploy "" || rc=1
	kubectl_dev -n coderun-system delete secret "$PG_SECRET" --ignore-not-found >/dev/null || rc=1
	kubectl_dev delete namespace "$PG_NAMESPACE" --ignore-not-found --wait=false >/dev/null || rc=1
	return "$rc"
}
# On an error or an interrupt: restore, and print the rows done so far.
on_exit() {
	local rc=$?
	restore || rc=1
	[ -s "$results" ] && "$work/faults" -report "$results"
	exit "$rc"
}
trap on_exit EXIT

front_url() {
	echo "http://$(kubectl_dev -n coderun-system get service coderun-front -o jsonpath='{.spec.clusterIP}'):$(kubectl_dev -n coderun-system get service coderun-front -o jsonpath='{.spec.ports[0].port}')"
}

# driver SETTING FAULTS: one part of the suite; its rows go to $results.
driver() {
	local url
	url="$(front_url)"
	wait_for "front service at $url" 60 in_netns curl -sf "$url/readyz"
	log "part: $1: faults $2"
	KUBECONFIG="$CLUSTER_DIR/pki/admin.kubeconfig" in_netns "$work/faults" -front "$url" -setting "$1" -faults "$2" -results "$results" -job-ttl 30s
}

log "part 1: the release on SQLite with two operator replicas"
deploy "$SUITE_SET"
driver "SQLite, 1 front replica" "$FAULTS_SQLITE"

log "part 2: the release on PostgreSQL with two front replicas"
"$ROOT/hack/e2e-images.sh"
password="$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
sed -e "s|IMAGE|localhost/coderun-e2e-postgres:$IMG_TAG|" -e "s|PASSWORD|$password|" "$ROOT/hack/faults/postgres.yaml" |
	kubectl_dev apply -f - >/dev/null
kubectl_dev -n "$PG_NAMESPACE" rollout status deployment/postgres --timeout=180s >/dev/null ||
	die "PostgreSQL did not become ready"
pg_ip="$(kubectl_dev -n "$PG_NAMESPACE" get service postgres -o jsonpath='{.spec.clusterIP}')"
kubectl_dev -n coderun-system create secret generic "$PG_SECRET" \
	--from-literal=url="postgres://coderun:$password@$pg_ip:5432/coderun?sslmode=disable" \
	--dry-run=client -o yaml | kubectl_dev apply -f - >/dev/null
deploy "$SUITE_SET,front.replicaCount=2,front.database.existingSecret=$PG_SECRET"
driver "PostgreSQL, 2 front replicas" "$FAULTS_POSTGRES"

trap - EXIT
restore || log "restoring the release failed (see above)"
log "fault suite took $((SECONDS - start))s"
# The table last, so that the output ends with the lost line.
exec "$work/faults" -report "$results"
