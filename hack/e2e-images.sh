#!/usr/bin/env bash
# Builds the images only the e2e suite uses, with buildah, and loads them into the local
# cluster's containerd (make test-e2e runs it after make dev):
#   localhost/coderun-e2e-postgres:$IMG_TAG   PostgreSQL for TestChartWithPostgres
#                                             (test/images/postgres)
# The base image docker.io/library/debian:trixie-slim must be in the build cache already
# (hack/dev-images.sh makes it). Rebuilding unchanged sources takes seconds (buildah's layer
# cache), and hack/local-cluster.sh import skips images the node already has.
#   IMG_TAG=0.1.0 hack/e2e-images.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_PREFIX=e2e-images

POSTGRES_IMG="localhost/coderun-e2e-postgres:$IMG_TAG"

build_images() {
	"${BUILDAH[@]}" inspect --type image "$BASE_IMG" >/dev/null 2>&1 ||
		die "$BASE_IMG is not in the build cache; hack/dev-images.sh (make dev) makes it"
	log "building $POSTGRES_IMG from test/images/postgres (apt-get install postgresql the first time: a minute or two)"
	local t=$SECONDS
	"${BUILDAH[@]}" "${BUILDAH_BUD[@]}" -t "$POSTGRES_IMG" "$ROOT/test/images/postgres" >/dev/null
	log "built $POSTGRES_IMG in $((SECONDS - t))s"
}

start=$SECONDS
mkdir -p "$CACHE_DIR"
tidy_buildah build_images
"$ROOT/hack/local-cluster.sh" import "$POSTGRES_IMG"
log "e2e images ready in $((SECONDS - start))s"
