"""When the channels stay quiet: an operator's mute (kept in a file, across restarts and
processes) and the blackout windows of ``scheduler-alert-disable*``."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from croniter import croniter

MUTE_FILE = "alerts-mute.json"


@dataclass(frozen=True)
class Mute:
    until: float
    by: str = ""
    reason: str = ""


class MuteStore:
    """``<state_dir>/alerts-mute.json``: the CLI writes it, the watcher reads it before each alert."""

    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / MUTE_FILE

    def current(self, now: float) -> Mute | None:
        try:
            raw = json.loads(self.path.read_text())
            mute = Mute(float(raw["until"]), str(raw.get("by", "")), str(raw.get("reason", "")))
        except (OSError, ValueError, KeyError, TypeError):
            return None            # no file, or a torn/hand-edited one: not muted
        return mute if mute.until > now else None

    def set(self, mute: Mute) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".alerts-mute.")
        with os.fdopen(fd, "w") as f:
            json.dump({"until": mute.until, "by": mute.by, "reason": mute.reason}, f)
        os.replace(tmp, self.path)

    def clear(self) -> bool:
        try:
            self.path.unlink()
            return True
        except FileNotFoundError:
            return False


def blackout_until(cron: str, seconds: float, now: float) -> float | None:
    """The end of the blackout window ``now`` falls in (a window opens at each cron time), or None."""
    if not cron or seconds <= 0:
        return None
    start = float(croniter(cron, now - seconds).get_next(float))
    return start + seconds if start <= now else None
