"""A client for HAProxy's runtime API (the admin stats socket), one command per connection.

One connection per command keeps error reporting exact (HAProxy answers a batch as one
blob) and costs well under a millisecond on a unix socket.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass

from repman.db import ServerAddress
from repman.routing.base import RoutingError

_SUCCESS = re.compile(r"^(no need to change|IP changed|.*changed from|New server registered|Server deleted)")

# srv_admin_state bits (HAProxy's SRV_ADMF_*): forced/inherited/config maintenance, drain.
ADMIN_MAINT = 0x01 | 0x02 | 0x04 | 0x20
ADMIN_DRAIN = 0x08 | 0x10


@dataclass(frozen=True)
class ServerState:
    """One row of ``show servers state``."""

    backend: str
    name: str
    address: str
    port: int
    op_state: int        # 0 stopped, 1 starting, 2 running, 3 stopping
    admin_state: int

    @property
    def maint(self) -> bool:
        return bool(self.admin_state & ADMIN_MAINT)

    @property
    def drain(self) -> bool:
        return bool(self.admin_state & ADMIN_DRAIN)

    @property
    def up(self) -> bool:
        return self.op_state == 2

    @property
    def target(self) -> ServerAddress:
        return ServerAddress(self.address, self.port)


class RuntimeAPI:
    """Talks to one HAProxy: ``endpoint`` is a unix socket path or ``host:port``."""

    def __init__(self, endpoint: str, timeout: float = 2.0) -> None:
        self.endpoint = endpoint
        self.timeout = timeout

    def _connect(self) -> socket.socket:
        if "/" in self.endpoint or not re.search(r":\d+$", self.endpoint):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            target: str | tuple[str, int] = self.endpoint
        else:
            addr = ServerAddress.parse(self.endpoint, "haproxy-servers")
            sock = socket.socket(socket.AF_INET6 if ":" in addr.host else socket.AF_INET, socket.SOCK_STREAM)
            target = (addr.host, addr.port)
        sock.settimeout(self.timeout)
        try:
            sock.connect(target)
        except OSError as exc:
            sock.close()
            raise RoutingError(f"HAProxy runtime API {self.endpoint} unreachable: {exc.strerror or exc}") from None
        return sock

    def raw(self, command: str) -> str:
        """Send one command line, return HAProxy's whole answer."""
        if "\n" in command or ";" in command:
            raise ValueError("one command per call")
        sock = self._connect()
        try:
            sock.sendall(command.encode() + b"\n")
            chunks = []
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                chunks.append(data)
        except OSError as exc:
            raise RoutingError(f"HAProxy runtime API {self.endpoint}: {exc.strerror or exc}") from None
        finally:
            sock.close()
        return b"".join(chunks).decode(errors="replace")

    def command(self, command: str) -> str:
        """Run a state-changing command; any answer that is not a known success raises."""
        answer = self.raw(command).strip()
        if answer and not _SUCCESS.match(answer):
            first = answer.splitlines()[0]
            raise RoutingError(f"HAProxy {self.endpoint}: {command!r} answered {first!r}")
        return answer

    def servers_state(self, backend: str | None = None) -> list[ServerState]:
        answer = self.raw("show servers state" + (f" {backend}" if backend else ""))
        lines = answer.splitlines()
        header: list[str] = []
        rows: list[ServerState] = []
        for line in lines:
            if line.startswith("#"):
                header = line[1:].split()
                continue
            fields = line.split()
            if not header or len(fields) < len(header):
                if line.strip() and not line.strip().isdigit():
                    raise RoutingError(f"HAProxy {self.endpoint}: unexpected answer {line.strip()!r}")
                continue
            row = dict(zip(header, fields))
            rows.append(ServerState(
                backend=row["be_name"], name=row["srv_name"], address=row["srv_addr"],
                port=int(row.get("srv_port", "0") or 0), op_state=int(row["srv_op_state"]),
                admin_state=int(row["srv_admin_state"]),
            ))
        return rows

    # Thin wrappers naming the commands the router uses.
    def set_addr(self, backend: str, server: str, address: ServerAddress) -> None:
        self.command(f"set server {backend}/{server} addr {address.host} port {address.port}")

    def set_state(self, backend: str, server: str, state: str) -> None:
        assert state in ("ready", "drain", "maint")
        self.command(f"set server {backend}/{server} state {state}")

    def set_health(self, backend: str, server: str, health: str) -> None:
        assert health in ("up", "stopping", "down")
        self.command(f"set server {backend}/{server} health {health}")

    def shutdown_sessions(self, backend: str, server: str) -> None:
        self.command(f"shutdown sessions server {backend}/{server}")

    def add_server(self, backend: str, server: str, address: ServerAddress) -> None:
        self.command(f"add server {backend}/{server} {address.url} check")
        self.command(f"enable health {backend}/{server}")
