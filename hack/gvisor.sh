#!/usr/bin/env bash
# gVisor for the local cluster: builds runsc and its containerd shim (containerd-shim-runsc-v1)
# from the Go module proxy into a cached, versioned folder, because no release download is
# reachable on our machines, and prints the containerd 2 configuration that makes them a
# RuntimeClass handler (hack/gvisor-runtimeclass.yaml: RuntimeClass gvisor, handler runsc).
#
#   hack/gvisor.sh [build]              builds (first run only) into bin/gvisor/<version>/ and
#                                       prints that folder on its last line of stdout
#   hack/gvisor.sh runsc-toml [STATE_DIR]
#                                       prints runsc.toml (the shim's options file)
#   hack/gvisor.sh containerd-config TOML
#                                       prints the containerd 2 (config version 3) snippet for
#                                       the runsc handler, whose options point at TOML
#   hack/gvisor.sh smoke                builds if needed, then runs /bin/true and a shell
#                                       under runsc (no network, the host's root read-only,
#                                       state in a temporary folder): does gVisor run here?
# Another script (one that runs with `set -euo pipefail`, as ours do) may also
# `source hack/gvisor.sh` and call gvisor_build, gvisor_runsc_toml and gvisor_containerd_config
# itself: sourcing runs nothing.
#
# The Go module proxy has gvisor.dev/gvisor only at pseudo-versions of gVisor's `go` branch,
# which carries the files Bazel generates on master, so a plain `go build` works: runsc from
# gvisor.dev/gvisor/runsc, the shim from gvisor.dev/gvisor/shim. Measured on 2 cores with an
# empty Go build cache: runsc 183 s, then the shim 84 s (25 s once runsc's packages are
# built); about 30 more modules (containerd v2 among them) come from the proxy on first use.
# Binaries: runsc 83 MB, containerd-shim-runsc-v1 30 MB.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" # ROOT, log, die

# The newest gvisor.dev/gvisor on the proxy when this was written (gVisor tags no releases there).
GVISOR_VERSION="${GVISOR_VERSION:-v0.0.0-20260905035102-160fafc42237}"
GVISOR_DIR="${GVISOR_DIR:-$ROOT/bin/gvisor/$GVISOR_VERSION}"
GVISOR_COLD_BUILD="about 3 min for runsc and 1.5 min for the shim with an empty Go build cache"

# gvisor_patch DIR: the one local change to the gVisor source in DIR (a writable copy of the
# module). The shim's start-up sets its own oom_score_adj to -999 and fails when it cannot. On
# our machines root lacks CAP_SYS_RESOURCE, so lowering oom_score_adj is refused (EACCES) and
# every container would fail to start; containerd's own runc shim only raises it. The patch
# ignores that error and the shim keeps its parent's score. It must not log instead:
# containerd reads the start command's stdout and stderr together as the shim's address, and
# a log line there fails every start ("failed to create TTRPC connection: unsupported
# protocol"). (runsc itself only sets the scores the OCI spec asks for; containerd's
# restrict_oom_score_adj keeps those at or above its own.) Fails loudly when the line is not
# there, i.e. when a new version moved it.
gvisor_patch() {
	local f="$1/pkg/shim/v1/manager.go"
	local from='return shim.BootstrapParams{}, fmt.Errorf("failed to set OOM Score on shim: %w", err)'
	local to='_ = err // coderun: no CAP_SYS_RESOURCE, keep the inherited score (hack/gvisor.sh)'
	grep -qF "$from" "$f" || die "gvisor_patch: the shim's oom-score call is not in $f any more; update the patch"
	sed -i "s|$(printf '%s' "$from" | sed 's/[][\\.*^$|]/\\&/g')|$to|" "$f"
	grep -qF "$to" "$f" || die "gvisor_patch: patching $f failed"
}

# gvisor_stamp: names the version and the patch, so that a changed patch rebuilds.
gvisor_stamp() {
	printf '%s %s\n' "$GVISOR_VERSION" "$(declare -f gvisor_patch | sha256sum | cut -c1-16)"
}

