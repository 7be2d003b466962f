"""ProxySQL router: rewrites the cluster's hostgroups over the admin interface (MySQL protocol).

Every apply states the whole routing (primary in the writer hostgroup, healthy replicas
ONLINE and unhealthy ones OFFLINE_SOFT in the reader hostgroup), then LOADs it to runtime:
ProxySQL diffs against its runtime, so unchanged servers keep their connections, and
OFFLINE_SOFT lets running reads finish on a drained replica. The admin interface is SQLite
underneath, so literals are quoted the SQLite way (doubled quotes, no backslash escapes).
"""

from __future__ import annotations

from typing import Any

import pymysql

from repman.db import Credential, ServerAddress, query, session
from repman.routing.base import RoutingError, Topology
from repman.routing.endpoints import endpoint
from repman.routing.settings import cluster_name

# Accounts that exist on every MariaDB and must never become proxy users.
SYSTEM_USERS = ("mariadb.sys", "mysql", "root", "PUBLIC")

USERS_SQL = (
    "SELECT DISTINCT User AS user, "
    "COALESCE(NULLIF(authentication_string, ''), Password) AS password "
    "FROM mysql.user WHERE is_role = 'N' ORDER BY User"
)


def sql_text(value: str) -> str:
    """An SQLite string literal."""
    if "\x00" in value:
        raise RoutingError("NUL byte in a ProxySQL value")
    return "'" + value.replace("'", "''") + "'"


def parse_admin_endpoint(text: str, default_port: int) -> ServerAddress:
    return endpoint(text, default_port, "proxysql-servers")


class ProxySQLRouter:
    def __init__(
        self, admin: ServerAddress, admin_credential: Credential, cluster: str,
        writer_hostgroup: int = 0, reader_hostgroup: int = 1, copy_grants: bool = True,
        save_to_disk: bool = True, db_credential: Credential | None = None,
        ignored_users: tuple[str, ...] = (), timeout: float = 2.0,
    ) -> None:
        if writer_hostgroup == reader_hostgroup:
            from repman.errors import ConfigError
            raise ConfigError("proxysql-reader-hostgroup", "must differ from proxysql-writer-hostgroup")
        self.name = f"proxysql:{admin.url}"
        self.admin = admin
        self.admin_credential = admin_credential
        self.cluster = cluster
        self.writer = writer_hostgroup
        self.reader = reader_hostgroup
        self.copy_grants = copy_grants
        self.save_to_disk = save_to_disk
        self.db_credential = db_credential
        self.ignored_users = set(SYSTEM_USERS) | set(ignored_users)
        self.timeout = timeout

    @classmethod
    def from_config(cls, cfg: Any, host: str) -> ProxySQLRouter:
        admin = parse_admin_endpoint(host, cfg.integer("proxysql-admin-port"))
        db_cred = cfg.credential("db-servers-credential")
        repl = cfg.credential("replication-credential")
        ignored = tuple(c.user for c in (db_cred, repl) if c is not None)
        return cls(
            admin, Credential(cfg.text("proxysql-user"), cfg.text("proxysql-password")),
            cluster_name(cfg), cfg.integer("proxysql-writer-hostgroup"),
            cfg.integer("proxysql-reader-hostgroup"), cfg.flag("proxysql-copy-grants"),
            cfg.flag("proxysql-save-to-disk"), db_cred, ignored, cfg.seconds("proxy-timeout"),
        )

    # -- statements ------------------------------------------------------------------------
    def server_statements(self, topology: Topology) -> list[str]:
        comment = sql_text(f"repman {self.cluster}")
        stmts = [
            f"DELETE FROM mysql_replication_hostgroups WHERE writer_hostgroup={self.writer}",
            "INSERT INTO mysql_replication_hostgroups (writer_hostgroup, reader_hostgroup, comment) "
            f"VALUES ({self.writer}, {self.reader}, {comment})",
            f"DELETE FROM mysql_servers WHERE hostgroup_id IN ({self.writer}, {self.reader})",
        ]

        def row(hg: int, server: ServerAddress, status: str) -> str:
            return ("INSERT INTO mysql_servers (hostgroup_id, hostname, port, status, comment) "
                    f"VALUES ({hg}, {sql_text(server.host)}, {server.port}, '{status}', {comment})")

        if topology.primary is not None:
            stmts.append(row(self.writer, topology.primary, "ONLINE"))
        for server in sorted(set(topology.replicas)):
            stmts.append(row(self.reader, server, "ONLINE"))
        for server in sorted(set(topology.unhealthy) - set(topology.replicas) - {topology.primary}):
            stmts.append(row(self.reader, server, "OFFLINE_SOFT"))
        stmts.append("LOAD MYSQL SERVERS TO RUNTIME")
        if self.save_to_disk:
            stmts.append("SAVE MYSQL SERVERS TO DISK")
        return stmts

    def master_users(self, primary: ServerAddress) -> list[tuple[str, str]]:
        """(user, password hash) of the primary's accounts that clients log in with."""
        if self.db_credential is None:
            raise RoutingError("proxysql-copy-grants needs db-servers-credential to read the primary's users")
        try:
            with session(primary, self.db_credential, timeout=self.timeout, read_timeout=self.timeout) as conn:
                rows = query(conn, USERS_SQL)
        except pymysql.MySQLError as exc:
            raise RoutingError(f"cannot read users from {primary}: {exc.args[-1]}") from None
        seen: dict[str, str] = {}
        for r in rows:
            user, password = str(r["user"]), str(r["password"] or "")
            if user and user not in self.ignored_users and password.startswith("*") and user not in seen:
                seen[user] = password
        return sorted(seen.items())

    def user_statements(self, users: list[tuple[str, str]]) -> list[str]:
        stmts = [
            "REPLACE INTO mysql_users (username, password, default_hostgroup, active) "
            f"VALUES ({sql_text(u)}, {sql_text(p)}, {self.writer}, 1)" for u, p in users
        ]
        stmts.append("LOAD MYSQL USERS TO RUNTIME")
        if self.save_to_disk:
            stmts.append("SAVE MYSQL USERS TO DISK")
        return stmts

    # -- apply -----------------------------------------------------------------------------
    def apply(self, topology: Topology) -> None:
        stmts = self.server_statements(topology)
        if self.copy_grants and topology.primary is not None:
            stmts += self.user_statements(self.master_users(topology.primary))
        try:
            conn = pymysql.connect(
                host=self.admin.host, port=self.admin.port, user=self.admin_credential.user,
                password=self.admin_credential.password, connect_timeout=self.timeout,
                read_timeout=self.timeout, write_timeout=self.timeout, autocommit=True, charset="utf8mb4",
            )
        except pymysql.MySQLError as exc:
            raise RoutingError(f"ProxySQL admin {self.admin} unreachable: {exc.args[-1]}") from None
        try:
            with conn.cursor() as cur:
                for sql in stmts:
                    try:
                        cur.execute(sql)
                    except pymysql.MySQLError as exc:
                        raise RoutingError(f"ProxySQL {self.admin}: {sql.split(' (')[0]!r} failed: "
                                           f"{exc.args[-1]}") from None
        finally:
            conn.close()
