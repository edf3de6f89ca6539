"""The Ansible deployment, for real: `ansible-lint` at the production profile, then the molecule scenario
ansible/molecule/default on two fresh Debian 12 containers booting systemd with Docker inside, and
ansible/molecule/swarm (a hub's host managing a swarm of two workers: verify checks the nodes, their
labels, the workers' daemon hardening and firewall).

Steps (each timed, the table printed at the end): create -> converge -> idempotence (a second run
changes nothing) -> side_effect (use, back up, restore on the second host, restart the first) ->
verify (from the controller: HTTPS login page, services, firewall after the restart, a notebook
server spawned for a researcher who logged in with password + TOTP, the audit chain on the restored
host) -> destroy. Fails, never skips, without a Docker engine. Takes 15-25 minutes on 2 cores.

Run alone: `.venv/bin/python -m pytest -m ansible -s` (the controller tools from ansible/requirements.txt
are installed into the venv first).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.ansible, pytest.mark.timeout(45 * 60)]

REPO = Path(__file__).resolve().parents[2]
ANSIBLE = REPO / "ansible"
BIN = Path(sys.executable).parent
STEPS = ["create", "converge", "idempotence", "side-effect", "verify"]


def _run(argv: list[str], log: Path, env: dict, cwd: Path = ANSIBLE, timeout: int = 1800) -> tuple[int, float]:
    started = time.monotonic()
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(argv)}\n")
        out.flush()
        rc = subprocess.run(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=timeout).returncode
    return rc, time.monotonic() - started


def _tail(log: Path, lines: int = 60) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _snapshot(dest: Path) -> Path:
    """A copy of the working tree's files (tracked and new, not ignored) in a fresh git repository:
    what the scenario ships stays the same from the first converge to the idempotence run even while
    the working tree is being edited."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "-c", "-o", "--exclude-standard", "--deduplicate"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout.split(b"\0")
    for name in filter(None, files):
        src = REPO / os.fsdecode(name)
        if src.is_file():
            target = dest / os.fsdecode(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    return dest


def _probe_bundle(folder: Path) -> Path:
    """A package bundle with one small wheel (`molecule-probe` 1.0), as `enclave packages bundle` makes it."""
    from enclave import bundles
    from tests.support.wheels import wheel

    wheel(folder / "wheels", "molecule-probe", "1.0")
    out = folder / "molecule-probe"
    bundles.make(["molecule-probe"], out, pip_args=["--no-index", "--find-links", str(folder / "wheels")])
    return out


@pytest.fixture(scope="module")
def controller_env(docker_client, tmp_path_factory):
    """The venv with the pinned controller tools, the debootstrap base image, a unique run id."""
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
         "-c", str(REPO / "constraints.txt"), "-r", str(ANSIBLE / "requirements.txt")],
        check=True,
    )
    subprocess.run([str(REPO / "images/base/build-base.sh")], check=True)
    env = dict(os.environ)
    env["ENCLAVE_SOURCE_DIR"] = str(_snapshot(tmp_path_factory.mktemp("source")))
    env["ENCLAVE_TEST_BUNDLE"] = str(_probe_bundle(tmp_path_factory.mktemp("bundle")))
    env.update(
        PATH=f"{BIN}:{env.get('PATH', '')}",
        ENCLAVE_MOLECULE_ID=uuid.uuid4().hex[:8],
        # molecule's own state (created/converged, inventory) per run, never shared with another run
        MOLECULE_EPHEMERAL_DIRECTORY=str(tmp_path_factory.mktemp("molecule-state")),
        ANSIBLE_NOCOLOR="1",
        NO_COLOR="1",
        PY_COLORS="0",
        ANSIBLE_FORCE_COLOR="0",
    )
    env.pop("ENCLAVE_CONFIG", None)
    return env


def test_group_vars_document_every_role_default():
    """group_vars/all.yml is the operator's reference: every role default appears there."""
    documented = yaml.safe_load((ANSIBLE / "group_vars/all.yml").read_text())
    missing = []
    for defaults in sorted(ANSIBLE.glob("roles/*/defaults/main.yml")):
        for key in yaml.safe_load(defaults.read_text()) or {}:
            if key not in documented:
                missing.append(f"{defaults.parent.parent.name}: {key}")
            if not key.startswith(defaults.parent.parent.name + "_"):
                missing.append(f"{key} lacks the role prefix")
    assert not missing, missing


def test_ansible_lint_production_profile(controller_env, tmp_path):
    log = tmp_path / "lint.log"
    rc, _ = _run([str(BIN / "ansible-lint"), "--profile", "production", "--offline"], log, controller_env)
    assert rc == 0, _tail(log)


def _scenario(name: str, steps: list[str], controller_env, tmp_path, capsys) -> None:
    """Run molecule's `steps` of scenario `name` (each timed), always destroy, leave nothing behind."""
    log = tmp_path / f"molecule-{name}.log"
    molecule = str(BIN / "molecule")
    # molecule's state of this scenario only (created/converged, inventory)
    controller_env = dict(controller_env, MOLECULE_EPHEMERAL_DIRECTORY=str(tmp_path / "molecule-state"))
    timings: list[tuple[str, float]] = []
    failure = ""
    try:
        for step in steps:
            rc, seconds = _run([molecule, step, "-s", name], log, controller_env)
            timings.append((step, seconds))
            if rc != 0:
                failure = f"molecule {step} -s {name} failed (log {log}):\n{_tail(log)}"
                break
            if step == "idempotence":
                # molecule's own check fails on any change; keep the recap as evidence.
                recaps = re.findall(r"changed=(\d+)", log.read_text().rsplit("$ ", 1)[-1])
                assert recaps and all(n == "0" for n in recaps), "second converge changed something"
    finally:
        rc, seconds = _run([molecule, "destroy", "-s", name], log, controller_env)
        timings.append(("destroy", seconds))
        with capsys.disabled():
            print(f"\nmolecule scenario {name} timings (run {controller_env['ENCLAVE_MOLECULE_ID']}):")
            for step, secs in timings:
                print(f"  {step:<12} {secs:7.1f} s")
            print(f"  {'total':<12} {sum(s for _, s in timings):7.1f} s")
    assert not failure, failure
    leftovers = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"name=enclave-mol-{controller_env['ENCLAVE_MOLECULE_ID']}"],
        capture_output=True, text=True,
    ).stdout.strip()
    assert not leftovers, f"containers left behind: {leftovers}"


def test_molecule_scenario(controller_env, tmp_path, capsys):
    _scenario("default", STEPS, controller_env, tmp_path, capsys)


def test_molecule_swarm_scenario(controller_env, tmp_path, capsys):
    """The hub's host as the swarm's manager and two workers: converge, idempotence, verify."""
    _scenario("swarm", ["create", "prepare", "converge", "idempotence", "verify"], controller_env, tmp_path, capsys)
