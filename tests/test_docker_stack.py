"""stacks/Pulumi.docker.yaml applied for real: the embedded engine creates the pulumi-docker resources
through docker-py on a real Docker engine, the watcher container fails over, destroy removes it all.

Writes go to the published ports through the recording writer (tests/writer.py), which follows the
primary itself: the Docker backend declares no proxy container yet.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from repman.db import ServerAddress, connect, query
from repman.lab.writer import Writer
from testkit.docker_engine import ROOT, docker, remove_cluster
from testkit.docker_stack import ADMIN, DockerStack, node_state
from testkit.polling import wait_until

pytestmark = pytest.mark.slow
def test_docker_stack_up_failover_rerun_and_destroy(docker_stack: DockerStack):
    up = docker_stack.run("up")
    assert "11 created" in up.stdout
    ps = {c["Names"]: c for c in map(json.loads, docker(
        "ps", "-a", "--filter", f"label=repman.cluster={docker_stack.name}", "--format", "{{json .}}",
    ).stdout.splitlines())}
    assert set(ps) == {docker_stack.container(0), docker_stack.container(1), docker_stack.container(2),
                       f"{docker_stack.name}-bootstrap", f"{docker_stack.name}-watcher", f"{docker_stack.name}-haproxy"}
    # The exact inputs reached the engine: memory and cpus of the plan, restart policy, health check, mounts.
    db1 = json.loads(docker("inspect", docker_stack.container(0)).stdout)[0]
    assert db1["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert db1["HostConfig"]["Memory"] > 0 and db1["HostConfig"]["NanoCpus"] > 0
    assert db1["Config"]["Healthcheck"]["Test"][:2] == ["CMD", "healthcheck.sh"]
    assert [m["Name"] for m in db1["Mounts"]] == [f"{docker_stack.container(0)}-data"]
    assert f"{docker_stack.name}-net" in db1["NetworkSettings"]["Networks"]
    assert db1["NetworkSettings"]["Ports"]["3306/tcp"][0]["HostPort"] == str(docker_stack.base_port)
    cnf = docker("exec", docker_stack.container(0), "cat", "/etc/mysql/conf.d/repman.cnf").stdout
    assert "gtid_strict_mode" in cnf.replace("-", "_")
    assert docker("exec", docker_stack.container(0), "mariadb", "-N", "-e", "SELECT @@server_id").stdout.strip() == "1"
    # No credential in the watcher's config file or the state file.
    watcher_cfg = docker("exec", f"{docker_stack.name}-watcher", "cat", "/etc/repman/repman.yaml").stdout
    state_text = "".join(p.read_text() for p in Path(docker_stack.config["prov-state-dir"]).rglob("*.json"))
    for secret in (ADMIN.password, "docker-repl-Pw2"):
        assert secret not in watcher_cfg and secret not in state_text
    # ... nor in any container's environment (docker inspect) or its processes' (/proc/1/environ).
    for cname in ps:
        inspected = docker("inspect", "-f", "{{json .Config.Env}}", cname).stdout
        assert ADMIN.password not in inspected and "docker-repl-Pw2" not in inspected, cname
    for cname, user in ((docker_stack.container(0), "mysql"), (f"{docker_stack.name}-watcher", "repman")):
        environ = docker("exec", "-u", user, cname, "cat", "/proc/1/environ").stdout
        assert "REPMAN_CLUSTER" in environ or "MARIADB" in environ or "PATH" in environ
        assert ADMIN.password not in environ and "docker-repl-Pw2" not in environ, cname

    # A second `up` changes nothing.
    again = docker_stack.run("up", "--expect-no-changes")
    assert "11 unchanged" in again.stdout

    wait_until(lambda: json.loads(docker("inspect", f"{docker_stack.name}-watcher").stdout)[0]["State"].get(
        "Health", {}).get("Status") == "healthy", timeout=60, what="the watcher container to be healthy", every=0.5)
    servers = [docker_stack.address(i) for i in range(3)]
    assert node_state(servers[0]) == {"ro": 0, "master": None}
    proxy = ServerAddress("127.0.0.1", docker_stack.write_port)
    assert node_state(proxy) == {"ro": 0, "master": None}, "the proxy's write port reaches the primary"
    Writer.prepare(proxy, ADMIN)
    writer = Writer([proxy], ADMIN, name="dk").start()     # writes through the HAProxy container
    try:
        writer.wait_acks(200, timeout=60)
        docker("kill", docker_stack.container(0))       # the primary's container dies (SIGKILL)
        killed_at = time.monotonic()
        new_primary = None
        while new_primary is None:
            assert time.monotonic() - killed_at < 90, (
                f"no failover; watcher log:\n"
                f"{docker('logs', f'{docker_stack.name}-watcher', check=False).stderr[-3000:]}")
            for addr in servers[1:]:
                try:
                    if node_state(addr) == {"ro": 0, "master": None}:
                        new_primary = addr
                except Exception:  # noqa: BLE001
                    pass
            time.sleep(0.2)
        writer.wait_acks(200, timeout=60)
    finally:
        writer.stop()
    other = next(a for a in servers[1:] if a != new_primary)
    assert node_state(other)["ro"] == 1 and node_state(other)["master"] in (
        f"{docker_stack.name}-db2", f"{docker_stack.name}-db3"), "the remaining replica follows the new primary"
    lost, unexpected = writer.verify(new_primary)
    assert lost == set() and unexpected == set(), f"lost {sorted(lost)[:10]} unexpected {sorted(unexpected)[:10]}"
    with connect(proxy, ADMIN) as conn:
        assert query(conn, "SELECT @@report_host AS h")[0]["h"] == new_primary_name(docker_stack, new_primary), \
            "the proxy follows the new primary"
    time.sleep(1)
    with connect(other, ADMIN) as conn:
        present = {int(r["id"]) for r in query(conn, "SELECT id FROM repman_test.writes WHERE writer='dk'")}
    assert {a.id for a in writer.acked} <= present, "the other replica has every acknowledged write too"
    print(f"failover in containers: {len(writer.acked)} acks, longest write gap "
          f"{writer.gaps(killed_at, killed_at + 60):.2f}s")

    # Destroy: containers and network go; volumes are kept when prov-keep-data-on-delete is true.
    docker_stack.run("down", **{"prov-keep-data-on-delete": "true"})
    left = docker("ps", "-aq", "--filter", f"label=repman.cluster={docker_stack.name}").stdout.split()
    assert left == []
    assert docker("network", "ls", "-q", "--filter", f"name={docker_stack.name}-net").stdout.strip() == ""
    vols = docker("volume", "ls", "-q", "--filter", f"label=repman.cluster={docker_stack.name}").stdout.split()
    assert sorted(vols) == sorted(f"{docker_stack.container(i)}-data" for i in range(3))


def new_primary_name(docker_stack: DockerStack, addr: ServerAddress) -> str:
    return docker_stack.container(addr.port - docker_stack.base_port)


def test_destroy_removes_volumes_unless_kept(docker_images):
    """The Volume resource as the engine applies it: deleted with prov-keep-data-on-delete false, kept if true."""
    from types import SimpleNamespace

    from components.providers.docker_engine import DockerPyProvider

    provider = DockerPyProvider("docker:index/volume:Volume")
    name = f"repman-t-{uuid.uuid4().hex[:8]}"
    labels = [{"label": "repman.cluster", "value": name}]
    try:
        for keep, expected in (("true", [f"{name}-a"]), ("false", [])):
            provider.configure(SimpleNamespace(config={"repman:prov-keep-data-on-delete": keep}))
            made = provider.create({"name": f"{name}-a", "labels": labels})
            provider.delete(made.id, made.outs)
            assert docker("volume", "ls", "-q", "--filter", f"name={name}-a").stdout.split() == expected
    finally:
        remove_cluster(name)


def test_missing_image_is_a_one_line_error_and_creates_no_container(docker_stack: DockerStack):
    proc = subprocess.run(
        [sys.executable, "-m", "embedded_engine", "up", "--yes", "--stack", "docker",
         *[x for k, v in {**docker_stack.config, "prov-db-image": "repman/absent:0"}.items()
           for x in ("-c", f"{k}={v}")]],
        cwd=ROOT, env=docker_stack.env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "repman/absent:0 not found locally" in proc.stderr + proc.stdout
    assert docker("ps", "-aq", "--filter", f"label=repman.cluster={docker_stack.name}").stdout.split() == []
    # What was made before the image was looked up (volumes, network) is in state: `down` removes it.
    docker_stack.run("down", **{"prov-db-image": "repman/absent:0", "prov-keep-data-on-delete": "false"})
    assert docker("volume", "ls", "-q", "--filter", f"label=repman.cluster={docker_stack.name}").stdout.split() == []
    assert docker("network", "ls", "-q", "--filter", f"name={docker_stack.name}-net").stdout.strip() == ""


@pytest.mark.soak
@pytest.mark.skipif(os.environ.get("REPMAN_SOAK") != "1", reason="~55 s of containers: REPMAN_SOAK=1")
def test_adding_a_node_in_containers_seeds_a_replica_under_writes(docker_stack: DockerStack):
    """A node-count change (prov-db-nodes 2 -> 3): a new volume and container, the bootstrap container
    re-run attaches it to the live primary; writes through the proxy continue, none lost."""
    docker_stack.run("up", **{"prov-db-nodes": "2"})
    proxy = ServerAddress("127.0.0.1", docker_stack.write_port)
    wait_until(lambda: node_state(proxy) == {"ro": 0, "master": None}, timeout=60, every=0.5,
               what="the proxy to reach the primary", ignore=(Exception,))  # HAProxy's first checks
    Writer.prepare(proxy, ADMIN)
    writer = Writer([proxy], ADMIN, name="rs").start()
    try:
        writer.wait_acks(100, timeout=60)
        grown = docker_stack.run("up", **{"prov-db-nodes": "3"})
        assert f"{docker_stack.container(2)}-container created" in grown.stdout
        writer.wait_acks(100, timeout=60)
    finally:
        writer.stop()
    new = docker_stack.address(2)
    wait_until(lambda: node_state(new)["master"] is not None, timeout=60, what="the new node to replicate", every=0.5)
    assert node_state(new) == {"ro": 1, "master": docker_stack.container(0)}
    time.sleep(2)
    lost, unexpected = writer.verify(docker_stack.address(0))
    assert lost == set() and unexpected == set()
    lost_new, _ = writer.verify(new)
    assert lost_new == set(), "the new replica holds every acknowledged write"
    print(f"resize 2->3 in containers: {len(writer.acked)} acks, longest write gap "
          f"{writer.gaps(0, time.monotonic()):.2f}s")
