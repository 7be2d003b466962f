"""No clear password in any binlog, log file, rendered config, state file, API answer or /proc (issue 15).

Real mariadbd nodes with the general and slow query logs on (every statement,
``long_query_time = 0``), a full bootstrap, a failover and a rejoin; then every
binlog is decoded with ``mariadb-binlog`` and every file under the cluster's
directories is read, looking for each password of the cluster.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pymysql
import pytest

from repman.api.auth import hash_password
from repman.api.config import api_config
from repman.api.server import ApiServer
from repman.db import connect
from repman.local.mariadb import read_pid
from repman.local.node import _ensure_admin_user
from repman.local.testbed import Testbed
from repman.password_hash import native_password_hash
from repman.watcher.cluster_config import ClusterConfig  # noqa: F401 - type of c.cfg
from repman.watcher.config import load_cluster, parse_config
from repman.watcher.failover import failover
from repman.watcher.loop import Watcher
from repman.watcher.rejoin import rejoin
from repman.watcher.state_store import StateStore
from testkit.cluster import HACluster
from testkit.env import needs_mariadb
from testkit.polling import wait_until

pytestmark = [needs_mariadb, pytest.mark.slow]

# The server keeps the replication password it needs to reconnect in master.info
# (datadir, 0660, the server's own account): that is its credential store, not a log.
CREDENTIAL_STORES = {"master.info"}
# Binary table and redo files hold no statement text; they are scanned too but a
# hit there would be the server's own row data, which never holds a clear password.


def _logs_on(bed: Testbed) -> None:
    for addr in bed.addresses:
        node = bed.node(addr)
        with connect(addr, bed.admin) as conn, conn.cursor() as cur:
            cur.execute("SET GLOBAL general_log_file = %s", (str(Path(node.base_dir) / "general.log"),))
            cur.execute("SET GLOBAL slow_query_log_file = %s", (str(Path(node.base_dir) / "slow.log"),))
            cur.execute("SET GLOBAL log_output = 'FILE'")
            cur.execute("SET GLOBAL general_log = ON")
            cur.execute("SET GLOBAL long_query_time = 0")
            cur.execute("SET GLOBAL slow_query_log = ON")
        _ensure_admin_user(node)  # the admin account statements run again, now logged


def _api_answers(cluster_raw: dict, tmp_path: Path) -> str:
    """Every JSON/HTML answer of the API over this cluster, after a few monitoring ticks."""
    wc = parse_config({"clusters": {"sec": {**cluster_raw, "monitoring-ticker": 0.2}},
                       "api": {"api-port": 0, "api-audit-log": str(tmp_path / "audit.log"),
                               "api-users": {"ops": {"role": "admin", "password-hash": hash_password("ops-pw")}}}})
    watcher = Watcher(wc)
    api = ApiServer(api_config(wc), watcher)
    watcher.start()
    api.start()
    try:
        mon = watcher.monitors["sec"]
        wait_until(lambda: mon.ticks >= 3, timeout=30, what="three watcher ticks", every=0.05)
        auth = {"Authorization": "Basic " + base64.b64encode(b"ops:ops-pw").decode()}
        out = []
        for path in ("/api/clusters", "/api/clusters/sec", "/", "/api/audit", "/health",
                     f"/primary?server={mon.cfg.servers[0]}"):
            req = urllib.request.Request(api.url + path, headers=auth)
            try:
                with urllib.request.urlopen(req, timeout=30) as resp:
                    out.append(resp.read().decode())
            except urllib.error.HTTPError as exc:
                out.append(exc.read().decode())
        return "\n".join(out)
    finally:
        api.stop()
        watcher.stop()


def _binlog_text(bed: Testbed) -> str:
    out = []
    for addr in bed.addresses:
        datadir = Path(bed.node(addr).base_dir) / "data"
        for f in sorted(datadir.glob("binlog.[0-9]*")):
            done = subprocess.run(["mariadb-binlog", "--verbose", str(f)], capture_output=True, text=True)
            assert done.returncode == 0, done.stderr
            out.append(done.stdout)
    return "\n".join(out)


def _hits(root: Path, secrets: list[str]) -> list[str]:
    found = []
    for f in root.rglob("*"):
        if not f.is_file() or f.name in CREDENTIAL_STORES or f.is_socket():
            continue
        data = f.read_bytes()
        found += [f"{f}: {s}" for s in secrets if s.encode() in data]
    return found


@pytest.mark.skipif(shutil.which("mariadb-binlog") is None, reason="mariadb-binlog not installed")
def test_no_password_in_binlogs_logs_or_files_after_bootstrap_failover_rejoin(tmp_path):
    bed = Testbed.create(tmp_path / "db", count=3)
    try:
        _logs_on(bed)
        bed.bootstrap()
        raw = {
            "db-servers-hosts": [a.url for a in bed.addresses],
            "db-servers-credential": f"{bed.admin.user}:{bed.admin.password}",
            "replication-credential": f"{bed.replication.user}:{bed.replication.password}",
            "monitoring-datadir": str(tmp_path / "state"),
        }
        cfg = load_cluster("sec", raw)
        c = HACluster(bed, cfg, StateStore(cfg.state_dir, keep=5))
        old = c.primary()
        c.sql(old, "CREATE DATABASE app")
        c.sql(old, "CREATE TABLE app.t (id INT PRIMARY KEY)")
        c.sql(old, "INSERT INTO app.t VALUES (1)")
        bed.kill(old)
        res = failover(c.cfg, c.store, c.log)
        assert res.ok, res.sentence
        c.sql(res.new_primary, "INSERT INTO app.t VALUES (2)")
        bed.start(old)
        back = rejoin(c.cfg, c.store, old, c.log)
        assert back.ok, back.sentence
        c.assert_converged()

        secrets = [bed.admin.password, bed.replication.password, bed.monitoring.password]
        binlogs = _binlog_text(bed)
        assert "CREATE USER" in binlogs and "IDENTIFIED BY PASSWORD" in binlogs, "the scan must see the user DDL"
        assert [s for s in secrets if s in binlogs] == []
        general = "".join((Path(bed.node(a).base_dir) / "general.log").read_text() for a in bed.addresses)
        # It was on while replicas were re-pointed; the CHANGE MASTER itself ran with the log off.
        assert "STOP SLAVE" in general and "CREATE USER" in general, "the general log must have seen the DDL"
        assert "MASTER_PASSWORD" not in general
        assert [s for s in secrets if s in "\n".join(c.lines)] == []
        answers = _api_answers(raw, tmp_path)
        assert "sec" in answers and [s for s in secrets if s in answers] == []
        for addr in bed.addresses:  # what `ps` and /proc show of every mariadbd started
            pid = read_pid(bed.node(addr).paths)
            assert pid is not None
            shown = Path(f"/proc/{pid}/environ").read_bytes() + Path(f"/proc/{pid}/cmdline").read_bytes()
            assert [s for s in secrets if s.encode() in shown] == []
        assert _hits(tmp_path, secrets) == []  # last: the watcher state and the audit log are written by now
    finally:
        bed.destroy()


def test_unlogged_statement_still_runs_for_an_account_without_super(tmp_path):
    """A watcher account holding only what a re-point needs cannot switch its logs off: the
    statement must still run (a failed re-point is worse than a logged one)."""
    from repman.db import Credential, execute, execute_unlogged, query
    bed = Testbed.create(tmp_path / "db", count=1)
    try:
        addr = bed.addresses[0]
        with connect(addr, bed.admin) as conn:
            execute(conn, "CREATE USER 'lesser'@'%%' IDENTIFIED BY PASSWORD %s",
                    (native_password_hash("lesser-pw"),))
            execute(conn, "GRANT REPLICATION SLAVE ADMIN, SLAVE MONITOR ON *.* TO 'lesser'@'%'")
        with connect(addr, Credential("lesser", "lesser-pw")) as conn:
            with pytest.raises(pymysql.err.OperationalError) as denied:
                execute(conn, "SET SESSION sql_log_off = 1")
            assert denied.value.args[0] == 1227  # the fallback below is really taken
            execute_unlogged(conn, "STOP SLAVE")
            assert query(conn, "SELECT @@SESSION.sql_log_off AS v")[0]["v"] == 0
        with connect(addr, bed.admin) as conn:
            execute_unlogged(conn, "SELECT 1")
            assert query(conn, "SELECT @@SESSION.sql_log_off AS v")[0]["v"] == 0  # restored after
    finally:
        bed.destroy()
