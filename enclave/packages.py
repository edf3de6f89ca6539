"""The offline package repository's catalogue and its allow-list: what researchers of a project may install.

Files come in only through bundles (enclave.bundles); this module says which of them a project sees.
A name is allowed for a project when the project has an allowing rule for it, or the site has one and
the project does not deny it. What an allowed package needs (its `requires`, as its own metadata says)
is allowed with it, unless denied: researchers ask for `lifelines`, not for its five dependencies.
A rule may limit versions (`==0.30`); files of other versions stay invisible. The package index
(hub.packages) serves exactly `visible_files`; nothing else reaches a notebook container.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version
from sqlalchemy import select
from sqlalchemy.orm import Session

from enclave import audit, clock
from enclave.errors import Invalid, NotFound
from enclave.models import PackageFile, PackageRule, Project

ECOSYSTEMS = ("python", "r")
SITE = ""  # the scope of a site-wide rule
_PY_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)  # PEP 508
_R_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9.]*[A-Za-z0-9]$")  # Writing R Extensions 1.1.1


def normalise(ecosystem: str, name: str) -> str:
    """The name packages are known by: PEP 503 for Python (`Scikit_Learn` = `scikit-learn`); R's as is."""
    name = (name or "").strip()
    if ecosystem == "python":
        if not _PY_NAME.match(name):
            raise Invalid(f"'{name}' is not a Python package name", reason="bad_package_name")
        return re.sub(r"[-_.]+", "-", name).lower()
    if ecosystem == "r":
        if not _R_NAME.match(name):
            raise Invalid(f"'{name}' is not an R package name", reason="bad_package_name")
        return name
    raise Invalid(f"'{ecosystem}' is not a package ecosystem (python or r)", reason="bad_ecosystem")


def check_versions(versions: str) -> str:
    versions = (versions or "").strip()
    try:
        SpecifierSet(versions)
    except InvalidSpecifier:
        raise Invalid(f"'{versions}' is not a version range (e.g. '==0.30' or '>=1.2,<2')",
                      reason="bad_versions") from None
    return versions


def version_matches(versions: str, version: str) -> bool:
    if not versions:
        return True
    try:
        return Version(version) in SpecifierSet(versions)
    except InvalidVersion:
        return False


def versions_held(session: Session, ecosystem: str, name: str) -> list[str]:
    """Versions of a package the repository holds."""
    return sorted({f.version for f in session.execute(select(PackageFile).where(
        PackageFile.ecosystem == ecosystem, PackageFile.name == name)).scalars()})


def _rules(session: Session, ecosystem: str, project: str | None) -> dict[str, PackageRule]:
    """Effective rule per name: the project's own rule wins over the site's."""
    scopes = [SITE] + ([project] if project else [])
    rows = session.execute(select(PackageRule).where(PackageRule.ecosystem == ecosystem,
                                                     PackageRule.scope.in_(scopes))).scalars()
    out: dict[str, PackageRule] = {}
    for r in sorted(rows, key=lambda r: r.scope != SITE):  # site first, project overrides
        out[r.name] = r
    return out


def visible_files(session: Session, ecosystem: str, project: str | None) -> dict[str, list[PackageFile]]:
    """name -> the files a container of `project` may fetch (None: the site's rules only)."""
    rules = _rules(session, ecosystem, project)
    files: dict[str, list[PackageFile]] = defaultdict(list)
    for f in session.execute(select(PackageFile).where(PackageFile.ecosystem == ecosystem)).scalars():
        files[f.name].append(f)
    allowed = {n for n, r in rules.items() if r.allowed}
    denied = {n for n, r in rules.items() if not r.allowed}
    todo, seen = list(allowed), set()
    while todo:  # the dependency closure of what is allowed
        name = todo.pop()
        if name in seen or name in denied:
            continue
        seen.add(name)
        rule = rules.get(name)
        for f in files.get(name, []):
            if rule is None or version_matches(rule.versions, f.version):
                todo.extend(json.loads(f.requires or "[]"))
    out = {}
    for name in sorted(seen):
        rule = rules.get(name)
        kept = [f for f in files.get(name, []) if rule is None or version_matches(rule.versions, f.version)]
        if kept:
            out[name] = sorted(kept, key=lambda f: f.filename)
    return out


@dataclass(frozen=True)
class Entry:
    ecosystem: str
    name: str
    scope: str
    allowed: bool
    versions: str
    in_repository: list[str]  # versions present


def listing(session: Session, project: str | None = None) -> list[Entry]:
    """Every rule (all of them, or the site's and `project`'s) with the versions the repository holds."""
    have: dict[tuple[str, str], set[str]] = defaultdict(set)
    for f in session.execute(select(PackageFile)).scalars():
        have[(f.ecosystem, f.name)].add(f.version)
    q = select(PackageRule).order_by(PackageRule.ecosystem, PackageRule.name, PackageRule.scope)
    q = q.where(PackageRule.scope.in_([SITE, project])) if project else q
    return [Entry(r.ecosystem, r.name, r.scope, r.allowed, r.versions,
                  sorted(have.get((r.ecosystem, r.name), set())))
            for r in session.execute(q).scalars()]


def missing(session: Session) -> list[Entry]:
    """Allowed packages the repository has no file for (in the versions allowed): what the next bundle
    must bring."""
    return [e for e in listing(session) if e.allowed and not any(version_matches(e.versions, v) for v in e.in_repository)]


def set_rule(session: Session, actor: str, ecosystem: str, name: str, *, allowed: bool, project: str | None = None,
             versions: str = "", reason: str = "") -> tuple[PackageRule, bool]:
    """Allow or deny one package for the site or one project (audited `packages.allow` / `packages.deny`);
    a rule that already says so is left as it is. Returns the rule and whether it changed."""
    name = normalise(ecosystem, name)
    versions = check_versions(versions)
    scope = project or SITE
    if project and session.execute(select(Project).where(Project.slug == project)).scalar_one_or_none() is None:
        raise NotFound(f"there is no project '{project}'")
    rule = session.execute(select(PackageRule).where(
        PackageRule.scope == scope, PackageRule.ecosystem == ecosystem, PackageRule.name == name)).scalar_one_or_none()
    if rule is not None and rule.allowed == allowed and rule.versions == versions:
        return rule, False  # already so: nothing written or audited (a playbook run again changes nothing)
    if rule is None:
        rule = PackageRule(scope=scope, ecosystem=ecosystem, name=name)
        session.add(rule)
    rule.allowed, rule.versions, rule.reason = allowed, versions, (reason or "").strip()
    rule.decided_by, rule.decided_at = actor, clock.now()
    session.flush()
    audit.record(session, actor, "packages.allow" if allowed else "packages.deny", f"package:{ecosystem}:{name}",
                 {"project": project, "versions": versions, "reason": rule.reason})
    return rule, True


def refusal(ecosystem: str, name: str, project: str | None) -> str:
    """What a researcher is told when a package is not available to them (shown by pip and R)."""
    where = f"project '{project}'" if project else "this enclave"
    return (f"'{name}' is not on the list of {ecosystem} packages allowed in {where}. Ask for it on the "
            "review pages (Requests > Ask for a package): name, version and why; a steward or admin decides.")
