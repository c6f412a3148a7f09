#!/usr/bin/env bash
# Prints how to use the local cluster that `make dev` left running.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
web="http://127.0.0.1:$DEV_WEB_PORT"
cat <<EOF

coderun is running on the local cluster in the network namespace $NETNS (node $NODE_NAME,
API server https://$NODE_IP:$API_PORT there, forwarded to https://127.0.0.1:$DEV_API_PORT),
installed with Helm: release coderun in namespace coderun-system (values: hack/dev-values.yaml).

  export KUBECONFIG=$KUBECONFIG_FILE
  kubectl apply -f config/samples/exec_v1alpha1_coderun.yaml
  kubectl get coderuns -n coderun-runs -w
  kubectl get coderun hello-world -n coderun-runs -o jsonpath='{.status.result.output}'
  ${HELM:-helm} status coderun -n coderun-system
EOF
if pid_alive forward-web; then
	cat <<EOF

  Web page and HTTP API: $web/ (forwarded into $NETNS)
  curl -s $web/execute -d '{"code": "print(\"Hello, World!\")"}'
EOF
fi
cat <<EOF

  make test-e2e   end-to-end tests against this cluster
  make bench      a CodeRun against a plain Job, side by side
  make dev        again after a change: rebuilds and reloads what changed
  make dev-down   stop it and restore this machine (logs in ${CLUSTER_DIR#"$ROOT"/}/logs)
  ip netns exec $NETNS iptables-save   (or ss -ltnp, curl...): look inside the cluster's network
EOF
