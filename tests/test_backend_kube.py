"""Kubernetes backend: the program of stacks/Pulumi.kube.yaml under Pulumi's mocks.

Graph assertions (Services select the right pods, volumes and resources from the
plan, PVC patches for resizing, least RBAC, secrets never in plain text) and every
generated manifest checked by ``kubernetes-validate --strict``. The label router and
the in-cluster bootstrap's label step are checked against a recording stand-in of the
Kubernetes API; the admin init script runs for real against a mariadbd.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from repman.db import ServerAddress
from repman.routing import kube as rk
from repman.routing.base import RoutingError, Topology
from repman.routing.kube import KubeApi, KubeLabelRouter, desired_roles
from repman.spec import load_cluster_spec
from testkit.pulumi_mocks import (
    KUBE_PASSWORDS,
    KUBE_SECRET_CONFIG,
    ROOT,
    Program,
    is_secret,
    manifests,
    plain_strings,
    run_program,
    stack_config,
    unwrap,
)
from testkit.standins.json_http import JsonHandler, StandinServer


def kubernetes_validate_strict(docs: list[dict[str, Any]], directory: Path) -> subprocess.CompletedProcess:
    files = []
    for i, doc in enumerate(docs):
        path = directory / f"{i:02d}-{doc['kind']}-{doc['metadata']['name']}.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        files.append(str(path))
    binary = shutil.which("kubernetes-validate") or str(Path(sys.executable).parent / "kubernetes-validate")
    return subprocess.run([binary, "--strict", *files], capture_output=True, text=True, timeout=300)


# -- the Kubernetes program -----------------------------------------------------------------
@pytest.fixture
def kube(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    def run(**overrides: Any) -> Program:
        config = {**stack_config("kube"), **KUBE_SECRET_CONFIG, "repman:prov-state-dir": str(tmp_path / "state")}
        config.update({f"repman:{k}": v for k, v in overrides.items()})
        return run_program(monkeypatch, config)
    return run


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_stack_file_is_a_valid_kube_cluster():
    spec = load_cluster_spec({**stack_config("kube"), **KUBE_SECRET_CONFIG}, project_dir=ROOT)
    assert spec.orchestrator == "kube" and spec.kube_namespace == "databases"
    assert spec.node_count == spec.plan.db_nodes == 3


def test_every_manifest_passes_kubernetes_validate_strict(kube, tmp_path: Path):
    program = kube(**{"prov-db-tags": ["gtidstrict", "row", "readonly", "semisync", "ssl"],
                      "prov-db-docker-tmpfs-size": "256m"})
    docs = manifests(program)
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == sorted([
        "Secret", "Secret", "ConfigMap", "ConfigMap", "ConfigMap", "Service", "Service", "Service",
        "StatefulSet", "PodDisruptionBudget", "ServiceAccount", "Role", "RoleBinding", "Deployment", "Job",
        *["PersistentVolumeClaim"] * 3,
    ])
    out_dir = tmp_path / "manifests"
    out_dir.mkdir()
    done = kubernetes_validate_strict(docs, out_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count(" passed for resource ") == len(docs), done.stdout
    # Control: strict validation does reject an unknown field (camelCase conversion matters).
    broken = next(d for d in docs if d["kind"] == "StatefulSet")
    broken = {**broken, "spec": {**broken["spec"], "service_name": broken["spec"]["serviceName"]}}
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    rejected = kubernetes_validate_strict([broken], bad_dir)
    assert rejected.returncode != 0 and "service_name" in rejected.stdout + rejected.stderr


def test_services_select_the_pods_the_watcher_labels(kube):
    program = kube()
    sts = unwrap(program.one(":StatefulSet")["inputs"])
    pod_labels = sts["spec"]["template"]["metadata"]["labels"]
    assert sts["spec"]["selector"]["matchLabels"] == pod_labels
    assert rk.ROLE_LABEL not in pod_labels   # only the watcher/bootstrap sets roles
    services = {unwrap(s["inputs"])["metadata"]["name"]: unwrap(s["inputs"]) for s in program.of_type(":Service")}
    assert set(services) == {"shop-db-hl", "shop-primary", "shop-replicas"}
    headless = services["shop-db-hl"]["spec"]
    assert headless["clusterIP"] == "None" and headless["selector"] == pod_labels
    assert sts["spec"]["serviceName"] == "shop-db-hl"
    for service in services.values():
        assert service["metadata"]["namespace"] == "databases"
        assert service["spec"]["ports"] == [{"name": "mysql", "port": 3306, "targetPort": "mysql"}]

    # Three pods as the StatefulSet makes them, labelled as the router does after bootstrap.
    names = rk.KubeNames("shop", "databases")
    servers = [ServerAddress(names.pod_host(i), 3306) for i in range(3)]
    topology = Topology(cluster="shop", primary=servers[0], replicas=(servers[1], servers[2]))
    roles = desired_roles(names, topology, [names.pod(i) for i in range(3)])
    pods = {pod: {**pod_labels, rk.ROLE_LABEL: role} for pod, role in roles.items()}
    selected = {name: sorted(p for p, labels in pods.items() if matches(s["spec"]["selector"], labels))
                for name, s in services.items()}
    assert selected == {"shop-db-hl": ["shop-db-0", "shop-db-1", "shop-db-2"],
                        "shop-primary": ["shop-db-0"], "shop-replicas": ["shop-db-1", "shop-db-2"]}
    # After a failover to pod 2, the primary Service selects pod 2 only.
    moved = desired_roles(names, Topology(cluster="shop", primary=servers[2], replicas=(servers[1],),
                                          unhealthy=(servers[0],)), list(pods))
    assert moved == {"shop-db-0": None, "shop-db-1": "replica", "shop-db-2": "primary"}

    assert program.outputs["servers"] == [s.url for s in servers]
    assert program.outputs["backend"]["write_endpoint"] == "shop-primary.databases.svc.cluster.local:3306"
    assert "shop-bootstrap" not in {r["name"] for r in program.of_type(":Bootstrap")}


def test_volumes_and_resources_come_from_the_plan_and_resize_patches_pvcs(kube):
    small = kube(**{"prov-service-plan": "x3.small"})
    plan_small = load_cluster_spec({**KUBE_SECRET_CONFIG, "repman:prov-service-plan": "x3.small"}).plan
    sts = unwrap(small.one(":StatefulSet")["inputs"])
    claim = sts["spec"]["volumeClaimTemplates"][0]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"]["resources"]["requests"]["storage"] == f"{plan_small.data_size_gb}Gi"
    assert claim["spec"]["storageClassName"] == "fast-ssd"
    container = sts["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["requests"] == {"cpu": str(plan_small.cores), "memory": f"{plan_small.memory_mb}Mi"}
    assert container["resources"]["limits"] == {"memory": f"{plan_small.memory_mb}Mi"}
    assert sts["spec"]["replicas"] == 3
    anti = sts["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    term = anti["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"] == sts["spec"]["selector"]["matchLabels"]
    # The claim template is immutable: Pulumi must ignore its changes...
    assert "spec.volumeClaimTemplates" in small.monitor.options["shop-statefulset"]["ignore_changes"]
    # ...and a bigger plan patches each pod's claim instead.
    medium = kube(**{"prov-service-plan": "x3.medium"})
    plan_medium = load_cluster_spec({**KUBE_SECRET_CONFIG, "repman:prov-service-plan": "x3.medium"}).plan
    patches = {unwrap(p["inputs"])["metadata"]["name"]: unwrap(p["inputs"]) for p in medium.of_type(
        ":PersistentVolumeClaimPatch")}
    assert sorted(patches) == ["data-shop-db-0", "data-shop-db-1", "data-shop-db-2"]
    for patch in patches.values():
        assert patch["spec"] == {"resources": {"requests": {"storage": f"{plan_medium.data_size_gb}Gi"}}}
        assert patch["metadata"]["namespace"] == "databases"
    for i in (1, 2, 3):
        assert "shop-statefulset" in medium.monitor.options[f"shop-db{i}-volume-size"]["depends_on"]
    pdb = unwrap(medium.one(":PodDisruptionBudget")["inputs"])
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == sts["spec"]["selector"]["matchLabels"]


def test_mycnf_configmap_is_auto_named_and_mounted(kube):
    first = kube()
    second = kube(**{"prov-db-tags": ["gtidstrict", "row", "readonly", "slow"]})
    cms = {r["name"]: unwrap(r["inputs"]) for r in first.of_type(":ConfigMap")}
    assert "name" not in cms["shop-mycnf"]["metadata"]   # auto-named: a new my.cnf is a new object
    text = cms["shop-mycnf"]["data"]["repman.cnf"]
    assert "gtid_strict_mode" in text and "bind_address              = 0.0.0.0" in text
    changed = {r["name"]: unwrap(r["inputs"]) for r in second.of_type(":ConfigMap")}
    assert changed["shop-mycnf"]["data"] != cms["shop-mycnf"]["data"]
    sts = unwrap(first.one(":StatefulSet")["inputs"])
    volumes = {v["name"]: v for v in sts["spec"]["template"]["spec"]["volumes"]}
    assert volumes["mycnf"]["configMap"]["name"] == "shop-mycnf-a1b2c3d4"   # the generated name
    command = sts["spec"]["template"]["spec"]["containers"][0]["command"]
    assert "--server-id=\"$((ord + 1))\"" in command[2]


def test_secrets_never_in_plain_text_and_least_rbac(kube):
    program = kube()
    secret = program.one(":Secret", "shop-credentials")
    string_data = secret["inputs"]["stringData"]
    assert all(is_secret(v) for v in string_data.values()) or is_secret(string_data)
    for r in program.recorder.registered:
        for text in plain_strings(r["inputs"]):
            assert not any(pw in text for pw in KUBE_PASSWORDS), (r["name"], text[:80])
    watcher_map = unwrap(program.one(":ConfigMap", "shop-watcher-config")["inputs"])
    watcher_cfg = yaml.safe_load(watcher_map["data"]["repman.yaml"])
    section = watcher_cfg["clusters"]["shop"]
    assert section["db-servers-credential"] == {"env": "REPMAN_DB_SERVERS_CREDENTIAL"}
    assert section["db-servers-hosts"][0] == "shop-db-0.shop-db-hl.databases.svc.cluster.local:3306"
    assert section["kube-role-labels"] is True   # the watcher re-points the -primary Service
    assert section["failover-fence-kube-pods"] is True   # and deletes a frozen old master's pod
    deployment = unwrap(program.one(":Deployment")["inputs"])
    pod = deployment["spec"]["template"]["spec"]
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["REPMAN_DB_SERVERS_CREDENTIAL"]["valueFrom"]["secretKeyRef"] == {
        "name": "shop-credentials", "key": "db-servers-credential"}
    assert pod["serviceAccountName"] == "shop-watcher"
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"]["type"] == "Recreate"
    role = unwrap(program.one(":Role")["inputs"])
    assert role["metadata"]["namespace"] == "databases"
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"],
                              "verbs": ["get", "list", "watch", "patch", "delete"]}]
    assert not program.of_type(":ClusterRole") and not program.of_type(":ClusterRoleBinding")
    binding = unwrap(program.one(":RoleBinding")["inputs"])
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "shop-watcher"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "shop-watcher", "namespace": "databases"}]
    assert program.secret >= {"admin_credential", "replication_credential"}


# -- the label router against a recording stand-in of the Kubernetes API ---------------------
class RecordingKubeApi(StandinServer):
    """Recording stand-in of the Kubernetes pods API: checks token, paths and patch bodies."""

    def __init__(self, token: str, namespace: str, pods: dict[str, dict[str, str]]) -> None:
        self.token, self.namespace, self.pods = token, namespace, pods
        self.requests: list[tuple[str, str, Any]] = []
        super().__init__(_KubeHandler)


class _KubeHandler(JsonHandler):
    server: RecordingKubeApi

    def _authorised(self) -> bool:
        if self.headers.get("Authorization") != f"Bearer {self.server.token}":
            self._reply(401, {"kind": "Status", "message": "Unauthorized"})
            return False
        return True

    def do_GET(self) -> None:  # noqa: N802
        from urllib.parse import parse_qs, urlparse

        self.server.requests.append(("GET", self.path, None))
        if not self._authorised():
            return
        url = urlparse(self.path)
        assert url.path == f"/api/v1/namespaces/{self.server.namespace}/pods", url.path
        wanted = dict(p.split("=", 1) for p in parse_qs(url.query)["labelSelector"][0].split(","))
        items = [{"metadata": {"name": n, "labels": dict(labels)}}
                 for n, labels in sorted(self.server.pods.items()) if matches(wanted, labels)]
        self._reply(200, {"kind": "PodList", "items": items})

    def do_PATCH(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append(("PATCH", self.path, body))
        if not self._authorised():
            return
        assert self.headers["Content-Type"] == "application/merge-patch+json"
        prefix = f"/api/v1/namespaces/{self.server.namespace}/pods/"
        assert self.path.startswith(prefix)
        labels = self.server.pods[self.path[len(prefix):]]
        assert set(body) == {"metadata"} and set(body["metadata"]) == {"labels"}
        for key, value in body["metadata"]["labels"].items():
            if value is None:
                labels.pop(key, None)
            else:
                labels[key] = value
        primaries = [n for n, l in self.server.pods.items() if l.get(rk.ROLE_LABEL) == rk.PRIMARY]
        assert len(primaries) <= 1, f"two primaries at once: {primaries}"
        self._reply(200, {"metadata": {"name": self.path[len(prefix):], "labels": labels}})


    def do_DELETE(self) -> None:  # noqa: N802
        self.server.requests.append(("DELETE", self.path, None))
        if not self._authorised():
            return
        from urllib.parse import parse_qs, urlparse
        url = urlparse(self.path)
        prefix = f"/api/v1/namespaces/{self.server.namespace}/pods/"
        assert url.path.startswith(prefix) and parse_qs(url.query) == {"gracePeriodSeconds": ["0"]}, self.path
        name = url.path[len(prefix):]
        if name not in self.server.pods:
            self._reply(404, {"kind": "Status", "message": f'pods "{name}" not found'})
            return
        del self.server.pods[name]
        self._reply(200, {"kind": "Pod", "metadata": {"name": name}})


@pytest.fixture
def kube_api() -> Iterator[RecordingKubeApi]:
    pods = {f"shop-db-{i}": dict(rk.selector_labels("shop")) for i in range(3)}
    pods["other-db-0"] = dict(rk.selector_labels("other"))
    server = RecordingKubeApi("sa-token", "databases", pods)
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_label_router_flips_roles_through_the_api(kube_api: RecordingKubeApi):
    names = rk.KubeNames("shop", "databases")
    router = KubeLabelRouter(KubeApi(kube_api.url, "sa-token", "databases"), names)
    servers = [ServerAddress(names.pod_host(i), 3306) for i in range(3)]
    router.apply(Topology(cluster="shop", primary=servers[0], replicas=(servers[1], servers[2])))
    roles = {n: l.get(rk.ROLE_LABEL) for n, l in kube_api.pods.items()}
    assert roles == {"shop-db-0": "primary", "shop-db-1": "replica", "shop-db-2": "replica", "other-db-0": None}
    get = kube_api.requests[0]
    assert get[0] == "GET" and "labelSelector=" in get[1] and "app.kubernetes.io%2Finstance%3Dshop" in get[1]
    assert [r[0] for r in kube_api.requests] == ["GET", "PATCH", "PATCH", "PATCH"]

    # Failover to pod 2 with pod 0 dead: the old primary is unlabelled before the new one is set.
    kube_api.requests.clear()
    router.apply(Topology(cluster="shop", primary=servers[2], replicas=(servers[1],), unhealthy=(servers[0],)))
    patches = [(r[1].rsplit("/", 1)[1], r[2]["metadata"]["labels"][rk.ROLE_LABEL]) for r in kube_api.requests
               if r[0] == "PATCH"]
    assert patches == [("shop-db-0", None), ("shop-db-2", "primary")]
    # Nothing to change: one GET, no PATCH.
    kube_api.requests.clear()
    router.apply(Topology(cluster="shop", primary=servers[2], replicas=(servers[1],), unhealthy=(servers[0],)))
    assert [r[0] for r in kube_api.requests] == ["GET"]


def test_label_router_reports_a_refused_token(kube_api: RecordingKubeApi):
    names = rk.KubeNames("shop", "databases")
    router = KubeLabelRouter(KubeApi(kube_api.url, "wrong-token", "databases"), names)
    with pytest.raises(RoutingError) as info:
        router.apply(Topology(cluster="shop", primary=ServerAddress(names.pod_host(0), 3306)))
    assert str(info.value).startswith("kube-labels: GET /api/v1/namespaces/databases/pods?")
    assert "HTTP 401" in str(info.value)


# -- the admin init script, for real ---------------------------------------------------------
def test_admin_init_script_creates_the_admin_with_any_password(testbed, tmp_path: Path):
    """Sourced as the image's entrypoint would, with docker_process_sql talking to a real server."""
    node = testbed.nodes[0]
    tricky = "p'a\\ss\"word $x `y`"
    script = tmp_path / "run.sh"
    script.write_text(
        "docker_process_sql() { mariadb --no-defaults --socket=\"$SOCK\" -uroot \"$@\"; }\n"
        f"source {ROOT / 'templates' / 'kube' / 'admin-init.sh'}\n"
    )
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=60, env={
        "PATH": "/usr/bin:/bin:/usr/sbin", "SOCK": str(node.paths.socket),
        "REPMAN_ADMIN_USER": "kube-admin", "REPMAN_ADMIN_PASSWORD": tricky,
    })
    assert done.returncode == 0, done.stderr
    from repman.db import Credential, connect, query

    with connect(ServerAddress(node.host, node.port), Credential("kube-admin", tricky)) as conn:
        grants = " ".join(next(iter(r.values())) for r in query(conn, "SHOW GRANTS"))
    assert "GRANT ALL PRIVILEGES ON *.* TO `kube-admin`@`%`" in grants and "WITH GRANT OPTION" in grants


