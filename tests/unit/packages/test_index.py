"""The package index on loopback, asked by the real pip: a project gets what its allow-list allows (with
its dependencies), nothing else, and pip refuses a repository file that changed on disk."""

import subprocess
import sys

import pytest
import requests
from sqlalchemy import select

from enclave import db, paths
from enclave.models import AuditEvent

from tests.support.package_index import Index
from tests.support.wheels import survkit_bundle


@pytest.fixture
def repo(cli, enclave_env, tmp_path):
    assert cli("packages", "import", str(survkit_bundle(tmp_path)))[0] == 0
    (tmp_path / "d").mkdir()
    assert cli("project", "create", "cardio", "--data", str(tmp_path / "d"))[0] == 0
    assert cli("packages", "allow", "survkit", "--project", "cardio")[0] == 0
    assert cli("packages", "allow", "rtiny", "--r", "--project", "cardio")[0] == 0
    return enclave_env


@pytest.fixture
def index(repo):
    idx = Index(repo, "cardio")
    yield idx
    idx.stop()


def _pip(index, target, *names):
    return subprocess.run([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-cache-dir",
                           "--index-url", f"{index.url}/simple/", "--target", str(target), *names],
                          capture_output=True, text=True, timeout=120)


def test_pip_installs_an_allowed_package_with_its_dependency(index, repo, tmp_path):
    r = _pip(index, tmp_path / "t", "survkit")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "t" / "survkit").is_dir() and (tmp_path / "t" / "tinydep").is_dir()
    with db.transaction(repo.db_url) as s:
        fetched = [e.target for e in s.execute(select(AuditEvent).where(AuditEvent.action == "packages.fetch")).scalars()]
    assert sorted(fetched) == ["package:python:survkit-0.30-py3-none-any.whl", "package:python:tinydep-1.2-py3-none-any.whl"]


def test_a_package_off_the_list_is_invisible_and_explained(index, tmp_path):
    r = _pip(index, tmp_path / "t", "other")
    assert r.returncode != 0 and "from versions: none" in r.stderr
    assert requests.get(f"{index.url}/files/python/other-2.0-py3-none-any.whl").status_code == 404
    assert "other" not in requests.get(f"{index.url}/simple/").text
    why = requests.get(f"{index.url}/refusal/python/other")
    assert "is not on the list of python packages allowed in project 'cardio'" in why.text
    assert "Ask for it on the review pages" in why.text


def test_an_address_no_project_owns_sees_nothing(repo, tmp_path):
    idx = Index(repo, None)
    try:
        assert requests.get(f"{idx.url}/simple/survkit/").status_code == 404
        assert requests.get(f"{idx.url}/files/python/survkit-0.30-py3-none-any.whl").status_code == 404
    finally:
        idx.stop()


def test_pip_refuses_a_repository_file_changed_on_disk(index, repo, tmp_path):
    stored = paths.packages(repo.state_dir, "python") / "tinydep-1.2-py3-none-any.whl"
    stored.chmod(0o644)
    data = bytearray(stored.read_bytes())
    data[-20] ^= 1
    stored.write_bytes(bytes(data))
    r = _pip(index, tmp_path / "t", "survkit")
    assert r.returncode != 0 and "THESE PACKAGES DO NOT MATCH THE HASHES" in r.stderr
    assert not (tmp_path / "t" / "tinydep").exists()


def test_r_tree_lists_only_allowed_sources(index):
    text = requests.get(f"{index.url}/cran/src/contrib/PACKAGES").text
    assert "Package: rtiny\nVersion: 1.0.2\n" in text
    assert requests.get(f"{index.url}/cran/src/contrib/rtiny_1.0.2.tar.gz").status_code == 200
    assert requests.post(f"{index.url}/cran/src/contrib/PACKAGES").status_code == 405


@pytest.mark.parametrize("path", ["/simple/..%2F..%2Fetc/", "/files/python/..%2F..%2Fenclave.sqlite",
                                  "/files/python/%2e%2e/secrets", "/cran/src/contrib/..%2Fpython%2Fsurvkit-0.30-py3-none-any.whl"])
def test_traversal_gets_nothing(index, path):
    r = requests.get(index.url + path)
    assert r.status_code == 404 and b"SQLite" not in r.content
