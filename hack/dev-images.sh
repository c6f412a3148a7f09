#!/usr/bin/env bash
# Builds the project's images for the local cluster with buildah, without any registry, and
# loads them into the node's containerd:
#   1. the base image docker.io/library/debian:trixie-slim, made with debootstrap when it is
#      not in the build cache yet and tagged under its upstream name, so that the project's
#      own Dockerfiles build here unchanged (and with Docker elsewhere);
#   2. `make images` (runner, operator, front service) with buildah's store in .dev/cache;
#   3. hack/local-cluster.sh import, which skips images containerd already has.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_PREFIX=dev-images

base_image() {
	if "${BUILDAH[@]}" inspect --type image "$BASE_IMG" >/dev/null 2>&1; then return 0; fi
	local suite="${BASE_IMG##*:}" dir="$CACHE_DIR/base"
	suite="${suite%-slim}"
	local mirror
	mirror="$(sed -n 's/^URIs: *\(http[^ ]*debian\)\/*$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)"
	mirror="${mirror:-http://deb.debian.org/debian}"
	log "making $BASE_IMG with debootstrap ($suite minbase from $mirror, about a minute)"
	rm -rf "$dir" && mkdir -p "$dir/rootfs"
	debootstrap --variant=minbase "$suite" "$dir/rootfs" "$mirror" >"$dir/debootstrap.log" 2>&1 ||
		die "debootstrap failed; see $dir/debootstrap.log"
	# What the upstream slim image leaves out: package lists and caches.
	rm -rf "$dir"/rootfs/var/lib/apt/lists/* "$dir"/rootfs/var/cache/apt/*.bin "$dir"/rootfs/var/cache/apt/archives/*.deb
	tar --numeric-owner -C "$dir/rootfs" -cf "$dir/rootfs.tar" .
	rm -rf "$dir/rootfs"
	printf 'FROM scratch\nADD rootfs.tar /\nCMD ["bash"]\n' >"$dir/Dockerfile"
	"${BUILDAH[@]}" "${BUILDAH_BUD[@]}" -t "$BASE_IMG" "$dir" >/dev/null
	rm -f "$dir/rootfs.tar"
	log "built $BASE_IMG"
}

build_images() {
	base_image
	log "building the project's images (make images)"
	make -C "$ROOT" --no-print-directory images IMG_TAG="$IMG_TAG" \
		CONTAINER_TOOL="${BUILDAH[*]}" CONTAINER_BUILD="${BUILDAH_BUD[*]}"
}

start=$SECONDS
mkdir -p "$CACHE_DIR"
tidy_buildah build_images
"$ROOT/hack/local-cluster.sh" import "$@"
log "images ready in $((SECONDS - start))s"
