"""Who is the primary: one answer for the monitor, the operations and the tools.

Several answers once coexisted and disagreed (a switchover could freeze a server
the routers no longer sent writes to). The rules, in order, are the monitor's:

1. the latest crash record's new master while it is a writable non-replica
   (a replica that died before the master comes back following the old master);
2. the server the reachable replicas follow (a tie keeps the previous master, else
   prefers a writable root, else a live root, else a root; still tied: the first
   address, a guess operations refuse);
3. the only writable non-replica;
4. the previous master while it replicates from nobody; with no previous master,
   the only server that replicates from nobody;
5. the previous master (nothing better is known).

A latest failover's deposed master is never the primary while its successor is no
replica: a frozen-then-resumed old master must not win back even one tick.
Every answer carries the reason, as operations print it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Literal, Sequence

from repman.db import ServerAddress
from repman.errors import RepmanError
from repman.topology import ServerState
from repman.watcher.cluster_config import ClusterConfig
from repman.watcher.election import same_server
from repman.watcher.state_store import CrashRecord, StateStore, open_store

Rule = Literal["recorded", "deposed", "followed", "tie", "writable", "previous", "standalone", "none"]
States = dict[ServerAddress, ServerState]


@dataclass(frozen=True)
class Primary:
    """The primary (or None) and why, in words an operator reads."""

    address: ServerAddress | None
    reason: str
    rule: Rule

    @property
    def decided(self) -> bool:
        """A primary an operation may act on: found, and not a tie broken by address order."""
        return self.address is not None and self.rule != "tie"


def _member(servers: Sequence[ServerAddress], address: ServerAddress | None) -> ServerAddress | None:
    if address is None:
        return None
    return next((a for a in servers if same_server(a, address)), None)


def _record_member(servers: Sequence[ServerAddress], url: str) -> ServerAddress | None:
    try:
        return _member(servers, ServerAddress.parse(url))
    except RepmanError:
        return None


def _writable_root(state: ServerState | None) -> bool:
    return state is not None and state.reachable and state.replica is None and not state.read_only


def recorded_master(servers: Sequence[ServerAddress], latest: CrashRecord | None,
                    states: States) -> ServerAddress | None:
    """The latest record's new master while it is reachable, writable and no replica.

    It outranks the replicas' votes: after a replica and then the master died, the
    replica restarts following the returning old master, which then looks like a
    root with a follower although the promoted server is the master.
    """
    if latest is None:
        return None
    recorded = _record_member(servers, latest.new_master)
    if recorded is not None and _writable_root(states.get(recorded)):
        return recorded
    return None


def deposed_pair(servers: Sequence[ServerAddress], latest: CrashRecord | None,
                 states: States) -> tuple[ServerAddress, ServerAddress] | None:
    """(old, new) masters of the latest failover while the new one is no replica of anything.

    Until an operation makes the promoted server a replica again (a switchover away
    from it), the deposed master is never the master, whatever it looks like.
    """
    if latest is None or latest.kind != "failover":
        return None
    old = _record_member(servers, latest.old_master)
    new = _record_member(servers, latest.new_master)
    if old is None or new is None or old == new:
        return None
    st = states.get(new)
    if st is not None and st.reachable and st.replica is not None:
        return None
    return old, new


def _writable_top(states: States, servers: Sequence[ServerAddress], target: ServerAddress) -> ServerAddress:
    """The writable root above a relay, else ``target`` itself.

    In M <- A <- (B, C) the writable M is the primary, not the relay A that has more
    direct followers. Only a writable root collects a relay's followers: mid-switchover
    the old master is read-only already, and the votes stay as they are.
    """
    seen = {target}
    current = target
    while (s := states.get(current)) is not None and s.reachable and s.replica is not None:
        above = _member(servers, s.replica.master)
        if above is None or above in seen:
            return target
        seen.add(above)
        current = above
    return current if current != target and _writable_root(states.get(current)) else target


def _votes(states: States, servers: Sequence[ServerAddress]) -> Counter[ServerAddress]:
    """Followers per server, a relay's counted for the writable root above it."""
    votes: Counter[ServerAddress] = Counter()
    for s in states.values():
        if s.reachable and s.replica is not None:
            target = _member(servers, s.replica.master)
            if target is not None and target != s.address:
                votes[_writable_top(states, servers, target)] += 1
    return votes


def _is_root(state: ServerState | None, servers: Sequence[ServerAddress]) -> bool:
    """Replicates from no cluster server, as far as known (an unreachable server may be the root)."""
    if state is None or not state.reachable or state.replica is None:
        return True
    return _member(servers, state.replica.master) is None


def _rank(state: ServerState | None, servers: Sequence[ServerAddress]) -> tuple[bool, bool, bool]:
    """Tie-break among equally followed servers: a writable root, then a live root, then a root."""
    root = _is_root(state, servers)
    return _writable_root(state), root and state is not None and state.reachable, root


