"""The id_token checks that decide whether the enclave trusts an IdP's MFA claim (hub.auth.oidc)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest

from enclave.errors import EnclaveError

from hub.auth import oidc
from tests.support.oidc_provider import OIDCProvider

ISSUER = "https://idp.example.test"
CLIENT = "enclave-hub"


@pytest.fixture(scope="module")
def idp():
    # Not started: only its keys and signer are used here.
    return OIDCProvider(client_id=CLIENT)


def claims(**over):
    now = int(time.time())
    base = {"iss": ISSUER, "sub": "u-1", "aud": CLIENT, "iat": now, "exp": now + 300,
            "preferred_username": "ann", "amr": ["pwd", "mfa"]}
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def verify(idp, token, **kw):
    return oidc.verify_id_token(token, idp.public_jwks(), issuer=ISSUER, client_id=CLIENT, **kw)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_valid_token_gives_its_claims(idp):
    got = verify(idp, idp.sign(claims()))
    assert got["preferred_username"] == "ann" and got["amr"] == ["pwd", "mfa"]


def test_token_signed_by_another_key_under_the_real_kid_is_refused(idp):
    forged = idp.sign(claims(), signing="attacker")
    with pytest.raises(oidc.IdTokenRejected) as err:
        verify(idp, forged)
    assert err.value.reason == "bad_signature"
    assert "signature" in str(err.value)


def test_token_naming_an_unpublished_key_is_refused(idp):
    with pytest.raises(oidc.IdTokenRejected) as err:
        verify(idp, idp.sign(claims(), signing="attacker", kid="attacker-key"))
    assert err.value.reason == "unknown_kid"


@pytest.mark.parametrize(
    "bad, words",
    [
        pytest.param({"iss": "https://evil.example.test"}, "not valid", id="other-issuer"),
        pytest.param({"aud": "another-app"}, "not valid", id="other-audience"),
        pytest.param({"exp": int(time.time()) - 3600}, "not valid", id="expired"),
        pytest.param({"exp": None}, "not valid", id="no-exp"),
        pytest.param({"iat": None}, "not valid", id="no-iat"),
        pytest.param({"sub": None}, "not valid", id="no-sub"),
        pytest.param({"aud": [CLIENT, "other"], "azp": "other"}, "another application", id="azp-other"),
        pytest.param({"aud": [CLIENT, "other"]}, "another application", id="multi-aud-no-azp"),
    ],
)
def test_claims_that_do_not_fit_are_refused(idp, bad, words):
    with pytest.raises(oidc.IdTokenRejected) as err:
        verify(idp, idp.sign(claims(**bad)))
    assert words in str(err.value)


def test_unsigned_alg_none_token_is_refused(idp):
    header = b64(json.dumps({"alg": "none", "kid": idp.kid}).encode())
    body = b64(json.dumps(claims()).encode())
    with pytest.raises(oidc.IdTokenRejected) as err:
        verify(idp, f"{header}.{body}.")
    assert "public-key algorithm" in str(err.value)


def test_hmac_token_using_the_public_key_as_secret_is_refused(idp):
    """Algorithm confusion: HS256 keyed with the IdP's public key must not verify."""
    from cryptography.hazmat.primitives import serialization

    pem = idp._key.public_key().public_bytes(serialization.Encoding.PEM,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = (b64(json.dumps({"alg": "HS256", "kid": idp.kid}).encode()) + "."
                     + b64(json.dumps(claims()).encode()))
    sig = b64(hmac.new(pem, signing_input.encode(), hashlib.sha256).digest())
    with pytest.raises(oidc.IdTokenRejected):
        verify(idp, f"{signing_input}.{sig}")


def test_nonce_must_match_when_expected(idp):
    token = idp.sign(claims(nonce="n-1"))
    assert verify(idp, token, nonce="n-1")["nonce"] == "n-1"
    with pytest.raises(oidc.IdTokenRejected) as err:
        verify(idp, token, nonce="n-2")
    assert err.value.reason == "nonce"


def test_garbage_is_refused_with_a_message(idp):
    with pytest.raises(oidc.IdTokenRejected) as err:
        verify(idp, "not-a-jwt")
    assert "unreadable" in str(err.value)


@pytest.mark.parametrize(
    "given, expected",
    [
        pytest.param({"amr": ["pwd", "mfa"]}, True, id="amr-mfa"),
        pytest.param({"amr": ["pwd", "otp"]}, True, id="amr-otp"),
        pytest.param({"amr": ["pwd"]}, False, id="amr-pwd-only"),
        pytest.param({"amr": "mfa"}, False, id="amr-not-a-list"),
        pytest.param({}, False, id="nothing"),
        pytest.param({"acr": "https://refeds.org/profile/mfa"}, True, id="acr-listed"),
        pytest.param({"acr": "urn:loa:1"}, False, id="acr-other"),
        pytest.param({"acr": ["https://refeds.org/profile/mfa"]}, False, id="acr-not-a-string"),
    ],
)
def test_mfa_assertion_follows_the_configured_values(given, expected):
    assert oidc.mfa_asserted(given, ["mfa", "otp"], ["https://refeds.org/profile/mfa"]) is expected


def test_nonce_is_bound_to_the_state_id():
    assert oidc.nonce_for("a") == oidc.nonce_for("a") != oidc.nonce_for("b")


# -- against the running test IdP: discovery, key fetching, key rotation ----------------------------

@pytest.fixture
def live_idp():
    with OIDCProvider(client_id=CLIENT) as p:
        yield p


def test_discovery_reads_the_endpoints(live_idp):
    meta = oidc.discover(live_idp.issuer)
    assert meta.token_endpoint == f"{live_idp.issuer}/token"
    assert meta.jwks_uri == f"{live_idp.issuer}/jwks"


def test_discovery_refuses_a_document_for_another_issuer(live_idp):
    with pytest.raises(EnclaveError) as err:
        oidc.discover(live_idp.issuer.replace("127.0.0.1", "localhost"))
    assert "set [oidc] issuer to exactly" in str(err.value)


def test_discovery_failure_says_what_to_check():
    from tests.support.postgres import free_port

    with pytest.raises(EnclaveError) as err:
        oidc.discover(f"http://127.0.0.1:{free_port()}", timeout=3)
    assert "check [oidc] issuer" in str(err.value)


def _authenticator(idp):
    return oidc.EnclaveOIDCAuthenticator(
        oidc_issuer=idp.issuer, jwks_uri=f"{idp.issuer}/jwks", client_id=CLIENT, client_secret="x",
    )


def test_authenticator_fetches_keys_and_follows_key_rotation(live_idp):
    auth = _authenticator(live_idp)
    now = int(time.time())
    base = {"iss": live_idp.issuer, "sub": "u-1", "aud": CLIENT, "iat": now, "exp": now + 60}

    async def run():
        first = await auth.verified_claims(live_idp.sign(base))
        live_idp.rotate_key()
        second = await auth.verified_claims(live_idp.sign(base))  # new kid: keys fetched again
        return first, second

    first, second = asyncio.run(run())
    assert first["sub"] == second["sub"] == "u-1"


def test_authenticator_refuses_forged_token_even_after_refetching_keys(live_idp):
    auth = _authenticator(live_idp)
    now = int(time.time())
    forged = live_idp.sign({"iss": live_idp.issuer, "sub": "u-1", "aud": CLIENT, "iat": now, "exp": now + 60,
                            "amr": ["mfa"]}, signing="attacker")
    with pytest.raises(oidc.IdTokenRejected):
        asyncio.run(auth.verified_claims(forged))


def test_id_token_is_required(live_idp):
    auth = _authenticator(live_idp)
    with pytest.raises(oidc.IdTokenRejected) as err:
        asyncio.run(auth.token_to_user({"access_token": "a", "token_type": "Bearer"}))
    assert "OpenID Connect" in str(err.value)


def test_jwt_library_still_refuses_none_by_default():
    """Guard on the library we rely on: decode without a matching algorithm list fails."""
    token = jwt.encode({"a": 1}, key=None, algorithm="none")
    with pytest.raises(jwt.PyJWTError):
        jwt.decode(token, "k", algorithms=["RS256"])
