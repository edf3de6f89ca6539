"""The hub configuration adds the service without dropping what other configurers added."""

import sys

from traitlets.config import Config

from enclave import settings as settings_mod

from hub.services import egress as service


def test_configure_adds_service_and_scope_and_keeps_others(tmp_path, monkeypatch):
    monkeypatch.setenv("ENCLAVE_CONFIG", str(tmp_path / "enclave.toml"))
    s = settings_mod.Settings({"state_dir": str(tmp_path / "state"), "egress": {"port": 9123}}, base_dir=tmp_path)
    c = Config()
    c.JupyterHub.services = [{"name": "idle-culler", "command": ["x"]}]
    c.JupyterHub.extra_user_scopes.add("read:users:name")  # a lazy value, as another configurer may leave it
    service.configure(c, s)
    service.configure(c, s)  # idempotent
    names = [x["name"] for x in c.JupyterHub.services]
    assert names == ["idle-culler", "egress"]
    egress = c.JupyterHub.services[-1]
    assert egress["url"] == "http://127.0.0.1:9123" and egress["oauth_no_confirm"] is True
    assert egress["command"] == [sys.executable, "-m", "egress_review"]
    assert egress["environment"]["ENCLAVE_CONFIG"] == str(tmp_path / "enclave.toml")
    assert egress["environment"]["ENCLAVE_STATE_DIR"] == str(s.state_dir)
    assert c.JupyterHub.extra_user_scopes == {"read:users:name", "access:services!service=egress"}
