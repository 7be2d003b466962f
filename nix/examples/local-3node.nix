# A 3-node cluster on this host (local backend), semi-sync, watched by repman with automatic
# failover and HAProxy routing. Credentials stay in Pulumi's secrets provider:
#   pulumi config set --secret repman:db-servers-credential repman:...
#   pulumi config set --secret repman:replication-credential repl:...
{ ... }:
{
  repman = {
    cluster-name = "shop";
    prov-orchestrator = "local";
    prov-service-plan = "x3.tiny";
    prov-db-tags = [ "gtidstrict" "row" "semisync" "innodb" "noquerycache" "readonly" "smallredolog" ];
    db-servers-base-port = 3310;
    db-servers-prefered-master = "1";
    prov-state-dir = ".state/shop";
    db-servers-credential = { pulumiSecret = true; };
    replication-credential = { pulumiSecret = true; };

    # The watcher, with repman's names.
    failover-mode = "automatic";
    failover-falsepositive-ping-counter = 5;
    semisync = true;
    haproxy = true;
    haproxy-write-port = 3306;
    haproxy-read-port = 3307;
    api-port = 10005;
  };
}
