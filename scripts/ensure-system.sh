#!/usr/bin/env bash
# Install what the enclave needs on a fresh Debian 12 host and make sure a Docker engine answers.
# Idempotent and quiet when everything is there. Usage: scripts/ensure-system.sh [test]
#   (with "test", also the packages only the test-suite needs: PostgreSQL, Chromium.)
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian package -> a file it provides; a package is installed only when that file is missing, so a
# host that already has the tool from elsewhere (e.g. Node.js with its own npm) is left as it is.
declare -A need=(
  [docker.io]=/usr/sbin/dockerd [iptables]=/usr/sbin/iptables [debootstrap]=/usr/sbin/debootstrap
  [nodejs]=node [npm]=npm [ca-certificates]=/etc/ssl/certs/ca-certificates.crt
  [nftables]=/usr/sbin/nft [haproxy]=/usr/sbin/haproxy [clamav]=/usr/bin/clamscan
)
if [ "${1:-}" = test ]; then
  need[postgresql]=/usr/lib/postgresql/*/bin/initdb
  need[chromium]=/usr/bin/chromium
fi
missing=()
for p in "${!need[@]}"; do
  f=${need[$p]}
  case "$f" in
    /*) compgen -G "$f" >/dev/null || missing+=("$p") ;;
    *) command -v "$f" >/dev/null || missing+=("$p") ;;
  esac
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# configurable-http-proxy, pinned by package-lock.json
if [ ! -x node_modules/.bin/configurable-http-proxy ]; then
  echo "installing configurable-http-proxy (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi

scripts/ensure-dockerd.sh