def test_admin_init_script_with_the_hash_only_keeps_the_password_out_of_env_and_logs(testbed, tmp_path: Path):
    """The pod gets REPMAN_ADMIN_PASSWORD_HASH, not the password; the general log sees only the hash."""
    from repman.db import Credential, connect, execute
    from repman.password_hash import native_password_hash

    node = testbed.nodes[0]
    clear = "kube-clear-pw-1"
    general = tmp_path / "general.log"
    with connect(ServerAddress(node.host, node.port), testbed.admin) as conn:
        execute(conn, "SET GLOBAL general_log_file = %s", (str(general),))
        execute(conn, "SET GLOBAL log_output = 'FILE'")
        execute(conn, "SET GLOBAL general_log = ON")
    script = tmp_path / "run.sh"
    script.write_text(
        "docker_process_sql() { mariadb --no-defaults --socket=\"$SOCK\" -uroot \"$@\"; }\n"
        f"source {ROOT / 'templates' / 'kube' / 'admin-init.sh'}\n"
    )
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=60, env={
        "PATH": "/usr/bin:/bin:/usr/sbin", "SOCK": str(node.paths.socket),
        "REPMAN_ADMIN_USER": "kube-admin", "REPMAN_ADMIN_PASSWORD_HASH": native_password_hash(clear),
    })
    assert done.returncode == 0, done.stderr
    connect(ServerAddress(node.host, node.port), Credential("kube-admin", clear)).close()
    text = general.read_text()
    assert "kube-admin" in text and native_password_hash(clear) in text and clear not in text


