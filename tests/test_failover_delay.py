"""No failover to replicas lagging past failover-max-slave-delay (real servers, real lag).

MariaDB reports Seconds_Behind_Master as NULL once the master is gone; the watcher keeps the
readings of its last tick with a live master, so the delay limit still holds at failover time.

The lag is real: each replica's SQL thread is blocked by a global read lock while the
master keeps committing, so Seconds_Behind_Master grows; then the master is killed.
"""

from __future__ import annotations

import time

import pymysql

from repman.db import connect, execute
from repman.watcher.failover import failover
from repman.watcher.monitor import ClusterMonitor
from repman.watcher.rejoin import rejoin
from testkit.env import needs_mariadb
from testkit.polling import wait_until

pytestmark = needs_mariadb


def _lag(c, address) -> int | None:
    rows = c.sql(address, "SHOW SLAVE STATUS")
    value = rows[0]["Seconds_Behind_Master"] if rows else None
    return None if value is None else int(value)


def test_no_failover_over_the_delay_limit_then_allowed_once_caught_up(cluster_factory):
    c = cluster_factory(failover_max_slave_delay=2)
    master = c.primary()
    replicas = c.replicas()
    c.sql(master, "CREATE DATABASE app")
    c.sql(master, "CREATE TABLE app.t (id INT PRIMARY KEY) ENGINE=InnoDB")
    c.assert_converged()

    locks: list[pymysql.connections.Connection] = []
    try:
        for r in replicas:      # block each replica's SQL thread: it cannot commit what it receives
            conn = connect(r, c.bed.admin, timeout=3, read_timeout=60)
            execute(conn, "FLUSH TABLES WITH READ LOCK")
            locks.append(conn)
        deadline = time.monotonic() + 30
        n = 0
        while time.monotonic() < deadline:
            n += 1
            c.sql(master, "INSERT INTO app.t VALUES (%s)", (n,))
            lags = [_lag(c, r) for r in replicas]
            if all(lag is not None and lag > 3 for lag in lags):
                break
            time.sleep(0.3)
        assert all(lag is not None and lag > 3 for lag in lags), f"replicas did not fall behind: {lags}"

        # The watcher (manual mode: it only alerts) sees the lag while the master answers, then
        # sees the master gone: MariaDB now reports NULL lag, the watcher keeps the last reading.
        mon = ClusterMonitor(c.cfg, log=c.log, act=True, routers=[])
        mon.tick()
        c.bed.kill(master)
        mon.tick()
        assert c.store.load().lag_seen, "the lag readings of the last tick with a master were not kept"
        assert all(_lag(c, r) is None for r in replicas)     # what MariaDB says once the master is gone
        refused = failover(c.cfg, c.store, c.log)
        assert not refused.ok
        assert "failover-max-slave-delay 2s" in refused.sentence, refused.sentence
        assert not c.store.load().crashes and c.store.load().failover_count == 0
        for r in replicas:   # nothing was promoted or re-pointed
            assert c.var(r, "read_only") == "1"
            assert c.sql(r, "SHOW SLAVE STATUS")[0]["Master_Port"] == master.port
    finally:
        for conn in locks:
            try:
                execute(conn, "UNLOCK TABLES")
            finally:
                conn.close()

    # The replicas apply what they received; now within the limit, the failover goes ahead
    # and the new master holds every row the dead master had sent.
    wait_until(lambda: all(c.sql(r, "SELECT COUNT(*) AS n FROM app.t")[0]["n"] == n for r in replicas),
               timeout=30, what=f"both replicas to apply all {n} rows", every=0.2)
    done = failover(c.cfg, c.store, c.log)
    assert done.ok, done.sentence
    assert c.sql(done.new_primary, "SELECT COUNT(*) AS n FROM app.t")[0]["n"] == n
    c.bed.start(master)
    back = rejoin(c.cfg, c.store, master, c.log)
    assert back.ok, back.sentence
    c.assert_converged()
