"""Verified TLS: replicas check the master's certificate, the watcher checks every server's (issue 15).

Real mariadbd nodes with the ``ssl`` tag and one cluster CA; a second, rogue CA
and a wrong host name show that verification is really on.
"""

from __future__ import annotations

from pathlib import Path

import pymysql
import pytest

from repman.bootstrap import BootstrapRequest, bootstrap
from repman.db import ServerAddress, connect, query
from repman.db_tls import register
from repman.local.testbed import DEFAULT_TAGS, Testbed
from repman.tls import ensure_server_certificates
from repman.watcher.config import load_cluster
from repman.watcher.failover import failover
from repman.watcher.state_store import StateStore
from testkit.cluster import HACluster
from testkit.env import needs_mariadb


def _slave(c: HACluster, addr: ServerAddress) -> dict:
    return c.sql(addr, "SHOW SLAVE STATUS")[0]


@needs_mariadb
@pytest.mark.slow
def test_replication_and_watcher_connections_verify_certificates_and_host_names(tmp_path):
    ca_dir = tmp_path / "ca"
    bed = Testbed.create(tmp_path / "db", count=3, tags=[*DEFAULT_TAGS, "ssl"], ca_dir=ca_dir)
    try:
        bootstrap(BootstrapRequest(servers=bed.addresses, admin=bed.admin, replication=bed.replication,
                                   monitoring=bed.monitoring, replication_ssl=True))
        raw = {"db-servers-hosts": [a.url for a in bed.addresses],
               "db-servers-credential": f"{bed.admin.user}:{bed.admin.password}",
               "replication-credential": f"{bed.replication.user}:{bed.replication.password}",
               "monitoring-datadir": str(tmp_path / "state"), "replication-use-ssl": True,
               "db-servers-tls-ca-cert": str(ca_dir / "ca.pem")}
        cfg = load_cluster("tls", raw)
        c = HACluster(bed, cfg, StateStore(cfg.state_dir, keep=5))
        master = c.primary()
        for r in c.replicas():
            st = _slave(c, r)
            assert (st["Master_SSL_Allowed"], st["Master_SSL_Verify_Server_Cert"]) == ("Yes", "Yes")
            assert st["Master_SSL_CA_File"].endswith("ca.pem") and st["Slave_IO_Running"] == "Yes"
        # the replication user's session on the master is encrypted
        threads = c.sql(master, "SELECT COUNT(*) AS n FROM information_schema.processlist WHERE user = %s",
                        (bed.replication.user,))
        assert threads[0]["n"] == 2
        # the watcher's own connections: TLS, verified
        with connect(master, bed.admin) as conn:
            assert query(conn, "SHOW SESSION STATUS LIKE 'Ssl_version'")[0]["Value"].startswith("TLS")

        # a certificate from another CA, or a host name not in the certificate, is refused
        ensure_server_certificates(tmp_path / "rogue", hosts=["127.0.0.1"], ca_dir=tmp_path / "rogue-ca")
        register([master], str(tmp_path / "rogue-ca" / "ca.pem"))
        with pytest.raises(pymysql.err.OperationalError) as err:
            connect(master, bed.admin, timeout=3).close()
        assert "CERTIFICATE_VERIFY_FAILED" in str(err.value)
        register([master], str(ca_dir / "ca.pem"))
        by_name = ServerAddress("localhost", master.port)
        register([by_name], str(ca_dir / "ca.pem"))
        with pytest.raises(pymysql.err.OperationalError) as err:
            connect(by_name, bed.admin, timeout=3).close()
        assert "Hostname mismatch" in str(err.value), str(err.value)
        register([by_name], "")

        # a failover re-points the surviving replica with verification kept
        c.sql(master, "CREATE DATABASE app")
        c.sql(master, "CREATE TABLE app.t (id INT PRIMARY KEY)")
        c.sql(master, "INSERT INTO app.t VALUES (1)")
        c.assert_converged()
        bed.kill(master)
        res = failover(c.cfg, c.store, c.log)
        assert res.ok, res.sentence
        survivor = next(a for a in bed.addresses if a not in (master, res.new_primary))
        st = _slave(c, survivor)
        assert int(st["Master_Port"]) == res.new_primary.port
        assert (st["Master_SSL_Allowed"], st["Master_SSL_Verify_Server_Cert"]) == ("Yes", "Yes")
        c.sql(res.new_primary, "INSERT INTO app.t VALUES (2)")
        c.assert_converged([res.new_primary, survivor])
    finally:
        register(bed.addresses, "")
        bed.destroy()


