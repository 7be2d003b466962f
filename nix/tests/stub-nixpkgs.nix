# Stand-in for the flake's nixpkgs input (nixpkgs cannot be fetched here). Its lib is the
# self-contained one; its build functions build nothing and return the arguments they
# were called with, so tests can check what the flake asks for.
let
  b = builtins;
  baseLib = import ../lib;
  drv = name: attrs: attrs // {
    type = "derivation";
    inherit name;
    outPath = "/nix/store/00000000000000000000000000000000-${name}";
  };
  pyNames = [ "pulumi" "parver" "semver" "requests" "typing-extensions" "setuptools" "hatchling"
    "fabric" "pymysql" "jinja2" "pyyaml" "cryptography" "httpx" "h2" "croniter" "pyjwt" "prometheus-client" "aiosmtpd" "docker" "pytest" "pytest-timeout" "pytest-xdist"
    "ruff" "mypy" "types-pyyaml" "import-linter" "openapi-spec-validator" "pip" ];
  pyPkgs = baseLib.genAttrs pyNames (n: drv "python3-${n}" { pname = n; }) // {
    buildPythonPackage = a: drv "python3-${a.pname}-${a.version}" (a // { builder = "buildPythonPackage"; });
    buildPythonApplication = a: drv "${a.pname}-${a.version}" (a // { builder = "buildPythonApplication"; });
    fetchPypi = a: drv "${a.pname}-${a.version}.tar.gz" { fetchPypi = a; };
  };
  lib = baseLib // {
    licenses.gpl3Plus = { spdxId = "GPL-3.0-or-later"; };
    # Strings, not paths: interpolating a path would copy the repository into the store.
    cleanSource = src: toString src;
    cleanSourceWith = { src, filter ? null, ... }: toString src;
    makeBinPath = ps: b.concatStringsSep ":" (map (p: "${p}/bin") ps);
  };
  # nixpkgs' Pulumi plugins: the Python language host, and a provider packaged with its SDK.
  pulumiPackages = {
    pulumi-python = drv "pulumi-python" { };
    pulumi-kubernetes = drv "pulumi-kubernetes-4.25.0" {
      sdks.python = drv "python3-pulumi-kubernetes-4.25.0" { pname = "pulumi-kubernetes"; version = "4.25.0"; };
    };
  };
  pkgsFor = system: {
    inherit lib pulumiPackages;
    python3 = drv "python3" {
      pkgs = pyPkgs;
      withPackages = f: drv "python3-env" { packages = f pyPkgs; };
    };
    pulumi = drv "pulumi" {
      withPackages = f: drv "pulumi-with-plugins" { plugins = f pulumiPackages; };
    };
    stdenv.hostPlatform = { inherit system; isLinux = lib.hasSuffix "-linux" system; };
    # The VM test is returned as defined (nothing runs here).
    testers.runNixOSTest = test: drv "vm-test-run-${test.name}" { inherit test; };
    writeText = name: text: drv name { inherit text; };
    writeShellScript = name: text: drv name { inherit text; };
    writeShellScriptBin = name: text: drv name { inherit text; };
    runCommand = name: env: script: drv name (env // { inherit script; });
    mkShell = a: drv "nix-shell" a;
  } // baseLib.genAttrs [ "mariadb" "mariadb_1011" "haproxy" "sysbench" "openssh" "iproute2" "nix" "nixpkgs-fmt" ] (n: drv n { });
in
{
  inherit lib;
  legacyPackages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" "x86_64-darwin" "aarch64-darwin" ] pkgsFor;
}
