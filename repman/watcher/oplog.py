"""The running record of one HA operation: each step logged as a sentence and timed.

Switchover, failover and rejoin report the same way, so the CLI, the API and the
benchmarks read one ``OperationResult`` whatever happened.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Callable, Iterator

from repman import failpoints
from repman.db import ServerAddress
from repman.watcher.ha.gate import check_step
from repman.watcher.result import OperationResult

Log = Callable[[str], None] | None


class OpLog:
    def __init__(self, log: Log, kind: str) -> None:
        self.log = log
        self.kind = kind
        self.steps: list[str] = []
        self.timings: dict[str, float] = {}
        self.started = time.monotonic()

    def say(self, message: str) -> None:
        self.steps.append(message)
        if self.log is not None:
            try:
                self.log(f"{self.kind}: {message}")
            except Exception:  # noqa: BLE001 - a broken log sink must not break an operation
                pass

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        check_step(name)        # HA: a watcher that lost its cluster's leadership stops here
        t0 = time.monotonic()
        try:
            yield
        finally:
            self.timings[name] = round(time.monotonic() - t0, 4)
        failpoints.hit(f"{self.kind}:after-{name}")

    def result(self, ok: bool, sentence: str, old: ServerAddress | None = None,
               new: ServerAddress | None = None) -> OperationResult:
        self.timings["total"] = round(time.monotonic() - self.started, 4)
        self.say(sentence)
        return OperationResult(ok=ok, sentence=sentence, kind=self.kind, old_primary=old, new_primary=new,
                               steps=list(self.steps), timings=dict(self.timings))


def error_text(exc: BaseException) -> str:
    """A driver error as "code: message" (pymysql's args), anything else as its text: one line for a step."""
    args = exc.args
    return f"{args[0]}: {args[1]}" if len(args) >= 2 else str(exc)
