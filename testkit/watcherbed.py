"""Helpers for the watcher's loop/CLI/API tests: config files for a Testbed, polling, convergence."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql
import yaml

from repman.db import Credential, ServerAddress, connect, connect_socket, execute, query
from repman.local.testbed import Testbed
from repman.watcher.cluster_config import ClusterConfig
from repman.watcher.config import parse_config
from testkit.polling import wait_until as wait_until  # the one polling helper, used from here


def cluster_section(bed: Testbed, state_dir: Path, **keys: Any) -> dict[str, Any]:
    section: dict[str, Any] = {
        "db-servers-hosts": [a.url for a in bed.addresses],
        "db-servers-credential": f"{bed.admin.user}:{bed.admin.password}",
        "replication-credential": f"{bed.replication.user}:{bed.replication.password}",
        "monitoring-ticker": 0.3,
        "failover-falsepositive-ping-counter": 3,
        "failover-falsepositive-heartbeat-timeout": 1.0,
        "monitoring-datadir": str(state_dir),
        "switchover-wait-kill": 500,
    }
    section.update({k.replace("_", "-"): v for k, v in keys.items()})
    return section


def write_config(path: Path, clusters: dict[str, dict[str, Any]], api: dict[str, Any] | None = None) -> Path:
    raw: dict[str, Any] = {"clusters": clusters}
    if api is not None:
        raw["api"] = api
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def cluster_config(bed: Testbed, state_dir: Path, name: str = "c1", **keys: Any) -> ClusterConfig:
    return parse_config({"clusters": {name: cluster_section(bed, state_dir, **keys)}}).cluster(name)


def sql(bed: Testbed, addr: ServerAddress, statement: str, args: Any = None) -> list[dict[str, Any]]:
    with bed.connect(addr) as conn:
        return query(conn, statement, args)


def restart(bed: Testbed, addr: ServerAddress) -> None:
    """Start a killed node and wait until it answers SQL (start returns when the port opens)."""
    bed.start(addr)

    def answers() -> bool:
        try:
            sql(bed, addr, "SELECT 1")
            return True
        except Exception:  # noqa: BLE001
            return False
    wait_until(answers, 60, f"{addr} to answer")


def set_account_lock(bed: Testbed, addr: ServerAddress, locked: bool) -> None:
    """Lock the watcher's admin account on one server only (not binlogged): the watcher is cut
    off from it while replication (another account) keeps flowing - a watcher-side partition."""
    conn = connect_socket(str(bed.node(addr).paths.socket))
    try:
        execute(conn, "SET SESSION sql_log_bin = 0")
        for host in ("%", "localhost"):
            execute(conn, f"ALTER USER %s@%s ACCOUNT {'LOCK' if locked else 'UNLOCK'}", (bed.admin.user, host))
    finally:
        conn.close()


def master_of(bed: Testbed) -> ServerAddress:
    """The writable non-replica among the reachable nodes (asserts there is exactly one)."""
    writable = []
    for a in bed.addresses:
        try:
            rows = sql(bed, a, "SELECT @@read_only AS ro")
            status = sql(bed, a, "SHOW SLAVE STATUS")
        except Exception:  # noqa: BLE001 - a dead node is no master
            continue
        if not rows[0]["ro"] and not status:
            writable.append(a)
    assert len(writable) == 1, f"expected one writable master, got {writable}"
    return writable[0]


def converged(bed: Testbed, table: str = "repman_test.t", timeout: float = 60.0) -> str:
    """Every node holds the master's GTID position and the same rows; returns that position."""
    master = master_of(bed)
    target = sql(bed, master, "SELECT @@gtid_binlog_pos AS p")[0]["p"]
    expected = sql(bed, master, f"CHECKSUM TABLE {table}")[0]["Checksum"]
    for a in bed.addresses:
        if a == master:
            continue
        wait_until(lambda: sql(bed, a, "SELECT @@gtid_current_pos AS p")[0]["p"] == target, timeout,
                   f"{a} to reach {target}")
        assert sql(bed, a, f"CHECKSUM TABLE {table}")[0]["Checksum"] == expected, f"{a} rows differ"
    return target


def make_table(bed: Testbed, master: ServerAddress, table: str = "repman_test.t") -> None:
    schema = table.split(".")[0]
    with bed.connect(master) as conn:
        execute(conn, f"CREATE DATABASE IF NOT EXISTS {schema}")
        execute(conn, f"CREATE TABLE IF NOT EXISTS {table} (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(40))")


def insert(bed: Testbed, master: ServerAddress, n: int = 1, table: str = "repman_test.t") -> None:
    with bed.connect(master) as conn:
        for i in range(n):
            execute(conn, f"INSERT INTO {table} (v) VALUES (%s)", (f"row-{time.time():.6f}-{i}",))


APP = ("app", "app-secret")


def create_app_user(bed: Testbed, master: ServerAddress, schema: str = "repman_test") -> Credential:
    """An ordinary client account (no READ ONLY ADMIN): read_only stops it, as it stops applications."""
    with bed.connect(master) as conn:
        execute(conn, "CREATE USER IF NOT EXISTS %s@'%%' IDENTIFIED BY %s", APP)
        execute(conn, f"GRANT SELECT, INSERT ON {schema}.* TO %s@'%%'", (APP[0],))
    return Credential(*APP)


def drop_readonly_tag(bed: Testbed, addr: ServerAddress) -> None:
    """Edit a (stopped) node's my.cnf so that it starts writable, as without the ``readonly`` tag."""
    cnf = bed.node(addr).paths.cnf
    lines = cnf.read_text().splitlines()
    kept = [line for line in lines if not line.replace(" ", "").startswith("read_only=")]
    assert len(kept) < len(lines), f"{cnf} has no read_only line"
    cnf.write_text("\n".join(kept) + "\n")


@dataclass
class Attempt:
    started: float        # time.monotonic() before the INSERT was sent
    ended: float
    ok: bool
    code: int = 0


class StrayWriter:
    """A client hammering one server directly (not following the primary) and logging every attempt."""

    def __init__(self, addr: ServerAddress, credential: Credential, table: str = "repman_test.t") -> None:
        self.addr, self.credential, self.table = addr, credential, table
        self.attempts: list[Attempt] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"stray-writer-{addr.port}", daemon=True)

    def _run(self) -> None:
        conn = None
        n = 0
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                if conn is None:
                    conn = connect(self.addr, self.credential, timeout=1, read_timeout=10)
                n += 1
                execute(conn, f"INSERT INTO {self.table} (v) VALUES (%s)", (f"stray-{n}",))
                self.attempts.append(Attempt(started, time.monotonic(), True))
            except pymysql.MySQLError as exc:
                code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else -1
                self.attempts.append(Attempt(started, time.monotonic(), False, code))
                if conn is not None:
                    try:
                        conn.close()
                    except Exception:  # noqa: BLE001
                        pass
                conn = None
                time.sleep(0.01)
            time.sleep(0.005)
        if conn is not None:
            conn.close()

    def start(self) -> StrayWriter:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def successes(self) -> int:
        return sum(1 for a in self.attempts if a.ok)

    def committed_after(self, at: float) -> list[Attempt]:
        return [a for a in list(self.attempts) if a.ok and a.started > at]

    def failed_after(self, at: float) -> list[Attempt]:
        return [a for a in list(self.attempts) if not a.ok and a.started > at]