def test_the_stack_passes_replication_use_ssl_to_its_bootstrap():
    """The Pulumi bootstrap resource turns the stack's replication-use-ssl into the request's flag."""
    pytest.importorskip("pulumi")
    from components.providers.bootstrap import BootstrapArgs, _request
    from repman.spec import load_cluster_spec
    spec = load_cluster_spec({"repman:db-servers-credential": "repman:a", "repman:replication-credential": "repl:r",
                              "repman:prov-db-tags": ["ssl", "gtidstrict"], "repman:replication-use-ssl": True},
                             project_dir="/srv/p")
    assert spec.setting("replication-use-ssl") is True
    props = {"servers": ["127.0.0.1:3310"], "admin_user": "a", "admin_password": "x", "replication_user": "r",
             "replication_password": "y"}
    assert _request({**props, "replication_ssl": True}).replication_ssl is True
    assert _request(props).replication_ssl is False
    off = BootstrapArgs(servers=[], members=[], admin_user="a", admin_password="x", replication_user="r",
                        replication_password="y")
    assert "replication_ssl" not in off.inputs()  # existing stacks get no new input (no spurious update)


def test_replication_use_ssl_without_the_ssl_tag_is_refused_before_anything_is_created():
    from repman.errors import ConfigError
    from repman.spec import load_cluster_spec
    with pytest.raises(ConfigError, match=r"^repman:replication-use-ssl: needs the ssl tag in prov-db-tags"):
        load_cluster_spec({"repman:db-servers-credential": "repman:a", "repman:replication-credential": "repl:r",
                           "repman:prov-db-tags": ["gtidstrict"], "repman:replication-use-ssl": True},
                          project_dir="/srv/p")


@needs_mariadb
@pytest.mark.slow
def test_local_stack_with_the_ssl_tag_verifies_replication_and_the_watcher(tmp_path):
    """`up` of stacks/Pulumi.local.yaml with the ssl tag added: nothing else to set."""
    import json
    import shutil
    import subprocess
    import sys
    import tempfile

    import yaml

    from repman.local.ports import free_port_block
    root = Path(__file__).resolve().parent.parent
    base = Path(tempfile.mkdtemp(prefix="repman-tls-"))  # short: HAProxy's socket path must fit
    tags = yaml.safe_load((root / "stacks" / "Pulumi.local.yaml").read_text())["config"]["repman:prov-db-tags"]
    proxy = free_port_block(2)
    overrides = [f"repman:db-servers-base-port={free_port_block(3)}", f"repman:prov-state-dir={base / 'state'}",
                 f"repman:haproxy-write-port={proxy}", f"repman:haproxy-read-port={proxy + 1}",
                 f"repman:api-port={free_port_block(1)}", "repman:prov-db-tags=" + json.dumps([*tags, "ssl"])]

    def engine(*args: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "embedded_engine", *args, "--stack", "local"]
        for item in overrides:
            cmd += ["-c", item]
        return subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=300)

    # Engines with a confirmation step want --yes when not interactive.
    help_text = subprocess.run([sys.executable, "-m", "embedded_engine", "--help"], cwd=root,
                               capture_output=True, text=True, timeout=60).stdout
    try:
        up = engine("up", "--json", *(["--yes"] if "--yes" in help_text else []))
        assert up.returncode == 0, up.stderr[-2000:]
        outs = json.loads(up.stdout)["outputs"]
        config = yaml.safe_load(Path(outs["watcher_config_path"]).read_text())
        section = next(iter(config["clusters"].values()))
        assert section["replication-use-ssl"] is True
        assert section["db-servers-tls-ca-cert"] == str(base / "state" / "cluster1" / "ca" / "ca.pem")
        admin = load_cluster("x", {**section, "db-servers-credential": Path(
            section["db-servers-credential"]["file"]).read_text().strip()}).admin
        for replica in outs["replica_endpoints"]:
            with connect(ServerAddress.parse(replica), admin) as conn:
                st = query(conn, "SHOW SLAVE STATUS")[0]
                assert (st["Master_SSL_Allowed"], st["Master_SSL_Verify_Server_Cert"]) == ("Yes", "Yes")
                assert st["Slave_IO_Running"] == "Yes"
                assert query(conn, "SHOW SESSION STATUS LIKE 'Ssl_version'")[0]["Value"].startswith("TLS")
    finally:
        down = engine("down")
        register([ServerAddress.parse(s) for s in json.loads(up.stdout)["outputs"]["servers"]], "") \
            if up.returncode == 0 else None
        shutil.rmtree(base, ignore_errors=True)
        assert down.returncode == 0, down.stderr[-2000:]
