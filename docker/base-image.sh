#!/bin/sh
# Make PhotonCloud's base image without an image registry: a Debian 12 (bookworm) root file system
# built with mmdebstrap from Debian's mirrors, imported into the engine with `docker import`.
#
#   docker/base-image.sh [IMAGE]            (default photoncloud/base:bookworm; `make images` runs it)
#
# The image carries what the services run besides their Python packages: Python 3.11 with venv
# (the platform image builds its virtual environment on it), bubblewrap (the k8shost node agent's
# pod sandbox) and QEMU (PlasmaVMC's guests). It is labelled with a hash of this script, so it is
# made again only when this recipe changes (or the image is gone): a second run returns at once.
# Needs root and mmdebstrap (installed here with apt-get when missing).
set -eu

IMAGE=${1:-photoncloud/base:bookworm}
SUITE=bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
PACKAGES=python3,python3-venv,bubblewrap,qemu-system-x86
LABEL=org.photoncloud.base-recipe

cd "$(dirname "$0")/.."
recipe=$(sha256sum docker/base-image.sh | cut -c1-16)

if [ "$(docker image inspect --format "{{ index .Config.Labels \"$LABEL\" }}" "$IMAGE" 2>/dev/null)" = "$recipe" ]; then
    echo "$IMAGE is up to date"
    exit 0
fi
if ! command -v mmdebstrap >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "base-image: installing mmdebstrap" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null
    else
        echo "base-image: mmdebstrap is missing (apt-get install mmdebstrap)" >&2
        exit 1
    fi
fi

mkdir -p build/images
tarball=build/images/rootfs-$SUITE-$recipe.tar
trap 'rm -f "$tarball"' EXIT
# minbase: essential packages and apt only; no recommends, documentation, manual pages or locales.
# Merged /usr is set up as debootstrap does (directory links), not by the usrmerge package, which
# would bring Perl (about 46 MB) into the image.
mmdebstrap --variant=minbase --include="$PACKAGES" \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --aptopt='APT::Install-Recommends "false"' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/*' \
    "$SUITE" "$tarball" \
    "deb $MIRROR $SUITE main" "deb $MIRROR $SUITE-updates main" "deb $SECURITY_MIRROR $SUITE-security main"

docker import \
    --change "LABEL $LABEL=$recipe" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    --message "Debian $SUITE minbase with $PACKAGES" \
    "$tarball" "$IMAGE"
