# The self-contained `lib`: helpers, module evaluation and option types with the names
# and behaviour of nixpkgs' lib (a subset), built on builtins only. Modules written
# against it (nix/modules, nix/nixos) also evaluate under the real nixpkgs lib.
let
  types = import ./types.nix { inherit lib; };
  lib = import ./util.nix
    // import ./modules.nix { inherit lib; }
    // { inherit types; inherit (types) mkOptionType; };
in
lib
