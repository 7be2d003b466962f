"""One HA operation at a time per cluster, across processes (CLI, watch, API).

A ``flock`` on ``<state_dir>/operation.lock``: the kernel drops it when its
holder dies, so a crashed CLI never blocks the watcher. The file's content says
who holds it, so the monitor can report "switchover in another process".
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path


class OperationLock:
    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / "operation.lock"
        self._fd: int | None = None

    def acquire(self, what: str, timeout: float = 0.0) -> bool:
        """Take the lock within ``timeout`` seconds; False when someone else holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    return False
                time.sleep(0.02)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{what} (pid {os.getpid()})".encode(), 0)
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def holder(self) -> str | None:
        """What holds the lock now, or None when it is free (a shared probe, never blocking)."""
        if self._fd is not None:
            return self._read()
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return self._read() or "an operation"
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def _read(self) -> str:
        try:
            return self.path.read_text().strip()
        except OSError:
            return ""
