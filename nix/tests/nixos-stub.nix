# Just enough of NixOS to evaluate nix/nixos/repman.nix without nixpkgs: the options it
# defines (systemd.services, environment.etc, firewall ports, assertions) as loose types.
{ lib, ... }:
let inherit (lib) mkOption types; in
{
  imports = [ ../modules/base.nix ];
  options = {
    systemd.services = mkOption { type = types.attrsOf types.anything; default = { }; };
    environment.etc = mkOption { type = types.attrsOf types.anything; default = { }; };
    networking.firewall.allowedTCPPorts = mkOption { type = types.listOf types.port; default = [ ]; };
  };
}
