"""Registers the public transparency register (`python -m transparency`) as a JupyterHub managed service.

The hub's proxy publishes it at /services/transparency/ to anyone, without login: the service shows
only what `[transparency]` allows (see transparency/__init__.py). It listens on loopback only.
"""

from __future__ import annotations

import sys

from hub.hubconfig import register_service

SERVICE = "transparency"


def configure(c, s) -> None:
    if s.transparency.enabled:
        register_service(c, s, {
            "name": SERVICE, "url": f"http://127.0.0.1:{s.transparency.port}", "display": True,
            "info": {"description": "Public register of projects, releases and objections"},
            "command": [sys.executable, "-m", "transparency"],
        })
