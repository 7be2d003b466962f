"""The watcher's configuration keys, named as in replication-manager.

Defaults follow repman unless the README argues otherwise.
"""

from __future__ import annotations

from repman.keys import Key, key_table

WATCHER_KEYS = key_table(
    Key("db-servers-hosts", "hostports", [], "database servers of the cluster, host[:port] (port 3306 when omitted)",
        default_port=3306),
    Key("db-servers-credential", "credential", None, "admin user:password used by the watcher", secret=True),
    Key("replication-credential", "credential", None, "replication user:password", secret=True),
    Key("db-servers-prefered-master", "hostports", [],
        "servers elected first when electable, in order (a list as in repman; port 3306 when omitted)",
        default_port=3306),
    Key("db-servers-ignored-hosts", "hostports", [], "servers never elected master", default_port=3306),
    Key("failover-mode", "enum", "manual", "automatic fails over by itself; manual only alerts",
        choices=("manual", "automatic")),
    Key("monitoring-ticker", "float", 2.0, "seconds between two monitoring ticks", minimum=0.05, maximum=3600),
    Key("failover-falsepositive-ping-counter", "int", 5, "failed pings before the master is Failed",
        minimum=1, maximum=1000),
    Key("failover-falsepositive-heartbeat", "bool", True,
        "veto failover while a replica still receives heartbeats from the master"),
    Key("failover-falsepositive-heartbeat-timeout", "float", 3.0,
        "seconds between two reads of replicas' heartbeat counters", minimum=0, maximum=600),
    Key("failover-falsepositive-replicas-agree", "bool", True,
        "declare the master failed early when every reachable replica lost it too (IO thread not "
        "connected, nothing received since the last tick)"),
    Key("failover-falsepositive-replicas-agree-pings", "int", 2,
        "failed pings needed before the replicas' agreement counts", minimum=1, maximum=1000),
    Key("failover-limit", "int", 5, "failovers allowed before an operator resets the counter (0: no limit)",
        minimum=0),
    Key("failover-time-limit", "float", 0.0, "seconds that must pass after a failover before another (0: none)",
        minimum=0),
    Key("failover-max-slave-delay", "float", 30.0, "replicas lagging more are not electable (-1: off)",
        minimum=-1),
    Key("failover-readonly-state", "bool", True, "replicas are left read-only after failover and switchover"),
    Key("failover-restart-unsafe", "bool", False,
        "allow a failover to a replica when the whole cluster restarted and the master did not come back"),
    Key("failover-salvage-binlog", "bool", True,
        "asynchronous clusters: before the new master takes writes, apply the dead master's binlog events "
        "it lacks, read from the dead master's binlog folder (here or over SSH)"),
    Key("failover-salvage-timeout", "float", 10.0, "seconds the binlog salvage may take before it is abandoned",
        minimum=0.1, maximum=3600),
    Key("failover-salvage-binlog-dirs", "strlist", [],
        "host:port=/binlog/folder of each server, for the binlog salvage (rendered by the local and SSH backends)"),
    Key("failover-salvage-ssh-user", "str", "", "read a dead master's binlogs over SSH as this user (empty: local)"),
    Key("failover-salvage-ssh-options", "str", "", "extra ssh options for the binlog salvage (e.g. -p 2222 -i key)"),
    Key("failover-pre-script", "path", "", "script called before a failover or switchover"),
    Key("failover-post-script", "path", "", "script called after a failover or switchover"),
    Key("switchover-wait-kill", "int", 5000, "milliseconds to let writes drain before killing client threads",
        minimum=0),
    Key("switchover-wait-trx", "float", 10.0, "seconds FLUSH TABLES may take before a switchover is refused",
        minimum=0),
    Key("switchover-wait-write-query", "float", 10.0,
        "a write or open transaction older than this refuses the switchover (seconds)", minimum=0),
    Key("switchover-at-equal-gtid", "bool", False, "switchover only to a replica at the master's exact GTID"),
    Key("switchover-slave-wait-catch", "bool", True, "wait for every replica to catch up before re-pointing it"),
    Key("switchover-decrease-max-conn", "bool", True, "lower max_connections on the old master while frozen"),
    Key("switchover-decrease-max-conn-value", "int", 10, "max_connections while frozen", minimum=1),
    Key("switchover-wait-route-change", "float", 0.0,
        "seconds to wait after telling proxies, as in repman (repman's default is 2; ours confirm "
        "synchronously, so 0)", minimum=0, maximum=3600),
    Key("autorejoin", "bool", True, "rejoin a returning old master as a replica"),
    Key("autorejoin-flashback", "bool", True,
        "undo an old master's extra transactions with mariadb-binlog --flashback"),
    Key("autorejoin-mysqldump", "bool", False, "re-seed an old master from a dump when flashback is impossible"),
    Key("autorejoin-backup-binlog", "bool", True, "save an old master's extra binlog events before undoing them"),
    Key("autoseed", "bool", False,
        "re-seed a replica whose replication cannot continue (error 1236: binlogs purged) with a physical "
        "copy of a healthy member (local nodes)"),
    Key("check-replication-state", "bool", True, "refuse switchover when a replica's threads are stopped"),
    Key("replication-heartbeat-period", "float", 0.5,
        "MASTER_HEARTBEAT_PERIOD set on replicas (seconds); slave_net_timeout is twice it, at least 1 s",
        minimum=0.001, maximum=4294967),
    Key("semisync", "bool", False, "manage semi-sync roles: master side on the primary only"),
    Key("failover-semisync-async-fallback", "float", 10.0,
        "seconds a semi-sync master may wait with no replica connected before the watcher switches it to "
        "asynchronous commits, and back when a replica returns (0: never; the server itself never falls back)",
        minimum=0),
    Key("failover-fence-script", "path", "",
        "script called with the old master's host and port to fence it when it cannot be reached before a "
        "promotion (power off, kill, firewall); a non-zero exit is logged"),
    Key("failover-fence-pid-files", "strlist", [],
        "host:port=/path/to/mariadbd.pid of local servers: an unreachable old master is killed before a "
        "promotion (rendered by the local backend)"),
    Key("failover-fence-ssh-user", "str", "",
        "kill an unreachable old master over SSH as this user: the failover-fence-pid-files paths are then on "
        "each server's own host (rendered by the SSH backend; sudo -n when not root; empty: local pid files)"),
    Key("failover-fence-ssh-options", "str", "", "extra ssh options for the fence (e.g. -p 2222 -i key)"),
    Key("failover-fence-kube-pods", "bool", False,
        "delete an unreachable old master's pod (grace period 0) through the in-cluster Kubernetes API before a "
        "promotion (rendered by the kube backend; the watcher's Role may delete pods)"),
    Key("failover-fence-timeout", "float", 3.0, "seconds a fence action may take before the failover goes on",
        minimum=0.1),
    Key("db-servers-state-change-script", "path", "", "script called on every server state change"),
    Key("alert-script", "path", "",
        "script called on every server state change and alert: cluster host:port previousState state "
        "(repman's arguments), then our alert sentence as a fifth argument"),
    Key("monitoring-datadir", "path", "", "state folder (failover counters, crash records); default ~/.repman"),
    Key("db-servers-tls-ca-cert", "path", "",
        "CA of the servers' certificates: the watcher then connects over TLS, verifying the certificate "
        "and the host name"),
    Key("replication-use-ssl", "bool", False,
        "replicas connect with MASTER_SSL=1 and MASTER_SSL_VERIFY_SERVER_CERT=1, trusting their own ssl_ca"),
    Key("monitoring-key-path", "path", "",
        "key file (64 hex digits, mode 600) decrypting {encrypted: ...} values; `repman password keygen`"),
    Key("crash-records-keep", "int", 20, "crash records kept per cluster", minimum=1),
    # Our variants of repman keys, under new names (issue 16): the repman key keeps its meaning.
    Key("switchover-wait-route-change-ms", "int", 0,
        "milliseconds to wait after telling proxies (sub-second variant of switchover-wait-route-change; "
        "set one of the two)", minimum=0, maximum=3600000),
)
