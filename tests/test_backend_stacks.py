"""Every backend's example stack is valid for repman.spec and for its backend's own checks
(each backend's test file also runs the program of its stack: mocks, or the embedded engine)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from repman.backends import onpremise, opensvc, slapos
from repman.errors import ConfigError
from repman.spec import load_cluster_spec

ROOT = Path(__file__).resolve().parent.parent
SECRETS = {
    "repman:db-servers-credential": "repman:stack-admin-pw",
    "repman:replication-credential": "repl:stack-repl-pw",
    "repman:onpremise-ssh-key": ("-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-real-key\n"
                                 "-----END OPENSSH PRIVATE KEY-----"),
    "repman:opensvc-credential": "root:stack-api-pw",
}
BACKENDS = ("onpremise", "kube", "docker", "opensvc", "slapos")


def config(stack: str, **overrides: object) -> dict:
    raw = yaml.safe_load((ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text())["config"]
    return {**raw, **SECRETS, **{f"repman:{k}": v for k, v in overrides.items()}}


@pytest.mark.parametrize("stack", BACKENDS)
def test_example_stack_validates(stack: str):
    spec = load_cluster_spec(config(stack), project_dir=ROOT)
    assert spec.orchestrator == stack
    assert spec.node_count == spec.plan.db_nodes == 3
    assert "stack-admin-pw" not in repr(spec)
    if stack == "onpremise":
        nodes = onpremise.node_specs_from_spec(spec)
        assert [n.host for n in nodes] == ["10.20.0.11", "10.20.0.12", "10.20.0.13"]
        assert [n.base_dir for n in nodes] == [f"/var/lib/repman/prod-db{i}" for i in (1, 2, 3)]
        auth = onpremise.ssh_auth_from_spec(spec)
        assert auth.user == "deploy" and auth.strict_host_key_checking and "not-a-real-key" not in repr(auth)
    elif stack == "opensvc":
        assert opensvc.settings_from_spec(spec).namespace == "databases"
    elif stack == "slapos":
        assert len(slapos.settings_from_spec(spec).computer_guids) == 3


@pytest.mark.parametrize("overrides, message", [
    ({"onpremise-hosts": ["10.0.0.1"]}, "repman:onpremise-hosts: 1 hosts listed but the cluster has 3 nodes"),
    ({"onpremise-base-dir": "var/lib/{node}"}, "repman:onpremise-base-dir: 'var/lib/{node}' must be an absolute"),
    ({"onpremise-base-dir": "/srv/{host}"}, "repman:onpremise-base-dir: '/srv/{host}': only {cluster} and {node}"),
    ({"onpremise-hosts": ["h", "h", "h"], "onpremise-base-dir": "/srv/db"},
     "repman:onpremise-base-dir: hosts repeat: the directory must contain {node}"),
])
def test_onpremise_bad_values_are_one_line_errors(overrides, message):
    with pytest.raises(ConfigError) as info:
        onpremise.node_specs_from_spec(load_cluster_spec(config("onpremise", **overrides)))
    assert str(info.value).startswith(message)


def test_onpremise_needs_a_key_or_password_and_known_hosts():
    raw = config("onpremise")
    raw.pop("repman:onpremise-ssh-key")
    with pytest.raises(ConfigError) as info:
        onpremise.ssh_auth_from_spec(load_cluster_spec(raw))
    assert str(info.value).startswith("repman:onpremise-ssh-key: set a private key")
    with pytest.raises(ConfigError) as info:
        onpremise.ssh_auth_from_spec(load_cluster_spec(config("onpremise", **{"onpremise-known-hosts": ""})))
    assert str(info.value) == "repman:onpremise-known-hosts: is required while host key checking is on"


def test_unknown_backend_key_is_refused():
    with pytest.raises(ConfigError) as info:
        load_cluster_spec(config("kube", **{"kube-storage-klass": "x"}))
    assert "kube-storage-klass" in str(info.value)


def test_onpremise_watcher_keys_fence_and_salvage_over_ssh_and_validate():
    """The SSH backend tells the watcher how to kill a frozen master on its host (the pid file
    under each node's run dir, as the deploying user) and the watcher's own checks accept it."""
    from components.backends.onpremise import create_backend
    from repman.watcher.config import parse_config

    spec = load_cluster_spec(config("onpremise"), project_dir=ROOT)
    keys = create_backend(spec).salvage_settings()
    servers = [f"{n.host}:{n.port}" for n in onpremise.node_specs_from_spec(spec)]
    assert keys["failover-fence-pid-files"] == [
        f"{s}=/var/lib/repman/prod-db{i}/run/mariadbd.pid" for i, s in enumerate(servers, start=1)]
    assert keys["failover-fence-ssh-user"] == "deploy" and keys["failover-fence-ssh-options"].startswith("-p ")
    section = {"db-servers-hosts": servers, "db-servers-credential": "u:p", "replication-credential": "r:p",
               **keys}
    cfg = parse_config({"clusters": {"prod": section}}).cluster()
    assert cfg.text("failover-fence-ssh-user") == "deploy"
