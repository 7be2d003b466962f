# Evaluate a cluster declaration to the JSON the Pulumi program validates:
#   nix-instantiate --eval --strict --json nix/eval-cluster.nix --arg declaration ./nix/examples/local-3node.nix
#   nix eval --json --impure --expr 'import ./nix/eval-cluster.nix { declaration = ./nix/examples/local-3node.nix; }'
# `declaration` is a module (path, path string, attribute set or function) or a list of them.
# output = "config": the stack config; "full": { config; pulumiSecrets; warnings; }.
{ declaration, output ? "config" }:
let
  result = (import ./. { }).evalCluster declaration;
in
if output == "config" then result.stackConfig
else if output == "full" then { config = result.stackConfig; inherit (result) pulumiSecrets warnings; }
else throw "eval-cluster.nix: output must be \"config\" or \"full\", got ${builtins.toJSON output}"
