"""Failure analysis: topology facts in, one decision and one readable sentence out.

An ordered table of rules, first match wins, as orchestrator's analysis codes
and Patroni's one-sentence-per-loop do. The function is pure: the monitor gathers
facts (pings, heartbeat growth, election result, persisted counters) and this
module alone decides, so every situation is a table row in the tests.

A master that does not answer is Failed by one of two paths: the full ping
counter plus the heartbeat veto (repman's), or, sooner, a few failed pings while
every reachable replica lost it too (orchestrator's DeadMaster: IO threads not
connected, nothing received since the previous tick). A replica still connected
sends the decision back to the first path, so a watcher-side partition never
fails over a master the replicas still hear.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Callable

from repman.db import ServerAddress


class Action(str, enum.Enum):
    NOTHING = "nothing"
    SUSPECT = "mark-suspect"
    FAILED = "mark-failed"
    ALERT = "alert"
    FAILOVER = "failover"
    RECOVER = "recover"
    REOPEN = "reopen"                   # the recovered master restarted read-only: give it writes back
    REJOIN = "rejoin"
    REFUSE = "refuse"
    FENCE = "fence"
    SEED = "autoseed"
    SWITCHOVER = "switchover"           # only ever an operator's request
    RESEED = "reseed"                   # an operator's request (the automatic one is SEED)
    ROLLING_RESTART = "rolling-restart"  # an operator's request


@dataclass(frozen=True)
class Facts:
    """What the monitor observed this tick, reduced to what a decision needs."""

    master: ServerAddress | None
    master_reachable: bool = True
    master_error: str = ""
    failed_pings: int = 0                       # consecutive failed pings, this one included
    ping_threshold: int = 5                     # failover-falsepositive-ping-counter
    previous_failed_pings: int = 0              # before this tick: >0 and reachable now = recovered
    replicas: tuple[ServerAddress, ...] = ()    # servers replicating from the master (any state)
    replicas_reachable: int = 0
    heartbeat_check: bool = True                # failover-falsepositive-heartbeat
    heartbeat_window_ready: bool = True         # the check spanned the heartbeat timeout
    alive_observers: tuple[tuple[ServerAddress, str], ...] = ()   # replica, what it saw (growth...)
    replicas_agree: bool = True                 # failover-falsepositive-replicas-agree
    replicas_agree_pings: int = 2               # failover-falsepositive-replicas-agree-pings
    lost_by: tuple[ServerAddress, ...] = ()     # reachable replicas of the master: IO thread not connected,
    #                                             nothing received since the previous tick
    still_hear: tuple[tuple[ServerAddress, str], ...] = ()   # reachable replicas that do not agree, and why
    failover_mode: str = "manual"
    failover_count: int = 0
    failover_limit: int = 5                     # 0 = no limit
    since_last_failover: float | None = None    # seconds, None = never
    failover_time_limit: float = 0.0            # 0 = none
    candidate: ServerAddress | None = None
    no_candidate_reason: str = ""
    maintenance: bool = False
    operation_running: str = ""                 # "failover to X" when one runs (here or elsewhere)
    whole_cluster_was_down: bool = False
    restart_unsafe: bool = False                # failover-restart-unsafe
    other_writable: tuple[ServerAddress, ...] = ()   # writable non-replicas besides the master
    stray_writable: tuple[tuple[ServerAddress, str], ...] = ()  # server, what it is: writable, not the master
    master_maintenance: bool = False            # an operator put the master in maintenance
    in_maintenance: tuple[ServerAddress, ...] = ()   # servers an operator put in maintenance
    master_read_only: bool = False              # confirmed over two ticks
    master_read_only_now: bool = False          # this tick (a restarted master comes back read-only)
    promotion_unfinished: bool = False          # the latest failover promoted the master, then stopped
    rejoin_needed: tuple[tuple[ServerAddress, str], ...] = ()   # server, why
    autorejoin: bool = True
    quarantined: tuple[tuple[ServerAddress, str], ...] = ()
    broken_replicas: tuple[tuple[ServerAddress, str], ...] = ()  # replica, error text
    unreachable_replicas: tuple[ServerAddress, ...] = ()
    servers: int = 0                            # servers in the config
    autoseed: bool = False                      # re-seed replicas stopped by error 1236
    semisync_managed: bool = False              # semisync: the watcher manages semi-sync roles
    semisync_master_on: bool = False            # the master's rpl_semi_sync_master_enabled
    connected_replicas: int = 0                 # replicas with their IO thread connected to the master
    no_replica_for: float = 0.0                 # seconds the master has had no replica connected
    async_fallback_after: float = 0.0           # failover-semisync-async-fallback (0: never)


@dataclass(frozen=True)
class Decision:
    action: Action
    sentence: str
    rule: str
    target: ServerAddress | None = None


def _unrecoverable(f: Facts) -> list[tuple[ServerAddress, str]]:
    """Broken replicas the master's binlogs can no longer feed (error 1236)."""
    return [(a, why) for a, why in f.broken_replicas if "1236" in why]


