#!/usr/bin/env bash
# Builds amlrun's local base image and prints its tag on the last line:
#   scripts/base-image.sh [TAG]
# Nothing can be pulled from a registry on the build and CI machines, so the
# image is made from Debian's own packages: debootstrap (Debian 12) into a
# folder, then `docker import`. It carries python3 (also as `python`), pip
# and Open MPI: what amlrun's generated Dockerfile (`python -m pip install`)
# and an `mpi` job (mpirun inside the container) need.
#
# Idempotent: when TAG exists already nothing is built. The default tag
# names a hash of the recipe below, so a changed recipe gets a new image
# rather than a stale one. Concurrent calls build once (a lock).
# Needs root (debootstrap) and a working docker; takes about 2 minutes the
# first time (downloading ~60 MB of packages from deb.debian.org).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# What goes into the image. Changing any of it changes the default tag.
SUITE=bookworm
MIRROR="${AMLRUN_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
INCLUDE=python3,python3-pip,python3-venv,python-is-python3,openmpi-bin,ca-certificates,procps
RECIPE_VERSION=1 # bump when the steps below change what the image holds

recipe_hash="$(printf '%s\n' "$SUITE" "$INCLUDE" "$RECIPE_VERSION" | sha256sum | cut -c1-12)"
TAG="${1:-amlrun-base:debian12-$recipe_hash}"

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

if ! docker info >/dev/null 2>&1; then
  log "docker does not answer ('docker info' failed); the base image needs a running Docker Engine"
  exit 1
fi

if ! image_exists "$TAG"; then
  ensure_packages debootstrap
  # One build per machine at a time; a second caller waits, then finds it.
  exec 9>/tmp/amlrun-base-image.lock
  flock 9
  if ! image_exists "$TAG"; then
    rootfs="$(mktemp -d /var/tmp/amlrun-base-image.XXXXXX)"
    trap 'rm -rf "$rootfs"' EXIT
    start=$(date +%s)
    log "building $TAG: debootstrap $SUITE into $rootfs (log: $rootfs.log)"
    if ! debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$rootfs" "$MIRROR" \
      >"$rootfs.log" 2>&1; then
      tail -n 30 "$rootfs.log" >&2
      log "debootstrap failed; its whole log is $rootfs.log"
      exit 1
    fi
    # The image is a container's whole system, not a shared Debian host: pip
    # installs into it (PEP 668's marker would refuse `pip install`).
    rm -f "$rootfs"/usr/lib/python3*/EXTERNALLY-MANAGED
    # Nothing of the build host belongs in the image.
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
      "$rootfs"/var/log/* "$rootfs"/tmp/*
    tar --numeric-owner -C "$rootfs" -c . |
      docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["/bin/bash"]' \
        --change "LABEL org.amlrun.base-recipe=$recipe_hash" \
        - "$TAG" >/dev/null
    rm -f "$rootfs.log"
    log "built $TAG in $(($(date +%s) - start)) s"
  fi
fi
printf '%s\n' "$TAG"
