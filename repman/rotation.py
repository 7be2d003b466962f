"""Password rotation on a live cluster: new replication (and monitoring) passwords, no write stops.

Order matters so that no replica ever holds a credential the primary refuses:
1. the new password goes to ``<secret file>.new`` (0600) first, so a crash leaves it recoverable;
2. ``ALTER USER ... IDENTIFIED BY PASSWORD '<hash>'`` on the primary: binlogged as a hash only,
   it reaches every replica (a future primary), while connected IO threads stay connected;
3. each replica, one at a time, gets the new MASTER_PASSWORD (STOP SLAVE / CHANGE MASTER / START
   SLAVE, by GTID: no position is lost) and must reconnect before the next one is touched,
   so semi-sync always keeps an acknowledging replica;
4. ``<secret file>.new`` replaces the secret file (a running watcher re-reads it at its next re-point).
The primary is never touched beyond the ALTER USER: writes go on throughout.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from repman.bootstrap import replica_tls_ca
from repman.db import Credential, ServerAddress, connect, execute, execute_unlogged, query, session
from repman.errors import RepmanError
from repman.password_hash import native_password_hash
from repman.watcher.checks import read_states
from repman.watcher.cluster_config import ClusterConfig
from repman.watcher.primary import cluster_primary


class RotationError(RepmanError):
    pass


@dataclass
class RotationResult:
    primary: ServerAddress
    rotated: list[str] = field(default_factory=list)
    repointed: list[ServerAddress] = field(default_factory=list)


def new_password() -> str:
    return secrets.token_urlsafe(24)


def write_secret(path: Path, text: str) -> None:
    """Atomic 0600 write: the file is either the old or the new secret, never half of one."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text + "\n")
    os.replace(tmp, path)


def _wait_io(address: ServerAddress, admin: Credential, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with session(address, admin, timeout=3) as conn:
            st = query(conn, "SHOW SLAVE STATUS")
        row = st[0] if st else {}
        if row.get("Slave_IO_Running") == "Yes" and row.get("Slave_SQL_Running") == "Yes":
            return
        if row.get("Last_IO_Errno") or time.monotonic() > deadline:
            raise RotationError(f"{address.url} did not reconnect with the new password: "
                                f"IO {row.get('Slave_IO_Running')} {row.get('Last_IO_Error') or ''}".strip())
        time.sleep(0.05)


def _alter_on_primary(primary: ServerAddress, admin: Credential, user: str, password: str) -> None:
    with session(primary, admin, timeout=5) as conn:
        if not query(conn, "SELECT 1 FROM mysql.user WHERE User=%s AND Host='%%'", (user,)):
            raise RotationError(f"user {user}@'%' does not exist on the primary {primary.url}")
        execute(conn, "ALTER USER %s@'%%' IDENTIFIED BY PASSWORD %s", (user, native_password_hash(password)))


def _wait_applied(primary: ServerAddress, replicas: list[ServerAddress], admin: Credential, timeout: float) -> None:
    with session(primary, admin, timeout=5) as conn:
        target = query(conn, "SELECT @@GLOBAL.gtid_binlog_pos AS p")[0]["p"] or ""
    for r in replicas:
        with session(r, admin, timeout=5, read_timeout=timeout + 5) as conn:
            if query(conn, "SELECT MASTER_GTID_WAIT(%s, %s) AS w", (target, timeout))[0]["w"] != 0:
                raise RotationError(f"{r.url} did not apply the ALTER USER within {timeout:.0f}s")


def _repoint(replica: ServerAddress, cfg: ClusterConfig, user: str, password: str, timeout: float) -> None:
    with session(replica, cfg.admin, timeout=5) as conn:
        execute(conn, "STOP SLAVE")
        tls = replica_tls_ca(conn, cfg.flag("replication-use-ssl"))
        sql = "CHANGE MASTER TO MASTER_USER=%s, MASTER_PASSWORD=%s"
        args: tuple = (user, password)
        if tls:
            sql += ", MASTER_SSL=1, MASTER_SSL_CA=%s, MASTER_SSL_VERIFY_SERVER_CERT=1"
            args += (tls,)
        execute_unlogged(conn, sql, args)
        execute(conn, "START SLAVE")
    _wait_io(replica, cfg.admin, timeout)


def _live_topology(cfg: ClusterConfig) -> tuple[ServerAddress, list[ServerAddress]]:
    states = read_states(cfg, timeout=3)
    found = cluster_primary(cfg, states)
    master = found.address
    if master is None or not found.decided:
        raise RotationError(f"no primary: {found.reason}")
    replicas = []
    for addr, st in states.items():
        if addr == master:
            continue
        if not st.reachable or st.replica is None or not st.replica.healthy or st.replica.master != master:
            raise RotationError(f"{addr.url} is not a healthy replica of {master.url}: fix it before rotating")
        replicas.append(addr)
    return master, replicas


def rotate_replication(cfg: ClusterConfig, secret_file: Path, password: str | None = None,
                       timeout: float = 30.0) -> RotationResult:
    """New replication password: primary, every replica re-pointed, then the watcher's secret file."""
    old = cfg.replication
    password = password or new_password()
    primary, replicas = _live_topology(cfg)
    pending = secret_file.with_name(secret_file.name + ".new")
    write_secret(pending, f"{old.user}:{password}")
    _alter_on_primary(primary, cfg.admin, old.user, password)
    _wait_applied(primary, replicas, cfg.admin, timeout)
    result = RotationResult(primary, rotated=[old.user])
    for r in replicas:
        _repoint(r, cfg, old.user, password, timeout)
        result.repointed.append(r)
    os.replace(pending, secret_file)
    cfg.values["replication-credential"] = Credential(old.user, password)
    try:
        connect(primary, Credential(old.user, password), timeout=3).close()
    except Exception as exc:  # noqa: BLE001 - reported as a failed check
        raise RotationError(f"the new replication password does not log in on {primary.url}: {exc}") from None
    return result


def rotate_user(cfg: ClusterConfig, user: str, secret_file: Path, password: str | None = None,
                timeout: float = 30.0) -> RotationResult:
    """Any other account created by bootstrap on the primary (the monitoring user): ALTER USER,
    wait until every replica has it, then the secret file (``user:password``)."""
    password = password or new_password()
    primary, replicas = _live_topology(cfg)
    pending = secret_file.with_name(secret_file.name + ".new")
    write_secret(pending, f"{user}:{password}")
    _alter_on_primary(primary, cfg.admin, user, password)
    _wait_applied(primary, replicas, cfg.admin, timeout)
    os.replace(pending, secret_file)
    return RotationResult(primary, rotated=[user])

