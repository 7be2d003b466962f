"""Watcher YAML: valid files load, every bad input is one ConfigError naming key and value."""

from __future__ import annotations

import textwrap

import pytest

from repman.api.auth import hash_password, verify_password
from repman.api.config import api_config
from repman.db import Credential, ServerAddress
from repman.errors import ConfigError
from repman.watcher.config import load_config, parse_config


def write(tmp_path, text: str):
    p = tmp_path / "repman.yaml"
    p.write_text(textwrap.dedent(text))
    return p


BASE = {
    "db-servers-hosts": ["127.0.0.1:3306", "127.0.0.1:3307"],
    "db-servers-credential": "repman:secret",
    "replication-credential": "repl:rsecret",
}


def one(**extra):
    section = dict(BASE)
    section.update(extra)
    return {"clusters": {"c1": section}}


def test_minimal_file_loads_with_repman_defaults(tmp_path):
    cfg = load_config(write(tmp_path, """
        clusters:
          c1:
            db-servers-hosts: [127.0.0.1:3306, "127.0.0.1:3307"]
            db-servers-credential: repman:secret
            replication-credential: repl:rsecret
            monitoring-ticker: 0.5
    """)).cluster()
    assert cfg.servers == [ServerAddress("127.0.0.1", 3306), ServerAddress("127.0.0.1", 3307)]
    assert cfg.admin == Credential("repman", "secret")
    assert cfg["failover-mode"] == "manual"
    assert cfg["failover-falsepositive-ping-counter"] == 5
    assert cfg.ticker == 0.5
    assert cfg["failover-max-slave-delay"] == 30.0


def test_many_clusters_and_selection(tmp_path):
    raw = {"clusters": {"a": dict(BASE), "b": dict(BASE, **{"failover-mode": "automatic"})}}
    wc = parse_config(raw)
    assert wc.cluster("b")["failover-mode"] == "automatic"
    with pytest.raises(ConfigError, match=r"--cluster: the file has 2 clusters \(a, b\): name one"):
        wc.cluster()
    with pytest.raises(ConfigError, match="no cluster 'zz'"):
        wc.cluster("zz")


def test_credentials_from_env_and_file(tmp_path, monkeypatch):
    monkeypatch.setenv("REPMAN_TEST_ADMIN", "root:from-env")
    secret = tmp_path / "repl.secret"
    secret.write_text("repl:from-file\n")
    cfg = parse_config(one(**{"db-servers-credential": {"env": "REPMAN_TEST_ADMIN"},
                              "replication-credential": {"file": str(secret)}})).cluster()
    assert cfg.admin == Credential("root", "from-env")
    assert cfg.replication == Credential("repl", "from-file")
    assert "from-env" not in repr(cfg.admin)


