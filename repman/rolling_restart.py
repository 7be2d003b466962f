"""Rolling restart: every server restarted once while the write path stays up.

Why: cores, static variables, tag changes and a new MariaDB version only take
effect at start. Replicas go first, one by one, each back in sync with the
primary before the next; then one planned switchover (the watcher's, with its
no-lost-write guarantees and router updates) moves the primary role to a
restarted replica, and the old primary is restarted last as a replica. Writes
therefore pause once, for one switchover.

Local backend: a server is restarted from its own my.cnf on this host (found
from ``@@datadir``); ``restart`` can be replaced for other backends.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import pymysql

from repman.db import Credential, ServerAddress, execute, query, session
from repman.errors import OperationRefused, RepmanError
from repman.local.mariadb import start_server, stop_server
from repman.local.restart_marker import RESTART_MARKER, restart_pending
from repman.seeding import local_paths

Log = Callable[[str], None]
Restart = Callable[[ServerAddress, Credential], None]
_ROLE = ("read_only", "rpl_semi_sync_master_enabled", "rpl_semi_sync_slave_enabled")


class RollingRestartError(OperationRefused):
    """A step of the rolling restart failed; the servers not yet restarted are untouched (its words are
    the operation's result sentence as they are)."""


@dataclass
class RollingRestartResult:
    restarted: list[ServerAddress] = field(default_factory=list)
    old_primary: ServerAddress | None = None
    new_primary: ServerAddress | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def sentence(self) -> str:
        return (f"rolling restart done: {len(self.restarted)} servers restarted "
                f"({', '.join(a.url for a in self.restarted)}); primary moved from "
                f"{self.old_primary.url if self.old_primary else '?'} to "
                f"{self.new_primary.url if self.new_primary else '?'}")


def pending_local_nodes(servers: Sequence[ServerAddress], admin: Credential) -> list[ServerAddress]:
    """The local nodes waiting for a restart (unreachable ones are not known here)."""
    out = []
    for a in servers:
        try:
            if restart_pending(local_paths(a, admin)):
                out.append(a)
        except (RepmanError, pymysql.MySQLError):
            continue
    return out


def restart_local(address: ServerAddress, admin: Credential) -> None:
    """Clean stop and start of a local node; it comes back in the role it had
    (a my.cnf without the readonly tag must not reopen a replica for writes)."""
    paths = local_paths(address, admin)
    with session(address, admin, timeout=3) as conn:
        role = query(conn, "SELECT " + ", ".join(f"@@GLOBAL.{v} AS {v}" for v in _ROLE))[0]
    stop_server(paths)
    (paths.run_dir / RESTART_MARKER).unlink(missing_ok=True)
    start_server(paths, address.host, address.port)
    with session(address, admin, timeout=3) as conn:
        for name, value in role.items():
            execute(conn, f"SET GLOBAL {name} = {'ON' if str(value) in ('1', 'ON') else 'OFF'}")
        if query(conn, "SHOW SLAVE STATUS"):
            # The IO thread started with my.cnf's semi-sync setting; it only acknowledges
            # (and the primary only stops waiting 10 s per commit) once reconnected.
            execute(conn, "STOP SLAVE IO_THREAD")
            execute(conn, "START SLAVE IO_THREAD")


def wait_in_sync(replica: ServerAddress, primary: ServerAddress, admin: Credential, timeout: float) -> None:
    """Until the replica replicates again and has applied everything the primary had.
    Threads found stopped (a transient connect error after the restart) are started again."""
    with session(primary, admin, timeout=3) as conn:
        target = str(query(conn, "SELECT @@GLOBAL.gtid_binlog_pos AS p")[0]["p"] or "")
    deadline = time.monotonic() + timeout
    status: list[dict] = []
    res = None
    with session(replica, admin, timeout=3, read_timeout=timeout + 5) as conn:
        while time.monotonic() < deadline:
            status = query(conn, "SHOW SLAVE STATUS")
            running = bool(status) and status[0].get("Slave_IO_Running") == "Yes" \
                and status[0].get("Slave_SQL_Running") == "Yes"
            if running:
                res = query(conn, "SELECT MASTER_GTID_WAIT(%s, %s) AS w", (target, 1.0))[0]["w"]
                if res == 0:
                    return
            else:
                execute(conn, "START SLAVE")  # a no-op for a thread already running
                time.sleep(0.1)
    if not status:
        why = "no replication"
    else:
        s = status[0]
        why = (s.get("Last_IO_Error") or s.get("Last_SQL_Error")
               or f"IO {s.get('Slave_IO_Running')}, SQL {s.get('Slave_SQL_Running')}, at "
                  f"{s.get('Gtid_Slave_Pos') or '?'}, waiting for {target} (MASTER_GTID_WAIT {res})")
    raise RollingRestartError(f"{replica.url} is not back in sync with {primary.url} "
                              f"within {timeout:.0f}s after its restart: {why}")


def rolling_restart(cfg, log: Log, routers: Sequence = (), restart: Restart = restart_local,
                    sync_timeout: float = 120.0, only: Sequence[ServerAddress] | None = None,
                    ) -> RollingRestartResult:
    """Replicas one by one (each back in sync), then a switchover, then the old primary.
    ``only``: restart just these servers (the primary, if among them, after a switchover)."""
    from repman.watcher.checks import read_states
    from repman.watcher.operations import run_operation
    from repman.watcher.primary import cluster_primary

    result = RollingRestartResult()
    states = read_states(cfg)
    found = cluster_primary(cfg, states)
    primary = found.address
    if primary is None or not found.decided:
        raise RollingRestartError(f"rolling restart refused: no primary ({found.reason})")
    down = [a.url for a, s in states.items() if not s.reachable]
    if down:
        raise RollingRestartError(f"rolling restart refused: {', '.join(down)} unreachable")
    broken = [a.url for a, s in states.items() if a != primary and not (s.replica and s.replica.healthy)]
    if broken:
        raise RollingRestartError(f"rolling restart refused: {', '.join(broken)} not replicating (reseed first)")
    result.old_primary = primary
    wanted = set(cfg.servers if only is None else only)
    for replica in (a for a in cfg.servers if a != primary and a in wanted):
        started = time.monotonic()
        log(f"restarting replica {replica.url}")
        try:
            restart(replica, cfg.admin)
        except RepmanError as exc:
            raise RollingRestartError(f"restart of {replica.url} failed: {exc}") from exc
        wait_in_sync(replica, primary, cfg.admin, sync_timeout)
        result.restarted.append(replica)
        result.seconds[replica.url] = time.monotonic() - started
        log(f"{replica.url} back in sync in {result.seconds[replica.url]:.1f}s")
    if primary not in wanted:
        result.new_primary = primary
        return result
    if len(cfg.servers) > 1:
        started = time.monotonic()
        switched = run_operation("switchover", cfg, log, routers, describe="rolling restart switchover",
                                 lock_wait=30.0)
        if not switched.ok:
            raise RollingRestartError(f"rolling restart stopped before the primary {primary.url}: "
                                      f"{switched.sentence}")
        if switched.new_primary is None:
            raise RollingRestartError(f"rolling restart stopped before the primary {primary.url}: the switchover "
                                      f"named no new primary ({switched.sentence})")
        new_primary = switched.new_primary
        result.seconds["switchover"] = time.monotonic() - started
    else:
        new_primary = primary
    result.new_primary = new_primary
    started = time.monotonic()
    log(f"restarting the old primary {primary.url}")
    restart(primary, cfg.admin)
    if new_primary != primary:
        wait_in_sync(primary, new_primary, cfg.admin, sync_timeout)
    result.restarted.append(primary)
    result.seconds[primary.url] = time.monotonic() - started
    return result


def restart_pending_nodes(servers: Sequence[ServerAddress], admin: Credential, replication: Credential,
                          semisync: bool, preferred: ServerAddress | None, log: Log,
                          cluster: str = "rolling", monitoring_datadir: str = "") -> list[str]:
    """After ``up`` changed static settings: a rolling restart of the nodes marked pending."""
    import shutil
    import tempfile

    from repman.watcher.config import load_cluster

    pending = pending_local_nodes(servers, admin)
    if not pending:
        return []
    state_dir = monitoring_datadir or tempfile.mkdtemp(prefix="repman-rolling-")
    try:
        raw = {"db-servers-hosts": [a.url for a in servers],
               "db-servers-credential": f"{admin.user}:{admin.password}",
               "replication-credential": f"{replication.user}:{replication.password}",
               "semisync": semisync, "monitoring-datadir": state_dir}
        if preferred is not None and preferred in servers:
            raw["db-servers-prefered-master"] = preferred.url
        result = rolling_restart(load_cluster(cluster, raw), log, only=pending)
    finally:
        if not monitoring_datadir:
            shutil.rmtree(state_dir, ignore_errors=True)
    log(result.sentence)
    return [result.sentence]
