"""``python -m embedded_engine <command> --stack NAME``: the Pulumi CLI's workflow without the CLI."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from embedded_engine.engine import Engine, Progress, Step
from embedded_engine.errors import EngineError
from embedded_engine.stack import parse_overrides, project_name
from repman.errors import RepmanError

PROJECT_DIR = Path(__file__).resolve().parent.parent


def _print_outputs(outputs: dict[str, Any], secret: set[str], show_secrets: bool) -> None:
    print("Outputs:")
    for key, value in outputs.items():
        shown = "[secret]" if key in secret and not show_secrets else value
        if isinstance(shown, str) and "\n" in shown:
            print(f"    {key}:")
            for line in shown.rstrip("\n").splitlines():
                print(f"        {line}")
        else:
            print(f"    {key:<24} {json.dumps(shown)}")


def _print_plan(plan: list[Step], show_diff: bool, out: Any) -> None:
    if not plan:
        print("Plan: no changes", file=out, flush=True)
        return
    print("Plan:", file=out)
    for step in sorted(plan, key=lambda s: s.name):
        print(step.line(show_diff), file=out)
    counts = {op: sum(1 for s in plan if s.op == op) for op in ("+", "~", "-/+", "-")}
    print("    " + ", ".join(f"{n} to {word}" for op, word in (("+", "create"), ("~", "update"),
                                                              ("-/+", "replace"), ("-", "delete"))
                           if (n := counts[op])), file=out, flush=True)


def _confirm(yes: bool) -> None:
    """``up`` applies only what the user accepted; without a terminal it needs ``--yes``."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise RepmanError("--yes must be passed to apply when not running interactively "
                          "(the plan above is what would be applied)")
    answer = input("Do you want to perform this update? [yes/no] ").strip().lower()
    if answer not in ("y", "yes"):
        raise RepmanError("update cancelled; nothing was changed")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m embedded_engine",
                                     description="Run the repman Pulumi program without the Pulumi CLI.")
    parser.add_argument("command", choices=("preview", "up", "refresh", "down", "destroy", "status", "export"))
    parser.add_argument("--stack", "-s", default="local")
    parser.add_argument("--project-dir", type=Path, default=PROJECT_DIR)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--show-secrets", action="store_true")
    parser.add_argument("--config", "-c", action="append", default=[], metavar="KEY=VALUE",
                        help="override a stack config value for this run (like pulumi up --config)")
    parser.add_argument("--yes", "-y", action="store_true", help="up: apply the plan without asking")
    parser.add_argument("--diff", action="store_true", help="preview/up: show old => new values of changed keys")
    parser.add_argument("--refresh", "-r", action="store_true",
                        help="preview/up: read every resource first, so the plan sees drift "
                        "(dead process, edited my.cnf)")
    parser.add_argument("--expect-no-changes", action="store_true",
                        help="preview/up: exit non-zero when the plan is not empty (drift check)")
    args = parser.parse_args(argv)
    quiet = args.json
    out = sys.stderr if quiet else sys.stdout
    progress: Progress = lambda m: print(m, file=out, flush=True)  # noqa: E731
    started = time.monotonic()
    try:
        project_dir = args.project_dir.resolve()
        overrides = parse_overrides(args.config, project_name(project_dir))
        if args.command in ("preview", "up"):
            planner = Engine(project_dir, args.stack, progress, overrides, preview=True)
            planned = planner.up(refresh=args.refresh)
            _print_plan(planner.plan, args.diff, out)
            if args.expect_no_changes and planner.plan:
                print(f"error: {len(planner.plan)} change(s) planned but --expect-no-changes was given",
                      file=sys.stderr)
                return 3
            if args.command == "preview":
                result = {"plan": planned["plan"], "changes": {}}
            else:
                _confirm(args.yes)
                engine = Engine(project_dir, args.stack, progress, overrides)
                result = engine.up(refresh=args.refresh)
                if result["plan"] != planned["plan"]:
                    progress("  ! the applied steps differ from the plan (the live state changed in between)")
        else:
            engine = Engine(project_dir, args.stack, progress, overrides)
            if args.command == "refresh":
                result = engine.refresh()
                progress(f"Refresh: {result['drifted']} resource(s) drifted or gone; state updated")
            elif args.command in ("down", "destroy"):
                result = engine.down()
            elif args.command == "export":
                # Only the deployment on stdout, for `pulumi stack import --file`.
                print(json.dumps(engine.export(), indent=1, sort_keys=True))
                return 0
            else:
                result = engine.status()
    except RepmanError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if not isinstance(exc, EngineError) else 1
    result["seconds"] = round(time.monotonic() - started, 2)
    if args.json:
        out_doc = dict(result)
        if "outputs" in out_doc and not args.show_secrets:
            secret = set(out_doc.get("secret_outputs", []))
            out_doc["outputs"] = {k: ("[secret]" if k in secret else v) for k, v in out_doc["outputs"].items()}
        print(json.dumps(out_doc, indent=1, sort_keys=True))
        return 0
    if args.command == "status":
        print(f"state: {result['state_file']}")
        for r in result["resources"]:
            print(f"    {r['type']:<44} {r['name']}{'  [protected]' if r['protect'] else ''}")
        for p in result["pending_operations"]:
            print(f"    ! pending {p['operation']} of {p['name']} (interrupted; run refresh)")
        _print_outputs(result["outputs"], set(), True)
    elif args.command == "up":
        _print_outputs(result["outputs"], set(result["secret_outputs"]), args.show_secrets)
    changes = result.get("changes")
    if changes:
        print("Resources: " + ", ".join(f"{v} {k}" for k, v in changes.items() if v) + f"; {result['seconds']}s")
    return 0

