"""Pulumi's project/stack config rules, applied the same way by the CLI and our embedded engine.

``Pulumi.yaml`` ``config:`` is generated from ``repman.spec.PROVISIONING_KEYS`` (``python -m
components.pulumi_config --write``; a test fails when the committed file drifts). The rules
replayed here are those of the CLI (``sdk/go/common/workspace/config.go`` ``mergeConfig`` and
``project.go`` in pulumi/pulumi):

- a key declared in the project namespace with neither ``default`` nor ``value`` is required
  on every stack (one error listing all missing keys, in the CLI's words);
- a declared ``default`` fills a key the stack does not set;
- a key declared ``secret: true`` must hold a ``secure:`` value in the stack file;
- a declared ``type`` is checked against the stack value (``string`` takes any scalar,
  ``integer`` a whole number or a numeric string, ``boolean`` true/false or their text,
  ``array`` a list whose items have the ``items`` type).

So only ``db-servers-credential`` and ``replication-credential`` are declared without a
default (``secret: true``); an optional key either has a default or is left out of the
declared schema (optional secrets, ``prov-db-nodes``), where ``repman.spec`` still validates it.
This module never imports pulumi.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from pathlib import Path
from typing import Any, Mapping

import yaml

from components.pulumi_secrets import SecretsError, crypter_from_salt, read_passphrase
from repman.errors import RepmanError
from repman.keys import Key
from repman.spec import NAMESPACE, PROVISIONING_KEYS, REQUIRED_KEYS

PROJECT_DIR = Path(__file__).resolve().parent.parent
PULUMI_TYPES = {"str": "string", "path": "string", "enum": "string", "credential": "string",
                "hostport": "string", "int": "integer", "bool": "boolean", "strlist": "array"}


class PulumiConfigError(RepmanError):
    """The project or a stack breaks one of the CLI's config rules; the text is the CLI's."""


# ---------------------------------------------------------------- the generated schema

def undeclared_keys() -> tuple[str, ...]:
    """Optional keys that Pulumi's schema cannot express (optional secret, no default): left out."""
    return tuple(name for name, key in PROVISIONING_KEYS.items()
                 if name not in REQUIRED_KEYS and (key.secret or key.default is None))


def declaration(name: str, key: Key) -> dict[str, Any]:
    """One ``config:`` entry of ``Pulumi.yaml``."""
    decl: dict[str, Any] = {"type": PULUMI_TYPES[key.kind]}
    if key.kind == "strlist":
        decl["items"] = {"type": "string"}
    help_text = key.help
    if key.choices:
        help_text += f" ({', '.join(key.choices)})"
    if name in REQUIRED_KEYS:
        decl["description"] = f"{help_text}; required: pulumi config set --secret {NAMESPACE}:{name} USER:PASSWORD"
        decl["secret"] = True
    else:
        decl["description"] = help_text
        decl["default"] = key.default
    return decl


def project_config_schema() -> dict[str, dict[str, Any]]:
    skip = set(undeclared_keys())
    return {name: declaration(name, key) for name, key in PROVISIONING_KEYS.items() if name not in skip}


HEADER = """\
# Pulumi project: `pulumi up --stack local` inside `nix develop`, or without the CLI
# `python -m embedded_engine up --stack local`.
# GENERATED from repman.spec.PROVISIONING_KEYS: edit the key table, then run
#   python -m components.pulumi_config --write
# Required on every stack (secret): {required}.
# Optional keys Pulumi's schema cannot express (optional secrets, no default) are not declared
# here and are still validated by repman:
#   {undeclared}.
# Any watcher, routing or api key (`repman keys`) may also be set in a stack: it goes to the
# watcher config the program renders (e.g. repman:failover-mode, repman:haproxy, repman:api-port).
"""
PROJECT = {
    "name": NAMESPACE,
    "runtime": {"name": "python", "options": {"toolchain": "pip", "virtualenv": ".venv"}},
    "description": "MariaDB replication clusters with managed-service simplicity (repman)",
    "stackConfigDir": "stacks",
}


