"""The verdict of a nemesis round: lost, unexpected, errant GTIDs, split-brain windows.

The acknowledgement timeline is the writers' record merged: which server
acknowledged each insert and when. Two servers whose acknowledgement spans
overlap both took writes at the same time: a split brain, however short. Lost
(acknowledged, missing on the final primary) and unexpected (present, never
acknowledged nor of unknown outcome) are counted per writer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

from repman.db import Credential, ServerAddress
from repman.lab.writer import Ack, Writer
from repman.topology import read_state
from repman.watcher.election import errant_transactions


@dataclass(frozen=True)
class SplitBrain:
    """Two servers that both acknowledged writes during ``[start, end]`` (monotonic seconds)."""

    first: str
    second: str
    start: float
    end: float

    def __str__(self) -> str:
        return f"{self.first} and {self.second} both acknowledged writes for {self.end - self.start:.3f}s"


@dataclass
class Verdict:
    lost: set[int] = field(default_factory=set)
    unexpected: set[int] = field(default_factory=set)
    errant: list[str] = field(default_factory=list)
    split_brain: list[SplitBrain] = field(default_factory=list)
    acknowledged: int = 0

    @property
    def ok(self) -> bool:
        return not (self.lost or self.unexpected or self.errant or self.split_brain)

    def __str__(self) -> str:
        return (f"lost {sorted(self.lost)[:10]} unexpected {sorted(self.unexpected)[:10]} errant {self.errant} "
                f"split-brain {[str(s) for s in self.split_brain]} ({self.acknowledged} acknowledged)")


def timeline(writers: Iterable[Writer]) -> list[Ack]:
    """Every direct (not routed) acknowledgement of every writer, in time order."""
    acks = [a for w in writers if w.through is None for a in w.acked]
    return sorted(acks, key=lambda a: a.at)


def split_brain_windows(acks: Sequence[Ack], boundaries: Sequence[float] = ()) -> list[SplitBrain]:
    """Instants when two servers both took writes, within each round.

    ``boundaries`` are the instants the faults were injected: between two of them
    a failover hands the writes from one server to the next. The deposed server
    took a write during the new one's reign when it acknowledged an insert *sent*
    after the new server's first acknowledgement: that insert cannot have committed
    before the failover. (An insert sent before and acknowledged late, by a master
    resumed from SIGSTOP, may have committed and replicated before the fault: its
    fate is the lost/unexpected check's, not a split brain.) The window runs from the
    new server's first acknowledgement to the last such insert.
    """
    cuts = sorted(boundaries)
    rounds: dict[int, list[Ack]] = {}
    for a in acks:
        rounds.setdefault(sum(1 for c in cuts if c <= a.at), []).append(a)
    out = []
    for index, all_acks in rounds.items():
        # Only inserts sent after the fault: a late acknowledgement of one sent before it
        # says nothing about who took writes after it (and must not make the deposed
        # master look like the newer one).
        start = cuts[index - 1] if index > 0 else float("-inf")
        part = [a for a in all_acks if (a.sent or a.at) >= start]
        first: dict[str, float] = {}
        for a in part:
            first[a.server] = min(first.get(a.server, a.at), a.at)
        for a in part:
            for other, began in first.items():
                if other != a.server and first[a.server] < began and (a.sent or a.at) > began:
                    out.append(SplitBrain(other, a.server, began, a.sent or a.at))
    merged: dict[tuple[str, str], SplitBrain] = {}
    for w in out:          # one window per pair of servers: from the first overlap to the last
        key = (w.first, w.second)
        old = merged.get(key)
        merged[key] = w if old is None else SplitBrain(w.first, w.second, min(old.start, w.start),
                                                       max(old.end, w.end))
    return list(merged.values())


def errant_gtids(servers: Sequence[ServerAddress], credential: Credential) -> list[str]:
    """GTIDs a replica wrote itself that no other server has, over every reachable server."""
    states = [read_state(a, credential, timeout=3) for a in servers]
    out = []
    for s in states:
        if s.reachable:
            out += [f"{s.address.url}: {g}" for g in errant_transactions(s, states)]
    return out


def check(writers: Sequence[Writer], primary: ServerAddress, servers: Sequence[ServerAddress],
          credential: Credential, faults_at: Sequence[float] = ()) -> Verdict:
    """The verdict once the cluster converged on ``primary`` (the caller checks convergence)."""
    verdict = Verdict()
    for w in writers:
        lost, unexpected = w.verify(primary)
        verdict.lost |= lost
        verdict.unexpected |= unexpected
        verdict.acknowledged += len(w.acked)
    verdict.errant = errant_gtids(servers, credential)
    verdict.split_brain = split_brain_windows(timeline(writers), faults_at)
    return verdict
