#!/usr/bin/env bash
# Builds the local cluster's container runtime from the Go module proxy, the way
# hack/kube-binaries.sh builds Kubernetes: containerd 2 (containerd, containerd-shim-runc-v2,
# ctr) and runc, each in a helper module outside the project's go.mod, into cached, versioned
# folders (bin/containerd/<version>, bin/runc/<version>). A second run only checks the cache.
# Debian's containerd 1.6 and runc 1.1 are too old for user namespaces (hostUsers: false
# needs containerd >= 2.0 and runc >= 1.2); the versions are pinned in hack/lib.sh.
# Cold build on 2 cores (empty Go build cache): containerd 254 s, shim 6 s, ctr 17 s, runc 80 s.
# Usage:
#   hack/runtime-binaries.sh [containerd|runc ...]   (default: both)
# runc needs cgo and libseccomp-dev (hack/host-tools.sh installs it).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" # versions, CONTAINERD_BIN_DIR, RUNC_BIN_DIR, log
LOG_PREFIX=runtime-binaries

WORK_DIR="$ROOT/bin/.build-runtime"
components=("$@")
[ ${#components[@]} -gt 0 ] || components=(containerd runc)

# prepare_module DIR MODULE@VERSION IMPORT...: a throw-away module requiring MODULE@VERSION,
# with a tools.go importing the commands so that `go mod tidy` records their dependencies.
prepare_module() {
	local dir="$1" req="$2" p
	shift 2
	[ -f "$dir/.ready" ] && return 0
	log "preparing a helper module for $req (first run only)"
	rm -rf "$dir" && mkdir -p "$dir"
	(
		cd "$dir"
		go mod init "coderun.local/$(basename "$dir")" >/dev/null 2>&1
		go mod edit -require="$req"
		{
			echo '//go:build tools'
			echo 'package tools'
			echo 'import ('
			for p in "$@"; do echo "  _ \"$p\""; done
			echo ')'
		} >tools.go
		go mod tidy
	)
	touch "$dir/.ready"
}

build_containerd() {
	local out="$CONTAINERD_BIN_DIR" m=github.com/containerd/containerd/v2 c missing=()
	for c in containerd containerd-shim-runc-v2 ctr; do [ -x "$out/$c" ] || missing+=("$c"); done
	if [ ${#missing[@]} -eq 0 ]; then
		log "containerd $CONTAINERD_VERSION: cached in ${out#"$ROOT"/}"
		return 0
	fi
	local dir="$WORK_DIR/containerd-$CONTAINERD_VERSION"
	prepare_module "$dir" "$m@$CONTAINERD_VERSION" "$m/cmd/containerd" "$m/cmd/containerd-shim-runc-v2" "$m/cmd/ctr"
	# The same flags as containerd's Makefile (its release builds): the version and package
	# reported by `containerd --version`; no revision, the proxy's module has no VCS data.
	local ldflags="-s -w -X $m/version.Version=$CONTAINERD_VERSION -X $m/version.Package=$m"
	mkdir -p "$out"
	for c in "${missing[@]}"; do
		local start=$SECONDS tags=urfave_cli_no_docs cold="under a minute"
		# The shim without gRPC, as the Makefile builds it (smaller, one per pod).
		[ "$c" = containerd-shim-runc-v2 ] && tags+=" no_grpc"
		# No btrfs, zfs or devmapper snapshotters: the node uses overlayfs.
		[ "$c" = containerd ] && tags+=" no_btrfs no_zfs no_devmapper" && cold="about 4 min"
		log "building $c $CONTAINERD_VERSION ($cold with empty Go caches)"
		(cd "$dir" && CGO_ENABLED=0 go build -trimpath -tags "$tags" -ldflags "$ldflags" -o "$out/$c.tmp" "$m/cmd/$c")
		mv "$out/$c.tmp" "$out/$c"
		log "$c: built in $((SECONDS - start)) s"
	done
}

build_runc() {
	local out="$RUNC_BIN_DIR/runc" m=github.com/opencontainers/runc
	if [ -x "$out" ]; then
		log "runc $RUNC_VERSION: cached in ${out#"$ROOT"/}"
		return 0
	fi
	pkg-config --exists libseccomp 2>/dev/null || die "runc needs libseccomp-dev and pkg-config: run hack/host-tools.sh"
	local dir="$WORK_DIR/runc-$RUNC_VERSION" start=$SECONDS
	prepare_module "$dir" "$m@$RUNC_VERSION" "$m"
	mkdir -p "$RUNC_BIN_DIR"
	# runc's Makefile tags minus libpathrs (a Rust library Debian 12 does not ship; runc then
	# uses its Go pathrs-lite). cgo is required: nsenter is C, and seccomp uses libseccomp.
	# runc embeds its VERSION file; the commit is unknown from the proxy, so it names the source.
	log "building runc $RUNC_VERSION (about 1.5 min with empty Go caches; cgo, libseccomp)"
	(cd "$dir" && CGO_ENABLED=1 go build -trimpath -buildmode=pie -tags "seccomp urfave_cli_no_docs" \
		-ldflags "-s -w -X main.gitCommit=$RUNC_VERSION-go-module" -o "$out.tmp" "$m")
	mv "$out.tmp" "$out"
	log "runc: built in $((SECONDS - start)) s"
}

mkdir -p "$WORK_DIR"
for c in "${components[@]}"; do
	case "$c" in
	containerd) build_containerd ;;
	runc) build_runc ;;
	*) die "unknown component $c (containerd or runc)" ;;
	esac
done
