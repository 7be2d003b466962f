"""Talking to one MariaDB server: addresses, credentials, short-lived connections.

Every call opens its own connection with tight timeouts: the watcher must never
hang on a dead server, and a stale pooled connection would hide a failure.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import pymysql
import pymysql.cursors

from repman.db_tls import tls_arguments
from repman.errors import ConfigError

_HOSTPORT = re.compile(r"^(?:\[(?P<v6>[0-9a-fA-F:.]+)\]|(?P<host>[A-Za-z0-9_.-]+)):(?P<port>\d{1,5})$")
_HOST_ONLY = re.compile(r"^(?:\[(?P<v6>[0-9a-fA-F:.]+)\]|(?P<host>[A-Za-z0-9_.-]+))$")


@dataclass(frozen=True, order=True)
class ServerAddress:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def __str__(self) -> str:
        return self.url

    @classmethod
    def parse(cls, text: Any, key: str = "db-servers-hosts", default_port: int | None = None) -> ServerAddress:
        """``host:port`` or ``[v6]:port``; a bare host takes ``default_port`` when one is given
        (repman's ``db-servers-hosts`` defaults to 3306)."""
        if not isinstance(text, str):
            raise ConfigError(key, f"expected host:port, got {text!r}")
        match = _HOSTPORT.match(text.strip())
        if not match and default_port is not None:
            bare = _HOST_ONLY.match(text.strip())
            if bare:
                return cls(bare.group("v6") or bare.group("host"), default_port)
        if not match:
            raise ConfigError(key, f"bad host:port {text!r}")
        port = int(match.group("port"))
        if not 1 <= port <= 65535:
            raise ConfigError(key, f"port out of range in {text!r}")
        return cls(match.group("v6") or match.group("host"), port)


@dataclass(frozen=True)
class Credential:
    user: str
    password: str

    def __repr__(self) -> str:  # never print a password by accident
        return f"Credential(user={self.user!r}, password='***')"

    @classmethod
    def parse(cls, text: Any, key: str) -> Credential:
        if not isinstance(text, str):
            raise ConfigError(key, f"expected user:password, got a {type(text).__name__}")
        if ":" not in text:
            # The value may well be a bare password: say what is wrong without echoing it.
            raise ConfigError(key, f"expected user:password, got a value without ':' "
                                   f"({len(text)} characters, not shown)")
        user, password = text.split(":", 1)
        if not user:
            raise ConfigError(key, "user name is empty")
        return cls(user, password)


class _Connection(pymysql.connections.Connection):
    """pymysql builds a new TLS context (loading the system CA store, ~35 ms) on every
    connect in its default "preferred" mode; sharing one keeps a connect near 1 ms,
    which the watcher's per-tick reads and a sub-second switchover need."""

    _preferred_ctx = None

    def _create_ssl_ctx(self, sslp):  # type: ignore[override]
        if sslp == {}:
            if _Connection._preferred_ctx is None:
                _Connection._preferred_ctx = super()._create_ssl_ctx(sslp)
            return _Connection._preferred_ctx
        return super()._create_ssl_ctx(sslp)


def connect(
    address: ServerAddress,
    credential: Credential,
    timeout: float = 2.0,
    read_timeout: float | None = 10.0,
    database: str | None = None,
    autocommit: bool = True,
) -> pymysql.connections.Connection:
    return _Connection(
        host=address.host,
        port=address.port,
        user=credential.user,
        password=credential.password,
        database=database,
        connect_timeout=timeout,
        read_timeout=read_timeout,
        write_timeout=read_timeout,
        autocommit=autocommit,
        cursorclass=pymysql.cursors.DictCursor,
        charset="utf8mb4",
        **tls_arguments(address),  # verified TLS for clusters with db-servers-tls-ca-cert
    )


def connect_socket(socket_path: str, user: str = "root", password: str = "") -> pymysql.connections.Connection:
    """Local admin access over the unix socket (fresh datadirs: root without password)."""
    return pymysql.connect(
        unix_socket=socket_path, user=user, password=password, autocommit=True,
        cursorclass=pymysql.cursors.DictCursor, connect_timeout=5, charset="utf8mb4",
    )


@contextmanager
def session(address: ServerAddress, credential: Credential, **kwargs: Any) -> Iterator[pymysql.connections.Connection]:
    conn = connect(address, credential, **kwargs)
    try:
        yield conn
    finally:
        conn.close()


def query(conn: pymysql.connections.Connection, sql: str, args: Any = None) -> list[dict[str, Any]]:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall() or [])


def execute(conn: pymysql.connections.Connection, sql: str, args: Any = None) -> int:
    with conn.cursor() as cur:
        return cur.execute(sql, args)


def execute_unlogged(conn: pymysql.connections.Connection, sql: str, args: Any = None) -> int:
    """Run a statement carrying a clear password (CHANGE MASTER ... MASTER_PASSWORD) with this
    session's general and slow query logs off, so the password never reaches either file.
    (CHANGE MASTER is never binlogged.) Needs SUPER; an account without it still gets its
    statement run (a working re-point matters more), logged as the server is configured."""
    try:
        execute(conn, "SET SESSION sql_log_off = 1, SESSION slow_query_log = 0")
    except pymysql.err.OperationalError as exc:
        if exc.args[0] != 1227:  # ER_SPECIFIC_ACCESS_DENIED_ERROR
            raise
        return execute(conn, sql, args)
    try:
        return execute(conn, sql, args)
    finally:
        execute(conn, "SET SESSION sql_log_off = 0, SESSION slow_query_log = @@GLOBAL.slow_query_log")


def variable(conn: pymysql.connections.Connection, name: str) -> str | None:
    rows = query(conn, "SELECT @@GLOBAL." + re.sub(r"[^a-z0-9_]", "", name.lower()) + " AS v")
    value = rows[0]["v"] if rows else None
    return None if value is None else str(value)
