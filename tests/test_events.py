"""The event history's rules without a server: numbering, the bound, filtering, time parsing, batching."""

from __future__ import annotations

import json
import threading

import pytest

from repman.errors import ConfigError
from repman.watcher import events
from repman.watcher.state_store import EVENTS_KEEP, ClusterState, StateStore


def _ev(i: int, kind: str = "decision", severity: str = "info", at: float | None = None) -> dict:
    return events.make_event("c1", severity, kind, f"event {i}", {"i": i}, at=at if at is not None else 1000.0 + i)


def test_append_numbers_after_the_last_and_keeps_the_bound():
    state = ClusterState()
    first = events.append(state, [_ev(i) for i in range(5)], keep=3)
    assert [e["seq"] for e in first] == [1, 2, 3, 4, 5]
    assert [e["seq"] for e in state.events] == [3, 4, 5]
    more = events.append(state, [_ev(9)], keep=3)
    assert more[0]["seq"] == 6       # numbering goes on after dropped events
    assert [e["message"] for e in state.events] == ["event 3", "event 4", "event 9"]
    events.append(state, [_ev(10)], keep=0)
    assert state.events == []


def test_store_round_trip_is_bounded_and_one_write_per_batch(tmp_path):
    store = StateStore(tmp_path)
    writes = []
    real_save = store.save
    store.save = lambda st: (writes.append(1), real_save(st))[1]  # type: ignore[method-assign]
    log = events.EventLog("c1", store, keep=4)
    for i in range(6):
        log.emit("warning", "state", f"s{i}", {"n": i})
    assert log.pending == 6 and not (tmp_path / "state.json").exists()
    written = log.flush()
    assert len(writes) == 1 and len(written) == 6 and log.pending == 0
    loaded = StateStore(tmp_path).load().events
    assert [e["message"] for e in loaded] == ["s2", "s3", "s4", "s5"]
    assert loaded[-1] == {**written[-1]} and loaded[-1]["details"] == {"n": 5}
    assert set(loaded[0]) == {"seq", "at", "cluster", "severity", "kind", "message", "details"}
    assert log.flush() == [] and len(writes) == 1      # nothing pending: no write


def test_hand_edited_file_is_cut_to_the_bound_and_old_files_load(tmp_path):
    (tmp_path / "state.json").write_text(json.dumps({"failover_count": 2}))
    assert StateStore(tmp_path).load().events == []
    many = [{**_ev(i), "seq": i + 1} for i in range(EVENTS_KEEP + 50)]
    (tmp_path / "state.json").write_text(json.dumps({"events": many}))
    loaded = StateStore(tmp_path).load().events
    assert len(loaded) == EVENTS_KEEP and loaded[0]["seq"] == 51
    assert events.KEEP == EVENTS_KEEP


def test_concurrent_writers_never_share_a_number(tmp_path):
    """Two processes' worth of writers (separate stores, one file): numbers stay unique and ordered."""
    def writer(tag: str) -> None:
        log = events.EventLog("c1", StateStore(tmp_path))
        for i in range(20):
            log.emit("info", "operation", f"{tag}{i}")
            log.flush()
    threads = [threading.Thread(target=writer, args=(t,)) for t in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seqs = [e["seq"] for e in StateStore(tmp_path).load().events]
    assert seqs == list(range(1, 41))


def test_select_filters():
    evs = [{**_ev(i, kind="alert" if i % 2 else "state", severity="error" if i % 3 == 0 else "info"), "seq": i + 1}
           for i in range(10)]
    assert [e["seq"] for e in events.select(evs, after=7)] == [8, 9, 10]
    assert [e["seq"] for e in events.select(evs, since=1005.0)] == [6, 7, 8, 9, 10]
    assert [e["seq"] for e in events.select(evs, limit=3)] == [8, 9, 10]
    assert events.select(evs, limit=0) == []
    assert {e["kind"] for e in events.select(evs, kinds=["alert"])} == {"alert"}
    assert [e["seq"] for e in events.select(evs, severity="error")] == [1, 4, 7, 10]
    assert [e["seq"] for e in events.select(evs, since=1002.0, kinds=["alert"], limit=2)] == [8, 10]


def test_parse_since_and_limit():
    assert events.parse_since("10m", now=10_000.0) == 9_400.0
    assert events.parse_since("2h", now=10_000.0) == 2_800.0
    assert events.parse_since("1700000000") == 1_700_000_000.0
    assert events.parse_since("2026-12-01T04:50:00Z") == events.parse_since("2026-12-01T04:50:00")
    assert events.parse_since("2026-12-01T05:50:00+01:00") == events.parse_since("2026-12-01T04:50:00Z")
    with pytest.raises(ConfigError, match="since: 'yesterday' is not a time"):
        events.parse_since("yesterday")
    assert events.parse_limit("20") == 20
    with pytest.raises(ConfigError, match="limit: -1 is negative"):
        events.parse_limit("-1")
    with pytest.raises(ConfigError, match="limit: 'x' is not a whole number"):
        events.parse_limit("x")
    with pytest.raises(ValueError):
        events.make_event("c1", "fatal", "alert", "x")


def test_operation_details_pairs_steps_with_durations():
    result = {"ok": True, "kind": "switchover", "old_primary": "a:1", "new_primary": "b:2",
              "steps": ["freeze", "catch up", "promote"], "timings": {"freeze": 0.1, "promote": 0.3, "total": 1.0,
                                                                      "routers": 0.2}}
    d = events.operation_details(result, "ops over the API", 1000.0, 1.23456)
    assert d["by"] == "ops over the API" and d["ok"] is True and d["seconds"] == 1.235
    assert d["steps"] == [{"step": "freeze", "seconds": 0.1}, {"step": "catch up", "seconds": None},
                          {"step": "promote", "seconds": 0.3}, {"step": "routers", "seconds": 0.2}]


def test_failed_write_keeps_the_batch(tmp_path):
    class Broken:
        def update(self, change):
            raise OSError(28, "No space left on device")
    log = events.EventLog("c1", Broken())
    log.emit("info", "alert", "x")
    with pytest.raises(OSError):
        log.flush()
    assert log.pending == 1
    log.store = StateStore(tmp_path)
    assert [e["message"] for e in log.flush()] == ["x"]
