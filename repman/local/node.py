"""Lifecycle of one local database node: create, reconfigure, delete.

The local backend's Pulumi dynamic provider is a thin wrapper over these
functions; the tests and benchmarks call them directly with the same effect.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pymysql

from repman.db import Credential, connect_socket, execute, query
from repman.errors import RepmanError
from repman.local.mariadb import (
    LocalServerPaths,
    initialise_datadir,
    kill_server,
    read_pid,
    start_server,
    stop_server,
)
from repman.local.restart_marker import mark_restart_pending
from repman.mycnf import NodeContext, render_mycnf
from repman.password_hash import native_password_hash
from repman.plans import ServicePlan, get_plan

# Options only read at start-up: a change means a clean restart.
_STATIC = frozenset((
    "port", "socket", "datadir", "bind_address", "log_bin", "log_bin_index", "relay_log",
    "innodb_flush_method", "performance_schema", "thread_handling", "ssl_ca", "ssl_cert", "ssl_key",
    "pid_file", "log_error", "tmpdir", "user", "server_id", "log_slave_updates", "report_host",
    "report_port", "skip_name_resolve",
))
# Role variables belong to bootstrap and the watcher (a primary must stay writable):
# a changed tag only affects the next start, never the live value.
_ROLE_MANAGED = frozenset(("read_only", "rpl_semi_sync_master_enabled", "rpl_semi_sync_slave_enabled"))
# my.cnf option name -> the global variable it sets, where they differ.
_VARIABLE_NAMES = {"transaction_isolation": "tx_isolation", "default_time_zone": "time_zone"}
_SIZE = {"K": 1024, "M": 1024 ** 2, "G": 1024 ** 3}


@dataclass
class LocalNodeSpec:
    """Everything that defines one local node; compared field by field on update."""

    base_dir: str
    server_id: int
    port: int
    plan: str
    tags: list[str] = field(default_factory=list)
    host: str = "127.0.0.1"
    admin_user: str = "repman"
    admin_password: str = ""
    max_connections: int = 200
    ca_dir: str = ""  # the cluster CA for the ssl tag (empty: a CA of the node's own)
    #: provisioning settings that differ from their defaults (``db_settings`` of ``repman.spec``):
    #: max_connections, expire_logs_days, gtid_domain_id, apply_dynamic_config
    db_settings: dict[str, Any] = field(default_factory=dict)

    @property
    def paths(self) -> LocalServerPaths:
        return LocalServerPaths(Path(self.base_dir))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> LocalNodeSpec:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in raw.items() if k in known})


def node_context(spec: LocalNodeSpec) -> NodeContext:
    paths = spec.paths
    return NodeContext(
        server_id=spec.server_id,
        port=spec.port,
        datadir=str(paths.datadir),
        socket=str(paths.socket),
        run_dir=str(paths.run_dir),
        tmp_dir=str(paths.tmp_dir),
        report_host=spec.host,
        bind_address=spec.host,
        ssl_dir=str(paths.base / "ssl"),
        user="root" if os.geteuid() == 0 else "",
        max_connections=int(spec.db_settings.get("max_connections", spec.max_connections)),
        expire_logs_days=int(spec.db_settings.get("expire_logs_days", 5)),
        gtid_domain_id=int(spec.db_settings.get("gtid_domain_id", 0)),
    )


def render_node_config(spec: LocalNodeSpec, plan: ServicePlan | None = None) -> str:
    plan = plan or get_plan(spec.plan, registry=str(spec.db_settings.get("plan_registry", "")))
    return render_mycnf(spec.tags, plan, node_context(spec))


def _socket_session(spec: LocalNodeSpec, timeout: float = 10.0) -> pymysql.connections.Connection:
    """Root over the unix socket; a server just restarted after a crash may still reset the
    first handshakes while it finishes recovery, so retry briefly instead of failing the update."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return connect_socket(str(spec.paths.socket))
        except pymysql.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _ensure_admin_user(spec: LocalNodeSpec) -> None:
    """Create the admin account locally (not binlogged: every node gets its own copy)."""
    conn = _socket_session(spec)
    try:
        execute(conn, "SET SESSION sql_log_bin = 0")
        for host in ("%", "localhost"):
            hashed = native_password_hash(spec.admin_password)  # never the clear password in a log
            execute(conn, "CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY PASSWORD %s", (spec.admin_user, host, hashed))
            execute(conn, "ALTER USER %s@%s IDENTIFIED BY PASSWORD %s", (spec.admin_user, host, hashed))
            execute(conn, "GRANT ALL PRIVILEGES ON *.* TO %s@%s WITH GRANT OPTION", (spec.admin_user, host))
    finally:
        conn.close()


def _ensure_certificates(spec: LocalNodeSpec) -> None:
    if "ssl" in spec.tags:
        from repman.tls import ensure_server_certificates

        ensure_server_certificates(spec.paths.base / "ssl", hosts=[spec.host],
                                   ca_dir=Path(spec.ca_dir) if spec.ca_dir else None)


def create_node(spec: LocalNodeSpec) -> int:
    """Datadir, my.cnf, system tables, a detached mariadbd, the admin user. Returns the pid."""
    if not spec.admin_password:
        raise RepmanError(f"node {spec.server_id}: the admin password is empty")
    paths = spec.paths
    paths.make_dirs()
    _ensure_certificates(spec)
    paths.cnf.write_text(render_node_config(spec))
    initialise_datadir(paths)
    pid = start_server(paths, spec.host, spec.port)
    _ensure_admin_user(spec)
    return pid


def _settings(cnf_text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in cnf_text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "[")) or "=" not in line:
            continue
        key, value = (x.strip() for x in line.split("=", 1))
        out[key] = value
    return out


