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

from repman.db import Credential, ServerAddress, connect, query
from repman.local.ports import free_port_block
from tests.docker_support import ROOT, docker, docker_images, remove_cluster  # noqa: F401
from tests.writer import Writer

pytestmark = pytest.mark.slow
ADMIN = Credential("repman", "docker-admin-Pw1")
TAGS = ["gtidstrict", "row", "readonly", "noquerycache", "smallredolog", "nodurable", "semisync"]


class DockerStack:
    """One cluster of stacks/Pulumi.docker.yaml under `python -m embedded_engine`."""

    def __init__(self, images, state_dir: Path) -> None:
        self.name = f"dk{uuid.uuid4().hex[:6]}"
        self.base_port = free_port_block(5)      # 3 nodes, then HAProxy's write and read ports
        self.write_port, self.read_port = self.base_port + 3, self.base_port + 4
        self.config = {
            "cluster-name": self.name, "prov-db-image": images.db, "prov-watcher-image": images.watcher,
            "db-servers-base-port": str(self.base_port), "prov-state-dir": str(state_dir),
            "prov-protect": "false", "prov-db-tags": json.dumps(TAGS), "failover-mode": "automatic",
            "monitoring-ticker": "0.5", "db-servers-credential": f"{ADMIN.user}:{ADMIN.password}",
            "replication-credential": "repl:docker-repl-Pw2", "haproxy": "true",
            "haproxy-write-port": str(self.write_port), "haproxy-read-port": str(self.read_port),
            "prov-proxy-image": images.proxy,
        }
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_CONFIG_PASSPHRASE")}
        self.env["PULUMI_CONFIG_PASSPHRASE"] = "repman-example"

    def run(self, command: str, *extra: str, **overrides: str) -> subprocess.CompletedProcess:
        args = [sys.executable, "-m", "embedded_engine", command, "--yes", "--stack", "docker", *extra]
        for key, value in {**self.config, **overrides}.items():
            args += ["-c", f"{key}={value}"]
        proc = subprocess.run(args, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"{command}: {proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        return proc

    def address(self, i: int) -> ServerAddress:
        return ServerAddress("127.0.0.1", self.base_port + i)

    def container(self, i: int) -> str:
        return f"{self.name}-db{i + 1}"


@pytest.fixture
def stack(docker_images, tmp_path: Path):
    s = DockerStack(docker_images, tmp_path / "state")
    yield s
    remove_cluster(s.name)


def _state(addr: ServerAddress) -> dict:
    with connect(addr, ADMIN, timeout=2) as conn:
        ro = int(query(conn, "SELECT @@GLOBAL.read_only AS ro")[0]["ro"])
        slave = query(conn, "SHOW SLAVE STATUS")
        return {"ro": ro, "master": slave[0]["Master_Host"] if slave else None}


def test_docker_stack_up_failover_rerun_and_destroy(stack: DockerStack):
    up = stack.run("up")
    assert "11 created" in up.stdout
    ps = {c["Names"]: c for c in map(json.loads, docker(
        "ps", "-a", "--filter", f"label=repman.cluster={stack.name}", "--format", "{{json .}}").stdout.splitlines())}
    assert set(ps) == {stack.container(0), stack.container(1), stack.container(2),
                       f"{stack.name}-bootstrap", f"{stack.name}-watcher", f"{stack.name}-haproxy"}
    # The exact inputs reached the engine: memory and cpus of the plan, restart policy, health check, mounts.
    db1 = json.loads(docker("inspect", stack.container(0)).stdout)[0]
    assert db1["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert db1["HostConfig"]["Memory"] > 0 and db1["HostConfig"]["NanoCpus"] > 0
    assert db1["Config"]["Healthcheck"]["Test"][:2] == ["CMD", "healthcheck.sh"]
    assert [m["Name"] for m in db1["Mounts"]] == [f"{stack.container(0)}-data"]
    assert f"{stack.name}-net" in db1["NetworkSettings"]["Networks"]
    assert db1["NetworkSettings"]["Ports"]["3306/tcp"][0]["HostPort"] == str(stack.base_port)
    cnf = docker("exec", stack.container(0), "cat", "/etc/mysql/conf.d/repman.cnf").stdout
    assert "gtid_strict_mode" in cnf.replace("-", "_")
    assert docker("exec", stack.container(0), "mariadb", "-N", "-e", "SELECT @@server_id").stdout.strip() == "1"
    # No credential in the watcher's config file or the state file.
    watcher_cfg = docker("exec", f"{stack.name}-watcher", "cat", "/etc/repman/repman.yaml").stdout
    state_text = "".join(p.read_text() for p in Path(stack.config["prov-state-dir"]).rglob("*.json"))
    for secret in (ADMIN.password, "docker-repl-Pw2"):
        assert secret not in watcher_cfg and secret not in state_text
    # ... nor in any container's environment (docker inspect) or its processes' (/proc/1/environ).
    for cname in ps:
        inspected = docker("inspect", "-f", "{{json .Config.Env}}", cname).stdout
        assert ADMIN.password not in inspected and "docker-repl-Pw2" not in inspected, cname
    for cname, user in ((stack.container(0), "mysql"), (f"{stack.name}-watcher", "repman")):
        environ = docker("exec", "-u", user, cname, "cat", "/proc/1/environ").stdout
        assert "REPMAN_CLUSTER" in environ or "MARIADB" in environ or "PATH" in environ
        assert ADMIN.password not in environ and "docker-repl-Pw2" not in environ, cname

    # A second `up` changes nothing.
    again = stack.run("up", "--expect-no-changes")
    assert "11 unchanged" in again.stdout

    deadline = time.monotonic() + 60
    while json.loads(docker("inspect", f"{stack.name}-watcher").stdout)[0]["State"].get(
            "Health", {}).get("Status") != "healthy":
        assert time.monotonic() < deadline, "watcher container never healthy"
        time.sleep(0.5)
    servers = [stack.address(i) for i in range(3)]
    assert _state(servers[0]) == {"ro": 0, "master": None}
    proxy = ServerAddress("127.0.0.1", stack.write_port)
    assert _state(proxy) == {"ro": 0, "master": None}, "the proxy's write port reaches the primary"
    Writer.prepare(proxy, ADMIN)
    writer = Writer([proxy], ADMIN, name="dk").start()     # writes through the HAProxy container
    try:
        writer.wait_acks(200, timeout=60)
        docker("kill", stack.container(0))       # the primary's container dies (SIGKILL)
        killed_at = time.monotonic()
        new_primary = None
        while new_primary is None:
            assert time.monotonic() - killed_at < 90, f"no failover; watcher log:\n{docker('logs', f'{stack.name}-watcher', check=False).stderr[-3000:]}"
            for addr in servers[1:]:
                try:
                    if _state(addr) == {"ro": 0, "master": None}:
                        new_primary = addr
                except Exception:  # noqa: BLE001
                    pass
            time.sleep(0.2)
        writer.wait_acks(200, timeout=60)
    finally:
        writer.stop()
    other = next(a for a in servers[1:] if a != new_primary)
    assert _state(other)["ro"] == 1 and _state(other)["master"] in (
        f"{stack.name}-db2", f"{stack.name}-db3"), "the remaining replica follows the new primary"
    lost, unexpected = writer.verify(new_primary)
    assert lost == set() and unexpected == set(), f"lost {sorted(lost)[:10]} unexpected {sorted(unexpected)[:10]}"
    with connect(proxy, ADMIN) as conn:
        assert query(conn, "SELECT @@report_host AS h")[0]["h"] == new_primary_name(stack, new_primary), \
            "the proxy follows the new primary"
    time.sleep(1)
    with connect(other, ADMIN) as conn:
        present = {int(r["id"]) for r in query(conn, "SELECT id FROM repman_test.writes WHERE writer='dk'")}
    assert {a.id for a in writer.acked} <= present, "the other replica has every acknowledged write too"
    print(f"failover in containers: {len(writer.acked)} acks, longest write gap "
          f"{writer.gaps(killed_at, killed_at + 60):.2f}s")

    # Destroy: containers and network go; volumes are kept when prov-keep-data-on-delete is true.
    stack.run("down", **{"prov-keep-data-on-delete": "true"})
    left = docker("ps", "-aq", "--filter", f"label=repman.cluster={stack.name}").stdout.split()
    assert left == []
    assert docker("network", "ls", "-q", "--filter", f"name={stack.name}-net").stdout.strip() == ""
    vols = docker("volume", "ls", "-q", "--filter", f"label=repman.cluster={stack.name}").stdout.split()
    assert sorted(vols) == sorted(f"{stack.container(i)}-data" for i in range(3))


def new_primary_name(stack: DockerStack, addr: ServerAddress) -> str:
    return stack.container(addr.port - stack.base_port)


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


def test_missing_image_is_a_one_line_error_and_creates_no_container(stack: DockerStack):
    proc = subprocess.run(
        [sys.executable, "-m", "embedded_engine", "up", "--yes", "--stack", "docker",
         *[x for k, v in {**stack.config, "prov-db-image": "repman/absent:0"}.items() for x in ("-c", f"{k}={v}")]],
        cwd=ROOT, env=stack.env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "repman/absent:0 not found locally" in proc.stderr + proc.stdout
    assert docker("ps", "-aq", "--filter", f"label=repman.cluster={stack.name}").stdout.split() == []
    # What was made before the image was looked up (volumes, network) is in state: `down` removes it.
    stack.run("down", **{"prov-db-image": "repman/absent:0", "prov-keep-data-on-delete": "false"})
    assert docker("volume", "ls", "-q", "--filter", f"label=repman.cluster={stack.name}").stdout.split() == []
    assert docker("network", "ls", "-q", "--filter", f"name={stack.name}-net").stdout.strip() == ""


@pytest.mark.soak
@pytest.mark.skipif(os.environ.get("REPMAN_SOAK") != "1", reason="~55 s of containers: REPMAN_SOAK=1")
def test_adding_a_node_in_containers_seeds_a_replica_under_writes(stack: DockerStack):
    """A node-count change (prov-db-nodes 2 -> 3): a new volume and container, the bootstrap container
    re-run attaches it to the live primary; writes through the proxy continue, none lost."""
    stack.run("up", **{"prov-db-nodes": "2"})
    proxy = ServerAddress("127.0.0.1", stack.write_port)
    deadline = time.monotonic() + 60
    while True:
        try:
            if _state(proxy) == {"ro": 0, "master": None}:
                break
        except Exception:  # noqa: BLE001  (HAProxy's first checks)
            pass
        assert time.monotonic() < deadline, "proxy never reached the primary"
        time.sleep(0.5)
    Writer.prepare(proxy, ADMIN)
    writer = Writer([proxy], ADMIN, name="rs").start()
    try:
        writer.wait_acks(100, timeout=60)
        grown = stack.run("up", **{"prov-db-nodes": "3"})
        assert f"{stack.container(2)}-container created" in grown.stdout
        writer.wait_acks(100, timeout=60)
    finally:
        writer.stop()
    new = stack.address(2)
    deadline = time.monotonic() + 60
    while _state(new)["master"] is None:
        assert time.monotonic() < deadline, "the new node never replicated"
        time.sleep(0.5)
    assert _state(new) == {"ro": 1, "master": stack.container(0)}
    time.sleep(2)
    lost, unexpected = writer.verify(stack.address(0))
    assert lost == set() and unexpected == set()
    lost_new, _ = writer.verify(new)
    assert lost_new == set(), "the new replica holds every acknowledged write"
    print(f"resize 2->3 in containers: {len(writer.acked)} acks, longest write gap "
          f"{writer.gaps(0, time.monotonic()):.2f}s")
