"""Nix cluster declarations -> validated stack config (and ``stacks/Pulumi.<stack>.yaml``).

    python -m repman.nixeval nix/examples/local-3node.nix               # print the JSON
    python -m repman.nixeval nix/examples/local-3node.nix --stack local # write the stack file
    python -m repman.nixeval --write-schema | --check-schema

Evaluation runs ``nix-instantiate --eval --strict --json nix/eval-cluster.nix``; the
result is then checked by ``repman.spec.load_cluster_spec``, the validator the Pulumi
program uses. Secrets never pass through here: the declaration holds only references
(``{file}``/``{env}``, resolved by the program at run time) or marks a key as a Pulumi
secret, whose encrypted value in the stack file is kept as it is.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from repman.errors import ConfigError, RepmanError
from repman.paths import data_dir
from repman.spec import NAMESPACE, PROVISIONING_KEYS, REQUIRED_KEYS, ClusterSpec, load_cluster_spec

NIX_TIMEOUT = 300.0
_STACK_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
STACK_HEADER = (
    "# The {ns}:* keys are generated from {source} by `python -m repman.nixeval`:\n"
    "# change the Nix declaration and re-run it rather than editing them here.\n"
)


@dataclass(frozen=True)
class NixEvaluation:
    """One evaluated declaration: the stack config and the keys kept as Pulumi secrets."""

    declaration: Path
    config: dict[str, Any]
    pulumi_secrets: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def nix_dir() -> Path:
    """``nix/`` of a checkout, or the copy an installed wheel carries."""
    return data_dir("nix")


def _nix_instantiate() -> str:
    found = shutil.which("nix-instantiate")
    if not found:
        raise RepmanError("nix-instantiate not found: install Nix (`nix develop`, or apt-get install nix-bin)")
    return found


def nix_error(stderr: str) -> str:
    """Nix's error text as one line (assertion lists joined with '; ')."""
    lines = [ln.strip() for ln in stderr.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("(use '--show-trace'")]
    text = [ln.removeprefix("error:").strip() for ln in lines]
    text = [ln.removeprefix("- ").strip() for ln in text if ln]
    if not text:
        return "nix-instantiate failed without a message"
    if len(text) > 1 and text[0].endswith(":"):
        return f"{text[0]} {'; '.join(text[1:])}"
    return "; ".join(text)


