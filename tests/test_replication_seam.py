"""The health check after a rejoin must not take a larger sequence number for proof.

Under load a rejoined server's IO thread can still read "Yes" before the master's
refusal (error 1236) arrives; its position, bigger by number but of another server,
must not pass for having applied the master's events.
"""

from __future__ import annotations

from repman.gtid import GtidPosition
from repman.watcher.promote import _past_seam


def _p(text: str) -> GtidPosition:
    return GtidPosition.parse(text)


def test_a_diverged_position_bigger_by_number_is_not_past_the_seam() -> None:
    applied = _p("0-1-11")
    assert not _past_seam(applied, _p("0-2-10"), dict(applied.by_domain))


def test_exactly_the_masters_position_is_past_the_seam() -> None:
    applied = _p("0-2-10")
    assert _past_seam(applied, _p("0-2-10"), dict(applied.by_domain))


def test_events_applied_since_the_start_beyond_the_target_count() -> None:
    assert _past_seam(_p("0-2-12"), _p("0-2-10"), dict(_p("0-1-9").by_domain))


def test_behind_the_target_is_not_past_it() -> None:
    assert not _past_seam(_p("0-2-9"), _p("0-2-10"), dict(_p("0-1-5").by_domain))
