# A 3-node cluster on this host (local backend), semi-sync, HAProxy-style read/write split.
# Credentials stay in Pulumi's secrets provider:
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
    prov-state-dir = ".state";
    db-servers-credential = { pulumiSecret = true; };
    replication-credential = { pulumiSecret = true; };
  };
}
