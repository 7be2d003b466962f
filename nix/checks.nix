# `nix flake check`: the package builds, the example declarations evaluate (and the
# invalid one fails), and the tests that need no root or network run in the sandbox.
{ pkgs, packages, repmanNix }:
let
  inherit (pkgs) lib;
  examples = ./examples;
  valid = [ "local-3node" "kube" ];
  evaluated = lib.genAttrs valid (n: (repmanNix.evalCluster (examples + "/${n}.nix")).stackConfig);
  invalid = builtins.tryEval (builtins.deepSeq
    (repmanNix.evalCluster (examples + "/invalid-port-overflow.nix")).stackConfig true);

  # Tests that run with neither root, network namespaces nor long-lived servers.
  pureTests = [ "tests/test_spec.py" "tests/test_nix_eval.py" "tests/test_nix_schema.py" "tests/test_nix_flake.py" "tests/test_nix_nixos.py"
    "tests/test_pulumi_project.py" "tests/test_pulumi_secrets.py" ];
in
{
  package = packages.repman;

  examples =
    assert !invalid.success;
    pkgs.writeText "repman-nix-examples.json" (builtins.toJSON evaluated);

  pure-tests = pkgs.runCommand "repman-pure-tests"
    { nativeBuildInputs = [ packages.pythonEnv pkgs.nix ]; }
    ''
      cp -r ${packages.source} source
      chmod -R u+w source
      cd source
      export HOME=$TMPDIR NIX_STATE_DIR=$TMPDIR/nix-state NIX_LOG_DIR=$TMPDIR/nix-log
      python -m pytest -q -p no:cacheprovider ${lib.escapeShellArgs pureTests}
      touch $out
    '';
}