def _pings(f: Facts) -> str:
    return f"master {f.master} failed {f.failed_pings}/{f.ping_threshold} pings"


def _strays(f: Facts) -> str:
    parts = [f"{a} ({what})" for a, what in f.stray_writable]
    return ", ".join(parts) + (" is" if len(parts) == 1 else " are")


def _observers(f: Facts) -> str:
    return ", ".join(f"{a} {how}" for a, how in f.alive_observers)


def _agreement(f: Facts) -> str:
    n = len(f.lost_by)
    if n == 1:
        who = "its replica" if len(f.replicas) <= 1 else "its only reachable replica"
    else:
        who = f"all {n} {'replicas' if len(f.replicas) <= n else 'reachable replicas'}"
    return f"{who} lost it too (IO thread{'s' if n > 1 else ''} not connected)"


def _waiting_for(f: Facts) -> str:
    """Why the replicas' agreement does not count yet (empty when it is not in play)."""
    if not (f.replicas_agree and f.still_hear and f.failed_pings >= f.replicas_agree_pings):
        return ""
    return " (" + ", ".join(f"{a} {how}" for a, how in f.still_hear) + ")"


def _nobody_hears(f: Facts) -> str:
    if _agreed(f):
        return _agreement(f)
    if not f.heartbeat_check:
        return "the heartbeat check is off"
    if not f.replicas_reachable:
        return "no replica is reachable"
    return "no replica receives heartbeats or events from it"


def _ago(seconds: float) -> str:
    return f"{seconds:.0f}s" if seconds >= 10 else f"{seconds:.1f}s"


def _dead(f: Facts) -> bool:
    return f.master is not None and not f.master_reachable


def _confirmed_dead(f: Facts) -> bool:
    return _dead(f) and f.failed_pings >= f.ping_threshold


def _agreed(f: Facts) -> bool:
    """The fast path: enough failed pings and every reachable replica lost the master too."""
    return (f.replicas_agree and _dead(f) and f.failed_pings >= f.replicas_agree_pings
            and bool(f.lost_by) and not f.still_hear)


def _reopens(f: Facts) -> bool:
    """A master back from a restart, read-only, and the only writable root: its writes come back."""
    return f.master_read_only_now and not f.other_writable


def failover_limit(f: Facts) -> str:
    """The limit that forbids a failover now ("failover-limit", "failover-time-limit"), or "".

    The one place the limits live: the automatic rules below and an operator's request
    (``decide_request``, and the failover itself under the operation lock) all ask it.
    """
    if f.failover_limit > 0 and f.failover_count >= f.failover_limit:
        return "failover-limit"
    if (f.failover_time_limit > 0 and f.since_last_failover is not None
            and f.since_last_failover < f.failover_time_limit):
        return "failover-time-limit"
    return ""


RuleAction = Action | Callable[[Facts], Action]
Rule = tuple[str, Callable[[Facts], bool], RuleAction, Callable[[Facts], str], Callable[[Facts], ServerAddress | None]]

_none: Callable[[Facts], ServerAddress | None] = lambda f: None  # noqa: E731

