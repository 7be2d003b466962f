"""The leadership check inside a running operation, at each of its steps.

An operation (failover, switchover, rejoin...) runs on the runner's thread for seconds; the
lease may be lost meanwhile. The runner puts its gate in a thread-local before running the
operation, and ``OpLog.step`` calls ``check_step()`` at every step: a watcher that is no longer
the leader stops between two steps (``OperationRefused``) instead of finishing an operation
that the new leader may be running too. Without HA no gate is set and the check costs nothing.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Callable, Iterator

from repman.errors import OperationRefused

Gate = Callable[[], str]            # "" while this watcher may act; else why not
_local = threading.local()


@contextmanager
def gated(gate: Gate | None) -> Iterator[None]:
    """Run the block (an operation) with ``gate`` checked at each of its steps."""
    before = getattr(_local, "gate", None)
    _local.gate = gate
    try:
        yield
    finally:
        _local.gate = before


def check_step(step: str) -> None:
    """Raise ``OperationRefused`` when this thread's operation may no longer act."""
    gate: Gate | None = getattr(_local, "gate", None)
    if gate is None:
        return
    why = gate()
    if why:
        raise OperationRefused(f"stopped before step {step}: {why}")
