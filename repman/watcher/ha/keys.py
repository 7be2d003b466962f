"""Keys of the top-level ``ha:`` section of the watcher file (several watchers sharing clusters)."""

from __future__ import annotations

from repman.keys import Key, key_table

HA_KEYS = key_table(
    Key("ha-etcd-endpoints", "hostports", [],
        "etcd client endpoints (host:port); empty: this watcher runs alone and acts on every cluster",
        default_port=2379),
    Key("ha-etcd-prefix", "str", "/repman", "key prefix of the watchers' leader keys and state in etcd"),
    Key("ha-lease-ttl", "int", 10,
        "seconds of the watcher's etcd lease: a dead leader's clusters move to another watcher within it",
        minimum=2, maximum=300),
    Key("ha-watcher-name", "str", "", "this watcher's name in the leader keys (empty: the host name)"),
    Key("ha-failover-quorum", "int", 1,
        "watchers that must have lost the master before the leader fails it over (1: the leader alone)",
        minimum=1, maximum=1),
    Key("ha-etcd-timeout", "float", 1.0, "seconds an etcd request may take before the next endpoint is tried",
        minimum=0.1, maximum=30),
    Key("ha-etcd-tls-ca", "path", "", "PEM CA of etcd's certificate: talk HTTPS to etcd when set"),
    Key("ha-etcd-tls-cert", "path", "", "PEM client certificate for etcd (with ha-etcd-tls-key)"),
    Key("ha-etcd-tls-key", "path", "", "PEM private key of ha-etcd-tls-cert"),
    Key("ha-etcd-user", "str", "", "etcd user (role-based access); empty: no authentication"),
    Key("ha-etcd-password", "str", "", "password of ha-etcd-user", secret=True),
)
