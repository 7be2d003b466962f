"""Backend keys live beside their backend; ``repman.spec`` assembles them into one schema.

One proxy-tag list and one message: the stack spec, every proxy's config object and
the Nix schema reject the same proxy tags with the same words.
"""

from __future__ import annotations

from typing import Callable

import pytest

from repman.db import Credential, ServerAddress
from repman.errors import ConfigError
from repman.nixschema import nix_schema
from repman.routing.haproxy_config import HAProxyConfig
from repman.routing.maxscale_config import MaxScaleConfig, render_maxscale_config
from repman.routing.proxysql_config import ProxySQLConfig, render_proxysql_config
from repman.spec import BACKEND_KEYS, ORCHESTRATORS, PROVISIONING_KEYS, load_cluster_spec
from repman.tags import DEFAULT_PROXY_TAGS, PROXY_EXCLUSIVE, PROXY_TAGS, validate_proxy_tags

BASE = {"repman:db-servers-credential": "repman:admin-pw", "repman:replication-credential": "repl:repl-pw"}


def spec_error(**overrides: object) -> str:
    with pytest.raises(ConfigError) as info:
        load_cluster_spec({**BASE, **{f"repman:{k}": v for k, v in overrides.items()}}, project_dir="/srv/p")
    return str(info.value)


def test_every_backend_table_holds_only_its_own_keys():
    assert set(BACKEND_KEYS) == set(ORCHESTRATORS) - {"local"}
    for backend, table in BACKEND_KEYS.items():
        assert table, backend
        assert all(name.startswith(f"{backend}-") for name in table), backend


def test_the_schema_holds_every_backend_key_once_and_no_backend_key_elsewhere():
    backend_names = [name for table in BACKEND_KEYS.values() for name in table]
    assert len(backend_names) == len(set(backend_names)) == 32
    for table in BACKEND_KEYS.values():
        for name, key in table.items():
            assert PROVISIONING_KEYS[name] is key
    prefixes = tuple(f"{b}-" for b in BACKEND_KEYS)
    shared = [n for n in PROVISIONING_KEYS if n not in backend_names]
    assert not [n for n in shared if n.startswith(prefixes)]
    assert len(PROVISIONING_KEYS) == len(shared) + len(backend_names)


@pytest.mark.parametrize(("key", "value", "message"), [
    ("onpremise-ssh-port", 0, "repman:onpremise-ssh-port: "),
    ("kube-service-type", "Ingress", "repman:kube-service-type: 'Ingress' is not one of ClusterIP"),
    ("opensvc-credential", "nopassword", "repman:opensvc-credential: "),
])
def test_a_backend_key_is_validated_and_named_like_a_shared_one(key, value, message):
    assert spec_error(**{key: value}).startswith(message)


def test_backend_key_values_reach_the_spec():
    s = load_cluster_spec({**BASE, "repman:kube-namespace": "shop", "repman:onpremise-hosts": '["h1", "h2"]'})
    assert s.kube_namespace == "shop"
    assert s.values["onpremise-hosts"] == ["h1", "h2"]
    assert s.values["slapos-software-type"] == "default"


REJECTED_PROXY_TAGS = [
    (["fast"], "unknown tag 'fast' (known: "),
    (["multimaster"], "tag 'multimaster' contradicts this cluster: multi-master routing"),
    (["readwritesplit", "noreadwritesplit"], "tags 'readwritesplit' and 'noreadwritesplit' contradict each other"),
    (["docker", "pkg"], "tags 'docker' and 'pkg' contradict each other"),
]


def proxy_configs(tags: list[str]) -> dict[str, Callable[[], object]]:
    """Each proxy's own validation of its tags (HAProxy's config object, MaxScale's and ProxySQL's rendering)."""
    servers = (ServerAddress("127.0.0.1", 3311),)
    cred = Credential("u", "p")
    return {
        "haproxy": lambda: HAProxyConfig("c1", servers, "s", "t", tags=tuple(tags)).validate(),
        "maxscale": lambda: render_maxscale_config(MaxScaleConfig("c1", servers, cred, tags=tuple(tags))),
        "proxysql": lambda: render_proxysql_config(ProxySQLConfig("c1", servers, None, cred, cred, tags=tuple(tags))),
    }


@pytest.mark.parametrize(("tags", "message"), REJECTED_PROXY_TAGS)
def test_one_proxy_tag_check_and_message_everywhere(tags, message):
    """The stack spec and the three proxies' configs say the same about the same tags."""
    assert spec_error(**{"prov-proxy-tags": tags}).startswith(f"repman:prov-proxy-tags: {message}")
    for proxy, make in proxy_configs(tags).items():
        with pytest.raises(ConfigError) as info:
            make()
        assert str(info.value).startswith(f"prov-proxy-tags: {message}"), proxy


def test_the_default_proxy_tags_pass_every_proxy():
    for make in proxy_configs(list(DEFAULT_PROXY_TAGS)).values():
        make()


def test_accepted_proxy_tags_keep_their_order_without_repeats():
    assert validate_proxy_tags(["ssl", "masterslave", "ssl", "readonmaster"]) == ["ssl", "masterslave", "readonmaster"]
    assert validate_proxy_tags(DEFAULT_PROXY_TAGS) == list(DEFAULT_PROXY_TAGS)


def test_the_nix_schema_carries_the_same_proxy_vocabulary_and_contradictions():
    schema = nix_schema()
    assert schema["proxyTags"] == sorted(PROXY_TAGS)
    pairs = {tuple(p) for p in schema["conflictingProxyTags"]}
    assert pairs == {group for group in PROXY_EXCLUSIVE}
    for a, b in pairs:
        with pytest.raises(ConfigError, match=f"tags '{a}' and '{b}' contradict each other"):
            validate_proxy_tags([a, b])
