"""Signed exports: an Ed25519 key of the site (state_dir/secrets/transparency.ed25519, like the other
secrets) signs the canonical JSON of the register; anyone holding the public key can check a copy."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from enclave import secrets_store
from enclave.errors import Invalid

KEY_FILE = "transparency.ed25519"
ALG = "Ed25519"


def canonical(register: dict) -> bytes:
    return json.dumps(register, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _private(state_dir: Path) -> Ed25519PrivateKey:
    raw = secrets_store.ensure_file(Path(state_dir), KEY_FILE, lambda: Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()))
    return Ed25519PrivateKey.from_private_bytes(raw)


def public_key(state_dir: Path) -> str:
    """The site's public key, base64 of its 32 raw bytes (what people keep to check exports)."""
    raw = _private(state_dir).public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def key_id(public: str) -> str:
    return hashlib.sha256(base64.b64decode(public)).hexdigest()[:16]


def sign(state_dir: Path, register: dict) -> dict:
    pub = public_key(state_dir)
    sig = _private(state_dir).sign(canonical(register))
    return {"register": register,
            "signature": {"alg": ALG, "key_id": key_id(pub), "public_key": pub, "value": base64.b64encode(sig).decode()}}


def verify(envelope: dict, expected_key: str | None = None) -> dict:
    """The register of a signed export, or Invalid saying why it cannot be trusted. Without
    `expected_key` the key inside the export is used: that proves integrity, not who signed."""
    try:
        sig, register = envelope["signature"], envelope["register"]
        if sig.get("alg") != ALG:
            raise Invalid(f"unknown signature algorithm {sig.get('alg')!r}")
        pub = expected_key or sig["public_key"]
        if expected_key and expected_key != sig.get("public_key"):
            raise Invalid("the export was signed with another key than the one given")
        Ed25519PublicKey.from_public_bytes(base64.b64decode(pub)).verify(base64.b64decode(sig["value"]), canonical(register))
    except InvalidSignature:
        raise Invalid("the signature does not match the register: the export was changed after signing") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise Invalid(f"not a signed transparency export ({exc})") from None
    return register
