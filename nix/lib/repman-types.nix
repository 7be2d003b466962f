# Nix types and options of repman's config keys, made from nix/generated/schema.json
# (the Python key tables), so the Nix options cannot drift from the Python validation.
# Uses only names that nixpkgs' lib also has: the NixOS module evaluates under either.
{ lib }:
let
  b = builtins;
  inherit (lib) types;

  isAbsolute = s: b.substring 0 1 s == "/";
  inStore = s: b.substring 0 11 s == "/nix/store/";

  hostPortRe = "(\\[[0-9a-fA-F:.]+]|[A-Za-z0-9_.-]+):([0-9]{1,5})";
  hostOnlyRe = "(\\[[0-9a-fA-F:.]+]|[A-Za-z0-9_.-]+)";
  isHostPort = v:
    let m = if b.isString v then b.match hostPortRe v else null;
    in m != null && (
      let port = b.fromJSON (b.head (b.match "0*([0-9]+)" (b.elemAt m 1)));
      in port >= 1 && port <= 65535);

  # 0.05, not toString's 0.050000 (kept local: nixpkgs' lib has no such helper).
  showNumber = x:
    let m = b.match "(-?[0-9]+)[.]([0-9]*[1-9])?0*" (toString x);
    in if !(b.isFloat x) || m == null then toString x
    else b.elemAt m 0 + (if b.elemAt m 1 == null then "" else ".${b.elemAt m 1}");

  describeRange = noun: e:
    if e ? minimum && e ? maximum then "${noun} between ${showNumber e.minimum} and ${showNumber e.maximum}"
    else if e ? minimum then "${noun} of at least ${showNumber e.minimum}"
    else if e ? maximum then "${noun} of at most ${showNumber e.maximum}"
    else noun;

  inRange = e: x: (!(e ? minimum) || x >= e.minimum) && (!(e ? maximum) || x <= e.maximum);

  ranged = base: noun: e: types.addCheck base (inRange e) // { description = describeRange noun e; };

  hostPort = types.addCheck types.str isHostPort // {
    description = "host:port (port 1-65535, IPv6 hosts in brackets)";
  };

  # repman's db-servers-* keys: a bare host takes the key's defaultPort (3306).
  isHostOrHostPort = v: isHostPort v || (b.isString v && b.match hostOnlyRe v != null);
  hostOrHostPort = types.addCheck types.str isHostOrHostPort // {
    description = "host or host:port (port 3306 when omitted; IPv6 hosts in brackets)";
  };

  # Paths are strings: a Nix path literal would be copied into the world-readable store.
  pathString = types.str // { description = "path as a string (not a Nix path literal)"; };

  showSecret = v:
    if b.isString v then "a string (not shown: it may be the secret itself)"
    else if b.isAttrs v then
      "{ ${b.concatStringsSep "; " (map (n: "${n} = ${
        let x = v.${n}; in if b.isPath x then "a Nix path" else if b.isString x then b.toJSON x else b.typeOf x}") (b.attrNames v))} }"
    else b.typeOf v;

  # Where a secret is read at run time; never the secret itself.
  secretRef = { pulumi ? true }: lib.mkOptionType {
    name = "repmanSecretRef";
    description = "a secret reference: { file = \"/run/secrets/NAME\"; } (an absolute path string outside the Nix store)"
      + ", { env = \"VARIABLE\"; }"
      + (if pulumi then " or { pulumiSecret = true; } (then `pulumi config set --secret`)" else "")
      + "; never the secret itself";
    check = v:
      b.isAttrs v && (
        (b.attrNames v == [ "file" ] && b.isString v.file && isAbsolute v.file && !(inStore v.file))
        || (b.attrNames v == [ "env" ] && b.isString v.env && b.match "[A-Za-z_][A-Za-z0-9_]*" v.env != null)
        || (pulumi && b.attrNames v == [ "pulumiSecret" ] && v.pulumiSecret == true));
    merge = lib.mergeEqualOption;
    showValue = showSecret;
  };

  isSecret = e: e.secret || e.kind == "credential";

  baseType = pulumi: e:
    let
      k = e.kind;
      choices = e.choices or null;
    in
    if isSecret e then secretRef { inherit pulumi; }
    else if k == "enum" then types.enum e.choices
    else if k == "str" then (if choices != null then types.enum choices else types.str)
    else if k == "path" then pathString
    else if k == "int" then ranged types.int "an integer" e
    else if k == "float" then ranged types.number "a number" e
    else if k == "bool" then types.bool
    else if k == "hostport" then (if e ? defaultPort then hostOrHostPort else hostPort)
    else if k == "hostports" then types.listOf (if e ? defaultPort then hostOrHostPort else hostPort)
    else if k == "strlist" then types.listOf (if choices != null then types.enum choices else types.str)
    else throw "repman-types: unknown key kind ${k} of ${e.name}";

  # Secret keys and keys without a default are null until set (then repman's default applies).
  keyType = { pulumi ? true }: e:
    if isSecret e then types.nullOr (secretRef { inherit pulumi; }) // { description = (secretRef { inherit pulumi; }).description; }
    else if e.default == null then types.nullOr (baseType pulumi e)
    else baseType pulumi e;

  keyOption = { pulumi ? true }: e: lib.mkOption {
    type = keyType { inherit pulumi; } e;
    default = if isSecret e then null else e.default;
    description = e.help;
  };
in
{
  inherit secretRef hostPort pathString isHostPort isHostOrHostPort isSecret keyType;

  # { name = option; } for a list of schema entries.
  keyOptions = args: entries: b.listToAttrs (map (e: { inherit (e) name; value = keyOption args e; }) entries);

  isPulumiSecret = v: b.isAttrs v && v ? pulumiSecret;
}
