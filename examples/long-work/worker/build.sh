#!/usr/bin/env bash
# Builds the worker image FROM scratch with the host's static busybox (Debian's
# busybox-static: apt-get install busybox-static). Nothing is pulled from a registry.
# Usage: worker/build.sh [TAG]   (default stepyard-example/backfill-worker:1)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
tag="${1:-stepyard-example/backfill-worker:1}"
busybox="${BUSYBOX:-/bin/busybox}"
if [ ! -x "$busybox" ]; then
  echo "build.sh: no $busybox: apt-get install busybox-static (scripts/test installs it)" >&2
  exit 1
fi
# An image FROM scratch has no libc: the busybox must be the static one.
if ldd "$busybox" >/dev/null 2>&1; then
  echo "build.sh: $busybox is dynamically linked: install busybox-static" >&2
  exit 1
fi
context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
cp "$busybox" "$context/busybox"
cp "$here/Dockerfile" "$here/work.sh" "$context/"
docker build -q -t "$tag" "$context" >/dev/null
echo "$tag"
