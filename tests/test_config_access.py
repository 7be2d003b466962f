"""One source of configuration: defaults and types come from the key tables, never from call sites.

The typed accessors (``cfg.flag``, ``cfg.seconds``...) read a key's default from its table;
the source scan below keeps ``cfg.get(key, default)`` from coming back.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path
from typing import Iterator

import pytest

from repman.api.keys import API_KEYS
from repman.backup.keys import BACKUP_KEYS
from repman.backup.settings import BackupSettings
from repman.db import Credential, ServerAddress
from repman.key_access import KeyKindError, KeyValues
from repman.keys import Key
from repman.routing.keys import ROUTING_KEYS
from repman.watcher.cluster_config import CLUSTER_KEYS, ClusterConfig
from repman.watcher.config import all_cluster_keys, load_cluster
from repman.watcher.keys import WATCHER_KEYS

REPMAN = Path(__file__).resolve().parent.parent / "repman"
TABLE_KEYS = {*WATCHER_KEYS, *ROUTING_KEYS, *BACKUP_KEYS, *API_KEYS}

# Files the scan skips: none (every call site reads through the typed accessors).
ALLOWED: set[str] = set()

#: the accessor that reads each kind of key a cluster section holds (no cluster key is a single hostport)
ACCESSOR = {"bool": "flag", "int": "integer", "float": "seconds", "str": "text", "path": "text",
            "enum": "text", "strlist": "strings", "hostports": "hosts", "credential": "credential"}


def _receiver(node: ast.expr) -> str:
    """``cfg``, ``self.cfg``, ``monitor.config``... -> the last name."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def inline_defaults(source: str) -> Iterator[tuple[int, str]]:
    """(line, key) of every ``cfg.get("<table key>", default)`` / ``config.get(...)`` call, and of
    every untyped ``cfg["<table key>"]`` read."""
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Subscript) and _receiver(node.value) in ("cfg", "config")
                and isinstance(node.slice, ast.Constant) and node.slice.value in TABLE_KEYS):
            yield node.lineno, node.slice.value
            continue
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "get" and _receiver(node.func.value) in ("cfg", "config")):
            continue
        if not node.args or not isinstance(node.args[0], ast.Constant):
            continue
        key = node.args[0].value
        if key in TABLE_KEYS and (len(node.args) > 1 or node.keywords):
            yield node.lineno, key


def test_the_scan_finds_restated_defaults_and_only_those():
    source = (
        'a = cfg.get("semisync", False)\n'
        'b = self.cfg.get("failover-limit", default=5)\n'
        'c = monitor.config.get("proxy-timeout", 2.0)\n'
        'd = cfg.get("autoseed")\n'                   # no default: not a restatement
        'e = cfg.get("not-a-key", 1)\n'               # not a table key
        'f = other.get("semisync", False)\n'          # not a config
        'g = monitor.cfg["failover-max-slave-delay"]\n'
        'h = cfg[key]\n'                             # a computed key: not checked here
    )
    assert sorted(inline_defaults(source)) == [(1, "semisync"), (2, "failover-limit"), (3, "proxy-timeout"),
                                               (7, "failover-max-slave-delay")]


def test_no_call_site_restates_a_key_tables_default_or_reads_a_key_untyped():
    found = []
    for path in sorted(REPMAN.rglob("*.py")):
        rel = path.relative_to(REPMAN).as_posix()
        if rel in ALLOWED:
            continue
        found += [f"repman/{rel}:{line}: {key}" for line, key in inline_defaults(path.read_text())]
    assert found == [], "use the typed accessors (cfg.flag, cfg.seconds...):\n" + "\n".join(found)


def test_the_accessors_know_every_key_a_cluster_section_validates():
    assert CLUSTER_KEYS == all_cluster_keys()


def _read(cfg: ClusterConfig | KeyValues, key: Key):
    return getattr(cfg, ACCESSOR[key.kind])(key.name)


