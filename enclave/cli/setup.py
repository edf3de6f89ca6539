"""`enclave init`, `enclave up`, `enclave settings docs`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from enclave import secrets_store
from enclave import settings as settings_mod
from enclave.cli.context import load


def register(sub) -> None:
    sub.add_parser("init", help="create the state folder, secrets and database (idempotent)").set_defaults(func=_init)
    sub.add_parser("up", help="start JupyterHub and its proxy in the foreground").set_defaults(func=_up)
    p = sub.add_parser("settings", help="show settings")
    s = p.add_subparsers(dest="settings_cmd", required=True)
    d = s.add_parser("docs", help="print the Markdown table of every settings key")
    d.add_argument("--readme", metavar="FILE", help="instead, rewrite the table inside FILE (README.md)")
    d.set_defaults(func=_docs)
    s.add_parser("show", help="print the effective settings").set_defaults(func=_show)


def _init(args) -> int:
    s = load(args)
    secrets_store.ensure_all(s.state_dir)
    print(f"state folder ready: {s.state_dir}")
    print(f"database: {s.database_url.split('@')[-1]}")
    return 0


def _up(args) -> int:
    s = load(args)
    secrets_store.ensure_all(s.state_dir)
    config = Path(__file__).resolve().parents[2] / "hub" / "jupyterhub_config.py"
    env = dict(os.environ)
    if getattr(args, "config", None):
        env["ENCLAVE_CONFIG"] = str(Path(args.config).resolve())
    elif s.source != "defaults":
        env["ENCLAVE_CONFIG"] = str(Path(s.source).resolve())
    env["ENCLAVE_STATE_DIR"] = str(s.state_dir)
    os.chdir(s.state_dir)
    jupyterhub = str(Path(sys.executable).with_name("jupyterhub"))
    print(f"starting JupyterHub on {s.public_url}/hub/login", flush=True)
    os.execve(jupyterhub, [jupyterhub, "-f", str(config)], env)
    return 0  # not reached


def _docs(args) -> int:
    if args.readme:
        path = Path(args.readme)
        path.write_text(settings_mod.with_docs_table(path.read_text()))
        print(f"updated the settings table in {path}")
    else:
        print(settings_mod.docs_markdown())
    return 0


def _show(args) -> int:
    s = load(args, migrate=False)
    print(f"# from {s.source}; state_dir resolves to {s.state_dir}")
    for name, cls in settings_mod.SECTIONS.items():
        section = getattr(s, name)
        print(f"[{name}]")
        for key in sorted(cls.class_traits(config=True)):
            value = getattr(section, key)
            if "secret" in key and value:
                value = "***"
            print(f"{key} = {value!r}")
    return 0
