"""Services the hub runs (JupyterHub managed services) and what they share."""

from __future__ import annotations

import argparse
import logging
import os


def start(prog: str, name: str, description: str):
    """A managed service's start: its (empty) command line, logging under its name, the enclave settings,
    and a client for the hub API with the token the hub gave it."""
    from enclave import settings as settings_mod
    from enclave.hubapi import HubAPI

    argparse.ArgumentParser(prog=prog, description=description).parse_args()
    logging.basicConfig(level=logging.INFO, format=f"[%(levelname).1s %(asctime)s {name}] %(message)s")
    return settings_mod.load(), HubAPI(os.environ["JUPYTERHUB_API_URL"], os.environ["JUPYTERHUB_API_TOKEN"])