# -- the in-network bootstrap step, for real ---------------------------------------------------
def test_in_network_bootstrap_wires_a_real_cluster_from_the_watcher_config(testbed, tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch):
    """What the bootstrap Job/container runs: the watcher YAML (secrets as env refs) -> bootstrap."""
    from repman.backends.container_bootstrap import run
    from repman.db import connect, query

    servers = [a.url for a in testbed.addresses]
    config = tmp_path / "repman.yaml"
    config.write_text(yaml.safe_dump({"clusters": {"shop": {
        "db-servers-hosts": servers, "db-servers-prefered-master": servers[1],
        "db-servers-credential": {"env": "REPMAN_DB_SERVERS_CREDENTIAL"},
        "replication-credential": {"env": "REPMAN_REPLICATION_CREDENTIAL"},
    }}}))
    monkeypatch.setenv("REPMAN_DB_SERVERS_CREDENTIAL", f"{testbed.admin.user}:{testbed.admin.password}")
    monkeypatch.setenv("REPMAN_REPLICATION_CREDENTIAL", f"{testbed.replication.user}:{testbed.replication.password}")
    result = run(str(config), "shop", None, None, timeout=60)
    assert result.primary == testbed.addresses[1]
    assert sorted(result.replicas) == sorted([testbed.addresses[0], testbed.addresses[2]])
    for replica in result.replicas:
        with connect(replica, testbed.admin) as conn:
            status = query(conn, "SHOW SLAVE STATUS")[0]
        assert status["Master_Port"] == testbed.addresses[1].port and status["Slave_SQL_Running"] == "Yes"
    assert run(str(config), "shop", None, None, timeout=60).actions == []   # a rerun changes nothing


