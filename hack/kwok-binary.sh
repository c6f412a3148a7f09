#!/usr/bin/env bash
# Builds kwok (sigs.k8s.io/kwok, which simulates nodes and their pods for the scale test)
# from the Go module proxy into bin/kwok-$KWOK_VERSION, once. It is built in a helper module
# of its own, not in coderun's go.mod: kwok v0.8.0 requires k8s.io/* v0.36, and minimal
# version selection in our module would compile it against v0.37 instead.
# Prints the binary's path on its last line of stdout.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" # ROOT, log
LOG_PREFIX=kwok-binary

KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"
out="$ROOT/bin/kwok-$KWOK_VERSION"
if [ -x "$out" ]; then
  log "kwok: cached at ${out#"$ROOT"/}"
  echo "$out"
  exit 0
fi

dir="$ROOT/bin/.build-kwok-$KWOK_VERSION"
start=$SECONDS
if [ ! -f "$dir/.ready" ]; then
  log "preparing a helper module for kwok $KWOK_VERSION (first run only)"
  rm -rf "$dir" && mkdir -p "$dir"
  (
    cd "$dir"
    go mod init coderun.local/kwok-binary >/dev/null 2>&1
    go mod edit -require="sigs.k8s.io/kwok@$KWOK_VERSION"
    printf '//go:build tools\npackage tools\nimport _ "sigs.k8s.io/kwok/cmd/kwok"\n' >tools.go
    go mod tidy
  )
  touch "$dir/.ready"
fi
log "building kwok $KWOK_VERSION (about 2 min with empty Go caches)"
(cd "$dir" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out.tmp" sigs.k8s.io/kwok/cmd/kwok)
mv "$out.tmp" "$out"
log "kwok: built in $((SECONDS - start)) s"
echo "$out"
