"""The watcher file's ``ha:`` section: defaults, one-line errors naming ha.<key>, alone without endpoints."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
import yaml

from repman.errors import ConfigError
from repman.watcher.config import parse_config

BASE = {
    "db-servers-hosts": ["127.0.0.1:3306", "127.0.0.1:3307"],
    "db-servers-credential": "repman:secret",
    "replication-credential": "repl:rsecret",
}


def with_ha(ha: object) -> dict[str, object]:
    return {"clusters": {"c1": dict(BASE)}, "ha": ha}


def test_no_section_or_no_endpoints_means_alone() -> None:
    assert parse_config({"clusters": {"c1": dict(BASE)}}).ha is None
    assert parse_config(with_ha(None)).ha is None
    assert parse_config(with_ha({"ha-etcd-endpoints": []})).ha is None


def test_defaults_and_key_layout() -> None:
    ha = parse_config(with_ha({"ha-etcd-endpoints": ["10.0.0.1:2379", "etcd2"]})).ha
    assert ha is not None
    assert ha.endpoints == ("10.0.0.1:2379", "etcd2:2379")          # etcd's client port by default
    assert (ha.prefix, ha.lease_ttl, ha.failover_quorum) == ("/repman", 10, 1)
    assert ha.watcher_name == socket.gethostname()
    assert ha.key("c1", "leader") == b"/repman/c1/leader"
    named = parse_config(with_ha({"ha-etcd-endpoints": "e1:2379,e2:2379", "ha-etcd-prefix": "/prod/",
                                  "ha-watcher-name": "w1", "ha-lease-ttl": 3})).ha
    assert named is not None and named.key("c1", "state") == b"/prod/c1/state" and named.watcher_name == "w1"


@pytest.mark.parametrize("ha, key, words", [
    ({"ha-etcd-endpoints": ["e1:notaport"]}, "ha.ha-etcd-endpoints", "e1:notaport"),
    ({"ha-etcd-endpoints": ["e1"], "ha-lease-ttl": 1}, "ha.ha-lease-ttl", "below the minimum"),
    ({"ha-etcd-endpoints": ["e1"], "ha-lease-ttl": "ten"}, "ha.ha-lease-ttl", "ten"),
    ({"ha-etcd-endpoints": ["e1"], "ha-etcd-prefix": "repman"}, "ha.ha-etcd-prefix", "must start with '/'"),
    ({"ha-etcd-endpoints": ["e1"], "ha-watcher-name": "a/b"}, "ha.ha-watcher-name", "without '/'"),
    ({"ha-etcd-endpoints": ["e1"], "ha-failover-quorum": 2}, "ha.ha-failover-quorum", "above the maximum"),
    ({"ha-etcd-endpoints": ["e1"], "ha-etcd-user": "root"}, "ha.ha-etcd-password", "go together"),
    ({"ha-etcd-endpoints": ["e1"], "ha-etcd-tls-cert": "/nonexistent.pem"}, "ha.ha-etcd-tls-key", "go together"),
    ({"ha-etcd-endpoints": ["e1"], "ha-etcd-tls-ca": "/nonexistent.pem"}, "ha.ha-etcd-tls-ca", "not a readable"),
    ({"ha-etcd-endpoints": ["e1"], "ha-lease": 3}, "ha.ha-lease", "unknown key"),
    ({"ha-lease-ttl": 5}, "ha.ha-etcd-endpoints", "is required"),
    ("etcd:2379", "ha", "expected a mapping"),
])
def test_bad_values_are_one_error_naming_the_key(ha: object, key: str, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(with_ha(ha))
    assert err.value.key == key and words in str(err.value), str(err.value)


def test_password_never_shown_in_errors_or_repr() -> None:
    ha = parse_config(with_ha({"ha-etcd-endpoints": ["e1"], "ha-etcd-user": "root",
                               "ha-etcd-password": "s3cret-etcd"})).ha
    assert ha is not None and ha.password == "s3cret-etcd" and "s3cret-etcd" not in repr(ha)


def test_cli_reports_a_bad_ha_key_in_one_line(tmp_path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(yaml.safe_dump(with_ha({"ha-etcd-endpoints": ["e1"], "ha-lease-ttl": 0})))
    out = subprocess.run([sys.executable, "-m", "repman.cli", "status", "--config", str(path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    assert "ha.ha-lease-ttl: 0 is below the minimum 2" in out.stderr + out.stdout
