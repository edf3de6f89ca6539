"""`enclave`: the operator's command. Each sub-command group lives in its own module with a
`register(subparsers)` function; errors are EnclaveError/SettingsError with a message for a person,
printed to stderr with exit status 2, and nothing is left half-written (one transaction per command).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from hub.errors import EnclaveError
from hub.settings import SettingsError

# Modules that add sub-commands, in the order they appear in --help.
COMMAND_MODULES = [
    "hub.cli.setup",
    "hub.cli.users",
    "hub.cli.mfa",
    "hub.cli.projects",
    "hub.cli.audit",
    "hub.cli.demo",
    "hub.cli.firewall",
    "egress_review.cli_check",
    "egress_review.cli",
    "ingest.cli",
    "hub.cli.images",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="enclave", description="Run and administer the research enclave.")
    parser.add_argument("--config", help="settings file (default: $ENCLAVE_CONFIG, else ./enclave.toml)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
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
