"""A reader that reaches the cluster only through a proxy's read port.

It records which backend answered each fresh connection, so a test can tell
whether a node was in the read pool at some instant. The matching writer is the
one recording writer, ``repman.lab.writer.Writer`` (``through=`` the write port).
Not a stand-in: it drives real servers through real HAProxy.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import pymysql

from repman.db import Credential, ServerAddress


@dataclass
class Reader:
    """Opens a fresh connection through the read port in a loop and records the backend port."""

    proxy: ServerAddress
    credential: Credential
    seen: list[tuple[float, int]] = field(default_factory=list)
    failures: int = 0

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="proxy-reader")

    def start(self) -> Reader:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        while not self._stop.is_set():
            t = time.monotonic()
            try:
                conn = pymysql.connect(ssl_disabled=True, host=self.proxy.host, port=self.proxy.port,
                                       user=self.credential.user, password=self.credential.password,
                                       connect_timeout=2, read_timeout=5)
                try:
                    with conn.cursor() as cur:
                        cur.execute("SELECT @@port")
                        self.seen.append((t, int(cur.fetchone()[0])))
                finally:
                    conn.close()
            except pymysql.MySQLError:
                self.failures += 1
            time.sleep(0.01)

    def ports_since(self, since: float) -> set[int]:
        return {p for t, p in list(self.seen) if t >= since}
