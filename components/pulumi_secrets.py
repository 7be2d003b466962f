"""Pulumi's passphrase secrets provider, readable and writable without the Pulumi CLI.

One stack file must serve both engines: the Pulumi CLI and our embedded engine. So
``secure:`` values use exactly the CLI's passphrase format (``pkg/secrets/passphrase``
and ``sdk/go/common/resource/config/crypt.go`` in pulumi/pulumi):

- the stack file's ``encryptionsalt`` is ``v1:<base64 8-byte salt>:v1:<nonce>:<ct>``, the
  last part being the word ``pulumi`` encrypted, so a wrong passphrase is detected;
- the key is PBKDF2-HMAC-SHA256 of the passphrase and salt, 1,000,000 rounds, 32 bytes;
- a value is ``v1:<base64 12-byte nonce>:<base64 AES-256-GCM ciphertext+tag>``.

The passphrase comes from ``PULUMI_CONFIG_PASSPHRASE`` or ``PULUMI_CONFIG_PASSPHRASE_FILE``,
as for the CLI. Users without the CLI encrypt with
``python -m components.pulumi_secrets set --stack NAME KEY`` (value read from stdin).
This module never imports pulumi.
"""

from __future__ import annotations

import argparse
import base64
import functools
import getpass
import hashlib
import os
import re
import secrets
import sys
from pathlib import Path
from typing import Mapping

import yaml
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


# ---------------------------------------------------------------- stack files

def stack_file(project_dir: Path, stack: str) -> Path:
    project = yaml.safe_load((project_dir / "Pulumi.yaml").read_text()) or {}
    return project_dir / str(project.get("stackConfigDir") or ".") / f"Pulumi.{stack}.yaml"


def set_secure_value(path: Path, key: str, plaintext: str, passphrase: str) -> str:
    """Write ``key: {secure: ...}`` into a stack file, adding ``encryptionsalt`` if it has none.

    The file is edited line by line so its comments stay; the result is parsed back and
    checked before it replaces the original.
    """
    text = path.read_text() if path.exists() else "config:\n"
    doc = yaml.safe_load(text) or {}
    salt = doc.get("encryptionsalt")
    if salt:
        crypter = crypter_from_salt(passphrase, str(salt))
    else:
        salt, crypter = new_encryption_salt(passphrase)
        text = _add_salt(text, salt)
    cipher = crypter.encrypt(plaintext)
    text = _replace_config_entry(text, key, [f"  {key}:", f"    secure: {cipher}"])
    check = yaml.safe_load(text) or {}
    if (check.get("config") or {}).get(key) != {"secure": cipher}:
        raise SecretsError(f"{path}: could not place {key} in the file; edit it by hand")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return cipher


def _add_salt(text: str, salt: str) -> str:
    lines = text.splitlines()
    at = next((i for i, line in enumerate(lines) if line.startswith("config:")), len(lines))
    lines.insert(at, f"encryptionsalt: {salt}")
    return "\n".join(lines) + "\n"


def _replace_config_entry(text: str, key: str, entry: list[str]) -> str:
    lines = text.splitlines()
    if not any(line.rstrip() == "config:" for line in lines):
        lines.append("config:")
    start = next(i for i, line in enumerate(lines) if line.rstrip() == "config:")
    pattern = re.compile(rf"^  {re.escape(key)}:(\s|$)")
    for i in range(start + 1, len(lines)):
        if pattern.match(lines[i]):
            end = i + 1
            while end < len(lines) and (lines[end].startswith("   ") or lines[end].startswith("  -")):
                end += 1
            lines[i:end] = entry
            return "\n".join(lines) + "\n"
    # new key: after the last line of the config block
    end = start + 1
    while end < len(lines) and (lines[end].startswith(" ") or not lines[end].strip()):
        end += 1
    lines[end:end] = entry
    return "\n".join(lines) + "\n"


def read_secure_value(path: Path, key: str, passphrase: str) -> str:
    doc = yaml.safe_load(path.read_text()) or {}
    value = (doc.get("config") or {}).get(key)
    if not isinstance(value, dict) or "secure" not in value:
        raise SecretsError(f"{key}: not a secure value in {path.name}")
    if not doc.get("encryptionsalt"):
        raise SecretsError(f"{path.name}: secure values but no encryptionsalt")
    return crypter_from_salt(passphrase, str(doc["encryptionsalt"])).decrypt(str(value["secure"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m components.pulumi_secrets",
        description="Encrypt stack config values as `pulumi config set --secret` does (passphrase provider).")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("set", "get"):
        p = sub.add_parser(name)
        p.add_argument("key", help="config key, e.g. repman:db-servers-credential (bare keys get repman:)")
        p.add_argument("--stack", "-s", required=True)
        p.add_argument("--project-dir", type=Path, default=Path(__file__).resolve().parent.parent)
    args = parser.parse_args(argv)
    key = args.key if ":" in args.key else f"repman:{args.key}"
    try:
        passphrase = read_passphrase()
        path = stack_file(args.project_dir.resolve(), args.stack)
        if args.command == "get":
            print(read_secure_value(path, key, passphrase))
            return 0
        if sys.stdin.isatty():
            value = getpass.getpass(f"{key}: ")
        else:
            value = sys.stdin.read().rstrip("\n")
        if not value:
            raise SecretsError(f"{key}: empty value (give it on stdin)")
        set_secure_value(path, key, value, passphrase)
    except (RepmanError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{key}: encrypted into {path.name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
