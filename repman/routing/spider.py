"""MariaDB Spider as a routing layer: its server definition follows the primary.

Spider tables name a server (``COMMENT='wrapper "mysql", srv "repman_<cluster>", ...'``);
re-pointing that one definition and then ``FLUSH TABLES`` (Spider keeps open tables on the
old connection until then) moves every Spider table of the node to the new primary.
The remote user should be an application user without SUPER/READ ONLY ADMIN, so a write
that could still reach a read-only old primary fails instead of diverging it.
"""

from __future__ import annotations

import re
from typing import Any

import pymysql

from repman.db import Credential, ServerAddress, execute, query, session
from repman.errors import ConfigError
from repman.routing.base import RoutingError, Topology
from repman.routing.names import sql_identifier
from repman.routing.settings import cluster_name


def default_server_name(cluster: str) -> str:
    return "repman_" + re.sub(r"[^A-Za-z0-9_]+", "_", cluster)


def ensure_spider(conn: pymysql.connections.Connection) -> bool:
    """Install the Spider engine when absent; True when this call installed it."""
    rows = query(conn, "SELECT PLUGIN_STATUS AS s FROM information_schema.PLUGINS WHERE PLUGIN_NAME = 'SPIDER'")
    if rows and rows[0]["s"] == "ACTIVE":
        return False
    execute(conn, "INSTALL SONAME 'ha_spider'")
    return True


def server_definition_sql(name: str) -> str:
    """``CREATE OR REPLACE SERVER`` with placeholders for host, port, user, password, database."""
    return (f"CREATE OR REPLACE SERVER `{sql_identifier(name, 'mdbshardproxy-server-name')}` "
            "FOREIGN DATA WRAPPER mysql OPTIONS (HOST %s, PORT %s, USER %s, PASSWORD %s, DATABASE %s)")


class SpiderRouter:
    def __init__(self, node: ServerAddress, admin: Credential, remote: Credential, server: str,
                 database: str = "", timeout: float = 2.0) -> None:
        self.name = f"spider:{node.url}"
        self.node = node
        self.admin = admin
        self.remote = remote
        self.server = sql_identifier(server, "mdbshardproxy-server-name")
        self.database = database
        self.timeout = timeout

    @classmethod
    def from_config(cls, cfg: Any, node: ServerAddress) -> SpiderRouter:
        admin = cfg.credential("mdbshardproxy-user") or cfg.credential("db-servers-credential")
        remote = cfg.credential("mdbshardproxy-remote-user") or cfg.credential("db-servers-credential")
        if admin is None or remote is None:
            raise ConfigError("mdbshardproxy-user", "no credential for the Spider nodes (nor db-servers-credential)")
        server = cfg.text("mdbshardproxy-server-name") or default_server_name(cluster_name(cfg))
        return cls(node, admin, remote, server, cfg.text("mdbshardproxy-database"), cfg.seconds("proxy-timeout"))

    def current(self, conn: pymysql.connections.Connection) -> dict[str, Any] | None:
        rows = query(conn, "SELECT Host, Port, Username, Password, Db FROM mysql.servers WHERE Server_name = %s",
                     (self.server,))
        return rows[0] if rows else None

    def apply(self, topology: Topology) -> None:
        primary = topology.primary
        if primary is None:
            return   # nowhere better to point; the old definition fails fast against a dead node
        wanted = {"Host": primary.host, "Port": primary.port, "Username": self.remote.user,
                  "Password": self.remote.password, "Db": self.database}
        try:
            with session(self.node, self.admin, timeout=self.timeout, read_timeout=max(5.0, 3 * self.timeout)) as conn:
                now = self.current(conn)
                if now is not None and {k: now[k] for k in wanted} == wanted:
                    return
                execute(conn, server_definition_sql(self.server),
                        (primary.host, primary.port, self.remote.user, self.remote.password, self.database))
                execute(conn, "SET SESSION lock_wait_timeout = %s", (max(1, int(3 * self.timeout)),))
                execute(conn, "FLUSH TABLES")
        except pymysql.MySQLError as exc:
            raise RoutingError(f"Spider node {self.node}: {exc.args[-1]}") from None
