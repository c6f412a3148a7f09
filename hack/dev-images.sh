#!/usr/bin/env bash
# Builds the project's images for the local cluster with buildah, without any registry, and
# loads them into the node's containerd:
#   1. the base image docker.io/library/debian:trixie-slim, made with debootstrap when it is
#      not in the build cache yet and tagged under its upstream name, so that the project's
#      own Dockerfiles build here unchanged (and with Docker elsewhere);
#   2. `make images` (base, Python runner, operator, front service) with buildah's store in
#      .dev/cache, then `make -j images-runtimes` for the other languages of RUNTIMES,
#      DEV_IMAGE_JOBS (2) at a time;
#   3. hack/local-cluster.sh import, which skips images containerd already has.
# RUNTIMES (space- or comma-separated names of images/<name>/) is what make dev passes; empty,
# the runtimes of the running cluster (.dev/cluster/runtimes, which hack/dev-deploy.sh
# writes) or python on a new one. Each image's build and import prints its seconds and
# size: the language images are 0.1 to 0.8 GB, and a first build of all of them takes a while.
# debootstrap takes the Debian archive from this machine's apt sources (see debian_mirror), or
# from DEBIAN_MIRROR when set. `hack/dev-images.sh mirror` prints the one it would use.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_PREFIX=dev-images

# debian_mirror prints the Debian archive that apt on this machine is set up with, as apt itself
# parses its sources (deb822 *.sources files and one-line sources.list and *.list files alike),
# so the repository names no package host. It is the first `deb` source of a plain suite
# (trixie, stable: not -security, -updates or -backports, which are other archives or hold only
# updates): one whose Release file says Origin and Label Debian once `apt-get update` has run,
# else one whose path ends in /debian. Override with DEBIAN_MIRROR=<URL>.
debian_mirror() {
	if [ -n "${DEBIAN_MIRROR:-}" ]; then
		echo "${DEBIAN_MIRROR%/}"
		return
	fi
	command -v apt-get >/dev/null || die "apt-get is missing, so there are no apt sources to take a Debian mirror from; set DEBIAN_MIRROR=<URL of a Debian archive>"
	local targets=(indextargets --format '$(RELEASE) $(REPO_URI)' 'Identifier: Packages' 'Target-Of: deb') uri
	uri="$(apt-get "${targets[@]}" 'Origin: Debian' 'Label: Debian' 2>/dev/null | awk '$1 !~ /[-\/]/ { print $2; exit }')"
	if [ -z "$uri" ]; then
		uri="$(apt-get --no-release-info "${targets[@]}" 2>/dev/null | awk '$1 !~ /[-\/]/ && $2 ~ /\/debian\/?$/ { print $2; exit }')"
	fi
	[ -n "$uri" ] || die "no Debian archive in apt's sources (/etc/apt/sources.list, /etc/apt/sources.list.d/*.list or *.sources):" \
		"add a 'deb' source of a Debian mirror for a plain suite (say trixie) and run apt-get update, or set DEBIAN_MIRROR=<URL of a Debian archive>"
	echo "${uri%/}"
}

if [ "${1:-}" = mirror ]; then
	debian_mirror
	exit 0
fi

base_image() {
	if "${BUILDAH[@]}" inspect --type image "$BASE_IMG" >/dev/null 2>&1; then return 0; fi
	local suite="${BASE_IMG##*:}" dir="$CACHE_DIR/base"
	suite="${suite%-slim}"
	local mirror
	mirror="$(debian_mirror)"
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

image_size() { "${BUILDAH[@]}" images --format '{{.Size}}' "$1" 2>/dev/null | head -n 1; }

build_images() {
	base_image
	log "building the project's images (make images)"
	make -C "$ROOT" --no-print-directory images IMG_TAG="$IMG_TAG" \
		CONTAINER_TOOL="${BUILDAH[*]}" CONTAINER_BUILD="${BUILDAH_BUD[*]}"
	[ ${#runtime_images[@]} -gt 0 ] || return 0
	# DEV_IMAGE_JOBS at a time: an apt-get install waits on the network as much as on the CPU.
	local names="${runtime_images[*]#localhost/coderun-}"
	names="${names//:$IMG_TAG/}"
	log "building ${#runtime_images[@]} language images, ${DEV_IMAGE_JOBS:-2} at a time (a first build takes minutes each)"
	make -C "$ROOT" --no-print-directory -j "${DEV_IMAGE_JOBS:-2}" images-runtimes RUNTIMES="${names// /,}" IMG_TAG="$IMG_TAG" \
		CONTAINER_TOOL="${BUILDAH[*]}" CONTAINER_BUILD="${BUILDAH_BUD[*]}"
	for img in "${runtime_images[@]}"; do log "$img: $(image_size "$img")"; done
}

# The runtimes: RUNTIMES, else those the running cluster has, else python.
read -r -a runtimes <<<"$(echo "${RUNTIMES:-$(cat "$CLUSTER_DIR/runtimes" 2>/dev/null || echo python)}" | tr , ' ')"
runtime_images=()
for name in "${runtimes[@]}"; do
	[ -f "$ROOT/images/$name/Dockerfile" ] || die "RUNTIMES names $name, but there is no images/$name/Dockerfile"
	[ "$name" = python ] || runtime_images+=("localhost/coderun-$name:$IMG_TAG")
done

start=$SECONDS
mkdir -p "$CACHE_DIR"
tidy_buildah build_images
log "images built in $((SECONDS - start))s"
t0=$SECONDS
for img in "$@" "${runtime_images[@]}"; do
	t=$SECONDS
	"$ROOT/hack/local-cluster.sh" import "$img"
	if ((SECONDS - t > 1)); then log "imported $img ($(image_size "$img")) in $((SECONDS - t))s"; fi
done
log "images imported in $((SECONDS - t0))s"
log "images ready in $((SECONDS - start))s"
