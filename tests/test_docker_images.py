"""Our images on a real Docker engine: the MariaDB stand-in keeps the official interface, the watcher runs."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from testkit.docker_engine import docker
from testkit.polling import wait_until

pytestmark = pytest.mark.slow


def _wait_healthy(name: str, timeout: float = 90) -> None:
    def healthy() -> bool:
        state = json.loads(docker("inspect", name).stdout)[0]["State"]
        if state["Status"] == "exited":
            raise AssertionError(f"{name} exited: {docker('logs', name, check=False).stderr[-800:]}")
        return (state.get("Health") or {}).get("Status") == "healthy"
    wait_until(healthy, timeout, f"{name} to be healthy", every=0.5)


def test_standin_honours_the_official_entrypoint_interface(docker_images, tmp_path: Path):
    name = f"repman-t-{uuid.uuid4().hex[:8]}"
    (tmp_path / "root-pw").write_text("r00t-from-file\n")
    init = tmp_path / "init"
    init.mkdir()
    (init / "10-table.sql").write_text("CREATE TABLE t1 (id INT PRIMARY KEY); INSERT INTO t1 VALUES (42);\n")
    # Not executable: sourced, so it may call the entrypoint's docker_process_sql (as templates/kube/admin-init.sh).
    (init / "20-user.sh").write_text(
        "docker_process_sql --database=mysql <<<\"CREATE USER 'fromsh'@'%' IDENTIFIED BY 'shpw'\"\n")
    for f in init.iterdir():
        f.chmod(0o644)
    init.chmod(0o755)
    try:
        docker("run", "-d", "--name", name, "--health-cmd", "healthcheck.sh --connect --innodb_initialized",
               "--health-interval", "1s", "-e", "MARIADB_ROOT_PASSWORD_FILE=/run/secrets/root-pw",
               "-v", f"{tmp_path / 'root-pw'}:/run/secrets/root-pw:ro", "-v", f"{init}:/docker-entrypoint-initdb.d:ro",
               "-e", "MARIADB_DATABASE=app", "-e", "MARIADB_USER=appuser", "-e", "MARIADB_PASSWORD=apppw",
               docker_images.db)
        _wait_healthy(name)
        out = docker("exec", name, "mariadb", "-h127.0.0.1", "-uappuser", "-papppw", "app", "-N",
                     "-e", "SELECT id FROM t1").stdout.strip()
        assert out == "42", "the initdb.d .sql ran in MARIADB_DATABASE and MARIADB_USER may read it"
        assert docker("exec", name, "mariadb", "-h127.0.0.1", "-uroot", "-pr00t-from-file", "-N",
                      "-e", "SELECT 1").stdout.strip() == "1", "root password from MARIADB_ROOT_PASSWORD_FILE"
        assert docker("exec", name, "mariadb", "-h127.0.0.1", "-ufromsh", "-pshpw", "-N",
                      "-e", "SELECT 1").stdout.strip() == "1", "the sourced .sh ran through docker_process_sql"
        env = json.loads(docker("inspect", name).stdout)[0]["Config"]["Env"]
        assert not any("r00t-from-file" in e for e in env)
        procs = docker("exec", name, "ps", "-o", "user=,comm=", "-C", "mariadbd").stdout.split()
        assert procs[:2] == ["mysql", "mariadbd"], "mariadbd runs as mysql, not root"
    finally:
        docker("rm", "-f", "-v", name, check=False)


def test_standin_refuses_an_uninitialised_start_without_a_password_choice(docker_images):
    proc = docker("run", "--rm", docker_images.db, check=False, timeout=60)
    assert proc.returncode != 0
    assert "MARIADB_ROOT_PASSWORD" in proc.stderr and "Traceback" not in proc.stderr
    both = docker("run", "--rm", "-e", "MARIADB_ROOT_PASSWORD=a", "-e", "MARIADB_ROOT_PASSWORD_FILE=/etc/hostname",
                  docker_images.db, check=False, timeout=60)
    assert both.returncode != 0 and "both MARIADB_ROOT_PASSWORD and MARIADB_ROOT_PASSWORD_FILE" in both.stderr


def test_watcher_image_runs_the_cli_as_non_root_with_a_health_check(docker_images):
    config = json.loads(docker("image", "inspect", docker_images.watcher).stdout)[0]["Config"]
    assert config["User"] == "repman"
    assert "/health" in " ".join(config["Healthcheck"]["Test"])
    assert config["Cmd"] == ["repman", "--config", "/etc/repman/repman.yaml", "watch"]
    uid = docker("run", "--rm", docker_images.watcher, "id", "-u").stdout.strip()
    assert uid != "0"
    help_text = docker("run", "--rm", docker_images.watcher, "repman", "--help").stdout
    assert "watch" in help_text
    # Templates and service plans ship in the wheel: the image can render a my.cnf and list plans.
    probe = ("from repman.paths import templates_dir; from repman.plans import load_plans; "
             "print((templates_dir() / 'kube' / 'admin-init.sh').is_file(), 'x3.tiny' in load_plans())")
    assert docker("run", "--rm", docker_images.watcher, "python", "-c", probe).stdout.split() == ["True", "True"]
    bad = docker("run", "--rm", docker_images.watcher, "repman", "--config", "/nonexistent.yaml", "watch",
                 check=False, timeout=60)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
