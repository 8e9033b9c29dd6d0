#!/usr/bin/env bash
# Make a local Python 3.11 base image from Debian's packages, for a machine that reaches Debian's
# archive but no image registry (no `docker pull python:3.11-slim`). Then build the PRIME image on it:
#   infra/docker/build-base.sh            # once: ~1 min, the image `prime-base:bookworm`
#   make image BASE_IMAGE=prime-base:bookworm
# Idempotent: an existing image is kept (FORCE=1 rebuilds it). Needs root (debootstrap) and the
# `debootstrap` package (apt-get install -y debootstrap).
#
# Debian 12 (bookworm) ships Python 3.11 as /usr/bin/python3, with no `python` or `pip` on PATH and
# pip "externally managed" (PEP 668): the Dockerfile makes its own venv, which works on this base
# and on python:3.11-slim alike.
#
# The host's own CA certificates (EXTRA_CA_DIR, *.crt, as update-ca-certificates reads them) are
# trusted in the image too: a host behind a TLS-inspecting proxy reaches the package index through
# it, and so must `pip install` inside `docker build`. None there: nothing is added.
set -euo pipefail

IMAGE="${BASE_IMAGE:-prime-base:bookworm}"
SUITE="${SUITE:-bookworm}"                                # Debian 12: python3 is 3.11
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
EXTRA_CA_DIR="${EXTRA_CA_DIR:-/usr/local/share/ca-certificates}"
PACKAGES="python3,python3-venv,ca-certificates"           # venv brings ensurepip's pip wheel

if [ -z "${FORCE:-}" ] && docker image inspect "${IMAGE}" > /dev/null 2>&1; then
  echo "base image ${IMAGE} exists (FORCE=1 rebuilds it)"
  exit 0
fi
if ! command -v debootstrap > /dev/null; then
  echo "needs debootstrap: apt-get install -y debootstrap" >&2
  exit 2
fi
if [ "$(id -u)" != 0 ]; then
  echo "debootstrap needs root: sudo $0" >&2
  exit 2
fi
docker info > /dev/null  # fail now, not after the download, if no daemon answers

ROOTFS="$(mktemp -d "${TMPDIR:-/tmp}/prime-base.XXXXXX")"
cleanup() {
  # debootstrap mounts /proc and /sys inside the tree; unmount any it left before removing it
  { grep -o " ${ROOTFS}/[^ ]*" /proc/mounts || true; } | sort -r | while read -r mnt; do
    umount -l "${mnt}" || true
  done
  rm -rf --one-file-system "${ROOTFS}"
}
trap cleanup EXIT

echo "debootstrap ${SUITE} (${MIRROR}) into ${ROOTFS}"
debootstrap --variant=minbase --include="${PACKAGES}" "${SUITE}" "${ROOTFS}" "${MIRROR}"

shopt -s nullglob
extra_cas=("${EXTRA_CA_DIR}"/*.crt)
if [ "${#extra_cas[@]}" -gt 0 ]; then
  echo "trusting the host's extra CA certificates: ${extra_cas[*]}"
  cp "${extra_cas[@]}" "${ROOTFS}/usr/local/share/ca-certificates/"
  chroot "${ROOTFS}" update-ca-certificates
fi

# what a container never reads: package lists and caches, docs, man pages, other locales
rm -rf "${ROOTFS}"/var/lib/apt/lists/* "${ROOTFS}"/var/cache/apt/* "${ROOTFS}"/var/log/* \
  "${ROOTFS}"/usr/share/doc/* "${ROOTFS}"/usr/share/man/* "${ROOTFS}"/usr/share/info/* \
  "${ROOTFS}"/tmp/*
find "${ROOTFS}/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name 'C.*' -exec rm -rf {} +

tar -C "${ROOTFS}" --numeric-owner -c . | docker import \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["/usr/bin/python3"]' \
  --message "debootstrap ${SUITE} minbase + ${PACKAGES} (infra/docker/build-base.sh)" \
  - "${IMAGE}"
docker run --rm "${IMAGE}" /usr/bin/python3 --version
echo "base image ${IMAGE}: $(docker image inspect --format '{{.Size}}' "${IMAGE}") bytes"
