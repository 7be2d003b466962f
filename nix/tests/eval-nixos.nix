# Evaluate the NixOS module with the self-contained lib and stub pkgs (nixpkgs is not
# needed): returns the repman unit, the generated watcher config and failed assertions.
#   nix-instantiate --eval --strict --json nix/tests/eval-nixos.nix --arg configuration ./nix/examples/nixos-watcher.nix
{ configuration }:
let
  lib = import ../lib;
  pkgs = import ./stub-pkgs.nix;
  evaluated = lib.evalModules {
    modules = [ ./nixos-stub.nix ../nixos/repman.nix { services.repman.package = pkgs.repman; } ] ++ lib.toList configuration;
    specialArgs = { inherit pkgs; };
  };
  inherit (evaluated) config;
  etc = config.environment.etc."repman/watcher.json" or null;
in
{
  failedAssertions = map (a: a.message) (builtins.filter (a: !a.assertion) config.assertions);
  inherit (config) warnings;
  unit = config.systemd.services.repman or null;
  watcherConfig = if etc == null then null else builtins.fromJSON etc.text;
  firewallPorts = config.networking.firewall.allowedTCPPorts;
}
