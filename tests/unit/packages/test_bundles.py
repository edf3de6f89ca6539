"""Bundles: made from a local wheel folder, imported whole, refused whole when anything is off."""

import json
import os
import shutil

import pytest

from enclave import bundles, db, paths
from enclave.errors import Invalid
from enclave.models import AuditEvent, PackageFile
from sqlalchemy import func, select

from tests.support.wheels import r_package, wheel


@pytest.fixture
def wheelhouse(tmp_path):
    d = tmp_path / "wheelhouse"
    wheel(d, "survkit", "0.30", requires=("tinydep>=1", "windows-only; sys_platform == 'win32'"))
    wheel(d, "tinydep", "1.2")
    return d


@pytest.fixture
def bundle(tmp_path, wheelhouse):
    out = tmp_path / "bundle"
    r = r_package(tmp_path / "cran", "rtiny", "1.0.2", imports=("stats", "jsonlite"))
    bundles.make(["survkit==0.30"], out, r_sources=[r],
                 pip_args=["--no-index", "--find-links", str(wheelhouse)])
    return out


def test_bundle_brings_the_dependencies_with_hashes_and_what_each_requires(bundle):
    m = json.loads((bundle / "manifest.json").read_text())
    by_name = {f["name"]: f for f in m["files"]}
    assert set(by_name) == {"survkit", "tinydep", "rtiny"}
    assert by_name["survkit"]["requires"] == ["tinydep"]  # the Windows-only one is not for the image
    assert by_name["rtiny"]["requires"] == ["jsonlite"] and by_name["rtiny"]["ecosystem"] == "r"
    assert all(len(f["sha256"]) == 64 for f in m["files"])


def test_cli_bundle_then_import(cli, enclave_env, tmp_path, wheelhouse):
    code, out, err = cli("packages", "bundle", "survkit", "-o", str(tmp_path / "b"), "--no-index",
                         "--find-links", str(wheelhouse))
    assert code == 0, err
    sha = out.split("manifest sha256 ")[1].split()[0]
    code, out, err = cli("packages", "import", str(tmp_path / "b"), "--manifest-sha256", "0" * 64)
    assert code == 2 and "not the" in err
    code, out, err = cli("packages", "import", str(tmp_path / "b"), "--manifest-sha256", sha)
    assert code == 0, err
    assert "imported 2 new file(s)" in out
    stored = paths.packages(enclave_env.state_dir, "python")
    assert sorted(p.name for p in stored.iterdir()) == ["survkit-0.30-py3-none-any.whl", "tinydep-1.2-py3-none-any.whl"]
    code, out, _ = cli("packages", "import", str(tmp_path / "b"))
    assert code == 0 and "imported 0 new file(s), 2 already present" in out


def _import(enclave_env, bundle):
    with db.transaction(enclave_env.db_url) as s:
        return bundles.import_bundle(s, enclave_env.state_dir, "cli:test", bundle)


def _nothing_imported(enclave_env):
    with db.transaction(enclave_env.db_url) as s:
        assert s.scalar(select(func.count()).select_from(PackageFile)) == 0
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "packages.import")) == 0
    assert not paths.packages(enclave_env.state_dir, "python").exists()


def _tamper_bytes(b, tmp_path):
    w = b / "files" / "tinydep-1.2-py3-none-any.whl"
    data = bytearray(w.read_bytes())
    data[-30] ^= 1
    w.write_bytes(bytes(data))


def _swap_wheel(b, tmp_path):  # a valid wheel of the same name, other code: the hash no longer matches
    wheel(tmp_path / "evil", "tinydep", "1.2", code="import os\n")
    shutil.copyfile(tmp_path / "evil" / "tinydep-1.2-py3-none-any.whl", b / "files" / "tinydep-1.2-py3-none-any.whl")


def _extra_file(b, tmp_path):
    (b / "files" / "cohort.csv").write_text("id,age\n1,50\n")


def _symlink(b, tmp_path):
    (tmp_path / "outside.whl").write_bytes((b / "files" / "tinydep-1.2-py3-none-any.whl").read_bytes())
    os.unlink(b / "files" / "tinydep-1.2-py3-none-any.whl")
    os.symlink(tmp_path / "outside.whl", b / "files" / "tinydep-1.2-py3-none-any.whl")


def _missing(b, tmp_path):
    os.unlink(b / "files" / "rtiny_1.0.2.tar.gz")


def _rehash(b, target):
    """Rewrite the manifest so its hash and size match the changed file (what a forger would do)."""
    m = json.loads((b / "manifest.json").read_text())
    for f in m["files"]:
        if f["filename"] == target.name:
            f["sha256"], f["size"] = bundles.sha256_of(target), target.stat().st_size
    (b / "manifest.json").write_text(json.dumps(m))


def _rehashed_data(b, tmp_path):
    """A CSV renamed as a wheel, with the manifest rewritten to match: still not a wheel."""
    target = b / "files" / "tinydep-1.2-py3-none-any.whl"
    target.write_text("nir,diagnosis\n1840275123456,C50\n")
    _rehash(b, target)


def _renamed_package(b, tmp_path):
    """A wheel whose metadata names another package than its file name."""
    wheel(tmp_path / "other", "requests", "1.2")
    src = tmp_path / "other" / "requests-1.2-py3-none-any.whl"
    target = b / "files" / "tinydep-1.2-py3-none-any.whl"
    shutil.copyfile(src, target)
    _rehash(b, target)


def _broken_manifest(b, tmp_path):
    (b / "manifest.json").write_text("{not json")


@pytest.mark.parametrize("tamper, says", [
    (_tamper_bytes, "changed after bundling"),
    (_swap_wheel, "changed after bundling"),
    (_extra_file, "cohort.csv: not in the manifest"),
    (_symlink, "not a plain file"),
    (_missing, "in the manifest but missing"),
    (_rehashed_data, "not a wheel"),
    (_renamed_package, "its metadata says requests"),
    (_broken_manifest, "is not a bundle manifest"),
])
def test_a_bundle_with_anything_off_is_refused_whole(enclave_env, bundle, tmp_path, tamper, says):
    tamper(bundle, tmp_path)
    with pytest.raises(Invalid) as exc:
        _import(enclave_env, bundle)
    assert says in exc.value.message
    _nothing_imported(enclave_env)


def test_a_file_that_would_replace_another_is_refused(enclave_env, bundle, tmp_path):
    _import(enclave_env, bundle)
    other = tmp_path / "b2"
    wheel(tmp_path / "wh2", "tinydep", "1.2", code="X = 1\n")
    bundles.make(["tinydep"], other, pip_args=["--no-index", "--find-links", str(tmp_path / "wh2")])
    with pytest.raises(Invalid) as exc:
        _import(enclave_env, other)
    assert "already exist with other contents: tinydep-1.2-py3-none-any.whl" in exc.value.message
