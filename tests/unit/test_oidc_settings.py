"""[oidc] settings and hub.auth.oidc.configure: bad SSO configuration stops start-up with a clear message."""

from __future__ import annotations

import pytest
from traitlets.config import Config

from enclave.settings import Settings, SettingsError

from hub.auth import oidc
from tests.support.oidc_provider import OIDCProvider


def test_plain_http_issuer_is_refused_unless_loopback():
    with pytest.raises(SettingsError) as err:
        Settings({"oidc": {"issuer": "http://idp.example.test"}})
    assert "https://" in str(err.value)
    assert Settings({"oidc": {"issuer": "https://idp.example.test/"}}).oidc.issuer == "https://idp.example.test"
    assert Settings({"oidc": {"issuer": "http://127.0.0.1:9999"}}).oidc.issuer == "http://127.0.0.1:9999"


def test_mfa_step_minutes_is_bounded():
    with pytest.raises(SettingsError) as err:
        Settings({"oidc": {"mfa_step_minutes": 120}})
    assert "between 0.5 and 30" in str(err.value)


def test_configure_does_nothing_when_disabled(tmp_path):
    c = Config()
    oidc.configure(c, Settings({"state_dir": str(tmp_path)}))
    assert "authenticator_class" not in c.JupyterHub


def test_configure_names_missing_keys(tmp_path):
    s = Settings({"state_dir": str(tmp_path), "oidc": {"enabled": True, "issuer": "https://idp.example.test"}})
    with pytest.raises(SettingsError) as err:
        oidc.configure(Config(), s)
    assert "client_id, client_secret" in str(err.value)


def test_configure_stops_when_the_idp_cannot_be_read(tmp_path):
    from tests.support.postgres import free_port

    s = Settings({"state_dir": str(tmp_path), "oidc": {
        "enabled": True, "issuer": f"http://127.0.0.1:{free_port()}", "client_id": "a", "client_secret": "b"}})
    with pytest.raises(SettingsError) as err:
        oidc.configure(Config(), s)
    assert "discovery document" in str(err.value)


def test_configure_takes_endpoints_from_discovery(tmp_path):
    with OIDCProvider() as idp:
        s = Settings({"state_dir": str(tmp_path), "hub": {"port": 8123}, "oidc": {
            "enabled": True, "issuer": idp.issuer, "client_id": idp.client_id,
            "client_secret": idp.client_secret, "mfa_acr_values": ["gold"]}})
        c = Config()
        oidc.configure(c, s)
    a = c.EnclaveOIDCAuthenticator
    assert c.JupyterHub.authenticator_class is oidc.EnclaveOIDCAuthenticator
    assert a.token_url == f"{idp.issuer}/token" and a.jwks_uri == f"{idp.issuer}/jwks"
    assert a.oidc_issuer == idp.issuer
    assert a.enable_pkce is True and a.allow_all is False
    assert a.oauth_callback_url == "http://127.0.0.1:8123/hub/oauth_callback"
    assert a.mfa_acr_values == ["gold"] and a.pending_seconds == 300
