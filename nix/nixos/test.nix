# `pkgs.testers.runNixOSTest` definition (flake check `nixos`, Linux only): two MariaDB 10.11
# servers replicating with GTID and a machine running the repman NixOS module. The primary's
# server is stopped; the watcher must promote the replica, which then takes writes.
# Never run on the machines this repository is developed on (no KVM, no nixpkgs there).
{ module }:
let
  # Test-only accounts, made without binary logging so no server holds an errant GTID.
  accounts = ''
    SET sql_log_bin = 0;
    CREATE USER 'repman'@'%' IDENTIFIED BY 'test-admin-pw';
    GRANT ALL PRIVILEGES ON *.* TO 'repman'@'%' WITH GRANT OPTION;
    CREATE USER 'repl'@'%' IDENTIFIED BY 'test-repl-pw';
    GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'repl'@'%';
  '';
  dbNode = serverId: { pkgs, ... }: {
    networking.firewall.allowedTCPPorts = [ 3306 ];
    services.mysql = {
      enable = true;
      package = pkgs.mariadb_1011;
      initialScript = pkgs.writeText "repman-test-accounts.sql" accounts;
      settings.mysqld = {
        bind-address = "0.0.0.0";
        server_id = serverId;
        log_bin = "mariadb-bin";
        log_slave_updates = 1;
        gtid_strict_mode = 1;
        binlog_format = "ROW";
      };
    };
  };
in
{
  name = "repman-failover";
  nodes = {
    db1 = dbNode 1;
    db2 = dbNode 2;
    watcher = { imports = [ module ./test-watcher.nix ]; };
  };
  testScript = ''
    start_all()
    for db in (db1, db2):
        db.wait_for_unit("mysql.service")
        db.wait_for_open_port(3306)
    db2.succeed(
        "mysql -e \"CHANGE MASTER TO MASTER_HOST='db1', MASTER_USER='repl', "
        "MASTER_PASSWORD='test-repl-pw', MASTER_USE_GTID=slave_pos; START SLAVE; SET GLOBAL read_only=1\""
    )
    db1.succeed("mysql -e 'CREATE DATABASE t; CREATE TABLE t.x (i INT PRIMARY KEY); INSERT INTO t.x VALUES (1)'")
    db2.wait_until_succeeds("mysql -N -e 'SELECT COUNT(*) FROM t.x' | grep -qx 1", timeout=60)

    watcher.wait_for_unit("repman.service")
    watcher.wait_until_succeeds("journalctl -u repman.service | grep -q db1", timeout=60)

    db1.crash()  # the whole primary machine dies, as with a power cut
    db2.wait_until_succeeds("mysql -N -e 'SELECT @@read_only' | grep -qx 0", timeout=180)
    db2.succeed("mysql -e 'INSERT INTO t.x VALUES (2)'")
    db2.succeed("mysql -N -e 'SELECT COUNT(*) FROM t.x' | grep -qx 2")
  '';
}
