"""Helpers for routing tests: a real HAProxy in front of real mariadbd nodes (not a stand-in)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import pymysql

from repman.db import Credential, ServerAddress
from repman.local.haproxy_process import HAProxyFiles, start, stop, write_config
from repman.local.testbed import free_ports
from repman.routing.haproxy_config import HAProxyConfig, render_haproxy_config


class LocalHAProxy:
    """One real haproxy process with its write and read ports; always ``close()`` it."""

    def __init__(self, base: Path, servers: Iterable[ServerAddress], primary: ServerAddress | None,
                 cluster: str = "c1", **conf_kw) -> None:
        self.files = HAProxyFiles(base)
        self.write_port, self.read_port = free_ports(2)
        self.conf = HAProxyConfig(
            cluster=cluster, servers=tuple(servers), primary=primary, stats_socket=str(self.files.socket),
            state_file=str(self.files.state_file), write_port=self.write_port, read_port=self.read_port,
            bind_address="127.0.0.1", **conf_kw,
        )
        write_config(self.files, render_haproxy_config(self.conf))
        self.pid = start(self.files)

    @property
    def endpoint(self) -> str:
        return str(self.files.socket)

    @property
    def write(self) -> ServerAddress:
        return ServerAddress("127.0.0.1", self.write_port)

    @property
    def read(self) -> ServerAddress:
        return ServerAddress("127.0.0.1", self.read_port)

    def close(self) -> None:
        stop(self.files)


def port_via(proxy: ServerAddress, cred: Credential, timeout: float = 3.0) -> int:
    """Which backend port a fresh connection through ``proxy`` lands on.

    TLS is off: PyMySQL >= 1.2 otherwise builds an SSL context per connection (~35 ms of CPU)."""
    conn = pymysql.connect(ssl_disabled=True, host=proxy.host, port=proxy.port, user=cred.user, password=cred.password,
                           connect_timeout=timeout, read_timeout=timeout)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT @@port")
            return int(cur.fetchone()[0])
    finally:
        conn.close()


def port_or_none(proxy: ServerAddress, cred: Credential) -> int | None:
    """Like ``port_via`` but None when no backend took the connection (for polling)."""
    try:
        return port_via(proxy, cred)
    except pymysql.MySQLError:
        return None


def ports_via(proxy: ServerAddress, cred: Credential, tries: int = 12) -> set[int]:
    """Backend ports seen over ``tries`` connections (connection errors are skipped)."""
    seen = set()
    for _ in range(tries):
        try:
            seen.add(port_via(proxy, cred))
        except pymysql.MySQLError:
            pass
    return seen
