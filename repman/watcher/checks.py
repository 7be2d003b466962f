"""Facts and guards an HA operation needs before it touches anything.

Reading every server in parallel keeps a switchover's first step in the
milliseconds; the guards (long writes, open transactions, FLUSH TABLES) refuse
early, while nothing has changed yet.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Iterable

import pymysql

from repman.db import Credential, ServerAddress, connect, execute, query
from repman.errors import RepmanError
from repman.topology import ServerState, read_state
from repman.watcher.cluster_config import ClusterConfig
from repman.watcher.election import same_server


def read_states(cfg: ClusterConfig, servers: Iterable[ServerAddress] | None = None,
                timeout: float = 1.0) -> dict[ServerAddress, ServerState]:
    """One snapshot per server, read concurrently."""
    addrs = list(servers if servers is not None else cfg.servers)
    if not addrs:
        return {}
    with ThreadPoolExecutor(max_workers=len(addrs)) as pool:
        states = list(pool.map(lambda a: read_state(a, cfg.admin, timeout=timeout), addrs))
    return dict(zip(addrs, states))


def member(cfg: ClusterConfig, address: ServerAddress | None) -> ServerAddress | None:
    """The configured server matching ``address`` (loopback spellings are one host)."""
    if address is None:
        return None
    return next((a for a in cfg.servers if same_server(a, address)), None)


def in_maintenance(cfg: ClusterConfig, urls: Iterable[str]) -> list[ServerAddress]:
    """The configured servers an operator put in maintenance (urls from the state store)."""
    out = []
    for url in urls:
        try:
            found = member(cfg, ServerAddress.parse(url))
        except RepmanError:
            continue
        if found is not None:
            out.append(found)
    return out


def master_of(cfg: ClusterConfig, state: ServerState) -> ServerAddress | None:
    """The cluster server ``state`` replicates from, if any."""
    if not state.reachable or state.replica is None:
        return None
    return member(cfg, state.replica.master)


def replicas_of(cfg: ClusterConfig, states: dict[ServerAddress, ServerState],
                master: ServerAddress) -> list[ServerAddress]:
    return [a for a, s in states.items() if same_server(master_of(cfg, s), master)]


def long_writes(conn: pymysql.connections.Connection, threshold: float) -> list[str]:
    """Writes running, or transactions open, for at least ``threshold`` seconds."""
    found: list[str] = []
    rows = query(conn, (
        "SELECT ID, USER, TIME_MS, LEFT(INFO, 60) AS INFO FROM information_schema.PROCESSLIST "
        "WHERE COMMAND = 'Query' AND ID <> CONNECTION_ID() AND TIME_MS >= %s "
        "AND USER NOT IN ('system user', 'event_scheduler') "
        "AND INFO IS NOT NULL AND TRIM(INFO) NOT LIKE 'select%%'"), (threshold * 1000.0,))
    for r in rows:
        found.append(f"query {r['INFO']!r} of thread {r['ID']} running for {float(r['TIME_MS']) / 1000:.1f}s")
    rows = query(conn, (
        "SELECT trx_mysql_thread_id AS ID, TIMESTAMPDIFF(SECOND, trx_started, NOW()) AS AGE "
        "FROM information_schema.INNODB_TRX WHERE trx_mysql_thread_id <> CONNECTION_ID() "
        "AND trx_started <= NOW() - INTERVAL %s MICROSECOND"), (int(threshold * 1_000_000),))
    for r in rows:
        found.append(f"transaction of thread {r['ID']} open for {r['AGE']}s")
    return found


def flush_tables(address: ServerAddress, credential: Credential, timeout: float) -> str | None:
    """``FLUSH NO_WRITE_TO_BINLOG TABLES`` within ``timeout``; the refusal reason otherwise."""
    conn = connect(address, credential, timeout=2, read_timeout=max(timeout, 0.1))
    thread = conn.thread_id()
    try:
        execute(conn, "FLUSH NO_WRITE_TO_BINLOG TABLES")
        return None
    except pymysql.err.OperationalError as exc:
        if exc.args and exc.args[0] in (2013, 2006):
            try:
                with connect(address, credential, timeout=2) as killer:
                    execute(killer, f"KILL QUERY {int(thread)}")
            except pymysql.MySQLError:
                pass
            return f"FLUSH TABLES on {address.url} did not finish within switchover-wait-trx {timeout:g}s"
        raise
    finally:
        try:
            conn.close()
        except pymysql.MySQLError:
            pass
