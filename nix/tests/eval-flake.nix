# The flake's outputs with the stand-in nixpkgs (nothing is built): what the flake asks
# to build for x86_64-linux, its lib, its checks, and its NixOS module evaluated.
{ configuration ? { } }:
let
  b = builtins;
  lib = import ../lib;
  flake = import ../../flake.nix;
  self = flake.outputs { inherit self; nixpkgs = import ./stub-nixpkgs.nix; } // { outPath = toString ../..; };
  system = "x86_64-linux";
  names = map (p: p.name or p.pname or "?");
  repman = self.packages.${system}.default;
  shell = self.devShells.${system}.default;
  nixos = lib.evalModules {
    modules = [ ./nixos-stub.nix self.nixosModules.default configuration ];
    specialArgs = { pkgs = (import ./stub-nixpkgs.nix).legacyPackages.${system}; };
  };
in
{
  inputs = flake.inputs;
  repman = {
    inherit (repman) pname version builder pythonImportsCheck;
    buildSystem = names repman.build-system;
    dependencies = names repman.dependencies;
    mainProgram = repman.meta.mainProgram;
  };
  providers = b.mapAttrs (_: p: { inherit (p) pname version; fetch = p.src.fetchPypi; dependencies = names p.dependencies; })
    (import ../packages.nix { pkgs = (import ./stub-nixpkgs.nix).legacyPackages.${system}; src = ../..; }).providers;
  shell = {
    packages = names shell.packages;
    pythonPackages = names (b.elemAt (b.filter (p: p.name == "python3-env") shell.packages) 0).packages;
    pulumiPlugins = names (b.elemAt (b.filter (p: p.name == "pulumi-with-plugins") shell.packages) 0).plugins;
    inherit (shell) shellHook;
  };
  apps = b.mapAttrs (_: a: a.program) self.apps.${system};
  checks = {
    names = b.attrNames self.checks.${system};
    examples = b.fromJSON self.checks.${system}.examples.text;
    pureTestsScript = self.checks.${system}.pure-tests.script;
  };
  stackConfig = self.lib.stackConfig ../examples/local-3node.nix;
  nixos = {
    failedAssertions = map (a: a.message) (b.filter (a: !a.assertion) nixos.config.assertions);
    execStart = nixos.config.systemd.services.repman.serviceConfig.ExecStart or null;
  };
}