RULES: list[Rule] = [
    ("operation-running", lambda f: bool(f.operation_running), Action.NOTHING,
     lambda f: f"{f.operation_running} in progress: waiting for it to finish", _none),
    ("maintenance", lambda f: f.maintenance, Action.NOTHING,
     lambda f: "cluster in maintenance: monitoring only, no action", _none),
    # Never two writable masters: fenced in the tick that sees it, rejoin repairs it later.
    ("fence", lambda f: f.master is not None and f.master_reachable and bool(f.stray_writable), Action.FENCE,
     lambda f: (f"{_strays(f)} writable while {f.master} is the master: fencing "
                f"{'it' if len(f.stray_writable) == 1 else 'them'} now (read_only, client connections "
                "killed); rejoin repairs what it took"),
     lambda f: f.stray_writable[0][0]),
    ("two-masters", lambda f: bool(f.other_writable) and f.master is not None, Action.ALERT,
     lambda f: (f"{', '.join(str(a) for a in f.other_writable)} "
                f"{'is writable and replicates' if len(f.other_writable) == 1 else 'are writable and replicate'} "
                "from nobody "
                f"while {f.master} is the master: fix by hand (rejoin or set read_only)"), _none),
    ("no-master", lambda f: f.master is None, Action.ALERT,
     lambda f: (f"no master found among {f.servers} servers: nobody replicates from a known server "
                "and none is writable"), _none),
    # -- the master answers -------------------------------------------------------------
    # Semi-sync never falls back by itself: the watcher lets a master commit alone only
    # when its replicas are truly gone, and restores semi-sync as soon as one returns.
    ("semisync-async-fallback",
     lambda f: (f.master_reachable and f.semisync_managed and f.semisync_master_on and f.async_fallback_after > 0
                and f.servers > 1 and f.connected_replicas == 0 and f.no_replica_for >= f.async_fallback_after),
     Action.ALERT,
     lambda f: (f"master {f.master} has had no replica connected for {_ago(f.no_replica_for)}: switching it to "
                f"asynchronous commits (failover-semisync-async-fallback {f.async_fallback_after:g}s); "
                "its new writes exist on it alone until a replica returns"), lambda f: f.master),
    ("semisync-restore",
     lambda f: (f.master_reachable and f.semisync_managed and not f.semisync_master_on
                and f.connected_replicas > 0),
     Action.NOTHING,
     lambda f: (f"master {f.master} has {f.connected_replicas} replica{'s' if f.connected_replicas != 1 else ''} "
                "connected again: semi-sync back on"), lambda f: f.master),
    ("master-recovered", lambda f: f.master_reachable and f.previous_failed_pings > 0,
     lambda f: Action.REOPEN if _reopens(f) else Action.RECOVER,
     lambda f: (f"master {f.master} answers again after {f.previous_failed_pings} failed pings: back to normal"
                + (", clearing the read_only it restarted with" if _reopens(f) else "")),
     lambda f: f.master),
    # A watcher killed between a failover's promotion and its opening of writes: the next
    # watcher finishes that failover (the record says so) rather than starting another one.
    ("failover-unfinished",
     lambda f: f.master_reachable and f.promotion_unfinished and f.master_read_only_now and not f.other_writable,
     Action.REOPEN,
     lambda f: (f"master {f.master} was promoted by a failover that stopped before opening its writes: "
                "finishing it (clearing read_only)"), lambda f: f.master),
    ("rejoin", lambda f: f.master_reachable and bool(f.rejoin_needed) and f.autorejoin, Action.REJOIN,
     lambda f: f"{f.rejoin_needed[0][0]} {f.rejoin_needed[0][1]}: rejoining it to master {f.master}",
     lambda f: f.rejoin_needed[0][0]),
    ("rejoin-off", lambda f: f.master_reachable and bool(f.rejoin_needed), Action.ALERT,
     lambda f: (f"{f.rejoin_needed[0][0]} {f.rejoin_needed[0][1]} and autorejoin is off: "
                "rejoin it by hand"), _none),
    ("master-read-only", lambda f: f.master_reachable and f.master_read_only, Action.ALERT,
     lambda f: f"master {f.master} is read-only: writes are refused until an operator clears read_only",
     _none),
    ("quarantined", lambda f: f.master_reachable and bool(f.quarantined), Action.ALERT,
     lambda f: (f"{f.quarantined[0][0]} is quarantined ({f.quarantined[0][1]}): "
                "re-seed it, then release it"), _none),
    ("autoseed", lambda f: f.master_reachable and f.autoseed and bool(_unrecoverable(f)), Action.SEED,
     lambda f: (f"replica {_unrecoverable(f)[0][0]} cannot continue ({_unrecoverable(f)[0][1]}): "
                "autoseed re-seeds it from a physical copy"),
     lambda f: _unrecoverable(f)[0][0]),
    ("broken-replica", lambda f: f.master_reachable and bool(f.broken_replicas), Action.ALERT,
     lambda f: f"replica {f.broken_replicas[0][0]} is broken: {f.broken_replicas[0][1]}", _none),
    ("healthy", lambda f: f.master_reachable, Action.NOTHING,
     lambda f: (f"master {f.master} is healthy with {len(f.replicas)} "
                f"replica{'s' if len(f.replicas) != 1 else ''}"
                + (f"; {', '.join(str(a) for a in f.unreachable_replicas)} unreachable"
                   if f.unreachable_replicas else "")
                + (f"; {', '.join(str(a) for a in f.in_maintenance)} in maintenance"
                   if f.in_maintenance else "")), _none),
    # -- the master does not answer ------------------------------------------------------
    ("master-maintenance", lambda f: f.master_maintenance, Action.NOTHING,
     lambda f: (f"master {f.master} is in maintenance and does not answer ({f.master_error or 'no answer'}): "
                "not failing over"), _none),
    ("suspect", lambda f: f.failed_pings < f.ping_threshold and not _agreed(f), Action.SUSPECT,
     lambda f: f"{_pings(f)} ({f.master_error or 'no answer'}): suspect{_waiting_for(f)}", _none),
    # The replicas' agreement is a direct reading of this tick: the heartbeat window is not needed.
    ("heartbeats-alive", lambda f: f.heartbeat_check and bool(f.alive_observers) and not _agreed(f),
     Action.SUSPECT,
     lambda f: f"{_pings(f)} but {_observers(f)}: it is alive, not failing over", _none),
    ("no-replica", lambda f: not f.replicas, Action.FAILED,
     lambda f: f"{_pings(f)}: failed, and the cluster has no replica to fail over to", _none),
    ("heartbeat-wait", lambda f: (f.heartbeat_check and not f.heartbeat_window_ready and f.replicas_reachable > 0
                                  and not _agreed(f)),
     Action.SUSPECT,
     lambda f: f"{_pings(f)}: waiting for the replicas' heartbeat check before declaring it failed", _none),
    ("restart-unsafe", lambda f: f.whole_cluster_was_down and not f.restart_unsafe, Action.REFUSE,
     lambda f: (f"{_pings(f)} after the whole cluster was down: a returning replica may miss its writes, "
                "not failing over (failover-restart-unsafe is off)"), _none),
    ("no-candidate", lambda f: f.candidate is None, Action.REFUSE,
     lambda f: f"{_pings(f)} and {_nobody_hears(f)}, but {f.no_candidate_reason or 'no replica is electable'}",
     _none),
    ("failover-limit", lambda f: failover_limit(f) == "failover-limit", Action.REFUSE,
     lambda f: (f"{_pings(f)} and {_nobody_hears(f)}, but failover-limit {f.failover_limit} is reached "
                f"({f.failover_count} failovers): reset it with `repman reset-failover-counter`"), _none),
    ("failover-time-limit", lambda f: failover_limit(f) == "failover-time-limit", Action.REFUSE,
     lambda f: (f"{_pings(f)} and {_nobody_hears(f)}, but the last failover was {_ago(f.since_last_failover or 0)} "
                f"ago, within failover-time-limit {f.failover_time_limit:g}s"), _none),
    ("manual", lambda f: f.failover_mode != "automatic", Action.ALERT,
     lambda f: (f"{_pings(f)} and {_nobody_hears(f)}: failed; failover-mode is manual, alerting only "
                f"(`repman failover` would promote {f.candidate})"), lambda f: f.candidate),
    ("failover", lambda f: True, Action.FAILOVER,
     lambda f: f"{_pings(f)} and {_nobody_hears(f)}: failing over to {f.candidate}", lambda f: f.candidate),
]


