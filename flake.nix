{
  description = "repman: MariaDB replication clusters with managed-service simplicity (Pulumi provisioning + failover watcher)";

  # A supported release, pinned in flake.lock (`nix flake update nixpkgs` moves it); provider
  # SDK pins not in nixpkgs live in nix/versions.json.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" "x86_64-darwin" "aarch64-darwin" ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      packagesFor = pkgs: import ./nix/packages.nix { inherit pkgs; src = ./.; };
      # Cluster declarations evaluate with nixpkgs' own module system; nix/lib is the fallback
      # for machines without nixpkgs (nix/eval-cluster.nix, the tests).
      repmanNix = import ./nix { inherit (nixpkgs) lib; };
      isLinux = pkgs: pkgs.stdenv.hostPlatform.isLinux;
    in
    {
      # Clusters declared in Nix: `lib.evalCluster ./cluster.nix` -> { stackConfig; pulumiSecrets; config; options; }.
      lib = {
        inherit (repmanNix) evalCluster schema modules;
        stackConfig = declaration: (repmanNix.evalCluster declaration).stackConfig;
      };

      packages = forAllSystems (pkgs:
        let p = packagesFor pkgs; in {
          default = p.repman;
          repman = p.repman;
          python = p.pythonEnv;
          pulumi = p.pulumi;
        });

      apps = forAllSystems (pkgs:
        let
          p = packagesFor pkgs;
          tools = [ p.pythonEnv p.mariadb pkgs.haproxy pkgs.sysbench pkgs.openssh pkgs.nix ]
            ++ pkgs.lib.optionals (isLinux pkgs) [ pkgs.iproute2 ];
          script = name: text: "${pkgs.writeShellScript name ''
            export PATH=${pkgs.lib.makeBinPath tools}:$PATH
            export PYTHONPATH="$PWD''${PYTHONPATH:+:$PYTHONPATH}"
            ${text}
          ''}";
        in
        {
          default = { type = "app"; program = "${p.repman}/bin/repman"; };
          repman = self.apps.${pkgs.stdenv.hostPlatform.system}.default;
          # From a checkout: `nix run .#nixeval -- cluster.nix --stack prod`.
          nixeval = { type = "app"; program = script "repman-nixeval" ''exec python -m repman.nixeval "$@"''; };
          # The whole suite, outside the sandbox (it starts real servers): `nix run .#tests`.
          tests = { type = "app"; program = script "repman-tests" ''exec python -m pytest "$@"''; };
        });

      devShells = forAllSystems (pkgs: {
        default = import ./nix/devshell.nix { inherit pkgs; packages = packagesFor pkgs; };
      });

      checks = forAllSystems (pkgs: import ./nix/checks.nix {
        inherit pkgs repmanNix;
        packages = packagesFor pkgs;
      } // pkgs.lib.optionalAttrs (isLinux pkgs) {
        # A NixOS VM: two MariaDB 10.11 servers and the watcher module; the primary is stopped
        # and the replica must be promoted (`nix build .#checks.x86_64-linux.nixos`).
        nixos = pkgs.testers.runNixOSTest (import ./nix/nixos/test.nix { module = self.nixosModules.default; });
      });

      nixosModules.default = { lib, pkgs, ... }: {
        imports = [ ./nix/nixos/repman.nix ];
        services.repman.package = lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.default;
      };
      nixosModules.repman = self.nixosModules.default;

      formatter = forAllSystems (pkgs: pkgs.nixpkgs-fmt);
    };
}
