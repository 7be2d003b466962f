# Module evaluation in the NixOS manner, on plain builtins: modules declare typed
# options and define values; definitions are merged by type and priority, checked,
# and any definition of an undeclared option is an error naming its file.
{ lib }:
let
  b = builtins;
  inherit (lib) concatMap concatStringsSep filter foldl' isAttrs toList;

  defaultPriority = 100;
  optionDefaultPriority = 1500;

  isOption = v: isAttrs v && (v._type or "") == "option";

  showOption = loc: concatStringsSep "." loc;

  # A short, safe rendering of a value for error messages (attribute sets show names only).
  showValue = v:
    if b.isString v then b.toJSON v
    else if b.isInt v || b.isFloat v then lib.showNumber v
    else if b.isBool v then (if v then "true" else "false")
    else if v == null then "null"
    else if b.isPath v then "the Nix path ${toString v}"
    else if b.isFunction v then "a function"
    else if b.isList v then "[ ${concatStringsSep " " (map showValue v)} ]"
    else if v ? type && v.type == "derivation" then "the package ${v.name or "?"}"
    else "{ ${concatStringsSep "; " (b.attrNames v)} }";

  # Properties: conditional, merged and prioritised definitions.
  mkIf = condition: content: { _type = "if"; inherit condition content; };
  mkMerge = contents: { _type = "merge"; inherit contents; };
  mkOverride = priority: content: { _type = "override"; inherit priority content; };
  mkOptionDefault = mkOverride optionDefaultPriority;
  mkDefault = mkOverride 1000;
  mkForce = mkOverride 50;

  # One definition -> list of { priority; value; } with mkIf/mkMerge/mkOverride resolved.
  discharge = priority: v:
    if isAttrs v && v ? _type then
      if v._type == "merge" then concatMap (discharge priority) v.contents
      else if v._type == "if" then
        (if !b.isBool v.condition then throw "mkIf called with a non-Boolean condition"
        else if v.condition then discharge priority v.content else [ ])
      else if v._type == "override" then discharge v.priority v.content
      else [{ inherit priority; value = v; }]
    else [{ inherit priority; value = v; }];

  # A definition of a group of options -> plain attribute sets whose values carry the properties.
  pushDown = v:
    if isAttrs v && v ? _type then
      if v._type == "merge" then concatMap pushDown v.contents
      else if v._type == "if" then map (b.mapAttrs (_: mkIf v.condition)) (pushDown v.content)
      else if v._type == "override" then map (b.mapAttrs (_: mkOverride v.priority)) (pushDown v.content)
      else [ v ]
    else [ v ];

  mkOption = { type ? lib.types.anything, ... } @ attrs: attrs // { _type = "option"; inherit type; };

  mkEnableOption = name: mkOption {
    type = lib.types.bool;
    default = false;
    example = true;
    description = "Whether to enable ${name}.";
  };

  mergeEqualOption = loc: defs:
    let first = b.head defs;
    in
    if defs == [ ] then throw "The option `${showOption loc}' has no definition."
    else if b.all (d: d.value == first.value) defs then first.value
    else throw ("The option `${showOption loc}' has conflicting definition values: "
      + concatStringsSep "; " (map (d: "${showValue d.value} in ${d.file}") defs) + ".");

  typeError = loc: type: def:
    let shown = (type.showValue or showValue) def.value;
    in throw "${showOption loc}: expected ${type.description}, got ${shown} (defined in ${def.file}).";

  # Resolve the definitions of one option: properties, priority, type check, merge.
  mergeDefinitions = loc: type: defs:
    let
      discharged = concatMap (d: map (x: x // { inherit (d) file; }) (discharge defaultPriority d.value)) defs;
      best = foldl' (p: d: if d.priority < p then d.priority else p) 9999 discharged;
      chosen = filter (d: d.priority == best) discharged;
      checked = map (d: if type.check d.value then { inherit (d) file value; } else typeError loc type d) chosen;
    in
    {
      isDefined = chosen != [ ];
      highestPrio = best;
      files = map (d: d.file) discharged;
      mergedValue =
        if chosen == [ ] then throw "The option `${showOption loc}' is used but not defined."
        else type.merge loc checked;
    };

  evalOption = loc: opt: defs:
    let
      withDefault = defs
        ++ lib.optional (opt ? default) { file = "the default of ${showOption loc}"; value = mkOptionDefault opt.default; };
      merged = mergeDefinitions loc opt.type withDefault;
      explicit = b.length (filter (d: d.priority < optionDefaultPriority)
        (concatMap (d: discharge defaultPriority d.value) defs));
      value =
        if (opt.readOnly or false) && explicit > 1 then
          throw "The option `${showOption loc}' is read-only, but it is set several times."
        else if opt ? apply then opt.apply merged.mergedValue else merged.mergedValue;
    in
    opt // {
      inherit loc value;
      inherit (merged) isDefined highestPrio files;
    };

  # Calls a module function with the arguments it names (all of them for `args:` lambdas).
  applyModuleArgs = allArgs: f:
    let wanted = b.functionArgs f;
    in f (if wanted == { } then allArgs else b.intersectAttrs wanted allArgs);

  # Modules (paths, functions, attribute sets) -> normalised { key; file; imports; options; config; }.
  loadModule = allArgs: file: key: m:
    if b.isPath m || b.isString m then loadModule allArgs (toString m) (toString m) (import m)
    else if b.isFunction m then loadModule allArgs file key (applyModuleArgs allArgs m)
    else if !isAttrs m then throw "A module must be an attribute set, a function or a path; got ${showValue m} in ${file}."
    else
      let
        file' = m._file or file;
        structured = m ? options || m ? config;
        known = [ "_file" "key" "imports" "options" "config" "meta" ];
        extra = filter (n: !(b.elem n known)) (b.attrNames m);
      in
      if structured && extra != [ ] then
        throw "Module ${file'} has an unsupported attribute `${b.head extra}' next to `options'/`config'; put definitions under `config'."
      else {
        key = m.key or key;
        file = file';
        imports = m.imports or [ ];
        options = m.options or { };
        config = if structured then m.config or { } else b.removeAttrs m [ "_file" "key" "imports" "meta" ];
      };

  collectModules = allArgs: parentFile: parentKey: modules:
    concatMap
      (i:
        let
          m = b.elemAt modules i;
          n = loadModule allArgs parentFile "${parentKey}:anon-${toString i}" m;
        in
        [ n ] ++ collectModules allArgs n.file n.key n.imports)
      (b.genList (i: i) (b.length modules));

  dedupe = list:
    (foldl'
      (acc: m: if acc.seen ? ${m.key} then acc else { seen = acc.seen // { ${m.key} = true; }; out = acc.out ++ [ m ]; })
      { seen = { }; out = [ ]; }
      list).out;

  mergeDeclarations = loc: left: right:
    left // b.mapAttrs
      (n: v:
        if !(left ? ${n}) then v
        else if isOption v || isOption left.${n} then
          throw "The option `${showOption (loc ++ [ n ])}' is declared twice."
        else mergeDeclarations (loc ++ [ n ]) left.${n} v)
      right;

  # Walk the declarations with the definitions that fall under each node.
  evalTree = loc: decl: defs:
    if isOption decl then { leaf = evalOption loc decl defs; }
    else
      let
        pushed = concatMap (d: map (v: { inherit (d) file; value = v; }) (pushDown d.value)) defs;
        notSets = filter (d: !isAttrs d.value) pushed;
        unknown = concatMap
          (d: map (n: "The option `${showOption (loc ++ [ n ])}' does not exist (defined in ${d.file}).")
            (filter (n: !(decl ? ${n})) (b.attrNames d.value)))
          (filter (d: isAttrs d.value) pushed);
        problems = map (d: "${showOption loc}: expected an attribute set of options, got ${showValue d.value} (defined in ${d.file}).") notSets
          ++ unknown;
      in
      {
        inherit problems;
        children = b.mapAttrs
          (n: sub: evalTree (loc ++ [ n ]) sub
            (concatMap (d: if isAttrs d.value && d.value ? ${n} then [{ inherit (d) file; value = d.value.${n}; }] else [ ]) pushed))
          decl;
      };

  toConfig = node:
    if node ? leaf then node.leaf.value
    else if node.problems != [ ] then throw (b.head node.problems)
    else b.mapAttrs (_: toConfig) node.children;

  toOptions = node: if node ? leaf then node.leaf else b.mapAttrs (_: toOptions) node.children;

  evalModules = { modules, specialArgs ? { }, prefix ? [ ] }:
    let
      allArgs = { inherit lib config options; } // specialArgs;
      collected = dedupe (collectModules allArgs "the declaration" "<root>" (toList modules));
      declarations = foldl' (acc: m: mergeDeclarations prefix acc m.options) { } collected;
      tree = evalTree prefix declarations (map (m: { inherit (m) file; value = m.config; }) collected);
      config = toConfig tree;
      options = toOptions tree;
    in
    { inherit config options; };
in
{
  inherit isOption showOption showValue mkIf mkMerge mkOverride mkOptionDefault mkDefault mkForce
    mkOption mkEnableOption mergeEqualOption mergeDefinitions pushDown discharge evalModules;
}
