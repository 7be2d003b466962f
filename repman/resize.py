"""Scale-in safety: the primary never stops with the node that leaves.

Why: when the plan drops the node the primary runs on, the remaining servers
still replicate from it. Bootstrap would otherwise pick the preferred master and
open it for writes while the leaving primary still takes them (two writers).
Instead the watcher's planned switchover (freeze, catch-up, promote, demote: no
acknowledged write lost) moves the role onto a staying member first; the
leaving node is then an ordinary replica that routers drop before it stops.
"""

from __future__ import annotations

import shutil
import tempfile
from typing import Callable, Mapping, Sequence

from repman.db import Credential, ServerAddress
from repman.errors import BootstrapError
from repman.topology import ServerState, read_state


def leaving_primary(states: Mapping[ServerAddress, ServerState], admin: Credential) -> ServerAddress | None:
    """The live, writable primary the members replicate from although it is no member."""
    outside = {s.replica.master for s in states.values() if s.replica is not None} - set(states)
    if len(outside) != 1:
        return None
    master = outside.pop()
    st = read_state(master, admin, timeout=2)
    if not st.reachable or st.replica is not None or st.read_only:
        return None
    return master


def hand_over(leaving: ServerAddress, members: Sequence[ServerAddress], admin: Credential,
              replication: Credential, semisync: bool, preferred: ServerAddress | None,
              log: Callable[[str], None], cluster: str = "handover", monitoring_datadir: str = "",
              ) -> ServerAddress:
    """Switch the primary role from ``leaving`` onto a member; returns the new primary.
    With the watcher's ``monitoring_datadir`` it runs under the watcher's operation lock."""
    from repman.watcher.config import load_cluster
    from repman.watcher.operations import run_operation

    state_dir = monitoring_datadir or tempfile.mkdtemp(prefix="repman-handover-")
    try:
        cfg = load_cluster(cluster, {
            "db-servers-hosts": [leaving.url, *(m.url for m in members)],
            "db-servers-credential": f"{admin.user}:{admin.password}",
            "replication-credential": f"{replication.user}:{replication.password}",
            "semisync": semisync, "monitoring-datadir": state_dir,
        })
        to = preferred if preferred in members else None
        result = run_operation("switchover", cfg, log, to=to, lock_wait=30.0,
                               describe=f"switchover off leaving {leaving}")
    finally:
        if not monitoring_datadir:
            shutil.rmtree(state_dir, ignore_errors=True)
    if not result.ok or result.new_primary is None:
        raise BootstrapError(f"the primary {leaving.url} leaves the cluster and could not be switched over: "
                             f"{result.sentence}")
    return result.new_primary