def _shop_watcher(tmp_path: Path, monkeypatch, kube_api: RecordingKubeApi, **keys: Any):
    """The cluster "shop" of pods in "databases" as its watcher loads it, the in-cluster API the stand-in."""
    from repman.watcher.config import load_config

    names = rk.KubeNames("shop", "databases")
    config = tmp_path / "repman.yaml"
    config.write_text(yaml.safe_dump({"clusters": {"shop": {
        "db-servers-hosts": [f"{names.pod_host(i)}:3306" for i in range(3)], "db-servers-credential": "repman:x",
        "replication-credential": "repl:y", **keys}}}))
    monkeypatch.setattr(KubeApi, "in_cluster", classmethod(lambda cls: KubeApi(kube_api.url, "sa-token", "databases")))
    return names, load_config(config).clusters["shop"]


def test_watcher_config_builds_the_label_router_and_follows_a_failover(kube_api: RecordingKubeApi,
                                                                        monkeypatch, tmp_path: Path):
    """The watcher's own wiring: `kube-role-labels` in its config gives a router on the in-cluster API."""
    from repman.routing import build_routers, notify

    names, cfg = _shop_watcher(tmp_path, monkeypatch, kube_api, **{"kube-role-labels": True})
    routers = build_routers(cfg)
    assert [r.name for r in routers] == ["kube-labels"]
    servers = [ServerAddress(names.pod_host(i), 3306) for i in range(3)]
    result = notify(routers, Topology(cluster="shop", primary=servers[1], replicas=(servers[2],),
                                      unhealthy=(servers[0],), reason="failover"), lambda msg: None)
    assert result == {"kube-labels": "ok"}
    assert {n: l.get(rk.ROLE_LABEL) for n, l in kube_api.pods.items()} == {
        "shop-db-0": None, "shop-db-1": "primary", "shop-db-2": "replica", "other-db-0": None}


