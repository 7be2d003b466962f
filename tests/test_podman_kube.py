"""The kube backend's StatefulSet pods under a real container runtime: `podman kube play` (podman 4.3).

The manifests come from the program of stacks/Pulumi.kube.yaml under Pulumi's mocks (as in
tests/test_backend_kube.py), converted as tests/podman_kube.py says (no StatefulSet, Service or
Job in podman 4.3). Checked for real: mariadbd starts in each pod with our my.cnf from the
ConfigMap, the admin init script (ConfigMap) creates the admin account from the Secret, the
readiness and liveness probe commands pass. Not here: replication wired by the bootstrap Job
(podman has no Job and no cluster DNS for the pods' FQDNs), Services, the watcher Deployment.
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest
import yaml

from testkit.podman import podman, podman_env, podman_missing, pods_from_statefulset, secret_payload
from testkit.polling import wait_until
from testkit.pulumi_mocks import KUBE_PASSWORDS, KUBE_SECRET_CONFIG, manifests, run_program, stack_config

pytestmark = [pytest.mark.slow, pytest.mark.skipif(bool(podman_missing()), reason=podman_missing() or "-")]


def _load_image(env: dict[str, str], image: str) -> None:
    """The image as built for Docker, copied into podman's store unless the same image is there."""
    want = subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}", image], capture_output=True,
                          text=True, check=True).stdout.strip().removeprefix("sha256:")
    have = podman(env, "image", "inspect", "-f", "{{.Id}}", image, check=False).stdout.strip()
    if have != want:
        saved = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
        subprocess.run(["podman", "load", "-q"], stdin=saved.stdout, env=env, check=True, capture_output=True,
                       timeout=300)
        saved.wait(60)


def test_statefulset_pods_start_with_our_mycnf_init_script_and_probes(docker_images, monkeypatch, tmp_path: Path):
    env = podman_env(tmp_path / "podman")
    _load_image(env, docker_images.db)
    cluster = f"pk{uuid.uuid4().hex[:5]}"
    config = {**stack_config("kube"), **KUBE_SECRET_CONFIG, "repman:prov-state-dir": str(tmp_path / "state"),
              "repman:prov-db-image": docker_images.db, "repman:cluster-name": cluster}
    docs = manifests(run_program(monkeypatch, config))
    sts = next(d for d in docs if d["kind"] == "StatefulSet")
    secret = next(d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"].endswith("-credentials"))
    used_maps = {v["configMap"]["name"] for v in sts["spec"]["template"]["spec"]["volumes"] if "configMap" in v}
    maps = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] in used_maps]
    assert len(maps) == 2, "my.cnf and the init script come from ConfigMaps"
    pods = pods_from_statefulset(sts)
    play = tmp_path / "play.yaml"
    play.write_text(yaml.safe_dump_all(maps + pods))
    network = f"{cluster}-net"
    podman(env, "network", "create", network)
    podman(env, "secret", "create", secret["metadata"]["name"], "-", input_text=secret_payload(secret))
    try:
        podman(env, "kube", "play", "--network", network, str(play), timeout=600)
        readiness = sts["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["exec"]["command"]
        liveness = sts["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["exec"]["command"]
        names = [p["metadata"]["name"] for p in pods if p["kind"] == "Pod"]
        assert len(names) == 3
        for ordinal, pod in enumerate(names):
            container = f"{pod}-mariadb"
            wait_until(lambda: podman(env, "exec", container, *readiness, check=False).returncode == 0,
                       timeout=120, every=1,
                       what=lambda: f"{container} to be ready:\n" + "\n".join([
                           line for line in podman(env, "logs", container, check=False).stderr.splitlines()
                           if "Warning" not in line][-25:]))
            assert podman(env, "exec", container, *liveness, check=False).returncode == 0
            row = podman(env, "exec", container, "mariadb", "-N", "-e",
                         "SELECT @@server_id, @@gtid_strict_mode, @@binlog_format, @@read_only").stdout.split()
            # server id from the ordinal (start command), the rest from our my.cnf tags.
            assert row == [str(ordinal + 1), "1", "ROW", "1"], row
            admin = podman(env, "exec", container, "mariadb", "-h127.0.0.1", "-urepman", f"-p{KUBE_PASSWORDS[0]}",
                           "-N", "-e", "SELECT CURRENT_USER()").stdout.strip()
            assert admin == "repman@%", "the init script made the admin account from the Secret"
            env_seen = podman(env, "inspect", "-f", "{{.Config.Env}}", container).stdout
            assert "REPMAN_ADMIN_USER=repman" in env_seen
    finally:
        podman(env, "kube", "down", str(play), check=False)
        podman(env, "secret", "rm", secret["metadata"]["name"], check=False)
        volumes = [d["metadata"]["name"] for d in pods + maps if d["kind"] in ("PersistentVolumeClaim", "ConfigMap")]
        volumes += [v["name"] for d in pods if d["kind"] == "Pod" for v in d["spec"]["volumes"] if "emptyDir" in v]
        podman(env, "volume", "rm", "-f", *volumes, check=False)
        podman(env, "network", "rm", "-f", network, check=False)
