"""Faults only containers give, on a real Docker engine (REPMAN_SOAK=1: ~1 min each).

`docker pause` of the primary (a frozen container: TCP connects but nothing answers),
`docker network disconnect` of the primary (a partition from the other nodes, the watcher
and the writer), a restart of the primary's container with the same volume. Each: writes
through the recording writer; lost = unexpected = empty; never acknowledgements from two
primaries interleaved (once the new primary acknowledged, the old one never does again).
"""

from __future__ import annotations

import os
import time
from typing import Callable

import pytest

from repman.db import ServerAddress
from repman.lab.writer import Writer
from testkit.docker_engine import docker
from testkit.docker_stack import ADMIN, DockerStack, node_state
from testkit.polling import wait_until

pytestmark = [pytest.mark.soak, pytest.mark.slow,
              pytest.mark.skipif(os.environ.get("REPMAN_SOAK") != "1", reason="container faults: REPMAN_SOAK=1")]


def _primaries(servers: list[ServerAddress]) -> list[ServerAddress]:
    found = []
    for addr in servers:
        try:
            if node_state(addr) == {"ro": 0, "master": None}:
                found.append(addr)
        except Exception:  # noqa: BLE001  (unreachable, frozen)
            pass
    return found


def _run_fault(docker_stack: DockerStack, fault: Callable[[], None], heal: Callable[[], None],
               expect_failover: bool) -> dict:
    docker_stack.run("up")
    servers = [docker_stack.address(i) for i in range(3)]
    wait_until(lambda: "healthy" in docker("inspect", "-f", "{{.State.Health.Status}}",
                                           f"{docker_stack.name}-watcher").stdout,
               timeout=60, what="the watcher container to be healthy", every=0.5)
    Writer.prepare(servers[0], ADMIN)
    writer = Writer(servers, ADMIN, name="fx").start()
    try:
        writer.wait_acks(200, timeout=60)
        fault()
        started = time.monotonic()
        new = None
        if expect_failover:
            while new is None:
                assert time.monotonic() - started < 90, (
                    "no failover; watcher log:\n"
                    f"{docker('logs', f'{docker_stack.name}-watcher', check=False).stderr[-3000:]}")
                found = [a for a in _primaries(servers[1:])]
                new = found[0] if found else None
                time.sleep(0.2)
        else:
            time.sleep(5)
        writer.wait_acks(200, timeout=90)
        heal()
        healed_at = time.monotonic()
        primaries = _primaries(servers)
        while len(primaries) != 1 and time.monotonic() - healed_at < 30:   # the watcher rejoins the old one
            time.sleep(0.2)
            primaries = _primaries(servers)
        window = time.monotonic() - healed_at
        print(f"two writable servers for {window:.1f}s after healing")
        # The watcher fences a second writable server in the tick that sees it (ticker 0.5 s):
        # measured 0.0-0.4 s; 10.2 s after a pause before issue 9's fencing.
        assert window <= 3.0, f"the healed old primary stayed writable {window:.1f}s"
        time.sleep(3)          # the old primary is back: it must not take writes
        writer.wait_acks(100, timeout=60)
    finally:
        writer.stop()
    primaries = _primaries(servers)
    log = docker("logs", f"{docker_stack.name}-watcher", check=False).stderr[-2500:]
    assert len(primaries) == 1, f"writable primaries 30 s after healing: {[p.url for p in primaries]}\n{log}"
    lost, unexpected = writer.verify(primaries[0])
    assert lost == set() and unexpected == set(), f"lost {sorted(lost)[:10]} unexpected {sorted(unexpected)[:10]}"
    order = [a.server for a in writer.acked]
    if expect_failover:
        first_new = order.index(new.url)
        assert servers[0].url not in order[first_new:], "the old primary acknowledged after the new one"
    return {"acks": len(writer.acked), "primary": primaries[0].url}


def test_paused_primary_container(docker_stack: DockerStack):
    c = docker_stack.container(0)
    result = _run_fault(docker_stack, lambda: docker("pause", c), lambda: docker("unpause", c), expect_failover=True)
    print(f"pause: {result}")


def test_partitioned_primary_container(docker_stack: DockerStack):
    c, net = docker_stack.container(0), f"{docker_stack.name}-net"
    result = _run_fault(docker_stack, lambda: docker("network", "disconnect", net, c),
                        lambda: docker("network", "connect", "--alias", c, net, c), expect_failover=True)
    print(f"partition: {result}")


def test_primary_container_restarted_with_its_volume(docker_stack: DockerStack):
    c = docker_stack.container(0)
    result = _run_fault(docker_stack, lambda: docker("restart", "-t", "1", c), lambda: None, expect_failover=False)
    mounts = docker("inspect", "-f", "{{range .Mounts}}{{.Name}}{{end}}", c).stdout.strip()
    assert mounts == f"{c}-data"
    rows = docker("exec", c, "mariadb", "-N", "-e", "SELECT COUNT(*) FROM repman_test.writes").stdout.strip()
    assert int(rows) > 0, "the restarted container kept its data"
    print(f"restart: {result}")