def _followed(states: States, servers: Sequence[ServerAddress], previous: ServerAddress | None,
              votes: Counter[ServerAddress]) -> Primary:
    best = max(votes.values())
    leaders = sorted(a for a, n in votes.items() if n == best)
    said = f"followed by {best} replica{'s' if best > 1 else ''}"
    if len(leaders) == 1:
        return Primary(leaders[0], f"{leaders[0].url} is {said}", "followed")
    tied = ", ".join(a.url for a in leaders)
    if previous in leaders:
        return Primary(previous, f"{previous.url} is {said}, tied with others ({tied}): kept as the previous master",
                       "followed")
    ranked = {a: _rank(states.get(a), servers) for a in leaders}
    top = max(ranked.values())
    firsts = [a for a in leaders if ranked[a] == top]
    if len(firsts) == 1:
        what = "the writable root" if top[0] else "the live root" if top[1] else "the root"
        return Primary(firsts[0], f"{firsts[0].url} is {said}, tied ({tied}), and is {what}", "followed")
    return Primary(firsts[0], f"replicas follow several masters: {tied}", "tie")


def _by_rules(states: States, servers: Sequence[ServerAddress], previous: ServerAddress | None,
              recorded: ServerAddress | None) -> Primary:
    if recorded is not None and recorded in servers:
        return Primary(recorded, f"{recorded.url} is the latest crash record's new master and takes writes",
                       "recorded")
    votes = _votes(states, servers)
    if votes:
        return _followed(states, servers, previous, votes)
    writable = [a for a in servers if _writable_root(states.get(a))]
    if len(writable) == 1:
        return Primary(writable[0], f"{writable[0].url} is the only writable server and nobody replicates",
                       "writable")
    standalone = [a for a in servers if (s := states.get(a)) and s.reachable and s.replica is None]
    if previous is not None and (previous in standalone or previous in writable):
        return Primary(previous, f"{previous.url} stays the master: it replicates from nobody", "previous")
    if previous is None and len(standalone) == 1:
        return Primary(standalone[0], f"{standalone[0].url} is the only server that replicates from nobody",
                       "standalone")
    if previous is not None:
        return Primary(previous, f"{previous.url} stays the master: nothing else tells", "previous")
    if not any(s.reachable for s in states.values()):
        return Primary(None, "no server answers", "none")
    if writable:
        return Primary(None, "several writable servers and no replication: " + ", ".join(a.url for a in writable),
                       "none")
    return Primary(None, "no server is the master (nobody replicates and no server is writable)", "none")


def find_master(
    states: States, servers: Sequence[ServerAddress],
    previous: ServerAddress | None, recorded: ServerAddress | None = None,
) -> ServerAddress | None:
    """The monitor's answer without the deposed-master rule: ``recorded`` (from
    ``recorded_master``), else the followed server, else the lone writable one, else the previous one."""
    return _by_rules(states, servers, previous, recorded).address


def find_primary(states: States, servers: Sequence[ServerAddress], latest: CrashRecord | None = None,
                 previous: ServerAddress | None = None) -> Primary:
    """The primary from the servers' states, the latest crash record and the previous answer."""
    found = _by_rules(states, servers, previous, recorded_master(servers, latest, states))
    deposed = deposed_pair(servers, latest, states)
    if deposed is not None and found.address == deposed[0]:
        old, new = deposed
        return Primary(new, f"{new.url} replaced {old.url} in the latest failover; {old.url} is deposed", "deposed")
    return found


def cluster_primary(cfg: ClusterConfig, states: States, store: StateStore | None = None) -> Primary:
    """``find_primary`` with the cluster's persisted crash records: what operations and tools
    use, so that they act on the server the monitor reports and the routers write to."""
    latest = (store or open_store(cfg.state_dir)).latest_crash()
    return find_primary(states, cfg.servers, latest)


def dead_primary(cfg: ClusterConfig, states: States, store: StateStore | None = None) -> Primary:
    """The primary a failover replaces: the cluster's primary while it does not answer."""
    found = cluster_primary(cfg, states, store)
    if not found.decided or found.address is None:
        return Primary(None, f"nothing to fail over: {found.reason}", "none")
    if states[found.address].reachable:
        return Primary(None, f"the master {found.address.url} answers: failover refused (use switchover)", "none")
    return found


def replicated_primary(states: States, servers: Sequence[ServerAddress]) -> Primary:
    """The primary of a cluster that already replicates (bootstrap, with no watcher records).

    A new cluster whose servers replicate from nobody has no primary yet, whichever
    is writable: the caller chooses one.
    """
    found = find_primary(states, servers)
    if found.rule in ("followed", "tie"):
        return found
    return Primary(None, "nobody replicates from a cluster server: the cluster is not live", "none")
