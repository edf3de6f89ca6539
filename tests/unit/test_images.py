"""Image build machinery and the image policy's knobs, without Docker."""

from __future__ import annotations

import shutil
import sys
import tarfile
from pathlib import Path

import pytest

from enclave import images
from enclave.settings import Settings, SettingsError

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "images" / "notebook"))
from enclave_policy import limits  # noqa: E402  (the image's policy package; limits is pure Python)


def settings(tmp_path, **images_section) -> Settings:
    return Settings({"enclave": {"state_dir": str(tmp_path / "state")}, "images": images_section})


def test_images_defaults(tmp_path):
    s = settings(tmp_path)
    assert s.images.notebook == "enclave-notebook:latest"
    assert images.base_image_name(s) == "enclave-base:bookworm"
    assert images.wheelhouse_path(s) == REPO / "images/notebook/wheelhouse"
    assert images.record_path(s) == tmp_path / "state" / "images.json"


def test_wheelhouse_relative_to_state_dir_or_absolute(tmp_path):
    assert images.wheelhouse_path(settings(tmp_path, wheelhouse="wh")) == tmp_path / "state" / "wh"
    assert images.wheelhouse_path(settings(tmp_path, wheelhouse="/srv/wh")) == Path("/srv/wh")


@pytest.mark.parametrize(
    "key,value",
    [("notebook", ""), ("notebook", "Enclave/Notebook:1"), ("base_image", "debian bookworm")],
    ids=["empty-name", "upper-case", "space"],
)
def test_bad_image_names_stop_start_up(tmp_path, key, value):
    with pytest.raises(SettingsError, match=r"\[images\]"):
        settings(tmp_path, **{key: value})


def test_registry_names_with_port_and_digest_are_accepted(tmp_path):
    s = settings(tmp_path, base_image="registry.example:5000/debian:12@sha256:" + "a" * 64)
    assert s.images.base_image.startswith("registry.example:5000/")


def test_build_context_has_dockerfile_policy_constraints_and_wheels_but_hashes_no_wheels(tmp_path):
    names = {name for _, name in images._context_files()}  # what inputs_digest hashes
    assert {"Dockerfile", "requirements.txt", "jupyter_server_config.py",
            "enclave_policy/authorizer.py", "enclave_policy/contents.py"} <= names
    assert not any(n.startswith("wheelhouse") or "__pycache__" in n for n in names)
    wheelhouse = tmp_path / "wh"
    wheelhouse.mkdir()
    (wheelhouse / "acro-1.0.2-py3-none-any.whl").write_bytes(b"")
    with images._context_tar(wheelhouse) as fh, tarfile.open(fileobj=fh) as tar:  # what docker build gets
        sent = set(tar.getnames())
        constraints = tar.extractfile("constraints.txt").read()
    assert sent == names | {"constraints.txt", "wheelhouse", "wheelhouse/acro-1.0.2-py3-none-any.whl"}
    assert constraints == images.image_constraints()


def test_inputs_digest_follows_base_and_files(tmp_path, monkeypatch):
    copy = tmp_path / "notebook"
    shutil.copytree(REPO / "images/notebook", copy, ignore=shutil.ignore_patterns("wheelhouse"))
    monkeypatch.setattr(images, "NOTEBOOK_DIR", copy)
    first = images.inputs_digest("sha256:base1")
    assert images.inputs_digest("sha256:base1") == first
    assert images.inputs_digest("sha256:base2") != first
    (copy / "overrides.json").write_text("{}")
    assert images.inputs_digest("sha256:base1") != first


