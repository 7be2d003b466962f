# `nix develop`: the Pulumi CLI with its Python language host (and nixpkgs' provider plugins),
# the project's Python environment, and the servers the tests and the local backend start
# (MariaDB 10.11, haproxy, sysbench, sshd; iproute2 for the network-namespace tests on Linux
# only). The checkout is importable as is (PYTHONPATH), no pip install needed.
{ pkgs, packages }:
let
  repmanDev = pkgs.writeShellScriptBin "repman" ''
    exec ${packages.pythonEnv}/bin/python -m repman.cli "$@"
  '';
in
pkgs.mkShell {
  packages = [
    packages.pulumi
    packages.pythonEnv
    repmanDev
    packages.mariadb
    pkgs.haproxy
    pkgs.sysbench
    pkgs.openssh
    pkgs.nix
  ] ++ pkgs.lib.optionals pkgs.stdenv.hostPlatform.isLinux [ pkgs.iproute2 ];
  PULUMI_SKIP_UPDATE_CHECK = "1";
  shellHook = ''
    export PYTHONPATH="$PWD''${PYTHONPATH:+:$PYTHONPATH}"
    # Pulumi.yaml names a .venv: make it see the Nix Python environment instead of pip.
    if [ ! -x .venv/bin/python ]; then
      ${packages.pythonEnv}/bin/python -m venv --system-site-packages .venv
    fi
    echo "repman dev shell: pulumi $(pulumi version 2>/dev/null), $(python --version), MariaDB 10.11, haproxy, sysbench"
  '';
}
