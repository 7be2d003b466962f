"""Who acts on a cluster: the holder of ``<prefix>/<cluster>/leader`` in etcd, attached to a lease.

One lease per watcher process and one leader key per cluster, taken with a transaction that
succeeds only if the key does not exist (``create_revision == 0``): etcd decides, never a
home-made vote. Every watcher monitors every cluster; ``Leadership.why_not()`` is the one gate
the monitor, the runner and the scheduler ask before acting.

Safety rests on time measured here, not on etcd's answer arriving: the lease is renewed every
``ttl/3`` seconds on the agent's own thread, and leadership is believed only until
``ttl*2/3`` after the *sending* of the last successful renewal. etcd expires the lease ``ttl``
after it received that renewal, which is later, so a leader cut off from etcd (or an etcd
without quorum) stops acting at least ``ttl/3`` before the key can move to another watcher.
Results are written with a transaction comparing the leader key's value and lease
(``guarded_txn``), so a deposed leader's late write is refused by etcd itself.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from repman.watcher.ha.etcd import (
    EtcdClient,
    EtcdError,
    KeyValue,
    TlsFiles,
    compare_create,
    compare_lease,
    compare_value,
    op_get,
    op_put,
)
from repman.watcher.ha.settings import HaSettings

logger = logging.getLogger("repman.watcher")
MARGIN = 2.0 / 3.0          # leadership is believed for this part of the TTL after a renewal was sent


def client_for(settings: HaSettings) -> EtcdClient:
    tls = TlsFiles(settings.tls_ca, settings.tls_cert, settings.tls_key) if settings.tls_ca else None
    return EtcdClient(settings.endpoints, tls=tls, user=settings.user, password=settings.password,
                      timeout=settings.timeout)


@dataclass(frozen=True)
class View:
    """The agent's belief about one cluster, as status and the decision sentence show it."""

    leader: bool
    holder: str              # the leader key's watcher name ("" when nobody holds it)
    problem: str             # etcd unreachable, lease lost... ("" when all is well)


