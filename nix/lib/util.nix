# List, attribute-set and string helpers with nixpkgs' names and meaning, written on
# plain builtins so the module system works where nixpkgs cannot be fetched.
let
  b = builtins;
in
rec {
  id = x: x;
  const = x: _: x;
  inherit (b)
    all any attrNames attrValues concatLists concatMap concatStringsSep elem
    elemAt filter foldl' genList hasAttr head isAttrs isBool isFloat isFunction isInt
    isList isPath isString length listToAttrs mapAttrs match removeAttrs
    replaceStrings stringLength substring tail toJSON typeOf;

  optional = cond: x: if cond then [ x ] else [ ];
  optionals = cond: xs: if cond then xs else [ ];
  optionalAttrs = cond: set: if cond then set else { };
  optionalString = cond: s: if cond then s else "";
  toList = x: if b.isList x then x else [ x ];
  flatten = x: if b.isList x then b.concatMap flatten x else [ x ];
  last = list: b.elemAt list (b.length list - 1);
  imap1 = f: list: b.genList (i: f (i + 1) (b.elemAt list i)) (b.length list);
  unique = b.foldl' (acc: x: if b.elem x acc then acc else acc ++ [ x ]) [ ];
  count = pred: list: b.length (b.filter pred list);

  nameValuePair = name: value: { inherit name value; };
  mapAttrs' = f: set: b.listToAttrs (map (n: f n set.${n}) (b.attrNames set));
  mapAttrsToList = f: set: map (n: f n set.${n}) (b.attrNames set);
  filterAttrs = pred: set:
    b.listToAttrs (b.concatMap
      (n: if pred n set.${n} then [ (nameValuePair n set.${n}) ] else [ ])
      (b.attrNames set));
  genAttrs = names: f: b.listToAttrs (map (n: nameValuePair n (f n)) names);
  recursiveUpdate = lhs: rhs:
    lhs // b.mapAttrs
      (n: v: if b.isAttrs v && lhs ? ${n} && b.isAttrs lhs.${n} then recursiveUpdate lhs.${n} v else v)
      rhs;

  hasPrefix = prefix: s: b.substring 0 (b.stringLength prefix) s == prefix;
  hasSuffix = suffix: s:
    let ls = b.stringLength s; lx = b.stringLength suffix;
    in ls >= lx && b.substring (ls - lx) lx s == suffix;
  concatMapStringsSep = sep: f: list: b.concatStringsSep sep (map f list);
  concatMapStrings = f: list: b.concatStringsSep "" (map f list);
  escapeShellArg = arg:
    let s = toString arg;
    in if b.match "[[:alnum:],._+:@%/=-]+" s != null then s
    else "'${b.replaceStrings [ "'" ] [ "'\\''" ] s}'";
  escapeShellArgs = args: b.concatStringsSep " " (map escapeShellArg args);

  importJSON = path: b.fromJSON (b.readFile path);
  # Numbers as people write them: 0.05, not toString's 0.050000.
  showNumber = x:
    let
      s = toString x;
      m = b.match "(-?[0-9]+)[.]([0-9]*[1-9])?0*" s;
    in
    if !(b.isFloat x) || m == null then s
    else b.elemAt m 0 + (if b.elemAt m 1 == null then "" else ".${b.elemAt m 1}");
  literalExpression = text: { _type = "literalExpression"; inherit text; };
}
