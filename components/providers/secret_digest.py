"""Salted digests of secret inputs, so state can tell a password changed without holding it.

Dynamic providers drop password inputs from their outputs (nothing to leak from
state) and keep one PBKDF2 digest instead; ``diff`` recomputes it from the new
inputs with the stored salt.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from typing import Any, Mapping, Sequence

_ITERATIONS = 20000
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # Pulumi's placeholder for unknown values in preview


def _material(props: Mapping[str, Any], keys: Sequence[str]) -> bytes:
    return json.dumps({k: props.get(k) or "" for k in keys}, sort_keys=True, default=str).encode()


def make_digest(props: Mapping[str, Any], keys: Sequence[str], salt: bytes | None = None) -> str:
    salt = salt if salt is not None else os.urandom(16)
    value = hashlib.pbkdf2_hmac("sha256", _material(props, keys), salt, _ITERATIONS)
    return f"pbkdf2-sha256${_ITERATIONS}${salt.hex()}${value.hex()}"


def digest_matches(digest: str | None, props: Mapping[str, Any], keys: Sequence[str]) -> bool:
    try:
        scheme, iterations, salt_hex, value_hex = str(digest).split("$")
        salt = bytes.fromhex(salt_hex)
    except ValueError:
        return False
    if scheme != "pbkdf2-sha256" or int(iterations) != _ITERATIONS:
        return False
    return hmac.compare_digest(make_digest(props, keys, salt), str(digest))


def without(props: Mapping[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    """Props minus the secret keys (what may be stored as outputs)."""
    return {k: v for k, v in props.items() if k not in keys}


def has_unknowns(props: Mapping[str, Any]) -> bool:
    def walk(v: Any) -> bool:
        if type(v).__name__ == "Unknown":  # pulumi.output.Unknown: what the provider host hands over
            return True
        if isinstance(v, str):
            return v == UNKNOWN
        if isinstance(v, Mapping):
            return any(walk(x) for x in v.values())
        if isinstance(v, (list, tuple)):
            return any(walk(x) for x in v)
        return False
    return walk(dict(props))
