# The option tables of the cluster module and of the NixOS module, as evaluated (type
# shape, default, description, and the type's verdict on probe values), for the test
# that compares them with the Python key tables.
#   nix-instantiate --eval --strict --json nix/tests/option-table.nix --argstr probesJSON '{}'
{ probesJSON ? "{}" }:
let
  b = builtins;
  lib = import ../lib;
  probes = b.fromJSON probesJSON;
  cluster = (import ../. { }).evalCluster { };
  nixos = (lib.evalModules {
    modules = [ ./nixos-stub.nix ../nixos/repman.nix ];
    specialArgs = { pkgs = import ./stub-pkgs.nix; };
  }).options.services.repman;

  shape = t:
    if t.name == "nullOr" then shape t.elemType // { nullable = true; }
    else if t.name == "listOf" then { list = true; elem = shape t.elemType; }
    else if t.name == "enum" then { enum = t.functor.values; }
    else { inherit (t) name; };

  deepCheck = t: v:
    t.check v && (
      if t.name == "listOf" then b.all (deepCheck t.elemType) v
      else if t.name == "nullOr" && v != null then deepCheck t.elemType v
      else true);

  table = section: opts: b.mapAttrs
    (name: o: {
      shape = shape o.type;
      default = o.default or null;
      description = o.description or "";
      accepts = map (deepCheck o.type) ((probes.${section} or { }).${name} or [ ]);
    })
    opts;
in
{
  stack = table "stack" cluster.options.repman;
  watcher = table "watcher" (nixos.clusters.type.elemType.getSubOptions [ "clusters" "<name>" ]);
  api = table "api" (nixos.api.settings.type.getSubOptions [ "api" ]);
}
