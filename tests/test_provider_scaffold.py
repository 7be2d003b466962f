"""The dynamic providers' shared skeleton: diff, secret digests, registered props, live reads.

The real providers run under the SDK's provider host in test_provider_host*.py; here
the skeleton's own rules are checked on a small provider, one rule a test.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pytest

from components.providers.bootstrap import BootstrapArgs, BootstrapProvider
from components.providers.local_node import LocalNodeProvider
from components.providers.local_proxy import LocalHAProxyProvider, LocalSpiderProvider
from components.providers.local_watcher import LocalWatcherProvider
from components.providers.opensvc_service import OpenSvcServiceProvider
from components.providers.scaffold import (
    ResourceInputs,
    ScaffoldProvider,
    read_live,
    resource_options,
    stack_config_value,
)
from components.providers.secret_digest import UNKNOWN, make_digest
from components.providers.slapos_request import SlapOSRequestProvider
from components.providers.ssh_node import SshNodeProvider
from repman.errors import ConfigError


class Toy(ScaffoldProvider):
    replace_keys = ("home",)
    input_keys = ("home", "size")
    secret_keys = ("password",)
    output_keys = ("instance", "secret_digest")
    seen_live: list[str] = []

    def drift(self, olds: dict[str, Any], news: dict[str, Any]) -> list[str]:
        return list(self.seen_live)


def stored(**props: Any) -> dict[str, Any]:
    """What state holds after create: inputs without the secret, plus its digest."""
    return Toy.public_outputs(props)


OLD = {"home": "/a", "size": 1, "password": "pw"}


def test_nothing_changed_is_no_change_and_keeps_the_instance_stable():
    result = Toy().diff("id", stored(**OLD), dict(OLD))
    assert (result.changes, result.replaces, result.stables, result.delete_before_replace) == \
        (False, [], ["instance"], True)


def test_an_input_change_is_an_update_and_a_replace_key_a_replacement():
    assert Toy().diff("id", stored(**OLD), {**OLD, "size": 2}).changes is True
    result = Toy().diff("id", stored(**OLD), {**OLD, "home": "/b"})
    assert result.changes is True and result.replaces == ["home"]


def test_a_new_secret_is_seen_through_the_digest_only():
    olds = stored(**OLD)
    assert "password" not in olds and olds["secret_digest"].startswith("pbkdf2-sha256$")
    assert Toy().diff("id", olds, {**OLD, "password": "other"}).changes is True


def test_an_unknown_value_in_preview_is_a_change():
    assert Toy().diff("id", stored(**OLD), {**OLD, "extra": [UNKNOWN]}).changes is True


def test_drift_is_asked_only_when_the_inputs_are_the_same():
    toy = Toy()
    toy.seen_live = ["not running"]
    assert toy.diff("id", stored(**OLD), dict(OLD)).changes is True
    asked: list[dict[str, Any]] = []
    toy.drift = lambda olds, news: asked.append(news) or []   # type: ignore[method-assign]
    toy.diff("id", stored(**OLD), {**OLD, "size": 9})
    assert asked == []


def test_the_digest_is_kept_while_the_secret_is_the_same():
    olds = stored(**OLD)
    assert Toy.kept_digest(olds, dict(OLD)) == olds["secret_digest"]
    assert Toy.kept_digest(olds, {**OLD, "password": "new"}) is None
    assert Toy.public_outputs(OLD, olds["secret_digest"])["secret_digest"] == olds["secret_digest"]


def test_registered_props_wrap_secrets_stamp_the_version_and_reserve_outputs():
    props = Toy.resource_props({"home": "/a", "size": 1, "password": "pw"})
    assert isinstance(props["password"], pulumi.Output)
    assert props["provider_version"] == "1"
    assert props["instance"] is None and props["secret_digest"] is None
    assert props["home"] == "/a"


def test_resource_options_set_only_what_the_resource_asks_for():
    bare = resource_options(None)
    assert bare.additional_secret_outputs is None and bare.delete_before_replace is None
    both = resource_options(pulumi.ResourceOptions(protect=True), secret_outputs=["secret_digest"],
                            delete_before_replace=True)
    assert both.additional_secret_outputs == ["secret_digest"]
    assert both.delete_before_replace is True and both.protect is True


@dataclass(kw_only=True)
class ToyInputs(ResourceInputs):
    omit_when_empty = ("settings",)
    home: str
    size: int = 0
    settings: dict | None = None


def test_inputs_leave_out_empty_late_fields_only():
    assert ToyInputs(home="/a").inputs() == {"home": "/a", "size": 0}
    assert ToyInputs(home="/a", settings={"x": 1}).inputs() == {"home": "/a", "size": 0, "settings": {"x": 1}}
    off = BootstrapArgs(servers=[], members=[], admin_user="a", admin_password="x", replication_user="r",
                        replication_password="y")
    assert not {"replication_ssl", "load_sql", "load_csv"} & set(off.inputs())
    assert off.inputs()["monitoring_user"] == "" and off.inputs()["ssh_seed_nodes"] == []


def test_read_live_reports_a_process_and_its_config(tmp_path: Path):
    config = tmp_path / "x.cfg"
    assert read_live("id", {"a": 1}, None, config).id == ""
    config.write_text("text")
    seen = read_live("id", {"a": 1}, None, config)
    assert seen.id == "id" and seen.outs["pid"] == 0 and seen.outs["observed"]["running"] is False
    assert read_live("id", {"a": 1}, 42, config).outs["observed"]["running"] is True


class StackConfig(dict):
    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key, default)


def test_stack_config_values_resolve_files_and_are_validated(tmp_path: Path):
    key = tmp_path / "key"
    key.write_text("KEYTEXT")
    assert stack_config_value(StackConfig({"repman:onpremise-ssh-key": f'{{"file": "{key}"}}'}),
                              "onpremise-ssh-key") == "KEYTEXT"
    cred = stack_config_value(StackConfig({"repman:opensvc-credential": "root:pw"}), "opensvc-credential")
    assert (cred.user, cred.password) == ("root", "pw")
    with pytest.raises(ConfigError):
        stack_config_value(StackConfig({"repman:onpremise-ssh-port": "x"}), "onpremise-ssh-port")


# Each provider's declared keys and diff answer, as they were before the skeleton.
PROVIDERS = [
    (LocalNodeProvider, ("base_dir", "server_id"), ("admin_password",), ["instance"], True),
    (SshNodeProvider, ("host", "base_dir", "node_name", "server_id"), ("admin_password",), ["instance"], True),
    (LocalWatcherProvider, (), ("secrets",), ["instance"], True),
    (LocalHAProxyProvider, ("base_dir",), (), ["instance"], True),
    (LocalSpiderProvider, ("base_dir", "server_id"), ("admin_password", "remote_password"), ["instance"], True),
    (BootstrapProvider, (), ("admin_password", "replication_password", "monitoring_password"), [], False),
    (OpenSvcServiceProvider, ("api_url", "namespace", "node_name"), ("admin_password",), ["instance"], True),
    (SlapOSRequestProvider, ("title", "software_release", "shared", "cluster"), (), None, True),
]


@pytest.mark.parametrize(("provider", "replaces", "secrets", "stables", "first"), PROVIDERS,
                         ids=[p[0].__name__ for p in PROVIDERS])
def test_each_provider_keeps_its_keys_and_diff_shape(provider, replaces, secrets, stables, first):
    assert provider.replace_keys == replaces and provider.secret_keys == secrets
    assert "provider_version" in provider.input_keys
    olds = {k: "old" for k in provider.replace_keys + provider.input_keys}
    olds["secret_digest"] = make_digest({}, secrets)
    result = provider().diff("id", olds, {**olds, "provider_version": "2"})
    assert result.changes is True and result.replaces == []
    assert result.stables == stables and result.delete_before_replace is first
    if replaces:
        moved = provider().diff("id", olds, {**olds, replaces[0]: "new"})
        assert moved.replaces == [replaces[0]]