def analyse(facts: Facts) -> Decision:
    """The first rule that matches decides; every path gives one sentence."""
    for name, when, action, sentence, target in RULES:
        if when(facts):
            chosen = action if isinstance(action, Action) else action(facts)
            return Decision(chosen, sentence(facts), name, target(facts))
    raise AssertionError("the last rule always matches")  # pragma: no cover


@dataclass(frozen=True)
class Request:
    """An operator's request (CLI, API): the operation, its target, who asked."""

    kind: str                                   # a key of _REQUESTABLE
    to: ServerAddress | None = None             # switchover's chosen candidate; rejoin's, reseed's server
    who: str = "an operator"


_REQUESTABLE = {"switchover": Action.SWITCHOVER, "failover": Action.FAILOVER, "rejoin": Action.REJOIN,
                "reseed": Action.RESEED, "rolling-restart": Action.ROLLING_RESTART}
ON_A_SERVER = frozenset({Action.REJOIN, Action.RESEED})  # requests whose ``to`` is the server worked on


def limit_refusal(f: Facts) -> str:
    """Why the failover limits refuse an operator's failover, in the operator's words, or ""."""
    rule = failover_limit(f)
    if rule == "failover-limit":
        return (f"failover-limit {f.failover_limit} reached ({f.failover_count} failovers so far); "
                "an operator must reset the failover counter")
    if rule == "failover-time-limit":
        return (f"last failover {f.since_last_failover or 0:.0f}s ago, "
                f"within failover-time-limit {f.failover_time_limit:g}s")
    return ""


