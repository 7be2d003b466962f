"""Pulumi's passphrase secrets provider, as components/pulumi_secrets.py reads and writes it.

The fixed vector below was derived outside this module from Pulumi's algorithm
(``crypt.go``: PBKDF2-HMAC-SHA256, 10^6 rounds, 32 bytes; AES-256-GCM, ``v1:nonce:ciphertext``):
the key with ``openssl kdf ... PBKDF2`` and ``cryptography``'s PBKDF2HMAC (they agree), the
ciphertexts with ``cryptography``'s AESGCM. The ``PULUMI_TEST_STATE`` is a salt the Pulumi
CLI itself produced (pulumi/pulumi ``pkg/secrets/passphrase/manager_test.go``: passphrase
``password``), so a value made by the real CLI is read here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.pulumi_secrets import (
    NO_PASSPHRASE,
    WRONG_PASSPHRASE,
    PassphraseCrypter,
    SecretsError,
    crypter_from_salt,
    derive_key,
    new_encryption_salt,
    read_passphrase,
    read_secure_value,
    set_secure_value,
)

ROOT = Path(__file__).resolve().parent.parent
SALT, NONCE, VALUE_NONCE = bytes(range(8)), bytes(range(100, 112)), bytes(range(200, 212))
PASSPHRASE = "correct-horse"
KEY_HEX = "639c67a3046a5d3ae731a90b8068157847f4103e16eab323eb1b6b29518a2da6"
STATE = "v1:AAECAwQFBgc=:v1:ZGVmZ2hpamtsbW5v:Q8NgwGScNtvedgjanbruRp2taoCFug=="
CIPHER = "v1:yMnKy8zNzs/Q0dLT:XCatg6OhPs7mk2fsMxGClm7tm0OKBPe241VJBLw="
PULUMI_TEST_STATE = "v1:fozI5u6B030=:v1:F+6ZduKKd8G0/V7L:PGMFeIzwobWRKmEAzUdaQHqC5mMRIQ=="


def test_fixed_vector_key_salt_and_value():
    assert derive_key(PASSPHRASE, SALT).hex() == KEY_HEX
    state, crypter = new_encryption_salt(PASSPHRASE, salt=SALT, nonce=NONCE)
    assert state == STATE
    assert crypter.encrypt("repman:s3cret", nonce=VALUE_NONCE) == CIPHER
    assert crypter_from_salt(PASSPHRASE, STATE).decrypt(CIPHER) == "repman:s3cret"


def test_a_salt_made_by_the_pulumi_cli_opens_with_its_passphrase_only():
    crypter_from_salt("password", PULUMI_TEST_STATE)
    with pytest.raises(SecretsError, match="incorrect passphrase"):
        crypter_from_salt("password123", PULUMI_TEST_STATE)


def test_round_trip_uses_a_fresh_nonce_and_detects_tampering():
    crypter = PassphraseCrypter(derive_key("pw", b"saltsalt"))
    a, b = crypter.encrypt("user:pa:ss"), crypter.encrypt("user:pa:ss")
    assert a != b and crypter.decrypt(a) == crypter.decrypt(b) == "user:pa:ss"
    version, nonce, sealed = a.split(":")
    flipped = sealed[:-3] + ("A" if sealed[-3] != "A" else "B") + sealed[-2:]
    with pytest.raises(SecretsError) as info:
        crypter.decrypt(f"{version}:{nonce}:{flipped}")
    assert str(info.value) == WRONG_PASSPHRASE
    for bad, why in (("v2:AAAA:AAAA", "unknown value version"), ("v1:AAAA", "bad value"),
                     ("v1:AAAA:AAAA", "nonce size is incorrect")):
        with pytest.raises(SecretsError, match=why):
            crypter.decrypt(bad)


def test_passphrase_from_environment_or_file(tmp_path: Path):
    assert read_passphrase({"PULUMI_CONFIG_PASSPHRASE": "a", "PULUMI_CONFIG_PASSPHRASE_FILE": "/x"}) == "a"
    phrase = tmp_path / "phrase"
    phrase.write_text("  from-file \n")
    assert read_passphrase({"PULUMI_CONFIG_PASSPHRASE_FILE": str(phrase)}) == "from-file"
    with pytest.raises(SecretsError) as info:
        read_passphrase({})
    assert str(info.value) == NO_PASSPHRASE
    with pytest.raises(SecretsError, match="unable to read PULUMI_CONFIG_PASSPHRASE_FILE"):
        read_passphrase({"PULUMI_CONFIG_PASSPHRASE_FILE": str(tmp_path / "missing")})


def test_set_keeps_comments_adds_salt_once_and_refuses_a_wrong_passphrase(tmp_path: Path):
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text("# my comment\nconfig:\n  repman:cluster-name: dev\n  repman:prov-db-tags:\n    - row\n")
    set_secure_value(path, "repman:db-servers-credential", "repman:pw1", "phrase")
    set_secure_value(path, "repman:replication-credential", "repl:pw2", "phrase")
    set_secure_value(path, "repman:db-servers-credential", "repman:pw3", "phrase")  # replaced in place
    text = path.read_text()
    doc = yaml.safe_load(text)
    assert text.startswith("# my comment\nencryptionsalt: v1:") and text.count("encryptionsalt") == 1
    assert doc["config"]["repman:prov-db-tags"] == ["row"] and text.count("db-servers-credential") == 1
    assert "pw1" not in text and "pw3" not in text
    assert read_secure_value(path, "repman:db-servers-credential", "phrase") == "repman:pw3"
    assert read_secure_value(path, "repman:replication-credential", "phrase") == "repl:pw2"
    with pytest.raises(SecretsError, match="incorrect passphrase"):
        set_secure_value(path, "repman:replication-credential", "x", "other")
    assert path.read_text() == text


def test_command_line_reads_the_value_from_stdin(tmp_path: Path):
    (tmp_path / "Pulumi.yaml").write_text("name: repman\nstackConfigDir: stacks\n")
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "Pulumi.ci.yaml").write_text("config:\n  repman:cluster-name: ci\n")
    env = {"PULUMI_CONFIG_PASSPHRASE": "ci-phrase", "PATH": "/usr/bin:/bin"}
    cmd = [sys.executable, "-m", "components.pulumi_secrets"]
    done = subprocess.run([*cmd, "set", "--stack", "ci", "db-servers-credential", "--project-dir", str(tmp_path)],
                          input="repman:cli-pw\n", cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "cli-pw" not in (tmp_path / "stacks" / "Pulumi.ci.yaml").read_text()
    got = subprocess.run([*cmd, "get", "--stack", "ci", "repman:db-servers-credential", "--project-dir",
                          str(tmp_path)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert got.stdout == "repman:cli-pw\n"
    bad = subprocess.run([*cmd, "get", "--stack", "ci", "db-servers-credential", "--project-dir", str(tmp_path)],
                         cwd=ROOT, env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr == f"error: {NO_PASSPHRASE}\n"