def evaluate(declaration: Path | str) -> NixEvaluation:
    """Evaluate a ``.nix`` declaration with the cluster module system."""
    path = Path(declaration).expanduser().resolve()
    if not path.is_file():
        raise ConfigError(str(declaration), "no such Nix file")
    cmd = [
        _nix_instantiate(), "--readonly-mode", "--eval", "--strict", "--json",
        str(nix_dir() / "eval-cluster.nix"),
        "--argstr", "declaration", str(path), "--argstr", "output", "full",
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=NIX_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise RepmanError(f"{declaration}: nix-instantiate took more than {NIX_TIMEOUT:g} s") from None
    if proc.returncode != 0:
        raise RepmanError(f"{declaration}: {nix_error(proc.stderr)}")
    data = json.loads(proc.stdout)
    evaluation = NixEvaluation(path, dict(data["config"]), list(data["pulumiSecrets"]), list(data["warnings"]))
    _refuse_inline_secrets(evaluation)
    return evaluation


def _refuse_inline_secrets(evaluation: NixEvaluation) -> None:
    """Defence in depth: the Nix types already allow only references for secret keys."""
    for name, value in evaluation.config.items():
        key = PROVISIONING_KEYS.get(name.partition(":")[2])
        if key is not None and (key.secret or key.kind == "credential"):
            if not (isinstance(value, Mapping) and set(value) in ({"file"}, {"env"})):
                raise ConfigError(name, "a secret must be a {file: PATH} or {env: NAME} reference in Nix")


def _placeholder(key: str) -> str:
    return f"{key.partition(':')[2]}-nixcheck:placeholder"


def validate(evaluation: NixEvaluation, project_dir: Path | str | None = None,
             resolve_secrets: bool = False) -> ClusterSpec:
    """Check the evaluation with ``load_cluster_spec``.

    Secrets are not at hand when a declaration is checked (they live in Pulumi's
    provider, files or the environment of ``pulumi up``), so they are replaced by
    distinct placeholders unless ``resolve_secrets`` asks to read the references.
    """
    raw: dict[str, Any] = dict(evaluation.config)
    for name in evaluation.pulumi_secrets:
        raw[name] = _placeholder(name)
    if not resolve_secrets:
        for name, value in evaluation.config.items():
            if isinstance(value, Mapping) and set(value) in ({"file"}, {"env"}):
                raw[name] = _placeholder(name)
    return load_cluster_spec(raw, project_dir=project_dir)


@dataclass(frozen=True)
class StackWrite:
    path: Path
    kept_secrets: list[str]
    missing_secrets: list[str]
    dropped_plaintext: list[str]


def secret_references(evaluation: NixEvaluation) -> list[str]:
    """Keys ``Pulumi.yaml`` declares ``secret: true`` (the required credentials) that the
    declaration gives as ``{file}``/``{env}`` references: the Pulumi CLI accepts them only as
    ``secure:`` values, so they are written encrypted (the reference text, not a password)."""
    return [name for name, value in evaluation.config.items()
            if name.partition(":")[2] in REQUIRED_KEYS and isinstance(value, Mapping)]


def write_stack(evaluation: NixEvaluation, stack: str, stacks_dir: Path | str = "stacks",
                passphrase: str | None = None) -> StackWrite:
    """Replace the ``repman:*`` keys of ``Pulumi.<stack>.yaml``; keep everything else.

    Other namespaces, ``encryptionsalt``/``secretsprovider`` and the encrypted values of
    keys the declaration keeps as Pulumi secrets stay untouched. A plaintext value for
    such a key is dropped rather than carried along. References of secret-declared keys
    are encrypted with ``passphrase`` (the stack's passphrase provider); without one they
    are refused before anything is written.
    """
    if not _STACK_NAME.match(stack):
        raise ConfigError("--stack", f"{stack!r} is not a stack name (letters, digits, '.', '_', '-')")
    path = Path(stacks_dir) / f"Pulumi.{stack}.yaml"
    doc: dict[str, Any] = {}
    if path.exists():
        try:
            loaded = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise ConfigError(str(path), f"invalid YAML: {getattr(exc, 'problem', None) or exc}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(str(path), "expected a mapping with a 'config' section")
        doc = loaded or {}
    old = doc.get("config") or {}
    if not isinstance(old, dict):
        raise ConfigError(f"{path}:config", "expected a mapping of config keys")
    prefix = f"{NAMESPACE}:"
    config: dict[str, Any] = {k: v for k, v in old.items() if not str(k).startswith(prefix)}
    config.update({name: _stack_value(name, value) for name, value in evaluation.config.items()})
    kept: list[str] = []
    missing: list[str] = []
    dropped: list[str] = []
    for name in evaluation.pulumi_secrets:
        value = old.get(name)
        if isinstance(value, dict) and set(value) == {"secure"}:
            config[name] = value
            kept.append(name)
        else:
            (dropped if value is not None else missing).append(name)
    encrypted = secret_references(evaluation)
    if encrypted:
        from repman.pulumisecrets import crypter_from_salt, new_encryption_salt

        if passphrase is None:
            raise ConfigError(encrypted[0], "Pulumi.yaml declares it secret: set PULUMI_CONFIG_PASSPHRASE (or "
                              "_FILE) to store the reference encrypted, or declare it pulumiSecret = true")
        if doc.get("encryptionsalt"):
            crypter = crypter_from_salt(passphrase, str(doc["encryptionsalt"]))
        else:
            doc["encryptionsalt"], crypter = new_encryption_salt(passphrase)
        for name in encrypted:
            config[name] = {"secure": crypter.encrypt(config[name])}
    doc["config"] = config
    path.parent.mkdir(parents=True, exist_ok=True)
    header = STACK_HEADER.format(ns=NAMESPACE, source=_shown_path(evaluation.declaration))
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(header + yaml.safe_dump(doc, sort_keys=False, default_flow_style=False))
    tmp.replace(path)
    return StackWrite(path, kept, missing, dropped)


_STRING_KINDS = ("str", "path", "enum", "credential", "hostport")


def _stack_value(name: str, value: Any) -> Any:
    """Pulumi types project config: a ``{file}``/``{env}`` reference for a string key is
    written as JSON text, which ``repman.spec`` decodes back into the reference."""
    key = PROVISIONING_KEYS.get(name.partition(":")[2])
    if key is not None and key.kind in _STRING_KINDS and isinstance(value, Mapping):
        return json.dumps(dict(value), separators=(",", ":"))
    return value


def _shown_path(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m repman.nixeval",
        description="Evaluate a Nix cluster declaration into repman stack config.")
    p.add_argument("declaration", nargs="?", help="the .nix file declaring the cluster")
    p.add_argument("--stack", help="write/merge stacks/Pulumi.<STACK>.yaml instead of printing JSON")
    p.add_argument("--stacks-dir", default="stacks", help="folder of the stack files (default: stacks)")
    p.add_argument("--project-dir", default=".", help="Pulumi project folder (relative prov-state-dir)")
    p.add_argument("--resolve-secrets", action="store_true",
                   help="validate with the {file}/{env} references read now (default: placeholders)")
    p.add_argument("--write-schema", action="store_true", help="regenerate nix/generated/schema.json")
    p.add_argument("--check-schema", action="store_true", help="fail when nix/generated/schema.json is stale")
    return p


def run(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.write_schema or args.check_schema:
        from repman.nixschema import check_schema, write_schema  # imports every key table
        if args.write_schema:
            print(f"wrote {write_schema(nix_dir())}")
        else:
            check_schema(nix_dir())
            print("nix/generated/schema.json is up to date")
        return 0
    if not args.declaration:
        raise ConfigError("declaration", "name the .nix file to evaluate (or use --write-schema)")
    evaluation = evaluate(args.declaration)
    spec = validate(evaluation, project_dir=args.project_dir, resolve_secrets=args.resolve_secrets)
    for warning in evaluation.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if not args.stack:
        print(json.dumps(evaluation.config, indent=2))
        _hint_secrets(evaluation.pulumi_secrets, None)
        return 0
    passphrase = None
    if secret_references(evaluation):
        from repman.pulumisecrets import read_passphrase

        passphrase = read_passphrase()
    result = write_stack(evaluation, args.stack, args.stacks_dir, passphrase)
    print(f"wrote {result.path}: cluster {spec.name}, {spec.orchestrator} backend, "
          f"{spec.node_count} nodes ({spec.plan.name})")
    for name in result.dropped_plaintext:
        print(f"warning: dropped the unencrypted value of {name} from {result.path}", file=sys.stderr)
    _hint_secrets(result.missing_secrets + result.dropped_plaintext, args.stack)
    return 0


def _hint_secrets(names: Sequence[str], stack: str | None) -> None:
    where = f" --stack {stack}" if stack else ""
    for name in names:
        print(f"set the secret with: pulumi config set --secret{where} {name} USER:PASSWORD", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return run(argv)
    except RepmanError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
