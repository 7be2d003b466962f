# The flake's outputs with the stand-in nixpkgs (nothing is built): what the flake asks
# to build for x86_64-linux (and the dev shell for a darwin system), its lib, its checks,
# and its NixOS module evaluated.
{ configuration ? { } }:
let
  b = builtins;
  lib = import ../lib;
  flake = import ../../flake.nix;
  stub = import ./stub-nixpkgs.nix;
  outputsWith = nixpkgs: let self = flake.outputs { inherit self nixpkgs; } // { outPath = toString ../..; }; in self;
  self = outputsWith stub;
  system = "x86_64-linux";
  names = map (p: p.name or p.pname or "?");
  repman = self.packages.${system}.default;
  shellOf = sys: self.devShells.${sys}.default;
  shell = shellOf system;
  nixos = lib.evalModules {
    modules = [ ./nixos-stub.nix self.nixosModules.default configuration ];
    specialArgs = { pkgs = stub.legacyPackages.${system}; };
  };
  packagesWith = pkgs: import ../packages.nix { inherit pkgs; src = ../..; };
  # The same stub without nixpkgs' kubernetes provider: the SDK falls back to the pinned sdist.
  noK8sPkgs = stub.legacyPackages.${system} // { pulumiPackages = { inherit (stub.legacyPackages.${system}.pulumiPackages) pulumi-python; }; };
  # A nixpkgs whose lib.evalModules fails: the flake's cluster evaluation must then fail too.
  brokenLib = stub // { lib = stub.lib // { evalModules = _: throw "nixpkgs.lib.evalModules was used"; }; };
  vmTest = self.checks.${system}.nixos.test;
in
{
  inputs = flake.inputs;
  repman = {
    inherit (repman) pname version builder pythonImportsCheck;
    buildSystem = names repman.build-system;
    dependencies = names repman.dependencies;
    mainProgram = repman.meta.mainProgram;
  };
  providers = b.mapAttrs (_: p: { inherit (p) name; }) (packagesWith stub.legacyPackages.${system}).providers;
  providersWithoutNixpkgsK8s = b.mapAttrs (_: p: p.name) (packagesWith noK8sPkgs).providers;
  sdists = b.mapAttrs (_: p: { inherit (p) pname version; fetch = p.src.fetchPypi; dependencies = names p.dependencies; })
    (packagesWith stub.legacyPackages.${system}).sdists;
  shell = {
    packages = names shell.packages;
    darwinPackages = names (shellOf "aarch64-darwin").packages;
    pythonPackages = names (b.elemAt (b.filter (p: p.name == "python3-env") shell.packages) 0).packages;
    pulumiPlugins = names (b.elemAt (b.filter (p: p.name == "pulumi-with-plugins") shell.packages) 0).plugins;
    inherit (shell) shellHook;
  };
  apps = b.mapAttrs (_: a: a.program) self.apps.${system};
  checks = {
    names = b.attrNames self.checks.${system};
    darwinNames = b.attrNames self.checks.aarch64-darwin;
    examples = b.fromJSON self.checks.${system}.examples.text;
    pureTestsScript = self.checks.${system}.pure-tests.script;
  };
  nixosTest = {
    inherit (vmTest) name testScript;
    nodes = b.attrNames vmTest.nodes;
  };
  stackConfig = self.lib.stackConfig ../examples/local-3node.nix;
  clusterEvalUsesNixpkgsLib = !(b.tryEval (b.deepSeq ((outputsWith brokenLib).lib.stackConfig ../examples/local-3node.nix) true)).success;
  nixos = {
    failedAssertions = map (a: a.message) (b.filter (a: !a.assertion) nixos.config.assertions);
    execStart = nixos.config.systemd.services.repman.serviceConfig.ExecStart or null;
  };
}
