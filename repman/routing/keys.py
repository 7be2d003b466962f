"""Routing configuration keys (proxies, registries, scripts), named as in replication-manager.

The watcher merges this table with ``WATCHER_KEYS``; no name here repeats one there.
"""

from __future__ import annotations

from repman.keys import Key, key_table

ROUTING_KEYS = key_table(
    # Behaviour common to every router.
    Key("proxy-timeout", "float", 2.0,
        "seconds one proxy may take to accept a routing change before it is reported and retried",
        minimum=0.1, maximum=600),
    Key("proxy-resync-interval", "float", 30.0,
        "seconds after which an unchanged routing is pushed again (a restarted proxy forgets it)",
        minimum=0, maximum=86400),
    # Kubernetes: the watcher runs in the cluster's namespace and flips the pods' role label,
    # which the `-primary` and `-replicas` Services select on.
    Key("kube-role-labels", "bool", False,
        "label database pods primary/replica through the Kubernetes API (in-cluster service account)"),
    # HAProxy, driven through its runtime API (stats socket, level admin).
    Key("haproxy", "bool", False, "route through HAProxy, updated by its runtime API"),
    Key("haproxy-servers", "strlist", [],
        "HAProxy hosts, as in repman: each is driven through its runtime API at host:haproxy-api-port"),
    Key("haproxy-api-port", "int", 1999, "HAProxy runtime API TCP port on each haproxy-servers host (repman's 1999)",
        minimum=1, maximum=65535),
    Key("haproxy-runtime-api-servers", "strlist", [],
        "HAProxy runtime API endpoints given directly: unix socket paths or host:port of "
        "`stats socket ... level admin` (ours; added to those derived from haproxy-servers)"),
    Key("haproxy-write-port", "int", 3306, "HAProxy frontend port for writes (to the leader)",
        minimum=1, maximum=65535),
    Key("haproxy-read-port", "int", 3307, "HAProxy frontend port for reads (balanced over replicas)",
        minimum=1, maximum=65535),
    Key("haproxy-api-write-backend", "str", "service_write", "HAProxy backend that holds the leader server"),
    Key("haproxy-api-read-backend", "str", "service_read", "HAProxy backend that holds the replicas"),
    Key("haproxy-read-on-master", "bool", False,
        "keep the primary in the read backend as a fallback when no replica is healthy"),
    # ProxySQL, driven over its admin interface (MySQL protocol).
    Key("proxysql", "bool", False, "route through ProxySQL, updated over its admin interface"),
    Key("proxysql-servers", "strlist", [],
        "ProxySQL hosts (host, or host:port to override proxysql-admin-port)"),
    Key("proxysql-admin-port", "int", 6032, "ProxySQL admin interface port", minimum=1, maximum=65535),
    Key("proxysql-port", "int", 6033, "ProxySQL client port (rendered into its configuration)",
        minimum=1, maximum=65535),
    Key("proxysql-user", "str", "admin", "ProxySQL admin user"),
    Key("proxysql-password", "str", "admin", "ProxySQL admin password", secret=True),
    Key("proxysql-writer-hostgroup", "int", 0, "ProxySQL hostgroup for the primary", minimum=0),
    Key("proxysql-reader-hostgroup", "int", 1, "ProxySQL hostgroup for the replicas", minimum=0),
    Key("proxysql-copy-grants", "bool", True, "copy the primary's users into ProxySQL mysql_users"),
    Key("proxysql-save-to-disk", "bool", True, "SAVE ... TO DISK after every change"),
    # MariaDB MaxScale, driven over its REST API.
    Key("maxscale", "bool", False, "route through MaxScale, informed over its REST API"),
    Key("maxscale-servers", "strlist", [],
        "MaxScale hosts (host, or host:port to override maxscale-api-port)"),
    Key("maxscale-api-port", "int", 8989, "MaxScale REST API port", minimum=1, maximum=65535),
    Key("maxscale-user", "str", "admin", "MaxScale REST API user"),
    Key("maxscale-pass", "str", "mariadb", "MaxScale REST API password", secret=True),
    Key("maxscale-monitor-follow", "bool", False,
        "let MaxScale's own monitor follow the topology: only check that it agrees"),
    Key("maxscale-monitor-name", "str", "MariaDB-Monitor", "the MaxScale monitor that watches the cluster"),
    Key("maxscale-write-port", "int", 4007, "MaxScale read-write listener port (rendered config)",
        minimum=1, maximum=65535),
    Key("maxscale-read-port", "int", 4008, "MaxScale read-only listener port (rendered config)",
        minimum=1, maximum=65535),
    # Consul service registry (layer 3 routing by DNS/catalog).
    Key("registry-consul", "bool", False, "register write_<cluster> and read_<cluster> services in Consul"),
    Key("registry-servers", "strlist", [], "Consul agents, host:port of their HTTP API"),
    Key("registry-consul-token", "str", "", "Consul ACL token (X-Consul-Token)", secret=True),
    # MariaDB Spider as a routing layer.
    Key("mdbshardproxy", "bool", False, "re-point MariaDB Spider server definitions to the primary"),
    Key("mdbshardproxy-hosts", "hostports", [], "MariaDB nodes running the Spider engine"),
    Key("mdbshardproxy-user", "credential", None,
        "admin user:password on the Spider nodes (default: db-servers-credential)", secret=True),
    Key("mdbshardproxy-remote-user", "credential", None,
        "user:password the Spider node uses to reach the primary (default: db-servers-credential)",
        secret=True),
    Key("mdbshardproxy-server-name", "str", "",
        "name of the Spider server definition re-pointed to the primary (default: repman_<cluster>)"),
    Key("mdbshardproxy-database", "str", "", "DATABASE option of the Spider server definition"),
    # Scripts (pre/post/state-change/alert scripts are watcher keys).
    Key("failover-vip-script", "path", "",
        "script that moves a VIP: called with cluster oldHost newHost oldPort newPort reason"),
    Key("failover-script-timeout", "float", 30.0, "seconds any external script may run before it is killed",
        minimum=0.1, maximum=3600),
)
