"""Pulumi's passphrase secrets provider for stack files, without the Pulumi CLI.

One stack file must serve both engines: the Pulumi CLI and our embedded engine. So
``secure:`` values use exactly the CLI's passphrase format (``pkg/secrets/passphrase``
and ``sdk/go/common/resource/config/crypt.go`` in pulumi/pulumi):

- the stack file's ``encryptionsalt`` is ``v1:<base64 8-byte salt>:v1:<nonce>:<ct>``, the
  last part being the word ``pulumi`` encrypted, so a wrong passphrase is detected;
- the key is PBKDF2-HMAC-SHA256 of the passphrase and salt, 1,000,000 rounds, 32 bytes;
- a value is ``v1:<base64 12-byte nonce>:<base64 AES-256-GCM ciphertext+tag>``.

The crypto is ``repman.pulumisecrets`` (``repman.nixeval`` writes stack files too); this
module edits stack files and is the command line of users without the CLI:
``python -m components.pulumi_secrets set --stack NAME KEY`` (value read from stdin).
This module never imports pulumi.
"""

from __future__ import annotations

import argparse
import getpass
import os
import re
import sys
from pathlib import Path

import yaml

from repman.errors import RepmanError
from repman.pulumisecrets import (  # noqa: F401
    CHECK_WORD,
    ITERATIONS,
    KEY_BYTES,
    NO_PASSPHRASE,
    NONCE_BYTES,
    SALT_BYTES,
    WRONG_PASSPHRASE,
    PassphraseCrypter,
    SecretsError,
    crypter_from_salt,
    derive_key,
    new_encryption_salt,
    read_passphrase,
)

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
