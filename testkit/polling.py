"""The one polling helper: tests and benchmarks wait for a condition, never sleep a fixed time."""

from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


def wait_until(fn: Callable[[], T], timeout: float = 60.0, what: str = "condition", every: float = 0.1) -> T:
    """Call ``fn`` every ``every`` seconds until it returns something truthy, and return that.

    Raises AssertionError after ``timeout`` seconds, naming ``what`` and the last value seen,
    so a failing test says what it waited for instead of hanging.
    """
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")
