"""pip as usual, plus one line per package the project may not install saying how to ask for it.

A convenience only: the package index on the host decides what can be installed (it never serves a
package outside the project's allow-list, whatever pip is told). pip itself hides the index's answer
("from versions: none"), so after a failed install this asks the index why, for each name given.
"""

from __future__ import annotations

import os
import sys
import urllib.parse
import urllib.request

_TAKES_VALUE = {"-r", "--requirement", "-c", "--constraint", "-e", "--editable", "-t", "--target", "--prefix",
                "--root", "-i", "--index-url", "--extra-index-url", "-f", "--find-links", "--src",
                "--upgrade-strategy", "--platform", "--python-version", "--implementation", "--abi", "-d",
                "--dest", "--progress-bar", "--report", "--log", "--cache-dir", "--trusted-host", "--proxy",
                "--timeout", "--retries", "--config-settings", "-C", "--global-option", "--no-binary",
                "--only-binary"}


def requested_names(args: list[str]) -> list[str]:
    """Package names given on an install command line (options and their values skipped)."""
    from pip._vendor.packaging.requirements import InvalidRequirement, Requirement

    names, skip = [], False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg.startswith("-"):
            skip = arg in _TAKES_VALUE
            continue
        try:
            names.append(Requirement(arg).name)
        except InvalidRequirement:
            continue
    return names


def explain(names: list[str]) -> None:
    index = os.environ.get("ENCLAVE_PACKAGE_INDEX")
    if not index:
        return
    for name in names:
        url = f"{index}/refusal/python/{urllib.parse.quote(name)}"
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                text = r.read(2000).decode("utf-8", "replace").strip()
        except OSError:
            continue
        if text and " is allowed" not in text:
            print(f"enclave: {text}", file=sys.stderr)


def main() -> int:
    from pip._internal.cli.main import main as pip_main

    code = pip_main()
    if code and len(sys.argv) > 1 and sys.argv[1] in ("install", "download", "wheel"):
        explain(requested_names(sys.argv[2:]))
    return code
