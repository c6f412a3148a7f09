#!/usr/bin/env bash
# Builds Kubernetes control-plane binaries (and etcd) from the Go module proxy into a cached,
# versioned folder, because no release download (setup-envtest, GitHub, dl.k8s.io) is
# reachable on our machines. envtest needs kube-apiserver and etcd; the local cluster needs
# the rest. Usage:
#   hack/kube-binaries.sh [component...]   (default: kube-apiserver etcd)
# Prints the folder holding the binaries on its last line of stdout.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" # versions, KUBE_BIN_DIR, log
LOG_PREFIX=kube-binaries

BIN_DIR="$KUBE_BIN_DIR"
WORK_DIR="$ROOT/bin/k8s/.build-$KUBE_VERSION"
components=("$@")
[ ${#components[@]} -gt 0 ] || components=(kube-apiserver etcd)

# staging_version maps v1.37.2 to the staging modules' v0.37.2.
staging_version="v0.${KUBE_VERSION#v1.}"

prepare_kube_module() {
  local dir="$WORK_DIR/kubernetes"
  [ -f "$dir/.ready" ] && return 0
  log "preparing a helper module for k8s.io/kubernetes $KUBE_VERSION (first run only)"
  rm -rf "$dir" && mkdir -p "$dir"
  (
    cd "$dir"
    go mod init coderun.local/kube-binaries >/dev/null 2>&1
    go mod edit -require="k8s.io/kubernetes@$KUBE_VERSION"
    # k8s.io/kubernetes replaces each staging module with a local path; a module outside
    # its tree must point them at their published versions instead.
    gomod="$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
    for m in $(sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$gomod"); do
      go mod edit -replace="$m=$m@$staging_version"
    done
    {
      echo '//go:build tools'
      echo 'package tools'
      echo 'import ('
      for c in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy; do
        echo "  _ \"k8s.io/kubernetes/cmd/$c\""
      done
      echo ')'
    } > tools.go
    go mod tidy
  )
  touch "$dir/.ready"
}

prepare_etcd_module() {
  local dir="$WORK_DIR/etcd"
  [ -f "$dir/.ready" ] && return 0
  log "preparing a helper module for etcd $ETCD_VERSION (first run only)"
  rm -rf "$dir" && mkdir -p "$dir"
  (
    cd "$dir"
    go mod init coderun.local/etcd-binary >/dev/null 2>&1
    for m in server api client/pkg client pkg; do
      go mod edit -require="go.etcd.io/etcd/$m/v3@$ETCD_VERSION"
    done
    printf '//go:build tools\npackage tools\nimport _ "go.etcd.io/etcd/server/v3"\n' > tools.go
    go mod tidy
  )
  touch "$dir/.ready"
}

build() {
  local c="$1" out="$BIN_DIR/$1"
  if [ -x "$out" ]; then
    log "$c: cached at $out"
    return 0
  fi
  local start=$SECONDS
  case "$c" in
    etcd)
      prepare_etcd_module
      log "building etcd $ETCD_VERSION (about 20 s cold)"
      (cd "$WORK_DIR/etcd" && CGO_ENABLED=0 go build -trimpath -o "$out.tmp" go.etcd.io/etcd/server/v3)
      ;;
    kube-apiserver|kube-controller-manager|kube-scheduler|kubelet|kube-proxy)
      prepare_kube_module
      local ldflags=""
      for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        ldflags+=" -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=1"
        ldflags+=" -X $p.gitMinor=$(echo "$KUBE_VERSION" | cut -d. -f2) -X $p.gitTreeState=clean"
      done
      local cold="under a minute"
      [ "$c" = kube-apiserver ] && cold="about 4 min"
      [ "$c" = kube-controller-manager ] && cold="about 1.5 min"
      log "building $c $KUBE_VERSION ($cold with empty Go caches)"
      (cd "$WORK_DIR/kubernetes" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $ldflags" -o "$out.tmp" "k8s.io/kubernetes/cmd/$c")
      ;;
    *)
      log "unknown component $c"; exit 2 ;;
  esac
  mv "$out.tmp" "$out"
  log "$c: built in $((SECONDS - start)) s"
}

mkdir -p "$BIN_DIR" "$WORK_DIR"
for c in "${components[@]}"; do build "$c"; done
# envtest also looks for kubectl in KUBEBUILDER_ASSETS; link the machine's one if present.
if [ ! -e "$BIN_DIR/kubectl" ] && command -v kubectl >/dev/null 2>&1; then
  ln -s "$(command -v kubectl)" "$BIN_DIR/kubectl"
fi
echo "$BIN_DIR"
