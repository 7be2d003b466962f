"""The outcome of an HA operation, as the CLI, the API and the loop report it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from repman.db import ServerAddress


@dataclass
class OperationResult:
    ok: bool
    sentence: str                                  # one readable line: what happened or why refused
    kind: str = ""                                 # "switchover" | "failover" | "rejoin"
    old_primary: ServerAddress | None = None
    new_primary: ServerAddress | None = None
    steps: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)   # step -> seconds

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "sentence": self.sentence, "kind": self.kind,
            "old_primary": self.old_primary.url if self.old_primary else None,
            "new_primary": self.new_primary.url if self.new_primary else None,
            "steps": list(self.steps), "timings": dict(self.timings),
        }
