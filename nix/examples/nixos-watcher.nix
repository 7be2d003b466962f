# NixOS configuration fragment: watch one cluster, fail over automatically, keep HAProxy
# pointed at the primary, serve the API. Secrets are files (e.g. from sops-nix/agenix).
{
  services.repman = {
    enable = true;
    clusters.shop = {
      db-servers-hosts = [ "db1.internal:3306" "db2.internal:3306" "db3.internal:3306" ];
      db-servers-prefered-master = [ "db1.internal:3306" ];
      db-servers-credential = { file = "/run/secrets/repman-admin"; };
      replication-credential = { file = "/run/secrets/repman-replication"; };
      failover-mode = "automatic";
      failover-falsepositive-ping-counter = 5;
      semisync = true;
      haproxy = true;
      haproxy-runtime-api-servers = [ "/run/haproxy/admin.sock" ];
    };
    api = {
      enable = true;
      openFirewall = true;
      settings.api-bind = "0.0.0.0";
      users.ops = { role = "operator"; password = { file = "/run/secrets/repman-api-ops"; }; };
    };
  };
}
