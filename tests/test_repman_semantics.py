"""repman key semantics on a real cluster: switchover-wait-route-change is seconds, as in repman;
db-servers-prefered-master is a list whose first electable entry wins."""

from __future__ import annotations

import pytest

from repman.watcher.switchover import switchover
from testkit.env import needs_mariadb


@needs_mariadb
@pytest.mark.slow
def test_switchover_waits_route_change_seconds_and_prefers_the_list_in_order(cluster_factory):
    c = cluster_factory(count=3, switchover_wait_route_change=1)
    s1, s2, s3 = c.servers
    c.cfg.values["db-servers-prefered-master"] = [s3, s2]     # repman's list: s3 first
    res = switchover(c.cfg, c.store, c.log)
    assert res.ok, res.sentence
    assert res.new_primary == s3, res.steps                  # the first of the list, not the most advanced tie
    assert any("waiting 1 s for unmanaged proxies (switchover-wait-route-change)" in s for s in res.steps), res.steps
    assert res.timings.get("routing", 0) >= 1.0, res.timings   # 1 means one second, not one millisecond
    c.assert_converged()