@pytest.mark.parametrize("extra, message", [
    ({"failover-mod": "automatic"},
     "clusters.c1.failover-mod: unknown key (value 'automatic'); did you mean failover-mode?"),
    ({"failover-mode": "auto"}, "clusters.c1.failover-mode: 'auto' is not one of manual, automatic"),
    ({"monitoring-ticker": "fast"}, "clusters.c1.monitoring-ticker: expected a number, got 'fast'"),
    ({"monitoring-ticker": 0}, "clusters.c1.monitoring-ticker: 0.0 is below the minimum 0.05"),
    ({"failover-limit": 2.5}, "clusters.c1.failover-limit: expected an integer, got 2.5"),
    ({"failover-falsepositive-heartbeat": "maybe"},
     "clusters.c1.failover-falsepositive-heartbeat: expected true or false, got 'maybe'"),
    ({"db-servers-hosts": ["127.0.0.1:3306", "no host port"]},
     "clusters.c1.db-servers-hosts: bad host:port 'no host port'"),
    ({"db-servers-hosts": ["127.0.0.1:99999"]}, "clusters.c1.db-servers-hosts: port out of range"),
    ({"db-servers-hosts": []}, "clusters.c1.db-servers-hosts: is required"),
    ({"db-servers-hosts": ["127.0.0.1:3306", "127.0.0.1:3306"]},
     "clusters.c1.db-servers-hosts: a server is listed twice"),
    ({"db-servers-credential": "repman"},
     "clusters.c1.db-servers-credential: expected user:password, got a value without ':' (6 characters, not shown)"),
    ({"replication-credential": None}, "clusters.c1.replication-credential: is required"),
    ({"db-servers-credential": {"env": "REPMAN_TEST_SURELY_UNSET"}},
     "clusters.c1.db-servers-credential: environment variable 'REPMAN_TEST_SURELY_UNSET' is not set"),
    ({"db-servers-credential": {"file": "/nonexistent/secret"}},
     "clusters.c1.db-servers-credential: cannot read /nonexistent/secret"),
    ({"db-servers-credential": {"keyring": "x"}},
     "clusters.c1.db-servers-credential: a reference must be {env: NAME} or {file: PATH}"),
    ({"db-servers-credential": {"vault": "x"}},
     "clusters.c1.db-servers-credential: a vault reference is 'mount/path#field'"),
    ({"db-servers-prefered-master": "127.0.0.1:4000"},
     "clusters.c1.db-servers-prefered-master: 127.0.0.1:4000 is not in db-servers-hosts"),
    ({"db-servers-prefered-master": "bad host"},
     "clusters.c1.db-servers-prefered-master: bad host:port 'bad host'"),
    ({"db-servers-prefered-master": "10.9.9.9"},
     "clusters.c1.db-servers-prefered-master: 10.9.9.9:3306 is not in db-servers-hosts"),
    ({"switchover-wait-route-change": 2, "switchover-wait-route-change-ms": 300},
     "clusters.c1.switchover-wait-route-change-ms: set either switchover-wait-route-change (seconds)"),
    ({"db-servers-ignored-hosts": ["127.0.0.1:3306"], "db-servers-prefered-master": "127.0.0.1:3306"},
     "clusters.c1.db-servers-ignored-hosts: 127.0.0.1:3306 is also db-servers-prefered-master"),
    ({"failover-pre-script": "/nonexistent/pre.sh"},
     "clusters.c1.failover-pre-script: '/nonexistent/pre.sh' is not a file"),
    ({"failover-max-slave-delay": -5}, "clusters.c1.failover-max-slave-delay: -5.0 is below the minimum -1"),
])
def test_bad_cluster_values(extra, message):
    with pytest.raises(ConfigError) as err:
        parse_config(one(**extra))
    assert str(err.value).startswith(message), str(err.value)
    assert "\n" not in str(err.value)


def test_secret_values_never_echoed():
    with pytest.raises(ConfigError) as err:
        parse_config(one(**{"db-servers-password": "hunter2"}))
    assert "hunter2" not in str(err.value)
    with pytest.raises(ConfigError) as err:
        parse_config(one(**{"db-servers-credential": "nocolonsecret"}))
    assert str(err.value) == ("clusters.c1.db-servers-credential: expected user:password, "
                              "got a value without ':' (13 characters, not shown)")
    assert "nocolonsecret" not in str(err.value)
    with pytest.raises(ConfigError) as err:
        parse_config(one(**{"db-servers-credential": "user:pw:with:colons", "failover-mode": "x"}))
    assert "pw:with" not in str(err.value)


@pytest.mark.parametrize("raw, message", [
    ({"clusters": {}}, "clusters: expected at least one cluster section"),
    ({"cluster": {"c1": BASE}}, "cluster: unknown top-level section"),
    ({"clusters": {"c 1": BASE}}, "clusters.c 1: a cluster name is"),
    ({"clusters": {"c1": None}}, "clusters.c1: empty section"),
    ({"clusters": {"c1": ["x"]}}, "clusters.c1: expected a mapping of keys"),
    ([1, 2], "<config>: expected a mapping"),
])
def test_bad_structure(raw, message):
    with pytest.raises(ConfigError) as err:
        parse_config(raw)
    assert str(err.value).startswith(message), str(err.value)


def test_file_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"--config: cannot read .*missing.yaml"):
        load_config(tmp_path / "missing.yaml")
    p = write(tmp_path, "clusters:\n  c1: [unclosed\n")
    with pytest.raises(ConfigError, match=r"invalid YAML at line \d+"):
        load_config(p)


def test_routing_keys_are_accepted():
    cfg = parse_config(one(**{"haproxy": True, "haproxy-runtime-api-servers": ["/tmp/x.sock"]})).cluster()
    assert cfg["haproxy"] is True


