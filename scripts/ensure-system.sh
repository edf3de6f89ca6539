#!/usr/bin/env bash
# Install what the enclave needs on a fresh Debian 12 host and make sure a Docker engine answers.
# Idempotent and quiet when everything is there. Usage: scripts/ensure-system.sh [test]
#   (with "test", also the packages only the test-suite needs: PostgreSQL, Chromium.)
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(docker.io iptables debootstrap nodejs npm ca-certificates)
[ "${1:-}" = test ] && pkgs+=(postgresql chromium)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
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