def render_project_file() -> str:
    """The whole ``Pulumi.yaml``; scalars as JSON text (valid YAML) so every value reads unambiguously."""
    undeclared = ",\n#   ".join(undeclared_keys())
    lines = [HEADER.format(required=", ".join(REQUIRED_KEYS), undeclared=undeclared).rstrip("\n")]
    lines += yaml.safe_dump(PROJECT, sort_keys=False, default_flow_style=False).splitlines()
    lines.append("config:")
    for name, decl in project_config_schema().items():
        lines.append(f"  {name}:")
        for field, value in decl.items():
            if field == "items":
                lines += ["    items:", f"      type: {value['type']}"]
            elif field == "type":
                lines.append(f"    type: {value}")
            else:
                lines.append(f"    {field}: {json.dumps(value)}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- the CLI's rules

def validate_project(project: Mapping[str, Any]) -> None:
    """``Project.Validate``: default xor value, arrays name their items, defaults fit their type."""
    name = str(project.get("name") or "")
    if not name:
        raise PulumiConfigError("project is missing a 'name' attribute")
    for key, decl in (project.get("config") or {}).items():
        decl = _as_declaration(name, key, decl)
        if "default" in decl and "value" in decl:
            raise PulumiConfigError(f"project config '{key}' cannot have both a 'default' and 'value' attribute")
        if _in_project_namespace(name, key):
            if decl.get("type") == "array" and "items" not in decl:
                raise PulumiConfigError(f"The configuration key '{key}' declares an array but does not specify "
                                        "the underlying type via the 'items' attribute")
            if "type" in decl and decl.get("default") is not None and \
                    not type_matches(decl["type"], decl.get("items"), decl["default"]):
                raise PulumiConfigError(f"The default value specified for configuration key '{key}' is not of "
                                        f"the expected type '{full_type_name(decl['type'], decl.get('items'))}'")
        elif "type" in decl:
            raise PulumiConfigError(f"Configuration key '{key}' is not namespaced by the project and should "
                                    "not define a type")


def _in_project_namespace(project: str, key: str) -> bool:
    return ":" not in key or key.startswith(project + ":")


def _as_declaration(project: str, key: str, decl: Any) -> dict[str, Any]:
    """Shorthand ``key: value`` is a default in the project namespace, a fixed value elsewhere."""
    if isinstance(decl, dict):
        return decl
    return {"default": decl} if _in_project_namespace(project, key) else {"value": decl}


def _full_key(project: str, key: str) -> str:
    return key if ":" in key else f"{project}:{key}"


def full_type_name(type_name: str, items: Mapping[str, Any] | None) -> str:
    if items:
        return f"array<{full_type_name(str(items.get('type', '')), items.get('items'))}>"
    return type_name


def type_matches(type_name: str, items: Mapping[str, Any] | None, value: Any) -> bool:
    """``ValidateConfigValue``: scalars arrive as text, so numbers and booleans may be strings."""
    if type_name == "string":
        return isinstance(value, str)
    if type_name == "integer":
        if isinstance(value, bool):
            return False
        if isinstance(value, int):
            return True
        if isinstance(value, float):
            return math.isfinite(value) and value == math.trunc(value)
        return isinstance(value, str) and re.fullmatch(r"[+-]?[0-9]+", value) is not None
    if type_name == "boolean":
        return isinstance(value, bool) or value in ("true", "false")
    if type_name == "object":
        return isinstance(value, dict)
    if not isinstance(value, list) or not items:
        return False
    return all(type_matches(str(items.get("type", "")), items.get("items"), item) for item in value)


def as_config_text(value: Any) -> Any:
    """A stack file scalar as the CLI holds it (text); lists and objects stay structured."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, (int, float)):
        return str(value)
    return value


def missing_keys_error(stack: str, missing: list[str]) -> PulumiConfigError:
    """The CLI's ``missingStackConfigurationKeysError`` text."""
    keys = sorted(missing)
    if len(keys) == 1:
        listed = f"'{keys[0]}'"
    else:
        listed = ", ".join(f"'{k}'" for k in keys[:-1]) + f" and '{keys[-1]}'"
    return PulumiConfigError(f"Stack '{stack}' is missing configuration {'value' if len(keys) == 1 else 'values'} "
                             f"{listed}")


def _decrypt_all(value: Any, decrypt) -> tuple[Any, bool]:
    """Secure leaves decrypted (anywhere in the value) and whether the top value itself was secure."""
    if isinstance(value, dict) and set(value) == {"secure"}:
        return decrypt(str(value["secure"])), True
    if isinstance(value, dict):
        return {k: _decrypt_all(v, decrypt)[0] for k, v in value.items()}, False
    if isinstance(value, list):
        return [_decrypt_all(v, decrypt)[0] for v in value], False
    return value, False


def _has_secure(value: Any) -> bool:
    if isinstance(value, dict):
        return set(value) == {"secure"} or any(_has_secure(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_secure(v) for v in value)
    return False


def merge_stack_config(project: Mapping[str, Any], stack: str, stack_doc: Mapping[str, Any],
                       overrides: Mapping[str, Any] | None = None,
                       env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The stack's config after the CLI's merge and validation, secure values decrypted.

    ``overrides`` are ``--config KEY=VALUE`` values of this run: they count as set (so they
    satisfy a required key) and are type-checked, but never written to a file, so the
    "must be encrypted" rule applies to the stack file's own values only.
    """
    validate_project(project)
    name = str(project["name"])
    from_cli = {_full_key(name, k) for k in (overrides or {})}
    # A secure value replaced for this run is never decrypted (no passphrase needed for it).
    raw = {k: v for k, v in ((_full_key(name, k), v) for k, v in (stack_doc.get("config") or {}).items())
           if k not in from_cli}
    decrypt = None
    if any(_has_secure(v) for v in raw.values()):
        salt = stack_doc.get("encryptionsalt")
        if not salt:
            raise PulumiConfigError(f"Stack '{stack}' has secure values but no encryptionsalt "
                                    "(only the passphrase secrets provider is supported here)")
        decrypt = crypter_from_salt(read_passphrase(env), str(salt)).decrypt
    values: dict[str, Any] = {}
    secure: set[str] = set()
    for key, value in raw.items():
        if decrypt is not None:
            value, top_secure = _decrypt_all(value, decrypt)
            if top_secure:
                secure.add(key)
        values[key] = value
    values.update({_full_key(name, k): v for k, v in (overrides or {}).items()})

    declared = {k: _as_declaration(name, k, d) for k, d in (project.get("config") or {}).items()}
    missing = []
    for key in sorted(declared):
        decl, full = declared[key], _full_key(name, key)
        if full in values:
            continue
        if "value" in decl or decl.get("default") is not None:
            values[full] = decl["default"] if decl.get("default") is not None else decl["value"]
        elif full.split(":", 1)[0] == name:
            missing.append(key)
    if missing:
        raise missing_keys_error(stack, missing)
    for key in sorted(declared):
        decl, full = declared[key], _full_key(name, key)
        if decl.get("secret") and full not in secure and full not in from_cli:
            raise PulumiConfigError(f"Stack '{stack}' with configuration key '{key}' must be encrypted as it's secret")
        if "type" in decl and not type_matches(decl["type"], decl.get("items"), as_config_text(values[full])):
            raise PulumiConfigError(f"Stack '{stack}' with configuration key '{key}' must be of type "
                                    f"'{full_type_name(decl['type'], decl.get('items'))}'")
    return values


def load_stack_config(project_dir: Path, stack: str, overrides: Mapping[str, Any] | None = None,
                      env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``Pulumi.yaml`` + ``<stackConfigDir>/Pulumi.<stack>.yaml`` + overrides, as the CLI merges them."""
    project = yaml.safe_load((project_dir / "Pulumi.yaml").read_text()) or {}
    path = project_dir / str(project.get("stackConfigDir") or ".") / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        raise PulumiConfigError(f"stack {stack!r}: no {path.relative_to(project_dir)}")
    try:
        return merge_stack_config(project, stack, yaml.safe_load(path.read_text()) or {}, overrides, env)
    except SecretsError as exc:
        raise PulumiConfigError(f"Stack '{stack}': {exc}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m components.pulumi_config",
                                     description="Generate Pulumi.yaml from the key table, or check a stack.")
    parser.add_argument("--write", action="store_true", help="rewrite Pulumi.yaml from the key table")
    parser.add_argument("--check", metavar="STACK", action="append", default=[],
                        help="apply the CLI's merge and validation rules to stacks/Pulumi.STACK.yaml")
    parser.add_argument("--project-dir", type=Path, default=PROJECT_DIR)
    args = parser.parse_args(argv)
    if args.write:
        (args.project_dir / "Pulumi.yaml").write_text(render_project_file())
    for stack in args.check:
        try:
            load_stack_config(args.project_dir, stack, env=os.environ)
        except RepmanError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"stack {stack}: ok")
    if not args.write and not args.check:
        sys.stdout.write(render_project_file())
    return 0


if __name__ == "__main__":
    sys.exit(main())