class HaAgent:
    """This watcher's lease and its claims on the clusters' leader keys, kept by one thread."""

    def __init__(self, settings: HaSettings, clusters: Sequence[str], client: EtcdClient | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 on_change: Callable[[str, str], None] | None = None) -> None:
        self.settings = settings
        self.name = settings.watcher_name
        self.clusters = list(clusters)
        self.client = client or client_for(settings)
        self._clock = clock
        self._on_change = on_change
        self.interval = max(0.2, min(settings.lease_ttl / 3.0, 1.0))
        self._mutex = threading.Lock()
        self.lease = 0
        self._believed_until = float("-inf")     # monotonic: leadership holds until then
        self._held: set[str] = set()
        self._holders: dict[str, str] = {}
        self.problem = "not yet in touch with etcd"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- what the gates ask ---------------------------------------------------------------
    def view(self, cluster: str) -> View:
        with self._mutex:
            fresh = self._clock() < self._believed_until
            leader = fresh and cluster in self._held and not self._stop.is_set()
            problem = self.problem
            if not fresh and not problem:
                problem = f"lease not renewed within {self.settings.lease_ttl * MARGIN:.1f} s"
            return View(leader, self._holders.get(cluster, ""), problem)

    def why_not(self, cluster: str) -> str:
        """"" while this watcher may act on ``cluster``; otherwise why not, as a sentence's tail."""
        v = self.view(cluster)
        if v.leader:
            return ""
        if v.problem:
            return f"not acting: {v.problem} (watcher {self.name})"
        if v.holder:
            return f"not acting: watcher {v.holder} leads {cluster}"
        return f"not acting: no leader of {cluster} yet"

    def leadership(self, cluster: str) -> Leadership:
        return Leadership(self, cluster)

    # -- one round ------------------------------------------------------------------------
    def step(self) -> None:
        """Renew (or take) the lease, then claim or look at every cluster's leader key."""
        sent = self._clock()
        try:
            if self.lease:
                ttl = self.client.keepalive(self.lease)
                if ttl <= 0:
                    self._lost(f"lease {self.lease:x} expired")
                    self.lease = 0
            if not self.lease:
                self.lease = self.client.grant(self.settings.lease_ttl)
                sent = self._clock()
                with self._mutex:
                    self._held.clear()
            held, holders = set(), {}
            for cluster in self.clusters:
                key = self.settings.key(cluster, "leader")
                # one round trip: take the key if free, else read who holds it
                taken, answers = self.client.txn([compare_create(key)], [op_put(key, self.name.encode(), self.lease)],
                                                 [op_get(key)])
                kvs = [] if taken else (answers[0].get("response_range") or {}).get("kvs") or []
                kv = KeyValue.from_json(kvs[0]) if kvs else None
                holders[cluster] = self.name if taken else (kv.value.decode(errors="replace") if kv else "")
                if taken or (kv is not None and kv.lease == self.lease and kv.value == self.name.encode()):
                    held.add(cluster)
        except EtcdError as exc:
            with self._mutex:
                self.problem = f"etcd unreachable: {exc}" if "unreachable" in str(exc) else f"etcd: {exc}"
            self._notify()
            return
        with self._mutex:
            before = set(self._held)
            self._held = held
            self._holders = holders
            self._believed_until = sent + self.settings.lease_ttl * MARGIN
            self.problem = ""
        if before != held:
            self._notify()

    def _lost(self, why: str) -> None:
        with self._mutex:
            self._held.clear()
            self.problem = why
        self._notify()

    def _notify(self) -> None:
        if self._on_change is None:
            return
        for cluster in self.clusters:
            try:
                self._on_change(cluster, self.why_not(cluster))
            except Exception:  # noqa: BLE001 - a reporting bug must not stop the renewals
                logger.exception("ha: reporting a leadership change failed")

    # -- the thread -----------------------------------------------------------------------
    def start(self) -> HaAgent:
        self._thread = threading.Thread(target=self._run, name=f"ha-{self.name}", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            started = self._clock()
            try:
                self.step()
            except Exception:  # noqa: BLE001 - the renewals must go on whatever happened
                logger.exception("ha: lease round failed")
            self._stop.wait(max(0.0, self.interval - (self._clock() - started)))

    def stop(self, release: bool = True, close: bool = True) -> None:
        """Stop renewing; ``release``: revoke the lease so another watcher takes over at once;
        ``close``: close the connections too (the guarded writes of ``Leadership`` need them)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.settings.timeout * len(self.settings.endpoints) * 4 + 5)
        if release and self.lease:
            try:
                self.client.revoke(self.lease)
            except EtcdError as exc:
                logger.warning("ha: could not revoke lease %x: %s", self.lease, exc)
        if close:
            self.client.close()


class Leadership:
    """One cluster's gate: ``why_not()`` ("" when this watcher may act) and guarded writes."""

    def __init__(self, agent: HaAgent, cluster: str) -> None:
        self.agent = agent
        self.cluster = cluster
        self.key = agent.settings.key(cluster, "leader")

    def is_leader(self) -> bool:
        return self.agent.view(self.cluster).leader

    def why_not(self) -> str:
        return self.agent.why_not(self.cluster)

    def holder(self) -> str:
        return self.agent.view(self.cluster).holder

    def guards(self) -> list[dict[str, Any]]:
        """Txn compares that hold only while this watcher's lease holds the leader key."""
        return [compare_value(self.key, self.agent.name.encode()), compare_lease(self.key, self.agent.lease)]

    def guarded_txn(self, compare: list[dict[str, Any]], success: list[dict[str, Any]]
                    ) -> tuple[bool, list[dict[str, Any]]]:
        """A transaction that etcd refuses once another watcher holds the key (a deposed leader's write)."""
        return self.agent.client.txn(self.guards() + compare, success)


__all__ = ["HaAgent", "Leadership", "MARGIN", "View", "client_for"]
