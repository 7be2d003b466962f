"""Run the kube backend's manifests under `podman kube play` (podman 4.3), as far as it allows.

podman 4.3 has no StatefulSet, Service or Job: the StatefulSet's pod template becomes one
Pod per ordinal (``<sts>-<i>``, its volume claim template one PVC ``data-<sts>-<i>``), the
ConfigMaps are played with them (mounted as directories), and the Secret is created
beforehand as a podman secret: a JSON object of its base64 values (what ``secretKeyRef`` reads).
Dropped because podman ignores or refuses them: pod anti-affinity, the PVC retention policy, the
containers' ``ports`` (podman 4.3 publishes a containerPort on the host); an ``emptyDir`` is renamed
per pod (podman 4.3 shares an emptyDir volume of the same name between pods). Probes are not scheduled
without systemd: the tests run the probe commands themselves.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

CONF = """[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""


def podman_env(base: Path) -> dict[str, str]:
    """runc and cgroupfs (crun refuses hybrid cgroups), ulimits under the hard limit, a docker config."""
    base.mkdir(parents=True, exist_ok=True)
    (base / "containers.conf").write_text(CONF)
    (base / "docker-config").mkdir(exist_ok=True)
    (base / "docker-config" / "config.json").write_text("{}")
    return {**os.environ, "CONTAINERS_CONF": str(base / "containers.conf"),
            "DOCKER_CONFIG": str(base / "docker-config")}


def podman_missing() -> str:
    if shutil.which("podman") is None:
        return "podman not installed (apt-get install podman)"
    if shutil.which("runc") is None:
        return "runc not installed"
    return ""


def pods_from_statefulset(sts: dict[str, Any]) -> list[dict[str, Any]]:
    """One Pod and its PVCs per ordinal, as the StatefulSet controller would make them."""
    name = sts["metadata"]["name"]
    template = sts["spec"]["template"]
    out: list[dict[str, Any]] = []
    for i in range(int(sts["spec"]["replicas"])):
        pod_name = f"{name}-{i}"
        spec = copy.deepcopy(template["spec"])
        spec.pop("affinity", None)
        for container in spec.get("containers", []):
            container.pop("ports", None)   # podman 4.3 would publish each containerPort on the host
        # podman 4.3 makes an emptyDir a volume named as in the spec, shared by every pod: one per pod.
        empty = {v["name"] for v in spec.get("volumes", []) if "emptyDir" in v}
        for volume in spec.get("volumes", []):
            if volume["name"] in empty:
                volume["name"] = f"{volume['name']}-{pod_name}"
        for container in spec.get("containers", []):
            for mount in container.get("volumeMounts", []):
                if mount["name"] in empty:
                    mount["name"] = f"{mount['name']}-{pod_name}"
        spec["hostname"] = pod_name
        for claim in sts["spec"].get("volumeClaimTemplates", []):
            claim_name = f"{claim['metadata']['name']}-{pod_name}"
            out.append({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                        "metadata": {"name": claim_name, "labels": claim["metadata"].get("labels", {})},
                        "spec": claim["spec"]})
            spec.setdefault("volumes", []).append(
                {"name": claim["metadata"]["name"], "persistentVolumeClaim": {"claimName": claim_name}})
        out.append({"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": pod_name, "labels": template["metadata"].get("labels", {})},
                    "spec": spec})
    return out


def secret_payload(secret: dict[str, Any]) -> str:
    """The Secret as podman 4.3's secretKeyRef reads it: a JSON object of base64 values."""
    data = dict(secret.get("data") or {})
    for key, value in (secret.get("stringData") or {}).items():
        data[key] = base64.b64encode(str(value).encode()).decode()
    return json.dumps(data)


def podman(env: dict[str, str], *args: str, check: bool = True, timeout: float = 300,
           input_text: str | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(["podman", *args], env=env, capture_output=True, text=True, timeout=timeout,
                          input=input_text)
    if check and proc.returncode != 0:
        raise AssertionError(f"podman {' '.join(args[:3])}: {proc.stderr.strip()[-1500:]}")
    return proc
