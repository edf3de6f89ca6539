#!/usr/bin/env bash
# Start dockerd in the background when no Docker engine answers (hosts without systemd), and wait.
set -euo pipefail
if docker info >/dev/null 2>&1; then exit 0; fi
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  systemctl start docker
else
  echo "starting dockerd (log: /var/log/enclave-dockerd.log)"
  nohup dockerd >/var/log/enclave-dockerd.log 2>&1 &
fi
for _ in $(seq 1 60); do
  docker info >/dev/null 2>&1 && exit 0
  sleep 1
done
echo "error: the Docker engine did not answer within 60 s; see /var/log/enclave-dockerd.log" >&2
exit 1