def decide_request(request: Request, facts: Facts) -> Decision:
    """An operator's request as a forced decision.

    The operator stands in for the detection rules (they say the master is gone, or must
    move), never for the guards: one operation at a time, and the failover limits, checked
    by the same ``failover_limit`` as the automatic rules (orchestrator's and Patroni's way).
    """
    action = _REQUESTABLE.get(request.kind)
    if action is None:
        raise ValueError(f"unknown operation {request.kind}")
    if facts.operation_running:
        return Decision(Action.REFUSE, f"{request.kind} refused: {facts.operation_running} already in progress",
                        "operation-running")
    if action == Action.FAILOVER and (why := limit_refusal(facts)):
        return Decision(Action.REFUSE, f"failover refused: {why}", failover_limit(facts))
    target = f" to {request.to}" if request.to and action not in ON_A_SERVER else (
        f" of {request.to}" if request.to else "")
    return Decision(action, f"{request.kind}{target} requested by {request.who}", "operator-request", request.to)


def master_state_label(decision: Decision, facts: Facts) -> str:
    """The master's state word for status: Master, Suspect, Failed or Maintenance."""
    if facts.maintenance or facts.master_maintenance:
        return "Maintenance"
    if facts.master_reachable:
        return "Master"
    if decision.action == Action.SUSPECT and facts.failed_pings < facts.ping_threshold:
        return "Suspect"
    if decision.rule in ("heartbeats-alive", "heartbeat-wait"):
        return "Suspect"
    return "Failed"


def dead_master(facts: Facts) -> bool:
    """True when the facts say the master is gone: every replica lost it too, or the pings are
    exhausted and nobody hears it."""
    return _agreed(facts) or (_confirmed_dead(facts) and not (facts.heartbeat_check and facts.alive_observers))


__all__ = ["Action", "Facts", "Decision", "Request", "analyse", "decide_request", "failover_limit",
           "limit_refusal", "RULES", "master_state_label", "dead_master"]
