"""Secret outputs in the embedded engine's state file: sealed, never in plain text.

Pulumi keeps an output marked secret (``additional_secret_outputs``) encrypted with the
stack's secrets provider. The embedded engine seals such a value with AES-GCM under a key
derived (PBKDF2-SHA256, a salt kept in the state file) from the stack's two required
credentials, which every run has anyway and the state file never holds. A value that
no longer opens (a credential changed since) reads as absent, so a provider sees a
changed secret, which it is.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SEALED = "__sealed_aes_gcm"
_ITERATIONS = 100_000


def new_salt() -> str:
    return os.urandom(16).hex()


def derive_key(material: str, salt_hex: str) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", material.encode(), bytes.fromhex(salt_hex), _ITERATIONS, dklen=32)


def seal(value: Any, key: bytes) -> dict[str, str]:
    nonce = os.urandom(12)
    box = AESGCM(key).encrypt(nonce, json.dumps(value).encode(), None)
    return {SEALED: base64.b64encode(nonce + box).decode()}


def is_sealed(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {SEALED}


def unseal(value: dict[str, str], key: bytes) -> tuple[bool, Any]:
    """``(True, value)``, or ``(False, None)`` when the key no longer opens it."""
    raw = base64.b64decode(value[SEALED])
    try:
        return True, json.loads(AESGCM(key).decrypt(raw[:12], raw[12:], None))
    except (InvalidTag, ValueError):
        return False, None
