#!/usr/bin/env bash
# Installs the system pieces the local cluster and the browser tests need from Debian's
# packages (the only place they can come from on machines without a registry). Only missing
# packages are installed, so running it again costs nothing. Usage:
#   hack/host-tools.sh            cluster tools (runc, CNI plugins, buildah, libseccomp-dev, ...)
#   hack/host-tools.sh chromium   the browser for the page's browser tests
#   hack/host-tools.sh docker     Debian's Docker engine and what kind's node image needs
#                                 (hack/docker.sh up, for make test-e2e-kind)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_PREFIX=host-tools

case "${1:-cluster}" in
cluster)
	# crun is left out on purpose: crun 1.8 refuses hybrid cgroups, and buildah would pick it.
	# The node runs containerd 2 and runc built from the Go module proxy
	# (hack/runtime-binaries.sh, which needs gcc, pkg-config and libseccomp-dev for runc), so
	# Debian's containerd is not installed; Debian's runc stays for buildah's RUN steps.
	packages=(runc containernetworking-plugins iptables nftables conntrack buildah debootstrap openssl iproute2 util-linux curl gcc pkg-config libseccomp-dev)
	;;
chromium)
	packages=(chromium fonts-dejavu-core)
	;;
docker)
	# dockerd 20.10 (docker.io) and jq for hack/docker.sh; debootstrap, gcc and libc6-dev
	# (pause), pkg-config and libseccomp-dev (runc) for hack/kind-node-image.sh.
	packages=(docker.io jq iproute2 util-linux curl debootstrap gcc libc6-dev pkg-config libseccomp-dev)
	;;
*) die "unknown set '$1' (cluster, chromium or docker)" ;;
esac

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | quiet_grep 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	log "all present: ${packages[*]}"
	exit 0
fi
[ "$(id -u)" -eq 0 ] || die "installing ${missing[*]} needs root (apt-get)"
log "installing ${missing[*]} from Debian (apt-get)"
export DEBIAN_FRONTEND=noninteractive
# docker.io's (and containerd's) maintainer scripts would start the machine's own daemon,
# which puts docker0 and its iptables rules in the host's network namespace: the project
# starts its daemons itself (hack/docker.sh). Debian's policy-rc.d, which invoke-rc.d and
# deb-systemd-invoke ask first, refuses every start while the packages install; one that
# is already there (a container image's) is left as it is.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\n# hack/host-tools.sh: no service starts while packages install\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	trap 'rm -f "$policy"' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
log "installed ${missing[*]}"
