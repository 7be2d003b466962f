"""On-premise backend for real: three namespace "hosts" with their own sshd, provisioned over SSH.

No agent and nothing mocked: the program of stacks/Pulumi.onpremise.yaml runs under the
embedded engine (as ``pulumi up`` would), fabric logs in with a key, mariadbd is started
over SSH inside each namespace and listens on the namespace's address, and repman's
bootstrap wires replication across the three hosts over the test bridge. Failures
(refused SSH, network cut, unknown host key, small host, port taken) give one line
naming host and step and leave nothing behind.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import pytest

from repman.backends.onpremise import NodeState, OnPremNodeSpec, create_node, node_running, server_pid
from repman.backends.ssh import HostSession, HostStepError, SshAuth
from repman.db import Credential, ServerAddress, connect, execute, query
from testkit.env import HAVE_MARIADB
from testkit.netns import NetnsLab, skip_reason
from testkit.polling import wait_until

_SKIP = skip_reason() or (None if HAVE_MARIADB else "mariadbd / mariadb-install-db not installed")
pytestmark = pytest.mark.skipif(_SKIP is not None, reason=_SKIP or "")
ROOT = Path(__file__).resolve().parent.parent

ADMIN = Credential("repman", "onprem-admin-pw")
REPL = Credential("repl", "onprem-repl-pw")
TAGS = ["gtidstrict", "row", "readonly", "noquerycache", "smallredolog", "nodurable"]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetnsLab]:
    """Three hosts with sshd, plus a fourth namespace where nothing listens on port 22."""
    with NetnsLab.create(tmp_path_factory.mktemp("netns"), count=4) as made:
        for host in made.hosts[:3]:
            made.start_sshd(host)
        yield made


@pytest.fixture
def base_root() -> Iterator[Path]:
    """Node directories must be traversable by the mysql account (pytest's tmp dirs are 0700)."""
    root = Path(tempfile.mkdtemp(prefix="repman-onprem-"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def auth_for(lab: NetnsLab, **kw) -> SshAuth:
    return SshAuth(user="root", private_key=lab.make_client_key().read_text(),
                   known_hosts=str(lab.known_hosts()), connect_timeout=kw.pop("connect_timeout", 5), **kw)


def node(lab: NetnsLab, index: int, root: Path, **kw) -> OnPremNodeSpec:
    host = lab.hosts[index - 1]
    values = dict(host=host.address, node_name=f"op-db{index}", server_id=index, port=3310 + index - 1,
                  plan="x3.tiny", tags=TAGS, base_dir=f"{root}/op-db{index}", admin_user=ADMIN.user,
                  admin_password=ADMIN.password, start_timeout=60)
    values.update(kw)
    return OnPremNodeSpec(**values)


def namespace_pids(lab: NetnsLab, index: int) -> set[int]:
    out = subprocess.run(["ip", "netns", "pids", lab.hosts[index - 1].netns], capture_output=True, text=True)
    return {int(p) for p in out.stdout.split()}


def engine(*args: str, overrides: dict, timeout: float = 600) -> dict:
    """The real program of stacks/Pulumi.onpremise.yaml under the embedded engine (as ``pulumi up``)."""
    cmd = [sys.executable, "-m", "embedded_engine", *args, "--yes", "--stack", "onpremise", "--json"]
    for key, value in overrides.items():
        cmd += ["-c", f"{key}={value if isinstance(value, str) else json.dumps(value)}"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr[-3000:]}")
    return json.loads(done.stdout)


def test_onpremise_stack_up_replicates_supervises_and_goes_down(
    lab: NetnsLab, base_root: Path, tmp_path: Path,
) -> None:
    hosts = [h.address for h in lab.hosts[:3]]
    overrides = {
        "repman:onpremise-hosts": hosts,
        "repman:onpremise-ssh-user": "root",
        "repman:onpremise-ssh-key": {"file": str(lab.make_client_key())},
        "repman:onpremise-known-hosts": str(lab.known_hosts()),
        "repman:onpremise-base-dir": f"{base_root}/{{node}}",
        "repman:onpremise-install-packages": "false",
        "repman:prov-service-plan": "x3.tiny",
        "repman:prov-db-tags": TAGS,
        "repman:db-servers-base-port": "3310",
        "repman:prov-state-dir": str(tmp_path / "state"),
        "repman:prov-keep-data-on-delete": "false",
        "repman:prov-protect": "false",  # down at the end deletes the nodes
        "repman:db-servers-credential": f"{ADMIN.user}:{ADMIN.password}",
        "repman:replication-credential": f"{REPL.user}:{REPL.password}",
    }
    auth = auth_for(lab)
    try:
        first = engine("up", overrides=overrides)
        outs = first["outputs"]
        addresses = [ServerAddress(h, 3310 + i) for i, h in enumerate(hosts)]
        assert outs["servers"] == [a.url for a in addresses]
        assert outs["primary_endpoint"] == addresses[0].url
        assert outs["backend"]["orchestrator"] == "onpremise"
        state = json.loads((tmp_path / "state" / "embedded-engine.onpremise.json").read_text())
        assert ADMIN.password not in json.dumps(state)
        assert "PRIVATE KEY" not in json.dumps(state)  # the SSH key comes from config, never stored
        nodes = {r["name"]: NodeState(**r["outputs"]["state"]) for r in state["resources"]
                 if r["type"].endswith("SshNode")}
        assert sorted(nodes) == ["prod-db1-host", "prod-db2-host", "prod-db3-host"]

        # Each server runs inside its host's namespace, as the mysql account, under the supervisor.
        for i, address in enumerate(addresses, start=1):
            node_state = nodes[f"prod-db{i}-host"]
            assert node_state.supervision == "supervisor" and node_state.service_user == "mysql"
            with HostSession(address.host, auth) as session:
                pid = server_pid(session, node_state)
            assert pid in namespace_pids(lab, i)
            assert f"Uid:\t{_uid('mysql')}\t" in Path(f"/proc/{pid}/status").read_text()
            with connect(address, ADMIN) as conn:
                assert query(conn, "SELECT @@bind_address AS b")[0]["b"] == address.host
                assert int(query(conn, "SELECT @@server_id AS s")[0]["s"]) == i

        with connect(addresses[0], ADMIN) as conn:
            execute(conn, "CREATE DATABASE shop")
            execute(conn, "CREATE TABLE shop.orders (id INT PRIMARY KEY, item VARCHAR(20))")
            execute(conn, "INSERT INTO shop.orders VALUES (1, 'written on host1')")
            target = query(conn, "SELECT @@gtid_binlog_pos AS p")[0]["p"]
        for replica in addresses[1:]:
            with connect(replica, ADMIN, read_timeout=90) as conn:
                assert query(conn, "SELECT MASTER_GTID_WAIT(%s, 60) AS w", (target,))[0]["w"] == 0
                assert query(conn, "SELECT item FROM shop.orders WHERE id = 1")[0]["item"] == "written on host1"
                assert query(conn, "SELECT @@read_only AS r")[0]["r"] == 1

        # Supervision: a crashed server (kill -9 on its host) is started again.
        crashed = nodes["prod-db2-host"]
        with HostSession(addresses[1].host, auth) as session:
            old = server_pid(session, crashed)
            session.run("test-crash", f"kill -9 {old}")
            wait_until(lambda: (p := server_pid(session, crashed)) and p != old and node_running(session, crashed),
                     what="supervisor restart")
        wait_until(lambda: _replicating(addresses[1]), what="replica reconnect after restart")

        # A second up finds nothing to do (servers running, my.cnf as rendered).
        second = engine("up", overrides=overrides)
        assert second["changes"]["created"] == 0 and second["changes"]["updated"] == 0, second["changes"]
    finally:
        engine("down", overrides=overrides)
    for i in (1, 2, 3):
        assert not (base_root / f"prod-db{i}").exists()
        # Only sshd is left on each host (its per-login children exit shortly after logout).
        wait_until(lambda: namespace_pids(lab, i) == {lab.hosts[i - 1].sshd_pid()}, timeout=30,
                 what=f"host{i} without repman processes")


def _replicating(address: ServerAddress) -> bool:
    with connect(address, ADMIN) as conn:
        rows = query(conn, "SHOW SLAVE STATUS")
    return bool(rows) and rows[0]["Slave_IO_Running"] == "Yes" and rows[0]["Slave_SQL_Running"] == "Yes"


def _uid(user: str) -> int:
    import pwd

    return pwd.getpwnam(user).pw_uid


def test_host_refusing_ssh_gives_clear_error(lab: NetnsLab, base_root: Path) -> None:
    spec = node(lab, 4, base_root)  # the fourth namespace runs no sshd
    with pytest.raises(HostStepError) as info:
        create_node(spec, auth_for(lab))
    assert str(info.value) == f"host {spec.host}: step connect: connection refused (no SSH server listening)"
    assert not Path(spec.base_dir).exists()


def test_network_cut_gives_clear_error(lab: NetnsLab, base_root: Path) -> None:
    spec = node(lab, 3, base_root)
    lab.hosts[2].cut()
    try:
        with pytest.raises(HostStepError) as info:
            create_node(spec, auth_for(lab, connect_timeout=3))
    finally:
        lab.hosts[2].restore()
    assert str(info.value).startswith(f"host {spec.host}: step connect: timed out after 3s")
    assert not Path(spec.base_dir).exists()


def test_unknown_host_key_is_refused(lab: NetnsLab, base_root: Path, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    auth = replace(auth_for(lab), known_hosts=str(empty))
    spec = node(lab, 1, base_root)
    with pytest.raises(HostStepError) as info:
        create_node(spec, auth)
    assert "step connect: host key not in known_hosts" in str(info.value)
    assert not Path(spec.base_dir).exists()


def test_plan_bigger_than_host_is_refused_before_anything_is_created(lab: NetnsLab, base_root: Path) -> None:
    spec = node(lab, 1, base_root, plan="x3.large")
    with pytest.raises(HostStepError) as info:
        create_node(spec, auth_for(lab))
    cores = os.cpu_count()
    if cores is not None and cores < 8:
        assert f"step check-resources: {cores} cores but plan x3.large needs 8" in str(info.value)
    assert not Path(spec.base_dir).exists()


def test_failed_start_rolls_back_what_the_step_created(lab: NetnsLab, base_root: Path) -> None:
    """The node's port is taken on that host: mariadbd cannot bind, and nothing is left behind."""
    host = lab.hosts[1]
    squatter = subprocess.Popen(
        ["ip", "netns", "exec", host.netns, sys.executable, "-c",
         "import socket, sys, time; s = socket.socket(); "
         f"s.bind(({host.address!r}, 3399)); s.listen(); print('ready', flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert squatter.stdout is not None and squatter.stdout.readline().strip() == "ready"
        spec = node(lab, 2, base_root, port=3399)
        before = namespace_pids(lab, 2)
        with pytest.raises(HostStepError) as info:
            create_node(spec, auth_for(lab))
        message = str(info.value)
        assert message.startswith(f"host {spec.host}: step wait-ready: exit 1: mariadbd did not start:")
        assert "Address already in use" in message
        assert not Path(spec.base_dir).exists()
        wait_until(lambda: namespace_pids(lab, 2) == before, timeout=30, what="no process left on the host")
    finally:
        squatter.kill()
        squatter.wait(timeout=10)


def test_disk_check_refuses_a_plan_whose_data_the_host_cannot_hold(lab: NetnsLab, base_root: Path) -> None:
    """Over real SSH: free space (plus what the datadir holds) against the plan's data size;
    also run by update_node before a plan change touches anything."""
    from repman.backends.onpremise import check_disk

    free_gb = shutil.disk_usage(base_root).free / 2**30
    if not 10 <= free_gb < 700:
        pytest.skip(f"{free_gb:.0f} GB free here: the check needs between 10 (x3.tiny) and 700 (x3.large)")
    with HostSession(lab.hosts[0].address, auth_for(lab)) as session:
        check_disk(session, node(lab, 1, base_root, plan="x3.tiny"))
        with pytest.raises(HostStepError, match=r"step check-disk: \d+ GB usable under .* but plan x3.large "
                                                r"\(prov-service-plan\) needs 700 GB of data"):
            check_disk(session, node(lab, 1, base_root, plan="x3.large"))
    assert not Path(f"{base_root}/op-db1").exists()


@pytest.mark.slow
def test_seeding_over_ssh_after_purged_binlogs(lab: NetnsLab, base_root: Path) -> None:
    """Three hosts; the third joins after the primary purged its binlogs: a physical copy
    streamed from host2's mariadb-backup through SSH into host3's mbstream, then replication."""
    from repman.backends.onpremise import delete_node
    from repman.backends.ssh_seed import seed_ssh_node
    from repman.bootstrap import BootstrapRequest, bootstrap
    from repman.seeding import SeedRequest, purge_binlogs

    if shutil.which("mariadb-backup") is None:
        pytest.skip("mariadb-backup not installed")
    auth = auth_for(lab)
    specs = [node(lab, i, base_root) for i in (1, 2, 3)]
    states = []
    try:
        for spec in specs:
            states.append(create_node(spec, auth))
        addresses = [ServerAddress(s.host, s.port) for s in specs]
        bootstrap(BootstrapRequest(servers=addresses[:2], admin=ADMIN, replication=REPL))
        with connect(addresses[0], ADMIN) as conn:
            execute(conn, "CREATE DATABASE shop")
            execute(conn, "CREATE TABLE shop.orders (id INT PRIMARY KEY, item VARCHAR(20))")
            for i in range(300):
                execute(conn, "INSERT INTO shop.orders VALUES (%s, 'x')", (i,))
            purge_binlogs(conn)
        with pytest.raises(Exception, match="binlogs start after"):
            bootstrap(BootstrapRequest(servers=addresses, admin=ADMIN, replication=REPL))
        lines: list[str] = []
        req = SeedRequest(target=addresses[2], primary=addresses[0], members=addresses, admin=ADMIN,
                          replication=REPL, progress=lines.append)
        result = seed_ssh_node(req, specs[2], states[2], specs[1], auth)
        assert result.source == addresses[1] and result.bytes_copied > 0
        assert any("MiB copied" in line for line in lines)
        with connect(addresses[0], ADMIN) as conn:
            execute(conn, "INSERT INTO shop.orders VALUES (1000, 'after')")
            target = query(conn, "SELECT @@gtid_binlog_pos AS p")[0]["p"]
        with connect(addresses[2], ADMIN, read_timeout=90) as conn:
            assert query(conn, "SELECT MASTER_GTID_WAIT(%s, 60) AS w", (target,))[0]["w"] == 0
            assert query(conn, "SELECT COUNT(*) AS n FROM shop.orders")[0]["n"] == 301
        assert _replicating(addresses[2])
        with HostSession(specs[2].host, auth) as session:  # under its supervision, as before
            assert node_running(session, states[2])
        assert not Path(f"{specs[2].base_dir}/seed").exists()
        assert not list(Path(specs[1].base_dir).glob("tmp/seed-options.cnf"))  # no password left behind
    finally:
        for state in states:
            delete_node(state, auth, keep_data=False)


@pytest.mark.slow
def test_onpremise_scale_out_after_purge_seeds_over_ssh(lab: NetnsLab, base_root: Path, tmp_path: Path) -> None:
    """The stack on x2.tiny, binlogs purged, then x3.tiny: ``up`` seeds the third host's node over SSH."""
    if shutil.which("mariadb-backup") is None:
        pytest.skip("mariadb-backup not installed")
    hosts = [h.address for h in lab.hosts[:3]]
    overrides = {
        "repman:onpremise-hosts": hosts[:2],
        "repman:onpremise-ssh-user": "root",
        "repman:onpremise-ssh-key": {"file": str(lab.make_client_key())},
        "repman:onpremise-known-hosts": str(lab.known_hosts()),
        "repman:onpremise-base-dir": f"{base_root}/{{node}}",
        "repman:onpremise-install-packages": "false",
        "repman:prov-service-plan": "x2.tiny",
        "repman:prov-db-tags": TAGS,
        "repman:db-servers-base-port": "3310",
        "repman:prov-state-dir": str(tmp_path / "state"),
        "repman:prov-keep-data-on-delete": "false",
        "repman:prov-protect": "false",  # down at the end deletes the nodes
        "repman:db-servers-credential": f"{ADMIN.user}:{ADMIN.password}",
        "repman:replication-credential": f"{REPL.user}:{REPL.password}",
    }
    try:
        engine("up", overrides=overrides)
        primary = ServerAddress(hosts[0], 3310)
        with connect(primary, ADMIN) as conn:
            execute(conn, "CREATE DATABASE shop")
            execute(conn, "CREATE TABLE shop.orders (id INT PRIMARY KEY)")
            for i in range(200):
                execute(conn, "INSERT INTO shop.orders VALUES (%s)", (i,))
            from repman.seeding import purge_binlogs
            purge_binlogs(conn)
        overrides.update({"repman:onpremise-hosts": hosts, "repman:prov-service-plan": "x3.tiny"})
        outs = engine("up", overrides=overrides)["outputs"]
        third = ServerAddress(hosts[2], 3312)
        assert outs["servers"][-1] == third.url
        with connect(primary, ADMIN) as conn:
            target = query(conn, "SELECT @@gtid_binlog_pos AS p")[0]["p"]
        with connect(third, ADMIN, read_timeout=90) as conn:
            assert query(conn, "SELECT MASTER_GTID_WAIT(%s, 60) AS w", (target,))[0]["w"] == 0
            assert query(conn, "SELECT COUNT(*) AS n FROM shop.orders")[0]["n"] == 200
        assert _replicating(third)
        state = (tmp_path / "state" / "embedded-engine.onpremise.json").read_text()
        assert ADMIN.password not in state and "PRIVATE KEY" not in state
    finally:
        engine("down", overrides=overrides)


def test_dynamic_config_applied_live_over_ssh_or_by_restart(lab: NetnsLab, base_root: Path) -> None:
    """prov-db-apply-dynamic-config over SSH: a dynamic change is SET GLOBAL on the same process;
    with the key off, or for a static variable, the node restarts."""
    from repman.backends.onpremise import delete_node, update_node

    auth = auth_for(lab)
    spec = node(lab, 3, base_root, port=3397)
    state = create_node(spec, auth)
    try:
        address = ServerAddress(spec.host, spec.port)
        with HostSession(spec.host, auth) as session:
            pid = server_pid(session, state)
        live = replace(spec, db_settings={"expire_logs_days": 3, "max_connections": 150})
        assert update_node(spec, live, state, auth) == "live"
        with HostSession(spec.host, auth) as session:
            assert server_pid(session, state) == pid
        with connect(address, ADMIN) as conn:
            row = query(conn, "SELECT @@expire_logs_days AS e, @@max_connections AS m")[0]
        assert float(row["e"]) == 3 and int(row["m"]) == 150
        off = replace(live, db_settings={"expire_logs_days": 2, "apply_dynamic_config": False})
        assert update_node(live, off, state, auth) == "restarted"
        with HostSession(spec.host, auth) as session:
            assert server_pid(session, state) != pid
        with connect(address, ADMIN) as conn:
            assert float(query(conn, "SELECT @@expire_logs_days AS e")[0]["e"]) == 2
    finally:
        delete_node(state, auth, keep_data=False)
