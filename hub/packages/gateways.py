"""Which project a connection to the package index comes from: the project whose network gateway is the
address it arrived at (the firewall lets a project bridge reach only its own gateway)."""

from __future__ import annotations

import threading
import time

from enclave import network


class ProjectsByGateway:
    """gateway address -> project slug, from this site's project networks (Docker labels and name prefix),
    re-read when an unknown address asks (at most once a second)."""

    def __init__(self, client, network_prefix: str, refresh_seconds: float = 1.0):
        self.client, self.prefix, self.refresh_seconds = client, network_prefix, refresh_seconds
        self._map: dict[str, str] = {}
        self._read_at = 0.0
        self._lock = threading.Lock()

    def _read(self) -> dict[str, str]:
        out = {}
        for net in self.client.networks.list(filters={"label": network.LABEL}):
            info = net.attrs
            slug = (info.get("Labels") or {}).get(network.LABEL, "")
            if not slug or info.get("Name") != network.network_name(self.prefix, slug) or not info.get("Internal"):
                continue
            try:
                out[network.gateway_of(info)] = slug
            except RuntimeError:
                continue
        return out

    def __call__(self, address: str) -> str | None:
        with self._lock:
            if address not in self._map and time.monotonic() - self._read_at > self.refresh_seconds:
                self._map, self._read_at = self._read(), time.monotonic()
            return self._map.get(address)
