# A Kubernetes cluster sized by the x3.small plan; secrets read at `pulumi up` time
# from environment variables (e.g. filled by CI from its secret store).
{ lib, ... }:
{
  repman = {
    cluster-name = "orders";
    prov-orchestrator = "kube";
    prov-service-plan = "x3.small";
    prov-db-tags = [ "gtidstrict" "row" "semisync" "innodb" "readonly" "pfs" "utctime" ];
    prov-proxy-tags = [ "masterslave" ];
    prov-db-image = "mariadb:10.11";
    kube-namespace = "databases";
    kube-service-type = "ClusterIP";
    db-servers-base-port = 3306;
    db-servers-credential = { env = "REPMAN_DB_CREDENTIAL"; };
    replication-credential = { env = "REPMAN_REPLICATION_CREDENTIAL"; };
    monitoring-credential = { env = "REPMAN_MONITORING_CREDENTIAL"; };
    prov-keep-data-on-delete = lib.mkDefault true;
    failover-mode = "automatic";
    switchover-at-equal-gtid = true;
  };
}
