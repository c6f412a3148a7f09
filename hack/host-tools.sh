#!/usr/bin/env bash
# Installs the system pieces the local cluster and the browser tests need from Debian's
# packages (the only place they can come from on machines without a registry). Only missing
# packages are installed, so running it again costs nothing. Usage:
#   hack/host-tools.sh            cluster tools (runc, CNI plugins, buildah, libseccomp-dev, ...)
#   hack/host-tools.sh chromium   the browser for the page's browser tests
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
*) die "unknown set '$1' (cluster or chromium)" ;;
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
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
log "installed ${missing[*]}"
