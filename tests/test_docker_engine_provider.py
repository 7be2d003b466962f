"""The docker-py side of the embedded engine without a Docker engine: translation rules and errors.

What it creates on a real engine is tested in tests/test_docker_stack.py; here the parts that
need no engine: durations, uploads, which changes replace, and a one-line error when no engine
answers (nothing created, no traceback).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from components.providers.docker_engine import DockerPyProvider, _ns, _tar, blob, provider_for
from repman.errors import RepmanError

ROOT = Path(__file__).resolve().parent.parent


def test_durations_as_pulumi_docker_takes_them():
    assert _ns("5s") == 5_000_000_000
    assert _ns("1m30s") == 90_000_000_000
    assert _ns("500ms") == 500_000_000
    assert _ns("") == 0
    for bad in ("5", "5x", "s"):
        with pytest.raises(RepmanError, match="healthcheck: duration"):
            _ns(bad)


def test_uploads_become_a_tar_with_modes():
    data = _tar([{"file": "/etc/a.cnf", "content": "x=1\n"},
                 {"file": "/docker-entrypoint-initdb.d/s.sh", "content": "echo\n", "executable": True}])
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert set(members) == {"etc/a.cnf", "docker-entrypoint-initdb.d/s.sh"}
        assert members["etc/a.cnf"].mode == 0o644 and members["docker-entrypoint-initdb.d/s.sh"].mode == 0o755
        assert tar.extractfile("etc/a.cnf").read() == b"x=1\n"


def test_only_restart_and_memory_change_a_container_in_place():
    provider = provider_for(blob("docker:index/container:Container"))
    olds = {"image": "a", "restart": "no", "memory": 512.0, "labels": [], "envs": ["A=1"]}
    in_place = provider.diff("id", olds, {**olds, "restart": "unless-stopped", "memory": 1024.0})
    assert in_place.changes and in_place.replaces == []
    replaced = provider.diff("id", olds, {**olds, "image": "b"})
    assert replaced.replaces == ["image"] and replaced.delete_before_replace
    assert not provider.diff("id", olds, dict(olds)).changes


def test_unknown_type_is_refused():
    with pytest.raises(RepmanError, match="not applied by the docker-py provider"):
        DockerPyProvider("docker:index/service:Service")


def test_no_docker_engine_is_a_one_line_error(tmp_path: Path):
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/absent.sock", "PULUMI_CONFIG_PASSPHRASE": "repman-example"}
    proc = subprocess.run(
        [sys.executable, "-m", "embedded_engine", "up", "--yes", "--stack", "docker",
         "-c", f"prov-state-dir={tmp_path / 'state'}", "-c", "cluster-name=nodocker"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "Docker engine unreachable" in proc.stderr + proc.stdout
