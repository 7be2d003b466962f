"""The cluster's event history: what happened and when, kept in the state store.

Why in the state store: the CLI, the API and a restarted watcher read the same
history the acting watcher wrote, across processes, under the store's lock. Why
bounded: the store is rewritten whole on each change, so the history keeps the
last ``KEEP`` events. Why batched: a tick that sees a decision change and three
state changes writes the file once (``EventLog.flush``), not four times.

An event is a plain dict ``{seq, at, cluster, severity, kind, message, details}``;
``seq`` grows by one per event of the cluster (assigned under the store's lock, so a
CLI and the watcher never hand out the same number) and lets a follower ask for
"everything after N" without losing two events of the same second.
"""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, datetime
from typing import Any, Callable, Iterable, Protocol, Sequence

from repman.errors import ConfigError
from repman.watcher.state_store import EVENTS_KEEP as KEEP  # events kept per cluster (oldest dropped first)

PENDING_MAX = 10 * KEEP         # events waiting for a flush when the store cannot be written
SEVERITIES = ("info", "warning", "error")
KINDS = ("decision", "alert", "operation", "state", "router")

Event = dict[str, Any]


class _HasEvents(Protocol):
    events: list[Event]


class _Store(Protocol):
    def update(self, change: Callable[[Any], None]) -> Any: ...


def make_event(cluster: str, severity: str, kind: str, message: str,
               details: dict[str, Any] | None = None, at: float | None = None) -> Event:
    """One event, not yet numbered (``seq`` comes when it is stored)."""
    if severity not in SEVERITIES:
        raise ValueError(f"severity {severity!r} is not one of {', '.join(SEVERITIES)}")
    return {"at": time.time() if at is None else at, "cluster": cluster, "severity": severity, "kind": kind,
            "message": message, "details": dict(details or {})}


def append(state: _HasEvents, new: Iterable[Event], keep: int = KEEP) -> list[Event]:
    """Number ``new`` after the last stored event, append, keep the last ``keep``; returns the numbered ones."""
    last = int(state.events[-1].get("seq", 0)) if state.events else 0
    numbered = []
    for event in new:
        last += 1
        numbered.append({**event, "seq": last})
    state.events = (list(state.events) + numbered)[-keep:] if keep > 0 else []
    return numbered


def record(store: _Store, events: Sequence[Event], keep: int = KEEP) -> list[Event]:
    """Append ``events`` in one store update (one read-modify-write under the store's lock)."""
    if not events:
        return []
    out: list[Event] = []
    store.update(lambda state: out.extend(append(state, events, keep)))
    return out


def select(events: Sequence[Event], since: float | None = None, after: int | None = None,
           limit: int | None = None, kinds: Iterable[str] = (), severity: str | None = None) -> list[Event]:
    """The events at or after ``since`` (wall time), numbered above ``after``, of ``kinds``, at least
    ``severity``; the last ``limit`` of them, oldest first."""
    wanted = set(kinds)
    floor = SEVERITIES.index(severity) if severity else 0
    out = [e for e in events
           if (since is None or float(e.get("at", 0)) >= since)
           and (after is None or int(e.get("seq", 0)) > after)
           and (not wanted or e.get("kind") in wanted)
           and SEVERITIES.index(e.get("severity", "info")) >= floor]
    if limit is not None:
        out = out[-limit:] if limit > 0 else []
    return out


_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str, key: str = "since", now: float | None = None) -> float:
    """Wall time from ``text``: seconds since the epoch, ISO 8601 (UTC when no zone is given) or a
    relative age such as ``90s``, ``10m``, ``2h``, ``1d``. Bad input is a ``ConfigError`` naming ``key``."""
    value = text.strip()
    match = _RELATIVE.match(value)
    if match:
        return (time.time() if now is None else now) - float(match.group(1)) * _UNITS[match.group(2)]
    try:
        return float(value)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(key, f"{text[:64]!r} is not a time: give epoch seconds, ISO 8601 "
                               "(2026-12-01T04:50:00Z) or an age such as 10m, 2h, 1d") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def parse_limit(text: str, key: str = "limit") -> int:
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(key, f"{text[:32]!r} is not a whole number") from None
    if value < 0:
        raise ConfigError(key, f"{value} is negative")
    return value


def format_event(event: Event) -> str:
    """One readable line: local time, severity, kind, message."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(event.get("at", 0))))
    return f"{stamp} {event.get('severity', 'info'):<7} {event.get('kind', ''):<9} {event.get('message', '')}"


def operation_details(result: dict[str, Any], who: str, started_at: float | None,
                      seconds: float | None) -> dict[str, Any]:
    """What an operation event carries: who asked, when, each step with its duration, the outcome."""
    timings = dict(result.get("timings") or {})
    steps = [{"step": s, "seconds": timings.get(s)} for s in result.get("steps") or []]
    named = {s["step"] for s in steps}
    steps += [{"step": k, "seconds": v} for k, v in timings.items() if k not in named and k != "total"]
    return {"operation": result.get("kind", ""), "by": who, "started_at": started_at,
            "seconds": None if seconds is None else round(seconds, 3), "ok": bool(result.get("ok")),
            "old_primary": result.get("old_primary"), "new_primary": result.get("new_primary"), "steps": steps}


class EventLog:
    """Events a monitor collects from several threads (tick, runner, routing), written in batches."""

    def __init__(self, cluster: str, store: _Store, keep: int = KEEP) -> None:
        self.cluster = cluster
        self.store = store
        self.keep = keep
        self._pending: list[Event] = []
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()

    def emit(self, severity: str, kind: str, message: str, details: dict[str, Any] | None = None) -> None:
        with self._lock:
            self._pending.append(make_event(self.cluster, severity, kind, message, details))
            del self._pending[:-PENDING_MAX]

    @property
    def pending(self) -> int:
        return len(self._pending)

    def discard(self) -> None:
        """Drop what was collected: an observe-only monitor (``repman status``) writes no history."""
        with self._lock:
            self._pending = []

    def flush(self) -> list[Event]:
        """Write every pending event in one store update; on a write error they wait for the next flush."""
        with self._flush_lock:
            with self._lock:
                batch, self._pending = self._pending, []
            if not batch:
                return []
            try:
                return record(self.store, batch, self.keep)
            except OSError:
                with self._lock:
                    self._pending = (batch + self._pending)[-PENDING_MAX:]
                raise


__all__ = ["KEEP", "KINDS", "SEVERITIES", "Event", "EventLog", "append", "format_event", "make_event",
           "operation_details", "parse_limit", "parse_since", "record", "select"]