def config_changes(old_text: str, new_text: str) -> tuple[dict[str, str], bool]:
    """Changed settings and whether any of them needs a restart (a removed one does: its
    default is not known here)."""
    old, new = _settings(old_text), _settings(new_text)
    changed = {k: v for k, v in new.items() if old.get(k) != v}
    removed = {k: "" for k in old if k not in new and k not in _ROLE_MANAGED}
    needs_restart = bool(removed) or any(k in _STATIC for k in changed)
    return {**changed, **removed}, needs_restart


def _role_state(paths: LocalServerPaths) -> dict[str, str]:
    conn = connect_socket(str(paths.socket))
    try:
        row = query(conn, "SELECT " + ", ".join(f"@@GLOBAL.{v} AS {v}" for v in sorted(_ROLE_MANAGED)))[0]
    finally:
        conn.close()
    return {k: ("ON" if str(v) in ("1", "ON") else "OFF") for k, v in row.items()}


def _restart_keeping_role(spec: LocalNodeSpec) -> None:
    """Clean restart; the node comes back in the role it had (writable primary stays writable)."""
    paths = spec.paths
    role = _role_state(paths)
    stop_server(paths)
    start_server(paths, spec.host, spec.port)
    conn = connect_socket(str(paths.socket))
    try:
        for key, value in role.items():
            execute(conn, f"SET GLOBAL {key} = {value}")
    finally:
        conn.close()


def update_node(old: LocalNodeSpec, new: LocalNodeSpec, defer_restart: bool = False) -> str:
    """Apply a changed config: live ``SET GLOBAL`` when possible, otherwise a clean restart.

    With ``defer_restart`` a needed restart is only marked (``repman.rolling_restart``
    then restarts the cluster's nodes in a safe order). Returns ``"unchanged"``,
    ``"live"``, ``"restarted"``, ``"recreated"`` (the datadir was lost and made again, empty)
    or ``"pending"``.
    """
    paths = new.paths
    new_text = render_node_config(new)
    old_text = paths.cnf.read_text() if paths.cnf.exists() else ""
    changes, needs_restart = config_changes(old_text, new_text)
    _ensure_certificates(new)
    paths.cnf.write_text(new_text)
    if read_pid(paths) is None:
        # A lost datadir (a replaced disk) comes back empty; bootstrap then re-attaches or
        # seeds it because the provider gives it a new instance.
        recreated = not (paths.datadir / "mysql").is_dir()
        initialise_datadir(paths)
        start_server(paths, new.host, new.port)
        _ensure_admin_user(new)
        return "recreated" if recreated else "restarted"
    if not changes and old.admin_password == new.admin_password:
        return "unchanged"
    if not new.db_settings.get("apply_dynamic_config", True):
        needs_restart = True          # prov-db-apply-dynamic-config off: every change by a restart
    if needs_restart and defer_restart:
        mark_restart_pending(paths, sorted(changes))
        _ensure_admin_user(new)
        return "pending"
    if needs_restart:
        _restart_keeping_role(new)
    else:
        conn = connect_socket(str(paths.socket))
        try:
            for key, value in changes.items():
                if key in _ROLE_MANAGED:
                    continue
                try:
                    execute(conn, f"SET GLOBAL {_VARIABLE_NAMES.get(key, key)} = {_sql_value(value)}")
                except pymysql.MySQLError:
                    needs_restart = True
        finally:
            conn.close()
        if needs_restart and defer_restart:
            mark_restart_pending(paths, sorted(changes))
            _ensure_admin_user(new)
            return "pending"
        if needs_restart:
            _restart_keeping_role(new)
    _ensure_admin_user(new)
    return "restarted" if needs_restart else "live"


def dynamic_statements(old_text: str, new_text: str) -> str | None:
    """The ``SET GLOBAL`` statements that apply a my.cnf change live, or None when a changed
    setting needs a restart (static or removed). Role variables are left to the watcher."""
    changes, needs_restart = config_changes(old_text, new_text)
    if needs_restart:
        return None
    lines = [f"SET GLOBAL {_VARIABLE_NAMES.get(k, k)} = {_sql_value(v)};" for k, v in changes.items()
             if k not in _ROLE_MANAGED]
    return "\n".join(lines) + "\n" if lines else None


def _sql_value(value: str) -> str:
    if value.upper() in ("ON", "OFF") or value.lstrip("-").isdigit():
        return value
    if value[:-1].isdigit() and value[-1:].upper() in _SIZE:
        return str(int(value[:-1]) * _SIZE[value[-1].upper()])
    if value.startswith("'") and value.endswith("'"):
        return value
    return "'" + value.replace("'", "''") + "'"


def delete_node(spec: LocalNodeSpec, keep_data: bool = True) -> None:
    """Clean shutdown; the datadir stays unless the stack asked for its removal."""
    stop_server(spec.paths)
    if not keep_data:
        import shutil

        shutil.rmtree(spec.paths.base, ignore_errors=True)


def node_running(spec: LocalNodeSpec) -> bool:
    return read_pid(spec.paths) is not None


def crash_node(spec: LocalNodeSpec) -> int | None:
    return kill_server(spec.paths)


def restart_node(spec: LocalNodeSpec) -> int:
    return start_server(spec.paths, spec.host, spec.port)


def wait_sql(spec: LocalNodeSpec, credential: Credential, timeout: float = 30) -> None:
    from repman.db import ServerAddress, connect

    deadline = time.monotonic() + timeout
    while True:
        try:
            connect(ServerAddress(spec.host, spec.port), credential, timeout=1).close()
            return
        except pymysql.MySQLError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
