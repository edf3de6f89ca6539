"""`enclave packages bundle|import|list|allow|deny`: the offline package repository (docs/packages.md).

`bundle` runs on a connected host (it needs PyPI or a local wheel folder, and no enclave state);
everything else runs on the enclave host.
"""

from __future__ import annotations

from pathlib import Path

from enclave import bundles, db, packages
from enclave.cli.context import load
from enclave.cli.util import actor, print_table


def register(sub) -> None:
    p = sub.add_parser("packages", help="the offline package repository and what researchers may install")
    s = p.add_subparsers(dest="packages_cmd", required=True)
    b = s.add_parser("bundle", help="(connected host) download wheels for the notebook image into a new bundle folder")
    b.add_argument("requirements", nargs="*", metavar="REQ", help="pip requirements, e.g. 'lifelines==0.30'")
    b.add_argument("-o", "--out", required=True, type=Path, help="new folder to write the bundle to")
    b.add_argument("--r-source", action="append", default=[], type=Path, metavar="PKG_VER.tar.gz",
                   help="an R source package to add (from CRAN's src/contrib); repeatable")
    b.add_argument("--requirement", "-r", action="append", default=[], type=Path, metavar="FILE",
                   help="a requirements file to read requirements from")
    b.add_argument("--find-links", type=Path, metavar="DIR", help="also look for wheels in this folder")
    b.add_argument("--no-index", action="store_true", help="only from --find-links, not from PyPI")
    b.set_defaults(func=_bundle)
    i = s.add_parser("import", help="verify a bundle folder and add its files to the repository (all or nothing)")
    i.add_argument("bundle", type=Path)
    i.add_argument("--manifest-sha256", help="refuse unless the manifest has this sha256 (printed by `bundle`)")
    i.set_defaults(func=_import)
    ls = s.add_parser("list", help="the allow-list with what the repository holds")
    ls.add_argument("--project", help="the site's rules and this project's")
    ls.add_argument("--missing", action="store_true", help="only allowed packages the repository lacks "
                    "(what the next bundle must bring)")
    ls.set_defaults(func=_list)
    for name, allowed in (("allow", True), ("deny", False)):
        a = s.add_parser(name, help=f"{name} a package for the whole site or one project")
        a.add_argument("name")
        a.add_argument("--project", help="only for this project (default: the whole site)")
        a.add_argument("--versions", default="", help="only these versions, e.g. '==0.30' (default: any)")
        a.add_argument("--r", dest="ecosystem", action="store_const", const="r", default="python",
                       help="an R package (default: Python)")
        a.add_argument("--reason", default="")
        a.set_defaults(func=_rule, allowed=allowed)


def _requirements(args) -> list[str]:
    reqs = list(args.requirements)
    for f in args.requirement:
        reqs += [ln.split("#")[0].strip() for ln in f.read_text().splitlines() if ln.split("#")[0].strip()]
    return reqs


def _bundle(args) -> int:
    pip_args = (["--find-links", str(args.find_links)] if args.find_links else []) + \
        (["--no-index"] if args.no_index else [])
    manifest = bundles.make(_requirements(args), args.out, r_sources=args.r_source, pip_args=pip_args)
    sha = bundles.sha256_of(args.out / bundles.MANIFEST)
    print(f"bundle {args.out}: {len(manifest['files'])} file(s); manifest sha256 {sha}")
    print(f"on the enclave: enclave packages import {args.out} --manifest-sha256 {sha}")
    return 0


def _import(args) -> int:
    s = load(args)
    with db.transaction(s.database_url) as session:
        new, present = bundles.import_bundle(session, s.state_dir, actor(), args.bundle, args.manifest_sha256)
    print(f"imported {len(new)} new file(s), {len(present)} already present")
    for f in new:
        print(f"  {f.ecosystem}  {f.name} {f.version}  {f.filename}")
    return 0


def _list(args) -> int:
    s = load(args)
    with db.transaction(s.database_url) as session:
        entries = packages.missing(session) if args.missing else packages.listing(session, args.project)
    print_table(["ecosystem", "package", "scope", "rule", "versions", "in repository"], [
        (e.ecosystem, e.name, e.scope or "site", "allow" if e.allowed else "deny", e.versions or "any",
         ", ".join(e.in_repository) or "-") for e in entries])
    return 0


def _rule(args) -> int:
    s = load(args)
    with db.transaction(s.database_url) as session:
        rule, changed = packages.set_rule(session, actor(), args.ecosystem, args.name, allowed=args.allowed,
                                          project=args.project, versions=args.versions, reason=args.reason)
        print(f"{'' if changed else 'already '}{'allowed' if rule.allowed else 'denied'} {rule.ecosystem} package "
              f"'{rule.name}' {rule.versions or '(any version)'} for "
              f"{('project ' + rule.scope) if rule.scope else 'the whole site'}")
    return 0
