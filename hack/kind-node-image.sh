#!/usr/bin/env bash
# Builds kind's node image here, from the Go module proxy and Debian, because kindest/node and
# kindest/base are on a container registry that our machines cannot reach:
#   1. the binaries: Kubernetes from source (hack/kube-binaries.sh, plus kubeadm and kubectl
#      built the same way, here), containerd and runc (hack/runtime-binaries.sh), crictl
#      (sigs.k8s.io/cri-tools), CoreDNS (github.com/coredns/coredns) and pause (Kubernetes'
#      own pause.c, linked statically), cached in bin/kind-node/;
#   2. the Debian base image (docker.io/library/debian:trixie-slim) with debootstrap when the
#      build daemon lacks it and this machine's apt has a Debian archive (elsewhere `docker
#      build` pulls it);
#   3. the base image (hack/kind/node/Dockerfile: kind's own files from the module, Debian's
#      systemd, iptables and CNI plugins, our containerd);
#   4. the component images kubeadm asks for (kubeadm config images list), under exactly the
#      names it asks for so nothing is ever pulled (hack/kind/images/);
#   5. the node image: a container of the base image gets kubeadm, kubelet and kubectl in
#      /usr/bin and the component images in its containerd, and is committed, as `kind build
#      node-image` does (that command would pull kindnetd and the storage provisioner, which
#      are on the registry too, so its steps are done here instead).
# Usage:
#   BUILD_DOCKER_HOST=... KIND_DOCKER_HOST=... hack/kind-node-image.sh
# Builds with the daemon at BUILD_DOCKER_HOST (it needs the network for apt-get) and, when
# KIND_DOCKER_HOST names another daemon, copies the node image there (docker save | load).
# Both default to DOCKER_HOST (the default daemon), as on a CI runner. Does nothing when
# KIND_DOCKER_HOST's daemon has the image already. Prints the image's name on stdout.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" # ROOT, KUBE_VERSION, KUBE_BIN_DIR, log, die
LOG_PREFIX=kind-node-image

KIND_VERSION="${KIND_VERSION:-v0.33.0}"
CRICTL_VERSION="${CRICTL_VERSION:-v1.36.0}" # kind v0.33.0's base image has crictl v1.36.0
# kubeadm v1.37's images: kubeadm config images list --kubernetes-version v1.37.2
COREDNS_VERSION="${COREDNS_VERSION:-v1.14.6}"
PAUSE_VERSION="${PAUSE_VERSION:-3.10.2}"
ETCD_IMAGE_TAG="${ETCD_IMAGE_TAG:-3.7.0-0}"
# The tag names what the image is made of (this script and hack/kind/), so a change builds a
# new one; a running cluster keeps its node until make kind-down.
inputs_hash="$(cd "$ROOT" && find hack/kind-node-image.sh hack/kind/node hack/kind/images -type f ! -name '*kube-network-policies*' | sort | xargs cat | sha256sum | cut -c1-12)"
NODE_IMAGE="${KIND_NODE_IMAGE:-localhost/kind-node:$KUBE_VERSION-coderun-$inputs_hash}"
BASE_IMAGE_NAME="localhost/kind-base:$KIND_VERSION-coderun"
DEBIAN_IMAGE="$BASE_IMG" # docker.io/library/debian:trixie-slim (hack/lib.sh)
OUT="$ROOT/bin/kind-node"
BUILD_DOCKER_HOST="${BUILD_DOCKER_HOST:-${DOCKER_HOST:-}}"
KIND_DOCKER_HOST="${KIND_DOCKER_HOST:-${DOCKER_HOST:-}}"
DOCKER="${DOCKER:-docker}"

bdocker() { env ${BUILD_DOCKER_HOST:+DOCKER_HOST="$BUILD_DOCKER_HOST"} DOCKER_BUILDKIT=1 "$DOCKER" "$@"; }
kdocker() { env ${KIND_DOCKER_HOST:+DOCKER_HOST="$KIND_DOCKER_HOST"} "$DOCKER" "$@"; }

