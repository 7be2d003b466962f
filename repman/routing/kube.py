"""Flip the role label of database pods so the ``-primary``/``-replicas`` Services follow the topology.

Routing owns this router like every other one: the Kubernetes backend (``repman.backends``,
``components/backends/kube.py``) imports the names, labels and selectors from here, so the
Services it declares select exactly what this router flips, and routing imports no backend.

Talks to the Kubernetes API with the pod's service account (no client library):
list the cluster's pods, then merge-patch only the labels that differ. The old
primary loses its label before the new one gets it, so the ``-primary`` Service
never selects two pods. The service account needs get/list/watch/patch on pods
in its own namespace, nothing more.
"""

from __future__ import annotations

import json
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repman.errors import RepmanError
from repman.routing.base import RoutingError, Topology

SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
ROLE_LABEL = "repman.io/role"
PRIMARY, REPLICA = "primary", "replica"
DATA_VOLUME = "data"


@dataclass(frozen=True)
class KubeNames:
    """Every object name of one cluster (all in one namespace)."""

    cluster: str
    namespace: str

    @property
    def statefulset(self) -> str:
        return f"{self.cluster}-db"

    @property
    def headless(self) -> str:
        return f"{self.cluster}-db-hl"

    @property
    def primary_service(self) -> str:
        return f"{self.cluster}-primary"

    @property
    def replicas_service(self) -> str:
        return f"{self.cluster}-replicas"

    @property
    def watcher(self) -> str:
        return f"{self.cluster}-watcher"

    def pod(self, ordinal: int) -> str:
        return f"{self.statefulset}-{ordinal}"

    def pod_host(self, ordinal: int) -> str:
        """Stable DNS name of a StatefulSet pod through the headless Service."""
        return f"{self.pod(ordinal)}.{self.headless}.{self.namespace}.svc.cluster.local"

    def pvc(self, ordinal: int) -> str:
        """The claim the StatefulSet controller makes from the template for one pod."""
        return f"{DATA_VOLUME}-{self.pod(ordinal)}"

    def service_host(self, service: str) -> str:
        return f"{service}.{self.namespace}.svc.cluster.local"

    def pod_of_host(self, host: str) -> str | None:
        """Pod name from a server host of this cluster (``<pod>.<headless>...``), else None."""
        first, _, rest = host.partition(".")
        if first.startswith(self.statefulset + "-") and (not rest or rest.startswith(self.headless)):
            return first
        return None


def selector_labels(cluster: str) -> dict[str, str]:
    """Labels every database pod carries (the StatefulSet selector)."""
    return {
        "app.kubernetes.io/name": "mariadb",
        "app.kubernetes.io/instance": cluster,
        "app.kubernetes.io/component": "database",
        "app.kubernetes.io/managed-by": "repman",
    }


def role_selector(cluster: str, role: str) -> dict[str, str]:
    """What the ``-primary``/``-replicas`` Services select: the pods this router labels ``role``."""
    return {**selector_labels(cluster), ROLE_LABEL: role}


class KubeApiError(RepmanError):
    """The Kubernetes API refused or failed a request."""


@dataclass
class KubeApi:
    """The few pod calls the watcher needs, over HTTPS with a bearer token."""

    base_url: str
    token: str
    namespace: str
    ca_file: str = ""
    timeout: float = 10.0

    @classmethod
    def in_cluster(cls) -> KubeApi:
        host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        if not host:
            raise KubeApiError("not running in a Kubernetes pod (KUBERNETES_SERVICE_HOST is unset)")
        try:
            token = (SA_DIR / "token").read_text().strip()
            namespace = (SA_DIR / "namespace").read_text().strip()
        except OSError as exc:
            raise KubeApiError(f"service account files unreadable: {exc.strerror}") from None
        url_host = f"[{host}]" if ":" in host else host
        return cls(f"https://{url_host}:{port}", token, namespace, str(SA_DIR / "ca.crt"))

    def _request(self, method: str, path: str, body: Any = None, content_type: str = "application/json") -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url.rstrip("/") + path, data=data, method=method, headers={
            "Authorization": f"Bearer {self.token}", "Accept": "application/json",
            **({"Content-Type": content_type} if data is not None else {}),
        })
        context = None
        if self.base_url.startswith("https"):
            context = ssl.create_default_context(cafile=self.ca_file or None)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout, context=context) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:200]
            raise KubeApiError(f"{method} {path}: HTTP {exc.code} {detail}".strip()) from None
        except (urllib.error.URLError, OSError) as exc:
            raise KubeApiError(f"{method} {path}: {getattr(exc, 'reason', exc)}") from None

    def list_pods(self, labels: dict[str, str]) -> list[dict[str, Any]]:
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        path = f"/api/v1/namespaces/{self.namespace}/pods?" + urllib.parse.urlencode({"labelSelector": selector})
        return list((self._request("GET", path) or {}).get("items") or [])

    def patch_pod_labels(self, name: str, labels: dict[str, str | None]) -> None:
        """Merge patch: a None value removes the label."""
        self._request("PATCH", f"/api/v1/namespaces/{self.namespace}/pods/{name}",
                      {"metadata": {"labels": labels}}, content_type="application/merge-patch+json")

    def delete_pod(self, name: str) -> None:
        """Delete now (grace period 0): the kubelet kills the containers, the StatefulSet makes a new pod."""
        self._request("DELETE", f"/api/v1/namespaces/{self.namespace}/pods/{name}?gracePeriodSeconds=0")


def desired_roles(names: KubeNames, topology: Topology, pods: list[str]) -> dict[str, str | None]:
    """Role label per pod: the primary, healthy replicas, and no label for the rest."""
    wanted: dict[str, str | None] = {pod: None for pod in pods}
    for replica in topology.replicas:
        pod = names.pod_of_host(replica.host)
        if pod in wanted:
            wanted[pod] = REPLICA
    if topology.primary is not None:
        pod = names.pod_of_host(topology.primary.host)
        if pod in wanted:
            wanted[pod] = PRIMARY
    return wanted


class KubeLabelRouter:
    """A router (``repman.routing.base.Router``) for clusters whose Services select by role label."""

    name = "kube-labels"

    def __init__(self, api: KubeApi, names: KubeNames) -> None:
        self.api = api
        self.names = names

    def apply(self, topology: Topology) -> None:
        try:
            pods = self.api.list_pods(selector_labels(self.names.cluster))
            current = {p["metadata"]["name"]: (p["metadata"].get("labels") or {}).get(ROLE_LABEL) for p in pods}
            wanted = desired_roles(self.names, topology, list(current))
            changes = {pod: role for pod, role in wanted.items() if current.get(pod) != role}
            # Demote first: at no moment may two pods carry the primary label.
            for pod in sorted(changes, key=lambda p: changes[p] == PRIMARY):
                self.api.patch_pod_labels(pod, {ROLE_LABEL: changes[pod]})
        except KubeApiError as exc:
            raise RoutingError(f"kube-labels: {exc}") from None