def test_label_router_outside_a_pod_is_a_clear_error(monkeypatch, tmp_path: Path):
    from repman.errors import RepmanError
    from repman.routing import build_routers
    from repman.watcher.config import load_config

    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    config = tmp_path / "repman.yaml"
    config.write_text(yaml.safe_dump({"clusters": {"shop": {
        "db-servers-hosts": ["127.0.0.1:3306"], "db-servers-credential": "repman:x",
        "replication-credential": "repl:y", "kube-role-labels": True}}}))
    with pytest.raises(RepmanError, match="not running in a Kubernetes pod"):
        build_routers(load_config(config).clusters["shop"])


def test_seed_004_settings_reach_the_pods(kube):
    """prov-db-* values in the shared my.cnf; /tmp sized by prov-db-disk-temp-size, in memory with
    prov-db-docker-tmpfs-size."""
    program = kube(**{"prov-db-max-connections": 700, "prov-db-expire-log-days": 2, "prov-db-domain": 3,
                      "prov-db-disk-temp-size": 512})
    text = {r["name"]: unwrap(r["inputs"]) for r in program.of_type(":ConfigMap")}["shop-mycnf"]["data"]["repman.cnf"]
    for line in ("max_connections           = 700", "expire_logs_days          = 2", "gtid_domain_id            = 3"):
        assert line in text
    spec = unwrap(program.one(":StatefulSet")["inputs"])["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["tmp"]["emptyDir"] == {"sizeLimit": "512Mi"}
    assert {"name": "tmp", "mountPath": "/tmp"} in spec["containers"][0]["volumeMounts"]
    in_memory = unwrap(kube(**{"prov-db-docker-tmpfs-size": "256m"}).one(":StatefulSet")["inputs"])
    tmp = {v["name"]: v for v in in_memory["spec"]["template"]["spec"]["volumes"]}["tmp"]
    assert tmp["emptyDir"] == {"medium": "Memory", "sizeLimit": "256Mi"}


def test_a_frozen_old_master_pod_is_deleted_through_the_api(kube_api: RecordingKubeApi, monkeypatch, tmp_path: Path):
    """failover-fence-kube-pods: the fence of an old master that answers nothing deletes its pod
    (grace period 0) with the watcher's token; a host outside the cluster deletes nothing."""
    from repman.watcher.fencing import fence_outside

    names, cfg = _shop_watcher(tmp_path, monkeypatch, kube_api, **{"failover-fence-kube-pods": True})
    said = fence_outside(cfg, ServerAddress(names.pod_host(0), 3306), 2.0)
    assert said == f"fenced {names.pod_host(0)}:3306: deleted its pod shop-db-0 (grace period 0)"
    assert "shop-db-0" not in kube_api.pods and {"shop-db-1", "shop-db-2"} <= set(kube_api.pods)
    assert kube_api.requests[-1] == ("DELETE", "/api/v1/namespaces/databases/pods/shop-db-0?gracePeriodSeconds=0", None)
    # Gone already (the StatefulSet has not made it again yet): said, not raised.
    again = fence_outside(cfg, ServerAddress(names.pod_host(0), 3306), 2.0)
    assert again.startswith(f"fence of {names.pod_host(0)}:3306 through the Kubernetes API failed:") and "404" in again
    monkeypatch.setattr(KubeApi, "in_cluster", classmethod(lambda cls: KubeApi(kube_api.url, "wrong", "databases")))
    refused = fence_outside(cfg, ServerAddress(names.pod_host(1), 3306), 2.0)
    assert "401" in refused and "shop-db-1" in kube_api.pods
