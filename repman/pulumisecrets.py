"""Pulumi's passphrase secrets provider: the crypto, without the Pulumi CLI or SDK.

One stack file must serve both engines (the Pulumi CLI and our embedded engine), and
``repman.nixeval`` writes stack files too, so ``secure:`` values use exactly the CLI's
passphrase format (``pkg/secrets/passphrase`` and ``sdk/go/common/resource/config/crypt.go``
in pulumi/pulumi):

- the stack file's ``encryptionsalt`` is ``v1:<base64 8-byte salt>:v1:<nonce>:<ct>``, the
  last part being the word ``pulumi`` encrypted, so a wrong passphrase is detected;
- the key is PBKDF2-HMAC-SHA256 of the passphrase and salt, 1,000,000 rounds, 32 bytes;
- a value is ``v1:<base64 12-byte nonce>:<base64 AES-256-GCM ciphertext+tag>``.

The passphrase comes from ``PULUMI_CONFIG_PASSPHRASE`` or ``PULUMI_CONFIG_PASSPHRASE_FILE``,
as for the CLI. Stack-file editing and the command line are in ``components/pulumi_secrets.py``.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
import secrets
from pathlib import Path
from typing import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from repman.errors import RepmanError

ITERATIONS = 1_000_000
KEY_BYTES = 32
SALT_BYTES = 8
NONCE_BYTES = 12
CHECK_WORD = "pulumi"
# The CLI's own messages, so users find them in Pulumi's docs and issues.
NO_PASSPHRASE = ("passphrase must be set with PULUMI_CONFIG_PASSPHRASE or "
                 "PULUMI_CONFIG_PASSPHRASE_FILE environment variables")
WRONG_PASSPHRASE = ("failed to decrypt: incorrect passphrase, please set PULUMI_CONFIG_PASSPHRASE to the "
                    "correct passphrase or set PULUMI_CONFIG_PASSPHRASE_FILE to a file containing the passphrase")


class SecretsError(RepmanError):
    """A secure value or the stack's encryption salt cannot be used; the text says why."""


@functools.lru_cache(maxsize=8)
def derive_key(passphrase: str, salt: bytes) -> bytes:
    """The AES key; cached because 10^6 PBKDF2 rounds cost about a second."""
    return hashlib.pbkdf2_hmac("sha256", passphrase.encode(), salt, ITERATIONS, KEY_BYTES)


class PassphraseCrypter:
    """AES-256-GCM with a random nonce per value, in Pulumi's ``v1:nonce:ciphertext`` text form."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise SecretsError("AES-256-GCM needs a 32 byte key")
        self._aead = AESGCM(key)

    def encrypt(self, plaintext: str, nonce: bytes | None = None) -> str:
        nonce = nonce if nonce is not None else secrets.token_bytes(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), None)
        return f"v1:{_b64(nonce)}:{_b64(sealed)}"

    def decrypt(self, value: str) -> str:
        parts = value.split(":")
        if len(parts) != 3:
            raise SecretsError("bad value")
        if parts[0] != "v1":
            raise SecretsError("unknown value version")
        try:
            nonce, sealed = base64.b64decode(parts[1], validate=True), base64.b64decode(parts[2], validate=True)
        except ValueError as exc:
            raise SecretsError(f"bad value: {exc}") from None
        if len(nonce) != NONCE_BYTES:
            raise SecretsError("bad value: nonce size is incorrect")
        try:
            return self._aead.decrypt(nonce, sealed, None).decode()
        except InvalidTag:
            raise SecretsError(WRONG_PASSPHRASE) from None


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def new_encryption_salt(passphrase: str, salt: bytes | None = None,
                        nonce: bytes | None = None) -> tuple[str, PassphraseCrypter]:
    """A fresh ``encryptionsalt`` for a stack (``salt``/``nonce`` fixed only by tests)."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    crypter = PassphraseCrypter(derive_key(passphrase, salt))
    return f"v1:{_b64(salt)}:{crypter.encrypt(CHECK_WORD, nonce)}", crypter


def crypter_from_salt(passphrase: str, state: str) -> PassphraseCrypter:
    """The crypter of a stack's ``encryptionsalt``, refusing a wrong passphrase."""
    parts = state.split(":", 2)
    if len(parts) != 3:
        raise SecretsError("encryptionsalt: malformed state value")
    if parts[0] != "v1":
        raise SecretsError("encryptionsalt: unknown state version")
    try:
        salt = base64.b64decode(parts[1], validate=True)
    except ValueError:
        raise SecretsError("encryptionsalt: malformed salt") from None
    crypter = PassphraseCrypter(derive_key(passphrase, salt))
    try:
        word = crypter.decrypt(parts[2])
    except SecretsError:
        word = None
    if word != CHECK_WORD:
        raise SecretsError(WRONG_PASSPHRASE)
    return crypter


def read_passphrase(env: Mapping[str, str] | None = None) -> str:
    """``PULUMI_CONFIG_PASSPHRASE``, else the file named by ``PULUMI_CONFIG_PASSPHRASE_FILE`` (stripped)."""
    env = os.environ if env is None else env
    if "PULUMI_CONFIG_PASSPHRASE" in env:
        return env["PULUMI_CONFIG_PASSPHRASE"]
    path = env.get("PULUMI_CONFIG_PASSPHRASE_FILE", "")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise SecretsError(f"unable to read PULUMI_CONFIG_PASSPHRASE_FILE: {exc.strerror}") from None
    raise SecretsError(NO_PASSPHRASE)
