"""One snapshot of a server's replication facts, read in a single short session.

Both bootstrap and the watcher decide from these snapshots; reading them is the
only thing that touches the network, so decisions stay pure and testable.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import pymysql

from repman.db import Credential, ServerAddress, connect, query
from repman.gtid import GtidPosition

_VARIABLES = (
    "server_id", "read_only", "log_bin", "gtid_binlog_pos", "gtid_current_pos",
    "gtid_slave_pos", "gtid_strict_mode", "max_connections", "event_scheduler",
    "version", "rpl_semi_sync_master_enabled", "rpl_semi_sync_slave_enabled",
)


@dataclass
class ReplicaStatus:
    master_host: str
    master_port: int
    io_running: str
    sql_running: str
    seconds_behind: int | None
    last_io_error: str
    last_sql_error: str
    gtid_io_pos: str
    using_gtid: str
    received_heartbeats: int
    filters: str

    @property
    def master(self) -> ServerAddress:
        return ServerAddress(self.master_host, self.master_port)

    @property
    def healthy(self) -> bool:
        return self.io_running == "Yes" and self.sql_running == "Yes"


@dataclass
class ServerState:
    address: ServerAddress
    reachable: bool
    error: str = ""
    server_id: int = 0
    read_only: bool = False
    log_bin: bool = False
    gtid_binlog_pos: str = ""
    gtid_current_pos: str = ""
    gtid_slave_pos: str = ""
    gtid_strict_mode: bool = False
    max_connections: int = 0
    event_scheduler: str = "OFF"
    version: str = ""
    semisync_master: bool = False
    semisync_slave: bool = False
    replica: ReplicaStatus | None = None
    read_at: float = field(default_factory=time.time)

    @property
    def binlog_pos(self) -> GtidPosition:
        return GtidPosition.parse(self.gtid_binlog_pos)

    @property
    def current_pos(self) -> GtidPosition:
        return GtidPosition.parse(self.gtid_current_pos)

    @property
    def is_replica(self) -> bool:
        return self.replica is not None

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["address"] = self.address.url
        return out


def _truthy(value: Any) -> bool:
    return str(value).upper() in ("1", "ON", "YES", "TRUE")


def read_replica_status(conn: pymysql.connections.Connection) -> ReplicaStatus | None:
    # SHOW ALL SLAVES STATUS: SHOW SLAVE STATUS lacks Slave_received_heartbeats in MariaDB.
    rows = [r for r in query(conn, "SHOW ALL SLAVES STATUS") if not r.get("Connection_name")]
    if not rows or not rows[0].get("Master_Host"):
        return None
    r = rows[0]
    behind = r.get("Seconds_Behind_Master")
    filters = ",".join(
        str(r.get(k) or "") for k in (
            "Replicate_Do_DB", "Replicate_Ignore_DB", "Replicate_Do_Table",
            "Replicate_Ignore_Table", "Replicate_Wild_Do_Table", "Replicate_Wild_Ignore_Table",
        ) if r.get(k)
    )
    return ReplicaStatus(
        master_host=str(r["Master_Host"]),
        master_port=int(r["Master_Port"]),
        io_running=str(r.get("Slave_IO_Running") or "No"),
        sql_running=str(r.get("Slave_SQL_Running") or "No"),
        seconds_behind=None if behind is None else int(behind),
        last_io_error=str(r.get("Last_IO_Error") or ""),
        last_sql_error=str(r.get("Last_SQL_Error") or ""),
        gtid_io_pos=str(r.get("Gtid_IO_Pos") or ""),
        using_gtid=str(r.get("Using_Gtid") or "No"),
        received_heartbeats=int(r.get("Slave_received_heartbeats") or 0),
        filters=filters,
    )


def read_state_from(conn: pymysql.connections.Connection, address: ServerAddress) -> ServerState:
    row = query(conn, "SELECT " + ", ".join(f"@@GLOBAL.{v} AS {v}" for v in _VARIABLES))[0]
    return ServerState(
        address=address,
        reachable=True,
        server_id=int(row["server_id"]),
        read_only=_truthy(row["read_only"]),
        log_bin=_truthy(row["log_bin"]),
        gtid_binlog_pos=str(row["gtid_binlog_pos"] or ""),
        gtid_current_pos=str(row["gtid_current_pos"] or ""),
        gtid_slave_pos=str(row["gtid_slave_pos"] or ""),
        gtid_strict_mode=_truthy(row["gtid_strict_mode"]),
        max_connections=int(row["max_connections"]),
        event_scheduler=str(row["event_scheduler"]),
        version=str(row["version"]),
        semisync_master=_truthy(row["rpl_semi_sync_master_enabled"]),
        semisync_slave=_truthy(row["rpl_semi_sync_slave_enabled"]),
        replica=read_replica_status(conn),
    )


def read_state(address: ServerAddress, credential: Credential, timeout: float = 1.0) -> ServerState:
    """Read a snapshot; an unreachable server gives ``reachable=False`` and the error text."""
    try:
        # Short connect AND read timeouts: a frozen server accepts the TCP connection (the
        # kernel does) and then never answers; its ping must fail within the tick.
        conn = connect(address, credential, timeout=timeout, read_timeout=max(timeout, 0.5))
    except pymysql.MySQLError as exc:
        return ServerState(address=address, reachable=False, error=_error_text(exc))
    try:
        return read_state_from(conn, address)
    except pymysql.MySQLError as exc:
        return ServerState(address=address, reachable=False, error=_error_text(exc))
    finally:
        conn.close()


def _error_text(exc: BaseException) -> str:
    args: tuple[object, ...] = getattr(exc, "args", ())
    if len(args) >= 2:
        return f"{args[0]}: {args[1]}"
    return str(exc) or type(exc).__name__
