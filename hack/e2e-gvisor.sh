#!/usr/bin/env bash
# The e2e suite with run pods under gVisor: moves the dev release's runs to RuntimeClass
# gvisor (runsc, which make dev builds and registers), runs every test of test/e2e but the
# three that install, upgrade or fail over releases of their own (they test the chart, not
# the sandbox), and moves the runs back to runc, also when a test fails or it is interrupted.
#   HELM=bin/helm-<version> hack/e2e-gvisor.sh   (make test-e2e-gvisor)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_PREFIX=e2e-gvisor
: "${HELM:?HELM must name the helm binary (make sets it)}"

kubectl_dev get runtimeclass gvisor >/dev/null 2>&1 ||
	die "RuntimeClass gvisor is missing: make dev builds runsc (hack/gvisor.sh) and registers it"

pool_replicas="$(kubectl_dev -n coderun-runs get crpool default -o jsonpath='{.spec.replicas}')"
back_to_runc() {
	log "moving the runs back to runc, with $pool_replicas pool members"
	kubectl_dev -n coderun-runs scale crpool default --replicas="$pool_replicas" >/dev/null
	DEV_HELM_SET= "$ROOT/hack/dev-deploy.sh"
}
trap back_to_runc EXIT

start=$SECONDS
# hostUsers true: runsc (this version) cannot start a pod in a user namespace of the pod's
# own ("cannot create gofer process: gofer: error setting namespace of type user ...: invalid
# argument"), although containerd reports user namespace support for every handler, runsc's
# too, so auto mode would turn it on. gVisor runs its sandbox unprivileged in a user
# namespace of its own anyway.
DEV_HELM_SET=runs.runtimeClassName=gvisor,runs.hostUsers=true "$ROOT/hack/dev-deploy.sh"
# A smaller pool: each gVisor pod also requests the RuntimeClass's overhead (50m), and ten
# members and two runs would no longer fit the 2-core node's CPU requests. Scaled as a user
# would (the chart's value would conflict with an earlier `kubectl scale`).
kubectl_dev -n coderun-runs scale crpool default --replicas=4 >/dev/null
log "run pods now use RuntimeClass gvisor; running the suite"
(
	cd "$ROOT"
	# The per-runtime tests (native, Piston, Judge0, and the sandbox checks in other images)
	# run for a few languages only: each one again under gVisor would add a quarter of an
	# hour, and the runtimes whose JIT reserves large address space (JavaScript, TypeScript,
	# Java, Kotlin, Erlang, Elixir, and rustc) exceed their memory limit at once there, and
	# go's compile now and then, as the README says. E2E_RUNTIMES=all (or a list) overrides.
	only="${E2E_RUNTIMES:-python,c,cpp,ruby,bash}"
	[ "$only" = all ] && only=""
	KUBECONFIG="$KUBECONFIG_FILE" FRONT_URL="http://127.0.0.1:$DEV_WEB_PORT" HELM="$HELM" E2E_RUNTIMES="$only" \
		go test -tags e2e ./test/e2e -count=1 -v -timeout 30m \
		-skip 'TestHelmUpgradeKeepsSubmissions|TestChartWithPostgres|TestOperatorFailover'
)
log "the suite passed under gVisor in $((SECONDS - start))s"
