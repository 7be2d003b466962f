# repman's Nix entry point, free of nixpkgs: the cluster module system and its evaluation
# to the stack config that repman.spec.load_cluster_spec validates.
#   (import ./nix { }).evalCluster ./nix/examples/local-3node.nix
{ lib ? import ./lib }:
let
  b = builtins;
  schema = lib.importJSON ./generated/schema.json;
  keyTypes = import ./lib/repman-types.nix { inherit lib; };
  ns = schema.namespace;

  # Fails the evaluation listing every false assertion; otherwise returns `value`.
  checkAssertions = config: value:
    let failed = b.filter (a: !a.assertion) config.assertions;
    in
    if failed == [ ] then value
    else throw ("repman cluster declaration: failed assertions:\n"
      + lib.concatMapStrings (a: "- ${a.message}\n") failed);

  evalCluster = declaration:
    let
      evaluated = lib.evalModules {
        modules = [ ./modules/cluster.nix ] ++ lib.toList declaration;
      };
      inherit (evaluated) config options;
      set = e:
        let v = config.repman.${e.name};
        in options.repman.${e.name}.highestPrio < 1500 && v != null;
      emitted = b.filter (e: set e && !(keyTypes.isPulumiSecret config.repman.${e.name})) schema.stack;
      pulumiSecrets = map (e: "${ns}:${e.name}")
        (b.filter (e: set e && keyTypes.isPulumiSecret config.repman.${e.name}) schema.stack);
      # Type errors first (every value is checked), then the cross-key assertions.
      checked = b.deepSeq config.repman (checkAssertions config true);
    in
    {
      inherit config options;
      # The stack config: only keys the declaration sets; secrets as {file}/{env} references.
      stackConfig = b.seq checked (b.listToAttrs (map (e: { name = "${ns}:${e.name}"; value = config.repman.${e.name}; }) emitted));
      # Keys to set with `pulumi config set --secret` (kept out of the generated config).
      pulumiSecrets = b.seq checked pulumiSecrets;
      warnings = config.warnings;
    };
in
{
  inherit lib schema evalCluster checkAssertions;
  modules = {
    cluster = ./modules/cluster.nix;
    base = ./modules/base.nix;
  };
  nixosModule = ./nixos/repman.nix;
}
