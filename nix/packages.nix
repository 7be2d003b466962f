# repman's packages for one nixpkgs package set: the Pulumi provider SDKs pinned in
# versions.json, the Python environment of the dev shell, and the repman application
# (CLI and watcher, with templates, service plans and nix/ inside the wheel).
{ pkgs, src }:
let
  inherit (pkgs) lib;
  py = pkgs.python3.pkgs;
  versions = lib.importJSON ./versions.json;
  pyproject = builtins.fromTOML (builtins.readFile ../pyproject.toml);

  # A provider SDK from its PyPI sdist; its pulumi-plugin.json names the plugin version.
  providerSdk = _: v: py.buildPythonPackage {
    inherit (v) pname version;
    pyproject = true;
    src = py.fetchPypi { inherit (v) pname version hash; };
    build-system = [ py.setuptools ];
    dependencies = [ py.pulumi py.parver py.semver py.requests py.typing-extensions ];
    # nixpkgs' pulumi SDK follows its CLI; the provider only needs a 3.x core.
    pythonRelaxDeps = [ "pulumi" ];
    doCheck = false;
    pythonImportsCheck = [ v.pname ];
  };
  providers = lib.mapAttrs providerSdk versions.python;

  runtimeDeps = ps: [
    ps.pulumi
    providers.pulumi-kubernetes
    providers.pulumi-docker
    ps.fabric
    ps.pymysql
    ps.jinja2
    ps.pyyaml
    ps.cryptography
    ps.croniter
  ];
  testDeps = ps: [ ps.pytest ps.pytest-timeout ];

  source = lib.cleanSourceWith {
    src = lib.cleanSource src;
    filter = path: _type:
      let base = baseNameOf path;
      in !(builtins.elem base [ ".state" "state" ".venv" "venv" "result" ".pytest_cache" "__pycache__" ]);
  };
in
rec {
  inherit providers source;

  pythonEnv = pkgs.python3.withPackages (ps: runtimeDeps ps ++ testDeps ps ++ [ ps.pip ]);

  # The Pulumi CLI with the Python language host built from the same source.
  pulumi = pkgs.pulumi.withPackages (ps: [ ps.pulumi-language-python ]);

  repman = py.buildPythonApplication {
    pname = pyproject.project.name;
    inherit (pyproject.project) version;
    pyproject = true;
    src = source;
    build-system = [ py.hatchling ];
    dependencies = runtimeDeps py;
    # nixpkgs' versions may sit outside pyproject's ranges; the checks run the tests.
    pythonRelaxDeps = true;
    doCheck = false;
    pythonImportsCheck = [ "repman" "repman.watcher.config" "repman.nixeval" ];
    meta = {
      inherit (pyproject.project) description;
      license = lib.licenses.gpl3Plus;
      mainProgram = "repman";
    };
  };
}
