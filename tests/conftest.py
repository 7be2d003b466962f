"""Shared fixtures: real local mariadbd clusters and free ports, always torn down."""

from __future__ import annotations

import random
import shutil
import socket
from pathlib import Path
from typing import Iterator

import pytest

from repman.local.testbed import Testbed

HAVE_MARIADB = shutil.which("mariadbd") is not None and shutil.which("mariadb-install-db") is not None
needs_mariadb = pytest.mark.skipif(not HAVE_MARIADB, reason="mariadbd / mariadb-install-db not installed")


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port_block(count: int, low: int = 20000, high: int = 45000) -> int:
    """First port of ``count`` consecutive free ports (stacks use base + i)."""
    for _ in range(500):
        base = random.randrange(low, high - count)
        if all(port_is_free(base + i) for i in range(count)):
            return base
    raise RuntimeError(f"no block of {count} free ports found")


@pytest.fixture
def testbed(tmp_path: Path) -> Iterator[Testbed]:
    """A bootstrapped-ready 3-node cluster of real mariadbd (not yet bootstrapped)."""
    if not HAVE_MARIADB:
        pytest.skip("mariadbd not installed")
    bed = Testbed(base=tmp_path / "bed")
    try:
        bed = Testbed.create(tmp_path / "bed", count=3)
        yield bed
    finally:
        bed.destroy()
