"""Which backups a ``backup-keep-hourly/daily/weekly/monthly`` policy keeps.

restic's rule (``backup-keep-last`` is its --keep-last), applied the same way to every repository kind: walking from the
newest backup back, keep the newest one of each of the last N hours (days, ISO
weeks, months) that have a backup. The newest good backup is always kept, so a
policy of zeros never deletes the only restore point.
"""

from __future__ import annotations

import datetime
import time
from typing import Iterable, Mapping, Sequence


def _week(t: time.struct_time) -> str:
    year, week, _ = datetime.date(t.tm_year, t.tm_mon, t.tm_mday).isocalendar()
    return f"{year:04d}-W{week:02d}"


_BUCKETS = {
    "hourly": lambda t: time.strftime("%Y-%m-%d-%H", t),
    "daily": lambda t: time.strftime("%Y-%m-%d", t),
    "weekly": _week,
    "monthly": lambda t: time.strftime("%Y-%m", t),
}


def kept(backups: Sequence[tuple[str, float]], keep: Mapping[str, int]) -> set[str]:
    """``backups`` are (id, end time) of good backups of one type; returns the ids to keep."""
    ordered = sorted(backups, key=lambda b: b[1], reverse=True)
    out: set[str] = set()
    if ordered:
        out.add(ordered[0][0])
    out.update(b for b, _ in ordered[: int(keep.get("last", 0))])
    for period, bucket in _BUCKETS.items():
        left = int(keep.get(period, 0))
        last = None
        for backup_id, at in ordered:
            if left <= 0:
                break
            key = bucket(time.gmtime(at))
            if key != last:
                out.add(backup_id)
                last = key
                left -= 1
    return out


def expired(backups: Iterable[tuple[str, float]], keep: Mapping[str, int]) -> list[str]:
    items = list(backups)
    keep_ids = kept(items, keep)
    return [b for b, _ in items if b not in keep_ids]