@pytest.mark.parametrize("key", list(CLUSTER_KEYS.values()), ids=lambda k: k.name)
def test_an_absent_key_reads_its_tables_default(key: Key):
    assert _read(ClusterConfig("c1", {}), key) == key.default


def test_validated_values_read_back_typed():
    cfg = load_cluster("c1", {
        "db-servers-hosts": ["127.0.0.1:3306", "127.0.0.1:3307"], "db-servers-credential": "repman:secret",
        "replication-credential": "repl:rsecret", "semisync": True, "failover-limit": "3",
        "failover-time-limit": 120, "failover-mode": "automatic", "haproxy-servers": "h1, h2",
        "db-servers-ignored-hosts": ["127.0.0.1:3307"],
    })
    assert cfg.flag("semisync") is True
    assert cfg.integer("failover-limit") == 3
    assert cfg.seconds("failover-time-limit") == 120.0 and isinstance(cfg.seconds("failover-time-limit"), float)
    assert cfg.text("failover-mode") == "automatic"
    assert cfg.strings("haproxy-servers") == ["h1", "h2"]
    assert cfg.hosts("db-servers-ignored-hosts") == [ServerAddress("127.0.0.1", 3307)]
    assert cfg.credential("db-servers-credential") == Credential("repman", "secret")
    assert cfg.optional_text("alert-script") is None
    assert cfg.flag("autorejoin") is True                       # not in the file: the table's default


def test_reading_a_key_as_another_type_names_the_key():
    cfg = ClusterConfig("c1", {"failover-limit": 3})
    with pytest.raises(KeyKindError, match="failover-limit is a int key, not read by flag"):
        cfg.flag("failover-limit")
    with pytest.raises(KeyKindError, match="switchover-wait-kill"):
        cfg.seconds("switchover-wait-kill")                      # milliseconds, an int key
    with pytest.raises(TypeError, match="semisync"):
        cfg.text("semisync")


def test_an_unknown_key_is_a_programming_error_naming_it():
    cfg = ClusterConfig("c1", {"semisync": True})
    with pytest.raises(KeyError, match="failover-semi-sync"):
        cfg.flag("failover-semi-sync")
    with pytest.raises(KeyError, match="api-port"):               # an api: key, not a cluster key
        cfg.integer("api-port")
    with pytest.raises(KeyError, match="backup-keep-yearly"):
        KeyValues([BACKUP_KEYS], {}).integer("backup-keep-yearly")


def test_a_default_list_is_a_copy_of_the_tables():
    cfg = ClusterConfig("c1", {})
    cfg.strings("haproxy-servers").append("h1")
    cfg.hosts("db-servers-hosts").append(ServerAddress("h", 3306))
    assert ROUTING_KEYS["haproxy-servers"].default == [] and WATCHER_KEYS["db-servers-hosts"].default == []


def test_a_credential_file_is_reread_through_the_accessor(tmp_path):
    secret = tmp_path / "repl"
    secret.write_text("repl:one\n")
    cfg = ClusterConfig("c1", {"replication-credential": Credential("repl", "one")},
                        secret_files={"replication-credential": str(secret)})
    assert cfg.credential("replication-credential") == Credential("repl", "one")
    secret.write_text("repl:two\n")
    os.utime(secret, ns=(1, 1))                                   # a new mtime, whatever the clock's grain
    assert cfg.credential("replication-credential") == Credential("repl", "two")


def test_backup_settings_take_missing_keys_from_the_table(tmp_path):
    settings = BackupSettings.from_values("c1", tmp_path, {})
    assert settings.keep == {p: BACKUP_KEYS[f"backup-keep-{p}"].default
                             for p in ("last", "hourly", "daily", "weekly", "monthly")}
    assert settings.keep["monthly"] == 12                          # was 0 before the table was the source
    assert (settings.physical_type, settings.logical_type) == ("mariabackup", "mysqldump")
    assert settings.backup_dir == tmp_path / "backups"
