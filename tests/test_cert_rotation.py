"""`repman certificates rotate` on a live TLS cluster with verified replication and a writer (issue 15, point 2).

Real mariadbd nodes (ssl tag, one cluster CA), replication with
MASTER_SSL_VERIFY_SERVER_CERT, the watcher's connections verified against its CA
file, the recording writer inserting through the whole rotation.
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pymysql
import pytest
import yaml
from cryptography import x509

from repman.bootstrap import BootstrapRequest, bootstrap
from repman.db import connect, query
from repman.local.testbed import DEFAULT_TAGS, Testbed
from repman.watcher.config import load_config
from repman.watcher.state_store import StateStore
from testkit.cluster import HACluster
from testkit.env import needs_mariadb

pytestmark = [needs_mariadb, pytest.mark.slow]


def test_certificates_rotate_on_a_live_cluster_keeps_replication_and_writes(tmp_path):
    ca_dir = tmp_path / "ca"
    bed = Testbed.create(tmp_path / "db", count=3, tags=[*DEFAULT_TAGS, "ssl"], ca_dir=ca_dir)
    try:
        bootstrap(BootstrapRequest(servers=bed.addresses, admin=bed.admin, replication=bed.replication,
                                   monitoring=bed.monitoring, replication_ssl=True))
        watcher_ca = tmp_path / "watcher-ca.pem"
        shutil.copyfile(ca_dir / "ca.pem", watcher_ca)
        old_ca = tmp_path / "old-ca.pem"
        shutil.copyfile(ca_dir / "ca.pem", old_ca)
        section = {"db-servers-hosts": [a.url for a in bed.addresses],
                   "db-servers-credential": f"{bed.admin.user}:{bed.admin.password}",
                   "replication-credential": f"{bed.replication.user}:{bed.replication.password}",
                   "monitoring-datadir": str(tmp_path / "state"), "replication-use-ssl": True,
                   "db-servers-tls-ca-cert": str(watcher_ca)}
        path = tmp_path / "repman.yaml"
        path.write_text(yaml.safe_dump({"clusters": {"c1": section}}))
        cfg = load_config(path).cluster()  # registers verified TLS for these servers in this process
        c = HACluster(bed, cfg, StateStore(cfg.state_dir, keep=5))
        w = c.writer(pause=0.002)  # its connections verify against watcher-ca.pem as it changes
        w.start()
        try:
            w.wait_acks(200)
            started = time.monotonic()
            done = subprocess.run([sys.executable, "-m", "repman.cli", "--config", str(path), "-v",
                                   "certificates", "rotate", "--ca-dir", str(ca_dir)],
                                  capture_output=True, text=True, timeout=120,
                                  env={**os.environ, "PYTHONPATH": os.getcwd()})
            ended = time.monotonic()
            w.wait_acks(200)
        finally:
            w.stop()
        assert done.returncode == 0, done.stderr
        assert "trust old and new CA" in done.stderr and "trust the new CA only" in done.stderr

        new_ca = x509.load_pem_x509_certificate((ca_dir / "ca.pem").read_bytes())
        old = x509.load_pem_x509_certificate(old_ca.read_bytes())
        assert new_ca.subject != old.subject
        for addr in bed.addresses:
            ssl_dir = Path(bed.node(addr).base_dir) / "ssl"
            cert = x509.load_pem_x509_certificate((ssl_dir / "server-cert.pem").read_bytes())
            assert cert.issuer == new_ca.subject
            assert (ssl_dir / "ca.pem").read_bytes() == (ca_dir / "ca.pem").read_bytes()
        assert watcher_ca.read_bytes() == (ca_dir / "ca.pem").read_bytes()

        c.assert_converged()
        for addr in bed.addresses:
            assert w.verify(addr) == (set(), set())
        assert w.gaps(started, ended) < 1.0, "writes must go on during a certificate rotation"
        # replicas reconnect, verifying the master's new certificate against the new CA
        for r in c.replicas():
            c.sql(r, "STOP SLAVE IO_THREAD")
            c.sql(r, "START SLAVE IO_THREAD")
            c.wait_for(lambda: c.sql(r, "SHOW SLAVE STATUS")[0]["Slave_IO_Running"] == "Yes", 20, "IO back")
            st = c.sql(r, "SHOW SLAVE STATUS")[0]
            assert st["Master_SSL_Verify_Server_Cert"] == "Yes" and st["Last_IO_Errno"] == 0
        # the watcher's verified connections work; a client trusting only the old CA is refused
        with connect(bed.addresses[0], bed.admin) as conn:
            assert query(conn, "SHOW SESSION STATUS LIKE 'Ssl_version'")[0]["Value"].startswith("TLS")
        with pytest.raises(pymysql.err.OperationalError, match="CERTIFICATE_VERIFY_FAILED"):
            pymysql.connect(host=bed.addresses[0].host, port=bed.addresses[0].port, user=bed.admin.user,
                            password=bed.admin.password, ssl=ssl.create_default_context(cafile=str(old_ca)),
                            connect_timeout=3).close()
    finally:
        from repman.db_tls import register
        register(bed.addresses, "")
        bed.destroy()