if kdocker image inspect "$NODE_IMAGE" >/dev/null 2>&1; then
	log "$NODE_IMAGE: present"
	echo "$NODE_IMAGE"
	exit 0
fi
start=$SECONDS

# --- 1. binaries
# go_install OUT_NAME PACKAGE@VERSION: a Go command from the module proxy, static.
go_install() {
	local name="$1" pkg="$2" gobin="$OUT/.gobin"
	[ -x "$OUT/bin/$name" ] && return 0
	log "building $pkg (first run only)"
	local t=$SECONDS
	mkdir -p "$gobin" "$OUT/bin"
	GOBIN="$gobin" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" "$pkg"
	mv "$gobin/$(basename "${pkg%@*}")" "$OUT/bin/$name"
	log "$name built in $((SECONDS - t))s"
}

# kube_extra: kubeadm and kubectl $KUBE_VERSION, built like hack/kube-binaries.sh builds the
# rest (same helper-module technique, same version flags) but in a module of their own, so the
# local cluster's build is untouched.
kube_extra() {
	local dir="$ROOT/bin/k8s/.build-$KUBE_VERSION/kind-extra" c missing=()
	for c in kubeadm kubectl; do [ -x "$OUT/$KUBE_VERSION/$c" ] || missing+=("$c"); done
	[ ${#missing[@]} -gt 0 ] || return 0
	if [ ! -f "$dir/.ready" ]; then
		log "preparing a helper module for kubeadm and kubectl $KUBE_VERSION (first run only)"
		rm -rf "$dir" && mkdir -p "$dir"
		# The local cluster's helper module has the staging modules' replacements already.
		cp "$ROOT/bin/k8s/.build-$KUBE_VERSION/kubernetes/go.mod" "$ROOT/bin/k8s/.build-$KUBE_VERSION/kubernetes/go.sum" "$dir/"
		(
			cd "$dir"
			go mod edit -module coderun.local/kind-extra
			printf '//go:build tools\npackage tools\nimport (\n\t_ "k8s.io/kubernetes/cmd/kubeadm"\n\t_ "k8s.io/kubernetes/cmd/kubectl"\n)\n' >tools.go
			go mod tidy
		)
		touch "$dir/.ready"
	fi
	local ldflags="" p
	for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		ldflags+=" -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=1"
		ldflags+=" -X $p.gitMinor=$(echo "$KUBE_VERSION" | cut -d. -f2) -X $p.gitTreeState=clean"
	done
	mkdir -p "$OUT/$KUBE_VERSION"
	for c in "${missing[@]}"; do
		local t=$SECONDS
		log "building $c $KUBE_VERSION (a few minutes cold)"
		(cd "$dir" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $ldflags" -o "$OUT/$KUBE_VERSION/$c.tmp" "k8s.io/kubernetes/cmd/$c")
		mv "$OUT/$KUBE_VERSION/$c.tmp" "$OUT/$KUBE_VERSION/$c"
		log "$c built in $((SECONDS - t))s"
	done
}

# pause: the sandbox's process, from Kubernetes' build/pause/linux/pause.c in the module.
build_pause() {
	[ -x "$OUT/bin/pause-$PAUSE_VERSION" ] && return 0
	local src
	src="$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')/build/pause/linux/pause.c"
	[ -f "$src" ] || die "no pause.c at $src"
	command -v gcc >/dev/null || die "gcc is needed to build pause (apt-get install -y gcc libc6-dev)"
	mkdir -p "$OUT/bin"
	gcc -Os -Wall -Werror -static -DVERSION="v$PAUSE_VERSION" -o "$OUT/bin/pause-$PAUSE_VERSION" "$src"
	log "pause $PAUSE_VERSION built"
}

log "step 1/5: binaries (cached in bin/)"
"$ROOT/hack/kube-binaries.sh" kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubelet etcd >/dev/null
"$ROOT/hack/runtime-binaries.sh" >/dev/null
kube_extra
go_install "crictl-$CRICTL_VERSION" "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION"
go_install "coredns-$COREDNS_VERSION" "github.com/coredns/coredns@$COREDNS_VERSION"
build_pause

tmp="$(mktemp -d)"
build_container=""
cleanup() {
	if [ -n "$build_container" ]; then bdocker rm -f "$build_container" >/dev/null 2>&1 || true; fi
	rm -rf "$tmp"
}
trap cleanup EXIT

# --- 2. Debian
if ! bdocker image inspect "$DEBIAN_IMAGE" >/dev/null 2>&1; then
	mirror="$("$ROOT/hack/dev-images.sh" mirror 2>/dev/null || true)"
	if [ -n "$mirror" ] && command -v debootstrap >/dev/null; then
		suite="${DEBIAN_IMAGE##*:}"
		suite="${suite%-slim}"
		log "step 2/5: making $DEBIAN_IMAGE with debootstrap ($suite minbase from $mirror, about a minute)"
		debootstrap --variant=minbase "$suite" "$tmp/rootfs" "$mirror" >"$tmp/debootstrap.log" 2>&1 ||
			{ tail -n 20 "$tmp/debootstrap.log" >&2; die "debootstrap failed"; }
		rm -rf "$tmp"/rootfs/var/lib/apt/lists/* "$tmp"/rootfs/var/cache/apt/*.bin "$tmp"/rootfs/var/cache/apt/archives/*.deb
		tar --numeric-owner -C "$tmp/rootfs" -c . | bdocker import --change 'CMD ["bash"]' - "$DEBIAN_IMAGE" >/dev/null
		rm -rf "$tmp/rootfs"
	else
		log "step 2/5: no Debian archive in apt's sources or no debootstrap: docker build pulls $DEBIAN_IMAGE"
	fi
else
	log "step 2/5: $DEBIAN_IMAGE: present"
fi

# --- 3. the base image
kind_dir="$(cd "$ROOT" && go mod download -json "sigs.k8s.io/kind@$KIND_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
[ -d "$kind_dir/images/base/files" ] || die "kind $KIND_VERSION's images/base/files is not in the module cache ($kind_dir)"
ctx="$tmp/base"
mkdir -p "$ctx/bin"
cp -r "$kind_dir/images/base/files" "$ctx/files"
chmod -R u+w "$ctx/files"
cp -r "$ROOT/hack/kind/node/"{Dockerfile,10-bridge.conflist,default-storage.yaml,patches} "$ctx/"
cp "$CONTAINERD_BIN_DIR"/{containerd,ctr,containerd-shim-runc-v2} "$RUNC_BIN_DIR/runc" "$ctx/bin/"
cp "$OUT/bin/crictl-$CRICTL_VERSION" "$ctx/bin/crictl"
log "step 3/5: building $BASE_IMAGE_NAME (hack/kind/node/Dockerfile; apt-get, a few minutes cold)"
t=$SECONDS
bdocker build --network host --build-arg BASE_IMAGE="$DEBIAN_IMAGE" -t "$BASE_IMAGE_NAME" "$ctx"
log "$BASE_IMAGE_NAME built in $((SECONDS - t))s"

# --- 4. the component images, under the names kubeadm asks for
log "step 4/5: the component images"
imgs="$tmp/images"
mkdir -p "$imgs"
# component_image NAME DOCKERFILE FILE...: builds NAME from hack/kind/images/DOCKERFILE with
# FILEs in its context's bin/, and saves it into $imgs.
component_image() {
	local name="$1" df="$2" c="$tmp/ctx-$RANDOM"
	shift 2
	mkdir -p "$c/bin"
	cp "$@" "$c/bin/"
	bdocker build -q --network host --build-arg BASE_IMAGE="$DEBIAN_IMAGE" -f "$ROOT/hack/kind/images/$df" -t "$name" "$c" >/dev/null
	log "built $name"
	rm -rf "$c"
}
reg=registry.k8s.io
for c in kube-apiserver kube-controller-manager kube-scheduler; do
	component_image "$reg/$c:$KUBE_VERSION" Dockerfile.static "$KUBE_BIN_DIR/$c"
done
component_image "$reg/etcd:$ETCD_IMAGE_TAG" Dockerfile.static "$KUBE_BIN_DIR/etcd"
component_image "$reg/kube-proxy:$KUBE_VERSION" Dockerfile.kube-proxy "$KUBE_BIN_DIR/kube-proxy"
cp "$OUT/bin/coredns-$COREDNS_VERSION" "$tmp/coredns"
component_image "$reg/coredns/coredns:$COREDNS_VERSION" Dockerfile.coredns "$tmp/coredns"
cp "$OUT/bin/pause-$PAUSE_VERSION" "$tmp/pause"
component_image "$reg/pause:$PAUSE_VERSION" Dockerfile.pause "$tmp/pause"
# kind's containerd configuration names pause:3.10 as the sandbox image.
bdocker tag "$reg/pause:$PAUSE_VERSION" "$reg/pause:3.10"
# Everything kubeadm would pull must be here: compare with its own list.
mapfile -t required < <("$OUT/$KUBE_VERSION/kubeadm" config images list --kubernetes-version "$KUBE_VERSION")
required+=("$reg/pause:3.10")
for i in "${required[@]}"; do
	bdocker image inspect "$i" >/dev/null 2>&1 || die "kubeadm needs $i and it was not built"
done
bdocker save "${required[@]}" >"$imgs/components.tar"

# --- 5. the node image
log "step 5/5: assembling $NODE_IMAGE"
build_container="kind-node-build-$$"
# --init: the containerd started below must be reaped when it exits (sleep does not reap).
bdocker run -d --init --name "$build_container" --privileged --network none --entrypoint sleep "$BASE_IMAGE_NAME" infinity >/dev/null
for b in kubeadm kubectl; do bdocker cp "$OUT/$KUBE_VERSION/$b" "$build_container:/usr/bin/$b"; done
bdocker cp "$KUBE_BIN_DIR/kubelet" "$build_container:/usr/bin/kubelet"
bdocker exec "$build_container" sh -c "chown root:root /usr/bin/kubeadm /usr/bin/kubectl /usr/bin/kubelet && chmod 0755 /usr/bin/kubeadm /usr/bin/kubectl /usr/bin/kubelet && echo $KUBE_VERSION >/kind/version"
# The images go into the node's containerd as kind's builder puts them there: containerd
# started for the import only, the images pinned (the kubelet's image GC keeps them).
# shellcheck disable=SC2016 # expanded by the node's shell
bdocker exec "$build_container" bash -c 'containerd >/tmp/containerd.log 2>&1 & echo $! >/tmp/containerd.pid'
# shellcheck disable=SC2016 # expanded by the node's shell
bdocker exec "$build_container" bash -c 'for i in $(seq 1 50); do [ -S /run/containerd/containerd.sock ] && ctr version >/dev/null 2>&1 && exit 0; sleep 0.2; done; cat /tmp/containerd.log; exit 1'
bdocker exec -i "$build_container" ctr --namespace=k8s.io images import --label=io.cri-containerd.pinned=pinned --all-platforms --no-unpack --digests - <"$imgs/components.tar" >/dev/null
# shellcheck disable=SC2016 # expanded by the node's shell
bdocker exec "$build_container" bash -c 'ctr --namespace=k8s.io images list -q | grep -v sha256: >&2; kill "$(cat /tmp/containerd.pid)"; while grep -qs "^State:[[:space:]]*[^Z]" "/proc/$(cat /tmp/containerd.pid)/status"; do sleep 0.2; done; rm -f /tmp/containerd.pid /tmp/containerd.log'
bdocker commit --change 'ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]' --change 'ENV HTTP_PROXY="" HTTPS_PROXY="" NO_PROXY=""' \
	"$build_container" "$NODE_IMAGE" >/dev/null
if [ "$BUILD_DOCKER_HOST" != "$KIND_DOCKER_HOST" ]; then
	log "copying $NODE_IMAGE to the kind daemon (docker save | docker load)"
	bdocker save "$NODE_IMAGE" | kdocker load >/dev/null
fi
log "$NODE_IMAGE built in $((SECONDS - start))s"
echo "$NODE_IMAGE"
