"""Secrets at rest: values encrypted with a key file, and HashiCorp Vault KV v2 references.

A config value ``{encrypted: "v1:..."}`` (made by ``repman password encrypt``) is
AES-256-GCM under the key in ``monitoring-key-path`` (repman's key name); it is
decrypted only in memory, when the config is loaded. ``{vault: "mount/path#field"}``
reads field ``field`` of KV v2 secret ``path`` under ``mount`` through ``hvac``,
with ``VAULT_ADDR`` and ``VAULT_TOKEN`` from the environment.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import os
import secrets
from pathlib import Path
from typing import Any, Iterator

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from repman.errors import ConfigError

KEY_PATH_KEY = "monitoring-key-path"
KEY_PATH_ENV = "REPMAN_MONITORING_KEY_PATH"
PREFIX = "v1:"
_NONCE = 12
_key_path: contextvars.ContextVar[str] = contextvars.ContextVar("repman_key_path", default="")


def generate_key_file(path: Path) -> None:
    """A new random 256-bit key, hex encoded, readable by its owner only; never overwrites."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32) + "\n")


def read_key(path: str | Path, key: str = KEY_PATH_KEY) -> bytes:
    p = Path(path)
    try:
        text = p.read_text().strip()
    except OSError as exc:
        raise ConfigError(key, f"cannot read the key file {p}: {exc.strerror}") from None
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ConfigError(key, f"{p} does not hold a 64-hex-digit key (make one with `repman password keygen`)")
    if p.stat().st_mode & 0o077:
        raise ConfigError(key, f"{p} is readable by group or others: chmod 600 it")
    return raw


def encrypt(clear: str, key: bytes) -> str:
    nonce = os.urandom(_NONCE)
    sealed = AESGCM(key).encrypt(nonce, clear.encode("utf-8"), None)
    return PREFIX + base64.b64encode(nonce + sealed).decode()


def decrypt(token: str, key: bytes, where: str) -> str:
    if not isinstance(token, str) or not token.startswith(PREFIX):
        raise ConfigError(where, f"an encrypted value starts with {PREFIX!r} (made by `repman password encrypt`)")
    try:
        raw = base64.b64decode(token[len(PREFIX):], validate=True)
        return AESGCM(key).decrypt(raw[:_NONCE], raw[_NONCE:], None).decode("utf-8")
    except (ValueError, InvalidTag):
        raise ConfigError(where, "cannot decrypt: wrong key file or damaged value") from None


@contextlib.contextmanager
def key_path_in_effect(path: str) -> Iterator[None]:
    """The key file used for ``{encrypted: ...}`` values of the section being loaded."""
    token = _key_path.set(path or "")
    try:
        yield
    finally:
        _key_path.reset(token)


def current_key_path() -> str:
    return _key_path.get() or os.environ.get(KEY_PATH_ENV, "")


def resolve_encrypted(token: Any, where: str) -> str:
    path = current_key_path()
    if not path:
        raise ConfigError(where, f"an encrypted value needs {KEY_PATH_KEY} (or ${KEY_PATH_ENV}) to name the key file")
    return decrypt(token, read_key(path), where)


def resolve_vault(ref: Any, where: str) -> str:
    """``mount/path#field`` of a KV v2 engine."""
    if not isinstance(ref, str) or "#" not in ref or "/" not in ref.split("#", 1)[0]:
        raise ConfigError(where, f"a vault reference is 'mount/path#field', got {ref!r}")
    location, field = ref.rsplit("#", 1)
    mount, path = location.split("/", 1)
    if not os.environ.get("VAULT_ADDR"):
        raise ConfigError(where, "a vault reference needs VAULT_ADDR (and VAULT_TOKEN) in the environment")
    try:
        import hvac
        import hvac.exceptions
        import requests
    except ImportError:
        raise ConfigError(where, "vault references need the hvac package (pip install 'repman[vault]')") from None
    client = hvac.Client(url=os.environ["VAULT_ADDR"], token=os.environ.get("VAULT_TOKEN"), timeout=5)
    try:
        answer = client.secrets.kv.v2.read_secret_version(path=path, mount_point=mount,
                                                          raise_on_deleted_version=True)
    except (hvac.exceptions.VaultError, requests.RequestException) as exc:
        raise ConfigError(where, f"vault {mount}/{path}: {type(exc).__name__}") from None
    data = ((answer or {}).get("data") or {}).get("data") or {}
    if field not in data:
        raise ConfigError(where, f"vault {mount}/{path} has no field {field!r}")
    return str(data[field])
