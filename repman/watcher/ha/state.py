"""A cluster's persistent state in etcd (``<prefix>/<cluster>/state``), shared by every watcher.

The same ``StateStore`` interface as the file store, and the same JSON (``state_to_dict``):
a watcher that takes over reads the failover counter, the crash records, maintenance and
quarantine, the job history exactly where the previous leader left them.

Every change is a read-modify-write: read the key with its ``mod_revision``, apply the change,
write with a transaction that compares that revision (or that the key does not exist yet), and
start again when another writer came first. With a ``Leadership`` the transaction also compares
the leader key's value and lease: a deposed leader's late write is refused by etcd
(``StateWriteRefused``, an ``OperationRefused``), never merged.

Reads fall back to the last state read when etcd does not answer: monitoring and the API's reads
go on while etcd is away (acting does not: the leadership has lapsed by then).
"""

from __future__ import annotations

import copy
import json
import logging
import threading
from pathlib import Path
from typing import Any, Callable

from repman.errors import OperationRefused
from repman.watcher.ha.etcd import EtcdClient, EtcdUnavailable, KeyValue, compare_create, compare_mod, op_get, op_put
from repman.watcher.ha.leadership import Leadership
from repman.watcher.state_store import ClusterState, StateStore, state_from_dict, state_to_dict

logger = logging.getLogger("repman.watcher")
RETRIES = 20


class StateWriteRefused(OperationRefused):
    """This watcher no longer holds the cluster's leader key: its write would override the leader's."""


class EtcdStateStore(StateStore):
    def __init__(self, client: EtcdClient, key: bytes, leadership: Leadership | None = None, keep: int = 20,
                 state_dir: Path | None = None) -> None:
        self.client = client
        self.key = key
        self.leadership = leadership
        self.keep = keep
        self.dir = Path(state_dir) if state_dir is not None else None   # the local operation lock's place
        self._last: tuple[ClusterState, int] = (ClusterState(), 0)    # last state read, its mod_revision
        self._mutex = threading.Lock()

    def _read(self) -> tuple[ClusterState, KeyValue | None]:
        kv = self.client.get(self.key)
        state = state_from_dict(json.loads(kv.value)) if kv is not None else ClusterState()
        with self._mutex:
            self._last = (copy.deepcopy(state), kv.mod_revision if kv is not None else 0)
        return state, kv

    def load(self) -> ClusterState:
        try:
            return self._read()[0]
        except EtcdUnavailable as exc:
            logger.debug("state of %s: etcd unreachable, the last state read stands (%s)", self.key, exc)
            with self._mutex:
                return copy.deepcopy(self._last[0])

    def update(self, change: Callable[[ClusterState], None]) -> ClusterState:
        for _ in range(RETRIES):
            state, kv = self._read()
            change(state)
            if self._write(self._trimmed(state), kv):
                return state
        raise EtcdUnavailable(f"state {self.key.decode()}: {RETRIES} concurrent writers in a row, gave up")

    def save(self, state: ClusterState) -> None:
        def replace(current: ClusterState) -> None:
            current.__dict__.update(copy.deepcopy(state.__dict__))
        self.update(replace)

    def _write(self, state: ClusterState, kv: KeyValue | None) -> bool:
        """One compare-and-set; False when another writer came first (read again)."""
        compare: list[dict[str, Any]] = [compare_mod(self.key, kv.mod_revision) if kv is not None
                                         else compare_create(self.key)]
        if self.leadership is not None:
            compare += self.leadership.guards()
        value = json.dumps(state_to_dict(state), sort_keys=True).encode()
        failure = [op_get(self.key)] + ([op_get(self.leadership.key)] if self.leadership is not None else [])
        ok, answers = self.client.txn(compare, [op_put(self.key, value)], failure)
        if ok:
            return True
        if self.leadership is not None:
            kvs = (answers[1].get("response_range") or {}).get("kvs") or [] if len(answers) > 1 else []
            leader = KeyValue.from_json(kvs[0]) if kvs else None
            agent = self.leadership.agent
            if leader is None or leader.value != agent.name.encode() or leader.lease != agent.lease:
                holder = leader.value.decode(errors="replace") if leader is not None else "nobody"
                raise StateWriteRefused(f"state write refused: watcher {agent.name} no longer leads "
                                        f"{self.leadership.cluster} (leader: {holder})")
        return False


def etcd_store_factory(client: EtcdClient, key: bytes, leadership: Leadership | None,
                       state_dir: Path) -> Callable[[int], StateStore]:
    """What ``state_store.use_store`` registers: one store object per ``keep`` asked."""
    return lambda keep: EtcdStateStore(client, key, leadership, keep, state_dir)


__all__ = ["EtcdStateStore", "StateWriteRefused", "etcd_store_factory"]
