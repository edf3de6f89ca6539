#!/usr/bin/env bash
# Build the Debian 12 base image with no container registry: debootstrap from Debian's mirror, then
# `docker import`. Usage: images/base/build-base.sh [IMAGE_NAME]   (default enclave-base:bookworm)
# Skips the work when the image already exists. Sites with a registry pass BASE_IMAGE to the
# Dockerfiles instead and never need this.
set -euo pipefail
name="${1:-enclave-base:bookworm}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
if docker image inspect "$name" >/dev/null 2>&1; then exit 0; fi
command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; }
dir="$(mktemp -d /var/tmp/enclave-base.XXXXXX)"
trap 'rm -rf "$dir"' EXIT
echo "debootstrap bookworm into $dir (a few minutes)"
debootstrap --variant=minbase --include=ca-certificates bookworm "$dir" "$mirror" >"$dir.log" 2>&1 \
  || { tail -20 "$dir.log" >&2; exit 1; }
rm -f "$dir.log"
# Keep apt lean inside images, as the official Debian images do.
rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
tar -C "$dir" -c . | docker import -c 'CMD ["/bin/bash"]' -c 'ENV LANG=C.UTF-8' - "$name" >/dev/null
echo "built $name"
