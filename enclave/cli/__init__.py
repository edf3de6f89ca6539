"""`enclave`: the operator's command. Each sub-command group lives in its own module with a
`register(subparsers)` function, imported below; errors are EnclaveError/SettingsError with a message for a person,
printed to stderr with exit status 2, and nothing is left half-written (one transaction per command).
"""

from __future__ import annotations

import argparse
import sys

from enclave.cli import (
    audit,
    check,
    demo,
    egress,
    firewall,
    images,
    ingest,
    mfa,
    optout,
    packages,
    projects,
    setup,
    swarm,
    transparency,
    users,
    volumes,
)
from enclave.errors import EnclaveError
from enclave.settings import SettingsError

# Modules that add sub-commands, in the order they appear in --help. This package is the top layer:
# it may import every part (hub, egress_review, ingest); nothing imports it back (see .importlinter).
COMMAND_MODULES = [setup, users, mfa, projects, volumes, audit, demo, firewall, check, egress, ingest, optout, images, packages, transparency, swarm]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="enclave", description="Run and administer the research enclave.")
    parser.add_argument("--config", help="settings file (default: $ENCLAVE_CONFIG, else ./enclave.toml)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (EnclaveError, SettingsError) as exc:
        print(f"enclave: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
