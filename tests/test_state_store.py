"""The state store's one interface, run against both implementations: the file store and etcd (real).

The etcd variant needs a real etcd-server (marked slow); the file variant runs in the fast subset.
"""

from __future__ import annotations

import json
import threading
from dataclasses import fields

import pytest

from repman.watcher.ha.etcd import EtcdClient
from repman.watcher.ha.leadership import HaAgent
from repman.watcher.ha.settings import HaSettings
from repman.watcher.ha.state import EtcdStateStore, StateWriteRefused
from repman.watcher.state_store import (
    ClusterState,
    CrashRecord,
    FileStateStore,
    StateStore,
    open_store,
    state_from_dict,
    state_to_dict,
    use_store,
)
from testkit.polling import wait_until


@pytest.fixture(params=["file", pytest.param("etcd", marks=pytest.mark.slow)])
def store(request, tmp_path) -> StateStore:
    if request.param == "file":
        return FileStateStore(tmp_path / "state", keep=3)
    etcd = request.getfixturevalue("etcd_factory")(1)
    return EtcdStateStore(EtcdClient(etcd.endpoints), b"/t/c1/state", keep=3)


def crash(i: int) -> CrashRecord:
    return CrashRecord("failover", 1000.0 + i, f"h:{i}", f"h:{i + 1}", {f"h:{i}": f"0-1-{i}"}, f"0-1-{i}", True)


def test_empty_store_loads_defaults(store) -> None:
    assert store.load() == ClusterState()
    assert store.latest_crash() is None


def test_every_field_round_trips(store) -> None:
    def change(s: ClusterState) -> None:
        s.quarantined["h:2"] = "diverged"
        s.maintenance = ["h:3"]
        s.master_event_scheduler = True
        s.lag_seen = {"h:2": [1.5, 99.0]}
        s.jobs = [{"job": "backup", "ok": True}]
    store.update(change)
    store.record_crash(crash(1), count_failover=True)
    loaded = store.load()
    assert loaded.failover_count == 1 and loaded.last_failover_at == 1001.0
    assert loaded.crashes == [crash(1)]
    assert (loaded.quarantined, loaded.maintenance, loaded.master_event_scheduler) == ({"h:2": "diverged"}, ["h:3"],
                                                                                        True)
    assert loaded.lag_seen == {"h:2": [1.5, 99.0]} and loaded.jobs == [{"job": "backup", "ok": True}]


def test_conveniences_and_crash_trimming(store) -> None:
    for i in range(5):
        store.record_crash(crash(i), count_failover=i % 2 == 0)
    state = store.load()
    assert state.failover_count == 3
    assert [c.at for c in state.crashes] == [1002.0, 1003.0, 1004.0]       # keep=3
    assert store.latest_crash() == crash(4)
    store.reset_failover_counter()
    assert store.load().failover_count == 0
    store.quarantine("h:1", "broken")
    store.release("h:1")
    assert store.load().quarantined == {}
    assert store.set_maintenance("h:1", True) is True
    assert store.set_maintenance("h:1", True) is False
    assert store.set_maintenance("h:1", False) is True


def test_no_lost_update_between_concurrent_writers(store) -> None:
    def bump() -> None:
        for _ in range(15):
            store.update(lambda s: setattr(s, "failover_count", s.failover_count + 1))
    threads = [threading.Thread(target=bump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.load().failover_count == 60


def test_generic_serialisation_keeps_every_field_and_tolerates_unknown_ones() -> None:
    state = ClusterState(failover_count=2, crashes=[crash(1)], maintenance=["h:1"])
    raw = state_to_dict(state)
    assert set(raw) == {f.name for f in fields(ClusterState)}
    assert state_from_dict(json.loads(json.dumps(raw))) == state
    assert state_from_dict({"failover_count": 1, "a_field_of_a_newer_version": [1]}).failover_count == 1
    assert state_from_dict({}) == ClusterState()


def test_state_store_constructor_is_the_file_store_and_open_store_the_registered_one(tmp_path) -> None:
    plain = StateStore(tmp_path / "s", keep=4)
    assert isinstance(plain, FileStateStore) and plain.keep == 4
    assert isinstance(open_store(tmp_path / "s"), FileStateStore)
    marker = FileStateStore(tmp_path / "other")
    use_store(tmp_path / "s", lambda keep: marker)
    try:
        assert open_store(tmp_path / "s", keep=7) is marker
    finally:
        use_store(tmp_path / "s", None)
    assert isinstance(open_store(tmp_path / "s"), FileStateStore)


def test_etcd_store_refuses_a_deposed_leaders_write_and_reads_on_without_etcd(etcd_factory) -> None:
    etcd = etcd_factory(1)
    settings = HaSettings(tuple(etcd.endpoints), prefix="/t", lease_ttl=2, watcher_name="w1", timeout=0.5)
    w1 = HaAgent(settings, ["c1"]).start()
    w2 = HaAgent(HaSettings(tuple(etcd.endpoints), prefix="/t", lease_ttl=2, watcher_name="w2", timeout=0.5),
                 ["c1"])
    try:
        wait_until(lambda: w1.why_not("c1") == "", 5, "w1 to lead")
        s1 = EtcdStateStore(w1.client, b"/t/c1/state", w1.leadership("c1"))
        s1.record_crash(crash(1), count_failover=True)
        w1.stop(release=False, close=False)             # w1 is cut off; w2 takes over
        w2.start()
        wait_until(lambda: w2.why_not("c1") == "", 10, "w2 to lead")
        with pytest.raises(StateWriteRefused, match="watcher w1 no longer leads c1 \\(leader: w2\\)"):
            s1.record_crash(crash(2), count_failover=True)
        s2 = EtcdStateStore(w2.client, b"/t/c1/state", w2.leadership("c1"))
        assert s2.load().failover_count == 1                   # w2 continues where w1 stopped
        s2.record_crash(crash(2), count_failover=True)
        assert s2.load().failover_count == 2
        etcd.stop()
        assert s2.load().failover_count == 2                   # the last state read stands
    finally:
        w2.stop(release=False)
