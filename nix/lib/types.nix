# Option types with nixpkgs' names: each has a description (used in errors), a check
# of one definition and a merge of all definitions of an option.
{ lib }:
let
  b = builtins;
  inherit (lib) all concatMap filter isAttrs mergeEqualOption showOption;

  mkOptionType = attrs: {
    description = attrs.name;
    check = _: true;
    merge = mergeEqualOption;
  } // attrs // { _type = "option-type"; };

  addCheck = type: check: type // { check = x: type.check x && check x; };

  between = base: noun: lo: hi:
    addCheck base (x: x >= lo && x <= hi) // { description = "${noun} between ${toString lo} and ${toString hi} (both inclusive)"; };

  # Check each element, then merge it alone (element types may be submodules).
  checkElem = loc: elemType: file: value:
    if elemType.check value then elemType.merge loc [{ inherit file value; }]
    else b.throw "${showOption loc}: expected ${elemType.description}, got ${(elemType.showValue or lib.showValue) value} (defined in ${file}).";

  # `a.b` and 2 -> `a.b[2]`
  indexed = loc: i:
    let n = b.length loc;
    in b.genList (j: b.elemAt loc j) (n - 1) ++ [ "${b.elemAt loc (n - 1)}[${toString i}]" ];

  types = rec {
    inherit mkOptionType addCheck;

    anything = mkOptionType {
      name = "anything";
      description = "anything";
      merge = loc: defs:
        let values = map (d: d.value) defs;
        in
        if all isAttrs values && !(b.any (v: v ? type && v.type == "derivation") values) then (attrsOf anything).merge loc defs
        else if all b.isList values then b.concatLists values
        else mergeEqualOption loc defs;
    };

    attrs = mkOptionType { name = "attrs"; description = "attribute set"; check = isAttrs; merge = _: defs: b.foldl' (a: d: a // d.value) { } defs; };
    bool = mkOptionType { name = "bool"; description = "boolean"; check = b.isBool; };
    str = mkOptionType { name = "str"; description = "string"; check = b.isString; };
    nonEmptyStr = addCheck str (s: b.match "[[:space:]]*" s == null) // { name = "nonEmptyStr"; description = "non-empty string"; };
    lines = mkOptionType {
      name = "lines";
      description = "strings concatenated with \"\\n\"";
      check = b.isString;
      merge = _: defs: b.concatStringsSep "\n" (map (d: d.value) defs);
    };
    strMatching = pattern: addCheck str (s: b.match pattern s != null) // {
      name = "strMatching";
      description = "string matching the pattern ${pattern}";
    };
    int = mkOptionType { name = "int"; description = "signed integer"; check = b.isInt; };
    float = mkOptionType { name = "float"; description = "floating point number"; check = b.isFloat; };
    number = mkOptionType { name = "number"; description = "signed integer or floating point number"; check = x: b.isInt x || b.isFloat x; };
    ints = {
      between = between int "integer";
      unsigned = addCheck int (x: x >= 0) // { description = "unsigned integer, meaning >=0"; };
      positive = addCheck int (x: x > 0) // { description = "positive integer, meaning >0"; };
      u16 = between int "integer" 0 65535;
    };
    numbers = { between = between number "integer or floating point number"; };
    port = ints.u16;
    path = mkOptionType {
      name = "path";
      description = "absolute path";
      check = x: (b.isString x || b.isPath x) && b.substring 0 1 (toString x) == "/";
    };
    package = mkOptionType {
      name = "package";
      description = "package";
      check = x: (isAttrs x && (x.type or "") == "derivation") || (b.isString x && lib.hasPrefix "/nix/store/" x);
    };

    enum = values: mkOptionType {
      name = "enum";
      description = "one of ${b.concatStringsSep ", " (map b.toJSON values)}";
      check = x: b.elem x values;
      functor = { inherit values; };
    };

    nullOr = elemType: mkOptionType {
      name = "nullOr";
      description = "null or ${elemType.description}";
      check = x: x == null || elemType.check x;
      merge = loc: defs:
        let nulls = filter (d: d.value == null) defs;
        in
        if nulls == defs then null
        else if nulls != [ ] then mergeEqualOption loc defs
        else elemType.merge loc defs;
      inherit elemType;
      showValue = elemType.showValue or lib.showValue;
    };

    listOf = elemType: mkOptionType {
      name = "listOf";
      description = "list of ${elemType.description}";
      check = b.isList;
      merge = loc: defs:
        concatMap
          (d: lib.imap1 (i: v: checkElem (indexed loc i) elemType d.file v) d.value)
          defs;
      inherit elemType;
    };

    attrsOf = elemType: mkOptionType {
      name = "attrsOf";
      description = "attribute set of ${elemType.description}";
      check = isAttrs;
      merge = loc: defs:
        let
          pushed = concatMap (d: map (v: { inherit (d) file; value = v; }) (lib.pushDown d.value)) defs;
          names = lib.unique (concatMap (d: b.attrNames d.value) pushed);
          per = n: lib.mergeDefinitions (loc ++ [ n ]) elemType
            (concatMap (d: if d.value ? ${n} then [{ inherit (d) file; value = d.value.${n}; }] else [ ]) pushed);
          merged = map (n: { name = n; m = per n; }) names;
        in
        b.listToAttrs (map (x: { inherit (x) name; value = x.m.mergedValue; }) (filter (x: x.m.isDefined) merged));
      inherit elemType;
    };

    either = t1: t2: mkOptionType {
      name = "either";
      description = "${t1.description} or ${t2.description}";
      check = x: t1.check x || t2.check x;
      merge = loc: defs:
        if all (d: t1.check d.value) defs then t1.merge loc defs
        else if all (d: t2.check d.value) defs then t2.merge loc defs
        else mergeEqualOption loc defs;
    };
    oneOf = ts: b.foldl' either (b.head ts) (b.tail ts);

    # Definitions are modules of the submodule's own evaluation (functions may take `name`).
    submodule = modules: mkOptionType {
      name = "submodule";
      description = "submodule";
      check = x: isAttrs x || b.isFunction x || b.isPath x;
      getSubOptions = prefix: (lib.evalModules { inherit prefix; modules = lib.toList modules; }).options;
      merge = loc: defs:
        (lib.evalModules {
          prefix = loc;
          specialArgs = { name = lib.last loc; };
          modules = lib.toList modules ++ map (d: { _file = d.file; imports = [ d.value ]; }) defs;
        }).config;
    };
  };
in
types