def test_image_constraints_keep_only_the_image_packages(tmp_path, monkeypatch):
    notebook = tmp_path / "notebook"
    notebook.mkdir()
    (notebook / "requirements.txt").write_text("# image\nacro==1.0.2\nnumpy\ntyping_extensions\n")
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("# pins\nnumpy==2.4.6\nfastapi==0.165.0\ntyping-extensions==4.16.0\n")
    monkeypatch.setattr(images, "NOTEBOOK_DIR", notebook)
    monkeypatch.setattr(images, "CONSTRAINTS", constraints)
    assert images.image_constraints().decode().splitlines()[1:] == ["numpy==2.4.6", "typing-extensions==4.16.0"]
    before = images.inputs_digest("sha256:b")
    constraints.write_text(constraints.read_text() + "uvicorn==0.54.0\n")  # a hub-only dependency
    assert images.inputs_digest("sha256:b") == before
    constraints.write_text(constraints.read_text().replace("numpy==2.4.6", "numpy==2.4.7"))
    assert images.inputs_digest("sha256:b") != before


def test_wheels_that_requirements_do_not_name_are_reported(tmp_path):
    wheelhouse = tmp_path / "wh"
    wheelhouse.mkdir()
    (wheelhouse / "numpy-2.4.6-cp311-cp311-manylinux_2_28_x86_64.whl").write_bytes(b"")
    (wheelhouse / "Left_Over-1.0-py3-none-any.whl").write_bytes(b"")
    assert images.unnamed_wheels(wheelhouse) == {"left-over"}


def test_pip_download_targets_the_image_python_whatever_the_host():
    args = images._pip_download_args(Path("/tmp/wh"))
    assert args[args.index("--python-version") + 1] == "3.11"
    assert "--only-binary=:all:" in args
    assert str(REPO / "constraints.txt") in args


def test_requirements_are_exact_pins_or_constrained():
    constrained = {
        line.split("==")[0].lower().replace("_", "-")
        for line in (REPO / "constraints.txt").read_text().splitlines()
        if "==" in line
    }
    for line in (REPO / "images/notebook/requirements.txt").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name = line.split("==")[0].lower().replace("_", "-")
        assert "==" in line or name in constrained, f"{line} is neither pinned here nor in constraints.txt"
    assert "jupyterhub" in constrained, "the image must use the hub's jupyterhub version"


def test_missing_base_image_says_what_to_do(tmp_path):
    class NoImages:
        class images:
            @staticmethod
            def get(name):
                import docker

                raise docker.errors.ImageNotFound(name)

    s = settings(tmp_path, base_image="site-registry/debian:12")
    with pytest.raises(images.ImageBuildError, match="load it .docker load. or pull it"):
        images.ensure_base_image(s, NoImages())


# --- the image's policy knobs (enclave_policy.limits) ---------------------------------------------


def test_policy_limits_default_to_5_mib_reads_and_1_mib_writes():
    got = limits.PolicyLimits.from_env({})
    assert (got.max_read_bytes, got.max_write_bytes) == (5 * 1024 * 1024, 1024 * 1024)


def test_policy_limits_from_environment():
    got = limits.PolicyLimits.from_env({"ENCLAVE_MAX_READ_BYTES": "100", "ENCLAVE_MAX_WRITE_BYTES": " 50 "})
    assert (got.max_read_bytes, got.max_write_bytes) == (100, 50)


@pytest.mark.parametrize("value", ["lots", "-1", "0", "1.5"])
def test_bad_policy_limit_stops_the_server(value):
    with pytest.raises(ValueError, match="ENCLAVE_MAX_READ_BYTES"):
        limits.PolicyLimits.from_env({"ENCLAVE_MAX_READ_BYTES": value})


def test_release_url_follows_hub_base_url_unless_set():
    assert limits.release_url({}) == "/services/egress/"
    assert limits.release_url({"JUPYTERHUB_BASE_URL": "/enclave/"}) == "/enclave/services/egress/"
    assert limits.release_url({"ENCLAVE_RELEASE_URL": "https://e.example/r/"}) == "https://e.example/r/"


def test_human_sizes():
    assert limits.human(10 * 1024 * 1024) == "10 MiB"
    assert limits.human(1536) == "1.5 KiB"
    assert limits.human(12) == "12 bytes"
