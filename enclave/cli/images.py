"""`enclave image build|status`: the researcher notebook image (see enclave/images.py)."""

from __future__ import annotations

import json

from enclave import images
from enclave.cli.context import load


def register(sub) -> None:
    p = sub.add_parser("image", help="build or inspect the researcher notebook image")
    s = p.add_subparsers(dest="image_cmd", required=True)
    b = s.add_parser(
        "build",
        help="build the notebook image (fetches missing wheels into the wheelhouse first; "
        "works with no registry)",
    )
    b.add_argument("--no-cache", action="store_true", help="rebuild every layer")
    b.add_argument("--quiet", "-q", action="store_true", help="print only the result")
    b.set_defaults(func=_build)
    e = s.add_parser(
        "ensure", help="build the image only if it is missing or its inputs changed (what `make up` runs); "
        "with [swarm] enabled, the gateway image too"
    )
    e.set_defaults(func=_ensure)
    g = s.add_parser("gateway", help="build the swarm gateway image ([swarm] gateway_image) if it is missing "
                     "or its inputs changed")
    g.set_defaults(func=_gateway)
    st = s.add_parser("status", help="show the image, its ID, whether it matches today's inputs")
    st.add_argument("--json", action="store_true", help="machine-readable output")
    st.set_defaults(func=_status)


def _build(args) -> int:
    s = load(args, migrate=False)
    log = (lambda line: None) if args.quiet else (lambda line: print(line, flush=True))
    record = images.build_notebook_image(s, no_cache=args.no_cache, log=log)
    print(f"{record.image} {record.id} ({record.size_bytes / 1e6:.0f} MB, {record.build_seconds:.0f} s)")
    return 0


def _ensure(args) -> int:
    s = load(args, migrate=False)
    print(images.ensure_notebook_image(s, log=lambda line: print(line, flush=True)))
    if s.swarm.enabled:  # each server's gateway runs on this host
        print(images.ensure_gateway_image(s, log=lambda line: print(line, flush=True)))
    return 0


def _gateway(args) -> int:
    s = load(args, migrate=False)
    print(images.ensure_gateway_image(s, log=lambda line: print(line, flush=True)))
    return 0


def _status(args) -> int:
    s = load(args, migrate=False)
    info = images.status(s)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0 if info["current"] else 1
    if not info["present"]:
        print(f"{info['image']}: not built (run `enclave image build`)")
    else:
        state = "current" if info["current"] else "stale: its inputs changed, run `enclave image build`"
        print(f"{info['image']}: {info['id']} ({info['size_bytes'] / 1e6:.0f} MB), {state}")
    print(f"base image: {info['base_image']}")
    print(f"wheelhouse: {info['wheelhouse']} ({info['wheels']} wheels)")
    rec = info["recorded"]
    if rec:
        print(f"last build: {rec['built_at']} in {rec['build_seconds']:.0f} s, {rec['id']}")
    return 0 if info["current"] else 1
