"""Settings: defaults, file discovery, and clear refusals of bad files."""

import pytest

from enclave import settings


def test_defaults_without_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ENCLAVE_CONFIG", raising=False)
    monkeypatch.delenv("ENCLAVE_STATE_DIR", raising=False)
    s = settings.load()
    assert s.source == "defaults"
    assert s.state_dir == tmp_path / ".enclave"
    assert (s.hub.bind, s.hub.port) == ("127.0.0.1", 8000)
    assert s.database_url == f"sqlite:///{tmp_path / '.enclave' / 'enclave.sqlite'}"


def test_enclave_toml_in_cwd_and_relative_state_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ENCLAVE_CONFIG", raising=False)
    (tmp_path / "enclave.toml").write_text('state_dir = "st"\n[hub]\nport = 9000\n')
    s = settings.load()
    assert s.state_dir == tmp_path / "st"
    assert s.hub.port == 9000
    assert s.public_url == "http://127.0.0.1:9000"


def test_env_var_wins(tmp_path, monkeypatch):
    other = tmp_path / "other.toml"
    other.write_text('[database]\nurl = "postgresql+psycopg2://u@h/db"\n')
    monkeypatch.setenv("ENCLAVE_CONFIG", str(other))
    assert settings.load().database_url == "postgresql+psycopg2://u@h/db"


@pytest.mark.parametrize(
    "text, message",
    [
        ("[hubb]\nport = 1\n", "unknown section [hubb]"),
        ("[hub]\nprot = 1\n", "unknown key 'prot' in [hub]"),
        ("[hub]\nport = 70000\n", "port must be between 1 and 65535"),
        ("[hub]\nport = 'eighty'\n", "[hub]"),
        ("[auth]\nargon2_memory_kib = 1024\n", "below OWASP"),
        ("[hub\n", "not valid TOML"),
    ],
    ids=["unknown-section", "typo-key", "port-range", "wrong-type", "weak-kdf", "bad-toml"],
)
def test_bad_files_are_refused_with_reason(tmp_path, text, message):
    f = tmp_path / "enclave.toml"
    f.write_text(text)
    with pytest.raises(settings.SettingsError) as exc:
        settings.load(f)
    assert message in str(exc.value)


def test_missing_file_named_by_env(tmp_path, monkeypatch):
    monkeypatch.setenv("ENCLAVE_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(settings.SettingsError, match="does not exist"):
        settings.load()


def test_docs_cover_every_key():
    table = settings.docs_markdown()
    for name, cls in settings.SECTIONS.items():
        for key in cls.class_traits(config=True):
            assert f"| [{name}] | `{key}` |" in table


def test_readme_documents_every_key_as_declared():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert readme == settings.with_docs_table(readme), "run `enclave settings docs --readme README.md`"


def test_two_listening_ports_alike_are_refused_at_load():
    """The defaults are all different, and a file giving one port twice is refused with both keys named
    (a service that cannot bind its port would stop the hub at start)."""
    from enclave.settings import Settings, SettingsError

    Settings()  # the defaults load
    with pytest.raises(SettingsError, match=r"\[admin\] port = 8095 is also \[guard\] proxy_port"):
        Settings({"admin": {"port": 8095}})
    Settings({"mail": {"smtp_port": 8000}})  # a port the enclave connects to may be anything