gvisor_build() {
	local bin stamp
	stamp="$(gvisor_stamp)"
	if [ -x "$GVISOR_DIR/runsc" ] && [ -x "$GVISOR_DIR/containerd-shim-runsc-v1" ] &&
		[ "$(cat "$GVISOR_DIR/.stamp" 2>/dev/null)" = "$stamp" ]; then
		log "runsc and containerd-shim-runsc-v1 $GVISOR_VERSION: cached in ${GVISOR_DIR#"$ROOT"/}"
		return 0
	fi
	local work="$ROOT/bin/gvisor/.build-$GVISOR_VERSION" start=$SECONDS
	if [ "$(cat "$work/.ready" 2>/dev/null)" != "$stamp" ]; then
		log "copying gvisor.dev/gvisor@$GVISOR_VERSION from the Go module cache and patching it (first run only)"
		local mod tmp
		# From an empty folder outside the project, so that its go.mod is neither read nor changed.
		tmp="$(mktemp -d)"
		mod="$(cd "$tmp" && go mod download -json "gvisor.dev/gvisor@$GVISOR_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
		rmdir "$tmp"
		[ -n "$mod" ] && [ -d "$mod" ] || die "go mod download gvisor.dev/gvisor@$GVISOR_VERSION failed"
		rm -rf "$work" && mkdir -p "$work"
		cp -R "$mod" "$work/src"
		chmod -R u+w "$work/src"
		gvisor_patch "$work/src"
		echo "$stamp" >"$work/.ready"
		# Binaries of another patch are not these (the Go build cache makes rebuilding cheap).
		rm -f "$GVISOR_DIR/runsc" "$GVISOR_DIR/containerd-shim-runsc-v1" "$GVISOR_DIR/.stamp"
	fi
	mkdir -p "$GVISOR_DIR"
	# The copy is its own main module: its go.mod and go.sum pin every dependency.
	for bin in runsc containerd-shim-runsc-v1; do
		[ -x "$GVISOR_DIR/$bin" ] && continue
		local pkg=./runsc s=$SECONDS
		[ "$bin" = runsc ] || pkg=./shim
		log "building $bin $GVISOR_VERSION ($GVISOR_COLD_BUILD)"
		(cd "$work/src" && CGO_ENABLED=0 go build -trimpath -mod=readonly \
			-ldflags "-s -w -X gvisor.dev/gvisor/runsc/version.version=$GVISOR_VERSION" \
			-o "$GVISOR_DIR/$bin.tmp" "$pkg")
		mv "$GVISOR_DIR/$bin.tmp" "$GVISOR_DIR/$bin"
		log "$bin: built in $((SECONDS - s)) s"
	done
	echo "$stamp" >"$GVISOR_DIR/.stamp"
	log "gVisor ready in $((SECONDS - start)) s"
}

# gvisor_runsc_toml [STATE_DIR] [RUNSC]: the shim's options file (runsc.toml). binary_name is
# the runsc the shim runs; root is where runsc keeps its containers' state (the shim's default
# is /run/containerd/runsc); [runsc_config] holds runsc's global flags without their dashes.
# Teardown: with network = 'none' runsc bind-mounts an empty network namespace at
# STATE_DIR/<containerd namespace>/null-netns (k8s.io for the CRI); unmount it before removing
# STATE_DIR.
gvisor_runsc_toml() {
	local state="${1:-}" runsc="${2:-$GVISOR_DIR/runsc}"
	echo "# containerd-shim-runsc-v1's options for coderun's runsc handler (written by hack/gvisor.sh)."
	echo "binary_name = '$runsc'"
	[ -z "$state" ] || echo "root = '$state'"
	cat <<'EOF'
log_level = 'info'

[runsc_config]
  # systrap is gVisor's default platform and needs no /dev/kvm; ptrace worked here too. kvm
  # hung at start-up on our VMs (no usable nested virtualisation).
  platform = 'systrap'
  # coderun's run pods need no network: the program comes over pods/attach, the result over
  # the log and termination message, and there are no probes or ports. With 'none' the sandbox
  # has loopback only, whatever the CNI set up, so a NetworkPolicy the CNI does not enforce
  # (the local bridge CNI) does not matter. A RuntimeClass for pods that do need the pod
  # network would use 'sandbox' (gVisor's own network stack on the pod's interfaces).
  network = 'none'
  # For debugging: one folder of runsc logs per container.
  # debug = 'true'
  # debug-log = '/tmp/runsc/%ID%/'
EOF
}

# gvisor_containerd_config TOML [SHIM]: the containerd 2 (config version 3) lines for the runsc
# handler. Append them to a containerd config of version 3; TOML is the file gvisor_runsc_toml
# wrote. runtime_path names the shim, so it need not be on containerd's PATH.
gvisor_containerd_config() {
	local toml="${1:?gvisor_containerd_config needs the path of runsc.toml}"
	local shim="${2:-$GVISOR_DIR/containerd-shim-runsc-v1}"
	cat <<EOF
[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runsc]
  runtime_type = 'io.containerd.runsc.v1'
  runtime_path = '$shim'
[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runsc.options]
  TypeUrl = 'io.containerd.runsc.v1.options'
  ConfigPath = '$toml'
EOF
}

# gvisor_smoke: runs two programs under runsc, without Kubernetes or containerd, as root.
gvisor_smoke() {
	local state platform rc=0
	state="$(mktemp -d)"
	for platform in systrap ptrace; do
		if "$GVISOR_DIR/runsc" --root "$state" --network=none --platform="$platform" do /bin/true &&
			"$GVISOR_DIR/runsc" --root "$state" --network=none --platform="$platform" do /bin/sh -c 'echo "gVisor $(uname -r) says hello"' >&2; then
			log "runsc --platform=$platform: works"
		else
			log "runsc --platform=$platform: failed (rerun with --debug --debug-log=/tmp/runsc/ to see why)"
			rc=1
		fi
	done
	rm -rf "$state"
	return "$rc"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -euo pipefail
	LOG_PREFIX=gvisor
	case "${1:-build}" in
		build)
			gvisor_build
			echo "$GVISOR_DIR"
			;;
		runsc-toml) gvisor_runsc_toml "${2:-}" "${3:-}" ;;
		containerd-config) gvisor_containerd_config "${2:-}" "${3:-}" ;;
		smoke)
			gvisor_build
			gvisor_smoke
			;;
		*) die "usage: $0 [build | runsc-toml [STATE_DIR [RUNSC]] | containerd-config TOML [SHIM] | smoke]" ;;
	esac
fi
