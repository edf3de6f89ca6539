"""The notebook image is named once: [images] notebook is what `enclave image build` makes and, unless
[spawner] says otherwise, what the hub runs and the only image it allows."""

from __future__ import annotations

import pytest
from traitlets.config import Config

from enclave.cli import main
from enclave.settings import Settings, SettingsError

from hub.spawn import spawner


def hub_config(data: dict) -> Config:
    """What JupyterHub is told to run, from these settings."""
    c = Config()
    spawner.configure(c, Settings({"spawner": {"firewall": False}} | data))
    return c


def test_only_images_notebook_set_the_hub_runs_and_allows_that_image():
    c = hub_config({"images": {"notebook": "site/nb:2"}})
    assert c.ProjectSpawner.image == "site/nb:2"
    assert list(c.ProjectSpawner.enclave_settings.spawner.allowed_images) == ["site/nb:2"]  # read there, declared once


def test_nothing_set_runs_the_default_built_image():
    s = Settings({})
    assert (s.spawner.image, list(s.spawner.allowed_images)) == ("enclave-notebook:latest", ["enclave-notebook:latest"])
    assert s.warnings == []


def test_explicit_allow_list_is_kept_for_a_migration():
    s = Settings({"images": {"notebook": "site/nb:2"}, "spawner": {"allowed_images": ["site/nb:2", "site/nb:1"]}})
    assert s.spawner.image == "site/nb:2"
    assert list(s.spawner.allowed_images) == ["site/nb:2", "site/nb:1"]
    assert s.warnings == []


def test_explicit_spawner_image_is_kept_with_a_one_line_warning():
    s = Settings({"images": {"notebook": "site/nb:2"}, "spawner": {"image": "registry.example:5000/nb:7"}})
    assert s.spawner.image == "registry.example:5000/nb:7"
    assert list(s.spawner.allowed_images) == ["registry.example:5000/nb:7"]
    [warning] = s.warnings
    assert "\n" not in warning
    assert "'registry.example:5000/nb:7' differs from [images] notebook 'site/nb:2'" in warning


def test_spawner_image_equal_to_the_built_one_does_not_warn():
    s = Settings({"images": {"notebook": "site/nb:2"}, "spawner": {"image": "site/nb:2"}})
    assert s.warnings == []


@pytest.mark.parametrize(
    "data, words",
    [
        ({"images": {"notebook": "site/nb:2"}, "spawner": {"allowed_images": ["site/nb:1"]}},
         "image 'site/nb:2' (from [images] notebook) is not in allowed_images ['site/nb:1']"),
        ({"spawner": {"image": "a:1", "allowed_images": ["b:1"]}}, "image 'a:1' is not in allowed_images"),
        ({"spawner": {"image": "Site/NB:2"}}, "[spawner] image 'Site/NB:2' is not a Docker image name"),
        ({"spawner": {"allowed_images": ["site/nb:2", ""]}}, "[spawner] allowed_images must name an image"),
        ({"spawner": {"allowed_images": ["site nb"]}}, "[spawner] allowed_images 'site nb' is not a Docker image"),
        ({"images": {"notebook": ""}}, "[images] notebook must name an image"),
        ({"images": {"notebook": "Site/NB:2"}}, "[images] notebook 'Site/NB:2' is not a Docker image name"),
    ],
    ids=["derived-off-list", "explicit-off-list", "upper-case-image", "empty-allowed", "space-allowed",
         "empty-notebook", "upper-case-notebook"],
)
def test_bad_image_settings_stop_start_up_with_reason(data, words):
    with pytest.raises(SettingsError) as exc:
        Settings(data, source="enclave.toml")
    assert str(exc.value).startswith("enclave.toml: ")
    assert words in str(exc.value)


def test_settings_show_prints_effective_images_and_the_warning(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("ENCLAVE_STATE_DIR", raising=False)
    config = tmp_path / "enclave.toml"
    config.write_text('state_dir = "st"\n[images]\nnotebook = "site/nb:2"\n')
    assert main(["--config", str(config), "settings", "show"]) == 0
    out, err = capsys.readouterr()
    assert "image = 'site/nb:2'" in out and "allowed_images = ['site/nb:2']" in out
    assert err == ""

    config.write_text(config.read_text() + '[spawner]\nimage = "registry.example/nb:7"\n')
    assert main(["--config", str(config), "settings", "show"]) == 0
    out, err = capsys.readouterr()
    assert "image = 'registry.example/nb:7'" in out
    assert err.count("\n") == 1 and err.startswith("enclave: warning: [spawner] image 'registry.example/nb:7'")
