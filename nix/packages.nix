# repman's packages for one nixpkgs package set.
#
# - `repman`: the watcher-only application (CLI and watcher, templates, plans and nix/ in the
#   wheel), with pyproject's base dependencies only: no Pulumi SDK, as `pip install repman`.
# - `pythonEnv`: the dev shell's Python, with the `pulumi`, `opensvc` extras and the tests
#   (pytest, and import-linter for the layer contracts).
# - `pulumi`: the CLI with the `pulumi-python` language host and every provider plugin
#   nixpkgs packages for us (kubernetes when present), so the CLI downloads nothing for them.
#
# Versions: the core `pulumi` Python SDK, the CLI and its language host come from the same
# nixpkgs `pulumi` source (nixos-26.05 carries a 3.2xx release: it satisfies pyproject's
# pulumi>=3.139,<4). The kubernetes SDK is nixpkgs' `pulumiPackages.pulumi-kubernetes.sdks.python`,
# built from the same source and version as the plugin beside it; where a nixpkgs has no such
# package, and always for docker (not packaged in nixpkgs), the SDK comes from the PyPI sdist
# pinned in versions.json and the CLI installs the plugin named in its pulumi-plugin.json.
{ pkgs, src }:
let
  inherit (pkgs) lib;
  py = pkgs.python3.pkgs;
  versions = lib.importJSON ./versions.json;
  pyproject = builtins.fromTOML (builtins.readFile ../pyproject.toml);
  pulumiPackages = pkgs.pulumiPackages or { };
  nixpkgsProvider = name: builtins.hasAttr name pulumiPackages && pulumiPackages.${name} ? sdks;

  # A provider SDK from its PyPI sdist; its pulumi-plugin.json names the plugin version.
  sdistSdk = _: v: py.buildPythonPackage {
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
  sdists = lib.mapAttrs sdistSdk versions.python;
  providers = lib.mapAttrs
    (name: sdk: if nixpkgsProvider name then pulumiPackages.${name}.sdks.python else sdk)
    sdists;
  # Plugins the CLI gets from the store instead of downloading them.
  pluginsFrom = ps: [ ps.pulumi-python ]
    ++ lib.filter (p: p != null) (map (n: if nixpkgsProvider n then ps.${n} else null) (lib.attrNames versions.python));

  runtimeDeps = ps: [ ps.fabric ps.pymysql ps.jinja2 ps.pyyaml ps.cryptography ps.croniter ps.pyjwt ps.prometheus-client
    ps.httpx ];
  pulumiDeps = ps: [ ps.pulumi providers.pulumi-kubernetes providers.pulumi-docker ps.docker ];
  # The opensvc extra (httpx with HTTP/2), the test runner and the linters (scripts/lint.sh).
  extraDeps = ps: [ ps.httpx ps.h2 ];
  testDeps = ps: [ ps.pytest ps.pytest-timeout ps.pytest-xdist ps.aiosmtpd ps.ruff ps.mypy ps.types-pyyaml ps.import-linter
    ps.openapi-spec-validator ];

  source = lib.cleanSourceWith {
    src = lib.cleanSource src;
    filter = path: _type:
      let base = baseNameOf path;
      in !(builtins.elem base [ ".state" "state" ".venv" "venv" "result" ".pytest_cache" "__pycache__" ]);
  };
in
rec {
  inherit providers sdists source;

  pythonEnv = pkgs.python3.withPackages (ps: runtimeDeps ps ++ pulumiDeps ps ++ extraDeps ps ++ testDeps ps ++ [ ps.pip ]);

  # The Pulumi CLI with the Python language host and nixpkgs' provider plugins.
  pulumi = pkgs.pulumi.withPackages pluginsFrom;

  # The MariaDB the tests and the local backend run (10.11 LTS, as on the CI machines).
  mariadb = pkgs.mariadb_1011;

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
