"""Secrets at rest: ``{encrypted: ...}`` values under a key file, Vault KV v2 references."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from repman.api.config import api_config
from repman.errors import ConfigError
from repman.secret_store import encrypt, generate_key_file, read_key
from repman.watcher.config import load_config
from testkit.standins.http_recorder import RecordingHTTPServer


def _config(tmp_path: Path, repl: object, **extra: object) -> Path:
    section = {"db-servers-hosts": ["127.0.0.1:3306"], "db-servers-credential": "admin:admin-pw",
               "replication-credential": repl, **extra}
    path = tmp_path / "repman.yaml"
    path.write_text(yaml.safe_dump({"clusters": {"c1": section}}))
    return path


def _repman(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "repman.cli", *args], input=stdin, capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=60)


def test_cli_encrypted_value_is_accepted_by_the_watcher_config_and_only_decrypted_in_memory(tmp_path):
    key = tmp_path / "key"
    assert _repman("password", "keygen", "--key-path", str(key)).returncode == 0
    assert key.stat().st_mode & 0o777 == 0o600
    done = _repman("password", "encrypt", "--key-path", str(key), stdin="repl:clear-at-rest-pw\n")
    assert done.returncode == 0, done.stderr
    assert "clear-at-rest-pw" not in done.stdout
    ref = yaml.safe_load(done.stdout)
    path = _config(tmp_path, ref, **{"monitoring-key-path": str(key)})
    assert "clear-at-rest-pw" not in path.read_text()
    cred = load_config(path).cluster()["replication-credential"]
    assert (cred.user, cred.password) == ("repl", "clear-at-rest-pw")
    assert "clear-at-rest-pw" not in repr(cred)


def test_wrong_key_missing_key_and_open_key_file_are_one_line_errors(tmp_path):
    good, other = tmp_path / "good", tmp_path / "other"
    generate_key_file(good)
    generate_key_file(other)
    token = encrypt("repl:pw-under-good-key", read_key(good))
    with pytest.raises(ConfigError, match=r"clusters\.c1\.replication-credential: cannot decrypt") as err:
        load_config(_config(tmp_path, {"encrypted": token}, **{"monitoring-key-path": str(other)}))
    assert "pw-under-good-key" not in str(err.value)
    with pytest.raises(ConfigError, match="needs monitoring-key-path"):
        load_config(_config(tmp_path, {"encrypted": token}))
    good.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_config(_config(tmp_path, {"encrypted": token}, **{"monitoring-key-path": str(good)}))
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    good.chmod(0o600)
    with pytest.raises(ConfigError, match="cannot decrypt"):
        load_config(_config(tmp_path, {"encrypted": tampered}, **{"monitoring-key-path": str(good)}))
    done = _repman("password", "encrypt", "--key-path", str(tmp_path / "absent"), stdin="x\n")
    assert done.returncode == 2 and "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1


def test_vault_reference_reads_kv_v2_through_hvac_from_a_recording_stand_in(tmp_path, monkeypatch):
    """The stand-in records requests and answers like Vault's KV v2 read; no Vault runs here."""
    pytest.importorskip("hvac")

    def answer(req):
        if req.path == "/v1/secret/data/repman/c1":
            return 200, {"data": {"data": {"replication": "repl:from-vault-pw"},
                                  "metadata": {"version": 3, "deletion_time": "", "destroyed": False}}}
        return 404, {"errors": []}

    vault = RecordingHTTPServer(answer)
    try:
        monkeypatch.setenv("VAULT_ADDR", f"http://127.0.0.1:{vault.port}")
        monkeypatch.setenv("VAULT_TOKEN", "vault-test-token")
        cred = load_config(_config(tmp_path, {"vault": "secret/repman/c1#replication"})).cluster()[
            "replication-credential"]
        assert cred.password == "from-vault-pw"
        assert vault.requests[-1].method == "GET"
        assert vault.requests[-1].headers.get("X-Vault-Token") == "vault-test-token"
        with pytest.raises(ConfigError, match="has no field 'admin'"):
            load_config(_config(tmp_path, {"vault": "secret/repman/c1#admin"}))
        with pytest.raises(ConfigError, match="vault secret/repman/other: InvalidPath"):
            load_config(_config(tmp_path, {"vault": "secret/repman/other#x"}))
        with pytest.raises(ConfigError, match="'mount/path#field'"):
            load_config(_config(tmp_path, {"vault": "no-field"}))
    finally:
        vault.close()


def test_the_stack_accepts_encrypted_credentials_with_monitoring_key_path(tmp_path):
    from repman.spec import load_cluster_spec
    key = tmp_path / "key"
    generate_key_file(key)
    token = encrypt("repman:stack-admin-pw", read_key(key))
    spec = load_cluster_spec({"repman:db-servers-credential": {"encrypted": token},
                              "repman:replication-credential": "repl:repl-pw",
                              "repman:monitoring-key-path": str(key)}, project_dir=str(tmp_path))
    assert spec.admin.password == "stack-admin-pw"
    with pytest.raises(ConfigError, match="repman:db-servers-credential: an encrypted value needs"):
        load_cluster_spec({"repman:db-servers-credential": {"encrypted": token},
                           "repman:replication-credential": "repl:repl-pw"}, project_dir=str(tmp_path))


def test_api_user_passwords_can_be_encrypted_with_the_clusters_key(tmp_path):
    from repman.api.auth import verify_password
    key = tmp_path / "key"
    generate_key_file(key)
    path = _config(tmp_path, "repl:pw", **{"monitoring-key-path": str(key)})
    raw = yaml.safe_load(path.read_text())
    raw["api"] = {"api-users": {"bob": {"role": "viewer",
                                        "password": {"encrypted": encrypt("bob-at-rest-pw", read_key(key))}}}}
    path.write_text(yaml.safe_dump(raw))
    bob = api_config(load_config(path)).users["bob"]
    assert verify_password("bob-at-rest-pw", bob.password_hash)