def test_haproxy_servers_are_hosts_as_in_repman():
    """repman's haproxy-servers lists hosts; a socket path there is refused with the new key named."""
    cfg = parse_config(one(**{"haproxy": True, "haproxy-servers": "10.0.0.1,proxy2"})).cluster()
    assert cfg["haproxy-servers"] == ["10.0.0.1", "proxy2"] and cfg["haproxy-api-port"] == 1999
    with pytest.raises(ConfigError, match=r"clusters.c1.haproxy-servers: '/tmp/x.sock' is not a host.*"
                                          r"haproxy-runtime-api-servers"):
        parse_config(one(**{"haproxy": True, "haproxy-servers": ["/tmp/x.sock"]}))


def test_api_section(tmp_path, monkeypatch):
    h = hash_password("op-pass")
    monkeypatch.setenv("REPMAN_TEST_VIEW_PW", "view-pass")
    api = api_config(parse_config({**one(), "api": {
        "api-port": 0,
        "api-users": {"ops": {"role": "operator", "password-hash": h},
                      "eve": {"role": "viewer", "password": {"env": "REPMAN_TEST_VIEW_PW"}}},
    }}))
    assert api.enabled and api.port == 0 and not api.tls
    assert api.users["ops"].may("operator") and api.users["ops"].may("viewer")
    assert api.users["eve"].may("viewer") and not api.users["eve"].may("operator")
    assert verify_password("view-pass", api.users["eve"].password_hash)
    assert "view-pass" not in repr(api)
    assert api_config(parse_config(one())).enabled is False


@pytest.mark.parametrize("api, message", [
    ({"api-port": "http"}, "api.api-port: expected an integer"),
    ({"api-listen": 1}, "api.api-listen: unknown key"),
    ({"api-users": {"bob": {"role": "root", "password-hash": "x"}}},
     "api.api-users.bob.role: 'root' is not one of viewer, operator, auditor, admin"),
    ({"api-users": {"bob": {"password": "clear"}}}, "api.api-users.bob.password: inline passwords are refused"),
    ({"api-users": {"bob": {"password-hash": "md5$abc"}}}, "api.api-users.bob.password-hash: not a pbkdf2-sha256"),
    ({"api-users": {"bob": {"role": "viewer"}}}, "api.api-users.bob: give exactly one of"),
    ({"api-users": {"bob": {"password": {"env": "REPMAN_TEST_SURELY_UNSET"}}}},
     "api.api-users.bob.password: environment variable"),
    ({"api-tls-cert": "/nonexistent/c.pem"}, "api.api-tls-key: api-tls-cert and api-tls-key go together"),
    ({"api-tls-cert": "/nonexistent/c.pem", "api-tls-key": "/nonexistent/k.pem"},
     "api.api-tls-cert: '/nonexistent/c.pem' is not a readable file"),
    ("yes", "api: expected a mapping"),
])
def test_bad_api_section(api, message):
    with pytest.raises(ConfigError) as err:
        api_config(parse_config({**one(), "api": api}))
    assert str(err.value).startswith(message), str(err.value)


def test_password_hash_roundtrip():
    h = hash_password("s3cret")
    assert h.startswith("pbkdf2-sha256$")
    assert verify_password("s3cret", h)
    assert not verify_password("s3cret!", h)
    assert hash_password("s3cret") != h        # salted


def test_repman_key_semantics_hosts_default_port_and_preferred_list():
    """Same key, same meaning as repman: 3306 when no port, prefered-master a list, seconds."""
    cfg = parse_config({"clusters": {"c1": {
        "db-servers-hosts": "db1,db2:3307,[::1]", "db-servers-credential": "repman:secret",
        "replication-credential": "repl:rsecret",
        "db-servers-prefered-master": "db2:3307,db1", "switchover-wait-route-change": 2,
    }}}).cluster()
    assert cfg.servers == [ServerAddress("db1", 3306), ServerAddress("db2", 3307), ServerAddress("::1", 3306)]
    assert cfg["db-servers-prefered-master"] == [ServerAddress("db2", 3307), ServerAddress("db1", 3306)]
    assert cfg["switchover-wait-route-change"] == 2.0          # seconds, as repman
    assert cfg["switchover-wait-route-change-ms"] == 0


def test_route_change_wait_is_seconds_or_the_ms_variant():
    from repman.routing import route_change_wait
    from repman.watcher.cluster_config import ClusterConfig

    assert route_change_wait(ClusterConfig("c1", {})) == 0
    assert route_change_wait(ClusterConfig("c1", {"switchover-wait-route-change": 2.0})) == 2.0
    assert route_change_wait(ClusterConfig("c1", {"switchover-wait-route-change-ms": 250})) == 0.25
