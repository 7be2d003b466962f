"""Docker backend: the program of stacks/Pulumi.docker.yaml under Pulumi's mocks (no Docker engine here)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from repman.spec import load_cluster_spec
from testkit.pulumi_mocks import plain_strings, run_program, stack_config, unwrap

ROOT = Path(__file__).resolve().parent.parent
PASSWORDS = ("docker-admin-pw", "docker-repl-pw")
SECRETS = {"repman:db-servers-credential": f"repman:{PASSWORDS[0]}",
           "repman:replication-credential": f"repl:{PASSWORDS[1]}"}


@pytest.fixture
def docker_program(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    def run(**overrides):
        config = {**stack_config("docker"), **SECRETS, "repman:prov-state-dir": str(tmp_path / "state")}
        config.update({f"repman:{k}": v for k, v in overrides.items()})
        return run_program(monkeypatch, config)
    return run


def test_stack_file_is_a_valid_docker_cluster():
    spec = load_cluster_spec({**stack_config("docker"), **SECRETS}, project_dir=ROOT)
    assert spec.orchestrator == "docker" and spec.node_count == 3 and spec.base_port == 3320


def test_network_volumes_and_one_container_per_node(docker_program):
    program = docker_program()
    plan = load_cluster_spec({**stack_config("docker"), **SECRETS}).plan
    network = unwrap(program.one(":Network")["inputs"])
    assert network["name"] == "dev-net" and network["driver"] == "bridge"
    image = unwrap(program.one(":RemoteImage")["inputs"])
    assert image["name"] == "mariadb:10.11"
    volumes = {r["name"]: unwrap(r["inputs"]) for r in program.of_type(":Volume")}
    assert sorted(volumes) == ["dev-db1-data", "dev-db2-data", "dev-db3-data"]
    containers = {r["name"]: r for r in program.of_type(":Container")}
    assert sorted(containers) == ["dev-bootstrap", "dev-db1-container", "dev-db2-container", "dev-db3-container",
                                  "dev-watcher"]
    for i in (1, 2, 3):
        raw = containers[f"dev-db{i}-container"]["inputs"]
        c = unwrap(raw)
        assert c["name"] == f"dev-db{i}" and c["image"] == "sha256:mock-mariadb:10.11"   # the pulled image
        assert c["command"] == ["mariadbd", f"--server-id={i}", f"--report-host=dev-db{i}"]
        assert c["ports"] == [{"internal": 3306, "external": 3320 + i - 1, "ip": "127.0.0.1"}]
        assert c["networksAdvanced"] == [{"name": "dev-net", "aliases": [f"dev-db{i}"]}]
        assert c["volumes"] == [{"volumeName": f"dev-db{i}-data", "containerPath": "/var/lib/mysql"}]
        assert c["memory"] == plan.memory_mb and c["cpus"] == str(plan.cores)
        uploads = {u["file"]: u["content"] for u in c["uploads"]}
        assert "gtid_strict_mode" in uploads["/etc/mysql/conf.d/repman.cnf"]
        assert "docker_process_sql" in uploads["/docker-entrypoint-initdb.d/10-repman-admin.sh"]
        # The password is an uploaded file (a secret input), never an environment variable.
        assert "REPMAN_ADMIN_PASSWORD_FILE=/run/repman-secrets/admin-password" in c["envs"]
        assert not any(e.startswith("REPMAN_ADMIN_PASSWORD=") for e in c["envs"])
        assert uploads["/run/repman-secrets/admin-password"] == PASSWORDS[0]
        for text in plain_strings(raw):
            assert not any(pw in text for pw in PASSWORDS), text
        deps = program.monitor.options[f"dev-db{i}-container"]["depends_on"]
        assert "dev-network" in deps and "dev-image" in deps and f"dev-db{i}-data" in deps
        assert program.monitor.options[f"dev-db{i}-container"]["parent"] == f"dev-db{i}"
    boot = unwrap(containers["dev-bootstrap"]["inputs"])
    assert boot["command"][:3] == ["python", "-m", "repman.backends.container_bootstrap"]
    assert boot["mustRun"] is False and boot["networksAdvanced"] == [{"name": "dev-net"}]
    config = yaml.safe_load(boot["uploads"][0]["content"])["clusters"]["dev"]
    assert config["db-servers-hosts"] == ["dev-db1:3306", "dev-db2:3306", "dev-db3:3306"]
    assert config["db-servers-credential"] == {"file": "/run/repman-secrets/db-servers-credential"}
    secret_files = {u["file"]: u for u in boot["uploads"][1:]}
    assert secret_files["/run/repman-secrets/replication-credential"]["content"] == f"repl:{PASSWORDS[1]}"
    assert not any("CREDENTIAL" in e or "PASSWORD" in e for e in boot["envs"])
    assert set(program.monitor.options["dev-bootstrap"]["depends_on"]) >= {
        "dev-db1-container", "dev-db2-container", "dev-db3-container"}
    assert program.outputs["servers"] == ["dev-db1:3306", "dev-db2:3306", "dev-db3:3306"]
    assert program.outputs["backend"]["published"] == ["127.0.0.1:3320", "127.0.0.1:3321", "127.0.0.1:3322"]
    for r in program.recorder.registered:
        for text in plain_strings(r["inputs"]):
            assert not any(pw in text for pw in PASSWORDS), (r["name"], text[:60])


def test_plan_and_image_follow_the_config(docker_program):
    program = docker_program(**{"prov-service-plan": "x2.small", "prov-db-image": "mariadb:11.4",
                                "docker-network": "lab", "prov-watcher": "false"})
    containers = [r for r in program.of_type(":Container") if r["name"].endswith("-container")]
    assert len(containers) == 2
    assert unwrap(program.one(":RemoteImage")["inputs"])["name"] == "mariadb:11.4"
    assert unwrap(program.one(":Network")["inputs"])["name"] == "lab"
    assert "dev-watcher" not in {r["name"] for r in program.of_type(":Container")}


def test_seed_004_tmpfs_and_settings_on_containers(docker_program):
    program = docker_program(**{"prov-db-docker-tmpfs-size": "256m", "prov-db-max-connections": 650,
                                "prov-watcher": "false"})
    container = unwrap([r for r in program.of_type(":Container") if r["name"].endswith("-container")][0]["inputs"])
    assert container["tmpfs"] == {"/tmp": "rw,size=256m"}
    cnf = [u for u in container["uploads"] if u["file"].endswith("repman.cnf")][0]["content"]
    assert "max_connections           = 650" in cnf
    plain = docker_program(**{"prov-watcher": "false"})
    container = unwrap([r for r in plain.of_type(":Container") if r["name"].endswith("-container")][0]["inputs"])
    assert "tmpfs" not in container or not container["tmpfs"]
