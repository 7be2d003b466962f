# Stand-in package set for evaluating the NixOS module without nixpkgs: derivation-shaped
# attribute sets with fixed store paths, never built.
let
  fake = name: {
    type = "derivation";
    inherit name;
    outPath = "/nix/store/00000000000000000000000000000000-${name}";
  };
in
{
  mariadb = fake "mariadb-10.11";
  mariadb_1011 = fake "mariadb-server-10.11";
  repman = fake "repman-0.1.0";
}
