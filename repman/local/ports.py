"""Free TCP ports for local servers, chosen below the kernel's ephemeral range.

A port taken from the ephemeral range (what ``bind(0)`` gives) can be grabbed by
any outgoing connection before the server binds it, or while a killed server is
down before its restart: tests then fail with "Address already in use". Ports
below that range are only ever taken by someone binding them on purpose.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

_handed_out: set[int] = set()


def ephemeral_range() -> tuple[int, int]:
    try:
        low, high = (int(x) for x in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Bindable right now, without SO_REUSEADDR (a lingering connection counts as busy)."""
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port_block(count: int, host: str = "127.0.0.1") -> int:
    """First of ``count`` consecutive free ports never handed out before by this process."""
    low = 20000
    high = min(ephemeral_range()[0], 32768) - count
    if high <= low:
        low, high = 10000, 20000 - count
    for _ in range(2000):
        base = random.randrange(low, high)
        block = range(base, base + count)
        if any(p in _handed_out for p in block):
            continue
        if all(port_is_free(p, host) for p in block):
            _handed_out.update(block)
            return base
    raise RuntimeError(f"no block of {count} free ports between {low} and {high}")


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` free ports (not necessarily consecutive)."""
    return [free_port_block(1, host) for _ in range(count)]
