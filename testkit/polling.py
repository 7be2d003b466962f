"""The one polling helper: tests and benchmarks wait for a condition, never sleep a fixed time."""

from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


def wait_until(fn: Callable[[], T], timeout: float = 60.0, what: str | Callable[[], str] = "condition",
               every: float = 0.1, ignore: tuple[type[BaseException], ...] = ()) -> T:
    """Call ``fn`` every ``every`` seconds until it returns something truthy, and return that.

    Raises AssertionError after ``timeout`` seconds, naming ``what`` and the last value seen,
    so a failing test says what it waited for instead of hanging. ``what`` may be a function,
    called only on timeout, when the useful description is the state at that moment (a log
    tail). An exception of a type in ``ignore`` counts as "not yet" (a server still starting
    refuses connections); on timeout it is the last value and the AssertionError's cause.
    Any other exception propagates at once: a condition that can no longer come true (the
    process died) should fail now, not after the timeout.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = fn()
        except ignore as exc:
            last = exc
        else:
            if value:
                return value
            last = value
        if time.monotonic() >= deadline:
            break
        time.sleep(every)
    described = what() if callable(what) else what
    cause = last if isinstance(last, BaseException) else None
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {described} (last: {last!r})") from cause
