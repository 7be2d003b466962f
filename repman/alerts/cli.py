"""``repman alert test|mute|unmute|status``: kept apart so ``repman/cli.py`` only gains a line or two.

``test`` sends one alert to every configured channel now (mute, blackout and dedup do
not apply: it checks the channels) and exits 1 when a channel failed. ``mute`` holds the
channels back for a while (the watcher reads the mute before each alert, no restart).
"""

from __future__ import annotations

import argparse
import getpass
import json
import re
import time
from typing import Any, Callable

from repman.alerts.dispatch import Alerter
from repman.alerts.settings import AlertSettings
from repman.alerts.silence import Mute, MuteStore
from repman.errors import ConfigError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def add_commands(add: Callable[..., argparse.ArgumentParser]) -> None:
    p = add("alert", "alert channels: send a test alert, mute or unmute them",
            "test: one alert to every channel (alert-slack-url, mail-to) now; exit 1 if one failed.\n"
            "mute --for 2h [--reason TEXT]: hold the channels back (alert-script still runs).\n"
            "unmute: send again. status: channels, mute and blackout window.\n"
            "example: repman --config repman.yaml alert mute --for 30m --reason 'planned upgrade'")
    p.add_argument("action", choices=["test", "mute", "unmute", "status"])
    p.add_argument("--for", dest="duration", metavar="DURATION", default="1h",
                   help="mute: how long (e.g. 90s, 30m, 2h, 1d; default 1h)")
    p.add_argument("--reason", default="", help="mute: shown in status and in the log")
    p.add_argument("--json", action="store_true", help="print the outcome as JSON")


def parse_duration(text: str, key: str = "--for") -> float:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text or "")
    if m is None or float(m.group(1)) <= 0:
        raise ConfigError(key, f"expected a positive duration like 90s, 30m, 2h or 1d, got {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))


def _print(args: argparse.Namespace, doc: dict[str, Any], line: str) -> None:
    print(json.dumps(doc, indent=2, sort_keys=True) if args.json else line)


def cmd_alert(args: argparse.Namespace) -> int:
    from repman.cli import _load
    cfg = _load(args).cluster(args.cluster)
    settings = AlertSettings.from_config(cfg, cfg.state_dir)
    mutes = MuteStore(cfg.state_dir)
    who = f"{getpass.getuser()} (cli)"
    now = time.time()
    if args.action == "test":
        if not settings.channels:
            raise ConfigError("alert-slack-url", f"cluster {cfg.name} has no alert channel (set alert-slack-url "
                                                 "or mail-to)")
        out = Alerter(settings).send_test(who)
        lines = [f"{c}: sent" for c in out.sent] + [f"{c}: FAILED {why}" for c, why in out.failed.items()]
        _print(args, {"sent": out.sent, "failed": out.failed}, "\n".join(lines))
        return 1 if out.failed else 0
    if args.action == "mute":
        mute = Mute(now + parse_duration(args.duration), who, args.reason)
        mutes.set(mute)
        _print(args, {"muted_until": mute.until, "by": mute.by, "reason": mute.reason},
               f"alerts of {cfg.name} muted until {_when(mute.until)}")
        return 0
    if args.action == "unmute":
        was = mutes.clear()
        _print(args, {"unmuted": was}, f"alerts of {cfg.name} {'unmuted' if was else 'were not muted'}")
        return 0
    current = mutes.current(now)
    doc = {"channels": settings.channels, "muted_until": current.until if current else None,
           "muted_by": current.by if current else None, "reason": current.reason if current else None}
    _print(args, doc, f"channels: {', '.join(settings.channels) or 'none'}; "
                      f"{'muted until ' + _when(current.until) if current else 'not muted'}")
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"alert": cmd_alert}
