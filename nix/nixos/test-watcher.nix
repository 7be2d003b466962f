# The watcher machine of nix/nixos/test.nix, on its own so the tests here can evaluate it with
# the self-contained lib (tests/test_nix_nixos.py) while the VM test runs it for real.
# Test-only credentials: they sit in the store of a throwaway VM, never in a real deployment.
{ ... }:
{
  environment.etc."repman-test/admin".text = "repman:test-admin-pw";
  environment.etc."repman-test/repl".text = "repl:test-repl-pw";
  services.repman = {
    enable = true;
    clusters.vmtest = {
      db-servers-hosts = [ "db1:3306" "db2:3306" ];
      db-servers-credential.file = "/etc/repman-test/admin";
      replication-credential.file = "/etc/repman-test/repl";
      failover-mode = "automatic";
    };
  };
}
