"""`enclave transparency export|verify|compare|public-key`: the signed public register (docs/transparency.md)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from enclave.cli.context import load
from enclave.cli.util import actor
from enclave.errors import Invalid

from transparency import export, signing
from transparency import register as public_register


def register(sub) -> None:
    p = sub.add_parser("transparency", help="the public register of projects, releases and objections")
    s = p.add_subparsers(dest="transparency_cmd", required=True)
    e = s.add_parser("export", help="write a signed copy of the register (the audit chain is verified first)")
    e.add_argument("-o", "--out", type=Path, help="file to write (default: stdout)")
    e.set_defaults(func=_export)
    v = s.add_parser("verify", help="check a copy's signature")
    v.add_argument("file", type=Path)
    v.add_argument("--public-key", help="the site's public key (base64) to require; default: the one in the file")
    v.set_defaults(func=_verify)
    c = s.add_parser("compare", help="check that a newer copy continues an older one (no history rewritten)")
    c.add_argument("older", type=Path)
    c.add_argument("newer", type=Path)
    c.add_argument("--public-key", help="the site's public key (base64) both must be signed with")
    c.set_defaults(func=_compare)
    s.add_parser("public-key", help="print the site's public key").set_defaults(func=_public_key)


def _export(args) -> int:
    env = export.export(load(args), actor())
    text = json.dumps(env, indent=1, sort_keys=True) + "\n"
    if args.out:
        tmp = args.out.with_name(f".{args.out.name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, args.out)
        head = env["register"]["audit"]["head"] or {}
        print(f"wrote {args.out}: audit head event {head.get('seq', 0)}, chain verified: "
              f"{env['register']['audit']['chain_verified']}, key id {env['signature']['key_id']}")
    else:
        sys.stdout.write(text)
    return 0


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise Invalid(f"{path} cannot be read as JSON: {exc}") from None


def _verify(args) -> int:
    reg = signing.verify(_read(args.file), args.public_key)
    print(f"signature valid: {args.file} (generated {reg.get('generated_at')}, key id "
          f"{signing.key_id(args.public_key) if args.public_key else 'as in the file'})")
    return 0


def _compare(args) -> int:
    older = signing.verify(_read(args.older), args.public_key)
    newer = signing.verify(_read(args.newer), args.public_key)
    a, b = _read(args.older)["signature"]["public_key"], _read(args.newer)["signature"]["public_key"]
    if a != b:
        raise Invalid("the two copies are signed with different keys")
    public_register.check_timeline(older, newer)
    lines = public_register.compare(older, newer)
    for line in lines:
        print(line)
    return 1 if any(line.startswith("REWRITTEN") for line in lines) else 0


def _public_key(args) -> int:
    print(signing.public_key(load(args).state_dir))
    return 0
