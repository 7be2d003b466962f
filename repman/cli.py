"""The ``repman`` command: status, switchover, failover, watch, maintenance and config tools.

Every error a user can cause ends as one line ``repman: <reason>`` on stderr and
a non-zero exit (2: configuration, 1: refused or failed operation); never a
traceback.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import signal
import sys
import threading
import time
from typing import Any, Callable, Sequence

import pymysql

from repman.db import ServerAddress
from repman.errors import ConfigError, RepmanError

EXAMPLES = """\
examples:
  repman --config repman.yaml status                  one-shot view of the (only) cluster
  repman --config repman.yaml --cluster c1 status --json
  repman --config repman.yaml switchover              elect the best replica, switch to it
  repman --config repman.yaml switchover --to 127.0.0.1:3307
  repman --config repman.yaml failover                promote a replica of a dead master now
  repman --config repman.yaml watch                   monitor every cluster until SIGTERM/SIGINT
  repman --config repman.yaml reset-failover-counter  allow automatic failovers again
  repman --config repman.yaml maintenance on 127.0.0.1:3308   never elect it, no failover of it
  repman --config repman.yaml config check            validate the file, touch no server
  repman --config repman.yaml backup --type logical   mariadb-dump from a replica into the repository
  repman --config repman.yaml backups                 the backup catalog
  repman --config repman.yaml restore --to-time 2026-12-01T04:50:00Z --target 127.0.0.1:3320 --datadir DIR
  repman keys                                         every configuration key, default and help
  echo -n 's3cret' | repman hash-password             a password-hash for the api-users section
  repman --config repman.yaml reseed 127.0.0.1:3312   rebuild a broken replica from a physical copy
  repman --config repman.yaml rolling-restart         restart all, one switchover, no write lost
  repman --config repman.yaml events --follow         the event history, then new events as they come
  repman --config repman.yaml status --watch 2        refresh the status every 2 s until Ctrl-C

exit status: 0 success; 1 operation refused or failed; 2 bad configuration or usage.
The config file defaults to $REPMAN_CONFIG.
"""


def _global_options(parser: argparse.ArgumentParser, suppress: bool) -> None:
    default: Any = argparse.SUPPRESS if suppress else None
    parser.add_argument("--config", metavar="FILE", default=default,
                        help="watcher YAML file (clusters: {name: {repman keys}}); default $REPMAN_CONFIG")
    parser.add_argument("--cluster", metavar="NAME", default=default,
                        help="cluster section to act on (optional when the file has one cluster)")
    parser.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS if suppress else False,
                        help="print each step of an operation on stderr")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="repman", description="Failover, switchover and monitoring of MariaDB replication clusters.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _global_options(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def add(name: str, help_text: str, description: str = "") -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=description or help_text,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        _global_options(p, suppress=True)
        return p

    p = add("status", "show every server's role, state, GTID positions, threads and lag",
            "Read every server once and print the cluster's state and the monitor's decision.\n"
            "Without --cluster and with several clusters, all are shown.")
    p.add_argument("--json", action="store_true", help="machine-readable output (never contains passwords)")
    p.add_argument("--watch", nargs="?", type=float, const=2.0, default=None, metavar="SECONDS",
                   help="refresh every SECONDS (default 2) until Ctrl-C; --json prints one line per refresh")
    p = add("events", "the cluster's event history: decisions, alerts, operations, state changes, routing",
            "Read the history the watcher keeps in the state store (the last 200 events).\n"
            "--since takes epoch seconds, ISO 8601 (UTC unless a zone is given) or an age: 90s, 10m, 2h, 1d.\n"
            "--json prints {cluster, events}; with --follow one JSON object per line.\n"
            "example: repman --config repman.yaml events --since 1h --kind operation --json")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing new events (polls every second)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--since", metavar="TIME", help="only events at or after TIME")
    p.add_argument("--limit", metavar="N", default="50", help="at most the last N events (default 50; 0: none)")
    p.add_argument("--kind", action="append", choices=["decision", "alert", "operation", "state", "router"],
                   help="only events of this kind (repeatable)")
    p = add("switchover", "planned switch of the master to a replica, without losing a write",
            "Freeze the master, let the candidate catch up, promote it and demote the old master.\n"
            "Refused (exit 1) on long transactions or queries, or without an electable candidate.\n"
            "example: repman --config repman.yaml switchover --to 127.0.0.1:3307")
    p.add_argument("--to", metavar="HOST:PORT", help="the replica to promote (default: elected)")
    p.add_argument("--json", action="store_true", help="print the operation result as JSON")
    p = add("failover", "promote the best replica now (the master is dead)",
            "Elect the most advanced replica, apply its relay log and promote it.")
    p.add_argument("--json", action="store_true", help="print the operation result as JSON")
    p = add("watch", "monitor the clusters until SIGTERM or SIGINT (and serve the HTTP API)",
            "One monitoring loop per cluster (all clusters of the file, or --cluster);\n"
            "serves the HTTP API and dashboard when the file has an api: section.")
    p.add_argument("--no-api", action="store_true", help="do not serve the HTTP API")
    p = add("reset-failover-counter", "set the failover counter back to 0 (failover-limit)")
    p.add_argument("--json", action="store_true", help="print {cluster, failover_count, was} as JSON")
    p = add("maintenance", "put a server in maintenance or take it out (kept across restarts)",
            "A server in maintenance is never elected or rejoined and gets no reads; a master in\n"
            "maintenance keeps its writes but is not failed over while it does not answer.\n"
            "A running watcher picks the change up at its next tick.\n"
            "example: repman --config repman.yaml maintenance on 127.0.0.1:3308")
    p.add_argument("state", choices=["on", "off"], help="on: take it out of the cluster's decisions; off: back")
    p.add_argument("server", metavar="HOST:PORT", help="a server of the cluster")
    p.add_argument("--json", action="store_true", help="print {server, maintenance, sentence} as JSON")
    p = add("config", "configuration tools")
    p.add_argument("action", choices=["check", "import", "drift"],
                   help="check: validate the file without touching servers; import: convert a "
                        "replication-manager config.toml into a watcher YAML and stack files; drift: "
                        "compare the stack's declared my.cnf with the servers' running variables (exit 3 on drift)")
    p.add_argument("--stack", metavar="PULUMI.STACK.YAML", help="drift: the stack file that declares the cluster")
    p.add_argument("source", nargs="?", metavar="CONFIG.TOML", help="import: replication-manager's configuration")
    p.add_argument("--out-dir", default=".", help="import: folder of repman.yaml and its secrets/ (default .)")
    p.add_argument("--stacks-dir", default="stacks", help="import: folder of the Pulumi.<cluster>.yaml files")
    p.add_argument("--json", action="store_true", help="check: print the clusters and the api summary as JSON")
    p = add("keys", "list every configuration key with its type, default and help")
    p.add_argument("--json", action="store_true", help="machine-readable list")
    add("hash-password", "read a password on stdin, print a salted hash for api-users")
    p = add("rotate-passwords", "new replication (and monitoring) passwords on a live cluster",
            "The primary gets ALTER USER (a hash only), every replica is re-pointed one at a time with\n"
            "the new password (no write stops), then the secret file behind replication-credential\n"
            "({file: PATH}, as the stack renders it) is replaced; a running watcher re-reads it.\n"
            "example: repman --config repman.yaml rotate-passwords --monitoring-user monitor \\\n"
            "           --monitoring-secret-file .state/secrets/monitoring-credential")
    p.add_argument("--monitoring-user", metavar="USER", help="also rotate this account (bootstrap's monitoring user)")
    p.add_argument("--monitoring-secret-file", metavar="FILE", help="where its new user:password is written (0600)")
    p.add_argument("--json", action="store_true", help="print what was rotated as JSON (never a password)")
    p = add("certificates", "TLS certificates of the cluster",
            "rotate: a new cluster CA and new server certificates on a live cluster, without stopping\n"
            "replication or writes: both CAs are trusted (FLUSH SSL) before the server certificates\n"
            "change, and the old CA is dropped last. Runs where the servers' ssl files are writable.\n"
            "example: repman --config repman.yaml certificates rotate --ca-dir .state/ca")
    p.add_argument("action", choices=["rotate"])
    p.add_argument("--ca-dir", metavar="DIR", required=True, help="the cluster CA (ca.pem, ca-key.pem); replaced")
    p = add("password", "secrets at rest: make a key file, encrypt a value for the config",
            "keygen: write a new key file (mode 600, never overwritten).\n"
            "encrypt: read a secret on stdin, print {encrypted: ...} for any secret key of the\n"
            "watcher config or the stack; the loader decrypts it in memory with monitoring-key-path.\n"
            "example: echo -n 'repl:s3cret' | repman password encrypt --key-path /etc/repman/key")
    p.add_argument("action", choices=["keygen", "encrypt"])
    p.add_argument("--key-path", metavar="FILE", default=None,
                   help="the key file (default $REPMAN_MONITORING_KEY_PATH)")
    p = add("reseed", "rebuild a replica from a physical copy of a healthy member (local nodes)",
            "Stream mariadb-backup from a healthy replica (or the primary) into a fresh datadir,\n"
            "prepare it, swap it in, set gtid_slave_pos from the backup and replicate. The old\n"
            "datadir stays in place if any step fails. Never the primary.\n"
            "example: repman --config repman.yaml reseed 127.0.0.1:3312")
    p.add_argument("server", metavar="HOST:PORT", help="the replica to rebuild")
    p.add_argument("--from", dest="source", metavar="HOST:PORT",
                   help="copy from this member (default: a healthy replica)")
    p.add_argument("--base-dir", metavar="DIR", help="the node's directory (my.cnf, data/) when it is down")
    p.add_argument("--json", action="store_true", help="print the operation result as JSON")
    p = add("rolling-restart", "restart every server, replicas first, the primary last after a switchover",
            "Each replica is restarted and back in sync before the next; then one planned switchover,\n"
            "then the old primary restarts as a replica. Writes pause once (one switchover).")
    p.add_argument("--json", action="store_true", help="print the operation result as JSON")
    from repman.backup.cli import add_commands as add_backup_commands
    add_backup_commands(add)
    from repman.alerts.cli import add_commands as add_alert_commands
    add_alert_commands(add)
    return parser


# -- helpers ------------------------------------------------------------------------------

def _load(args: argparse.Namespace):
    """The watcher's clusters; the file's ``api:`` section, validated with them, goes to ``args._api``."""
    from repman.api.config import api_config
    from repman.watcher.config import load_config
    path = args.config or os.environ.get("REPMAN_CONFIG")
    if not path:
        raise ConfigError("--config", "no configuration file given (use --config FILE or $REPMAN_CONFIG)")
    wc = load_config(path)
    args._api = api_config(wc)
    args._loaded = wc  # for the audit record of an operation (main)
    return wc


def _stderr_log(verbose: bool) -> Callable[[str], None]:
    """Each step of an operation on stderr as it completes, with the seconds since the start."""
    from repman.termstyle import paint, use_colour
    started = time.monotonic()
    colour = use_colour(sys.stderr)

    def log(message: str) -> None:
        if verbose:
            stamp = paint(f"[{time.monotonic() - started:6.2f}s]", "dim", colour)
            print(f"  {stamp} {message}", file=sys.stderr, flush=True)
    return log


def _server_line(s: dict[str, Any], colour: bool = False) -> str:
    lag = "" if s["seconds_behind_master"] is None else f"{s['seconds_behind_master']}s"
    ro = "" if s["read_only"] is None else ("ro" if s["read_only"] else "rw")
    threads = "" if s["io_thread"] is None else f"{s['io_thread']}/{s['sql_thread']}"
    err = s["error"] or s["last_sql_error"] or s["last_io_error"] or ""
    pos = s["gtid_current_pos"] or s["gtid_binlog_pos"] or ""
    from repman.termstyle import STATE_COLOURS, paint
    state = paint(f"{s['state']:<11}", STATE_COLOURS.get(s["state"]), colour)
    return (f"  {s['url']:<22} {state} {ro:<3} {pos:<22} {s['master_url'] or '':<22} "
            f"{threads:<16} {lag:<6} {err}").rstrip()


def _print_status(st: dict[str, Any], colour: bool = False) -> None:
    limit = st["failover_limit"]
    print(f"cluster {st['cluster']}: master {st['master'] or 'unknown'}, failover-mode {st['failover_mode']}, "
          f"failovers {st['failover_count']}/{limit if limit else 'unlimited'}")
    if st["decision"]:
        print(f"  {st['decision']['sentence']}")
    if st.get("maintenance"):
        print(f"  in maintenance: {', '.join(st['maintenance'])}")
    for run in st.get("jobs", [])[-3:]:
        print(f"  job {run['kind']} {run['status']}: {run.get('sentence') or ''}".rstrip())
    print(f"  {'SERVER':<22} {'STATE':<11} {'RW':<3} {'GTID':<22} {'MASTER':<22} {'IO/SQL':<16} {'LAG':<6} ERROR")
    for s in st["servers"]:
        print(_server_line(s, colour))


# -- commands -----------------------------------------------------------------------------

def cmd_status(args: argparse.Namespace) -> int:
    from repman.termstyle import clear_screen, use_colour
    from repman.watcher.monitor import ClusterMonitor
    wc = _load(args)
    names = [wc.cluster(args.cluster).name] if (args.cluster or len(wc.clusters) == 1) else list(wc.clusters)
    if args.watch is not None and not args.watch > 0:
        raise ConfigError("--watch", f"{args.watch:g} is not a positive number of seconds")
    # One observing monitor per cluster, kept across refreshes (its memory counts failed pings).
    monitors = [ClusterMonitor(wc.cluster(name), log=lambda m: None, act=False) for name in names]
    colour = use_colour(sys.stdout)
    try:
        while True:
            out = []
            for monitor in monitors:
                monitor.tick()
                out.append(monitor.status())
            doc = out[0] if len(out) == 1 else {"clusters": out}
            if args.json:
                print(json.dumps(doc, sort_keys=True) if args.watch else json.dumps(doc, indent=2, sort_keys=True))
            else:
                if args.watch:
                    clear_screen(sys.stdout)
                    print(f"{time.strftime('%H:%M:%S')} every {args.watch:g}s (Ctrl-C to stop)")
                for st in out:
                    _print_status(st, colour)
            sys.stdout.flush()
            if not args.watch:
                return 0
            time.sleep(args.watch)
    except KeyboardInterrupt:
        return 0
    finally:
        for monitor in monitors:
            monitor.close()


def cmd_events(args: argparse.Namespace) -> int:
    """Print the history from the state store; --follow polls it every second for newer events."""
    from repman.termstyle import SEVERITY_COLOURS, paint, use_colour
    from repman.watcher.events import format_event, parse_limit, parse_since, select
    from repman.watcher.operations import store_for
    cfg = _load(args).cluster(args.cluster)
    since = parse_since(args.since, "--since") if args.since else None
    limit = parse_limit(args.limit, "--limit")
    store = store_for(cfg)
    colour = use_colour(sys.stdout)

    def show(evs: list[dict[str, Any]]) -> None:
        for e in evs:
            if args.json:
                print(json.dumps(e, sort_keys=True))
            else:
                print(paint(format_event(e), SEVERITY_COLOURS.get(e.get("severity", "")), colour))
        sys.stdout.flush()

    history = store.load().events
    shown = select(history, since=since, limit=limit, kinds=args.kind or ())
    if args.json and not args.follow:
        print(json.dumps({"cluster": cfg.name, "events": shown}, indent=2, sort_keys=True))
        return 0
    show(shown)
    if not args.follow:
        return 0
    after = int(history[-1].get("seq", 0)) if history else 0
    try:
        while True:
            time.sleep(1.0)
            history = store.load().events
            show(select(history, after=after, kinds=args.kind or ()))
            after = max(after, int(history[-1].get("seq", 0)) if history else 0)
    except KeyboardInterrupt:
        return 0


def _operation(args: argparse.Namespace, kind: str, to: ServerAddress | None = None,
               source: ServerAddress | None = None, base_dir: str | None = None, verbose: bool = False) -> int:
    """Every operator command enters as the watcher's own operations do: judged, then run by a runner."""
    from repman.watcher.analysis import Request
    from repman.watcher.operations import build_routers, request, runner_for
    wc = _load(args)
    cfg = wc.cluster(args.cluster)
    if to is None and getattr(args, "to", None):
        to = ServerAddress.parse(args.to, "--to")
    # Each step as it completes, with its time: asked (-v), or by default when a person watches.
    log = _stderr_log(verbose or args.verbose or sys.stderr.isatty())
    routers = build_routers(cfg, log)
    started, wall = time.monotonic(), time.time()
    result = request(runner_for(cfg, log, lambda: routers), cfg, Request(kind, to=to, who="the command line"),
                     describe=kind, source=source, base_dir=base_dir)
    assert result is not None       # no timeout: the command waits for the operation's end
    _record_operation(cfg, result, wall, time.monotonic() - started)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2, sort_keys=True))
    if not result.ok:
        print(f"repman: {result.sentence}", file=sys.stderr)
        return 1
    if not args.json:
        print(result.sentence)
    return 0


def _record_operation(cfg: Any, result: Any, started_at: float, seconds: float) -> None:
    """A command-line operation goes to the cluster's event history too (who: the shell's user)."""
    from repman.watcher.events import make_event, operation_details, record
    from repman.watcher.operations import store_for
    details = operation_details(result.as_dict(), f"{getpass.getuser()} (cli)", started_at, seconds)
    event = make_event(cfg.name, "info" if result.ok else "error", "operation", result.sentence,
                       {**details, "phase": "end"})
    try:
        record(store_for(cfg), [event])
    except OSError as exc:
        print(f"repman: cannot write the event history: {exc.strerror}", file=sys.stderr)


def cmd_watch(args: argparse.Namespace) -> int:
    from repman.watcher.loop import Watcher
    wc = _load(args)
    names = [wc.cluster(args.cluster).name] if args.cluster else list(wc.clusters)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)   # one line per etcd keepalive otherwise
    watcher = Watcher(wc, clusters=names)
    server = None
    if args._api.enabled and not args.no_api:
        from repman.api.server import ApiServer
        server = ApiServer(args._api, watcher)
        server.start()
        logging.getLogger("repman.api").info("api listening on %s", server.url)
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        logging.getLogger("repman.watcher").info("received %s: stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    watcher.start()
    logging.getLogger("repman.watcher").info("watching %s", ", ".join(names))
    try:
        while not stop.wait(0.5):
            pass
    finally:
        if server is not None:
            server.stop()
        watcher.stop()
    logging.getLogger("repman.watcher").info("stopped")
    return 0


def cmd_reset(args: argparse.Namespace) -> int:
    from repman.watcher.operations import store_for
    cfg = _load(args).cluster(args.cluster)
    store = store_for(cfg)
    before = store.load().failover_count
    store.reset_failover_counter()
    if args.json:
        print(json.dumps({"cluster": cfg.name, "failover_count": 0, "was": before}))
    else:
        print(f"failover counter of {cfg.name} reset to 0 (was {before})")
    return 0


def cmd_maintenance(args: argparse.Namespace) -> int:
    from repman.watcher.maintenance import set_maintenance
    from repman.watcher.operations import store_for
    cfg = _load(args).cluster(args.cluster)
    target, sentence = set_maintenance(cfg, store_for(cfg), args.server, args.state == "on")
    if args.json:
        print(json.dumps({"cluster": cfg.name, "server": target.url, "maintenance": args.state == "on",
                          "sentence": sentence}))
    else:
        print(sentence)
    return 0


def cmd_config_import(args: argparse.Namespace) -> int:
    from repman.config_import import import_repman_config, write_outputs
    from repman.pulumisecrets import read_passphrase

    if not args.source:
        raise ConfigError("config import", "name the replication-manager configuration (config.toml)")
    result = import_repman_config(args.source)
    for line in result.warnings:
        print(f"warning: {line}", file=sys.stderr)
    try:
        passphrase = read_passphrase()
    except RepmanError:
        passphrase = ""
    for path in write_outputs(result, args.out_dir, args.stacks_dir, passphrase):
        if "secrets" not in path.parts:
            print(f"wrote {path}")
    print(f"imported {len(result.clusters)} cluster(s) with {len(result.warnings)} warning(s)")
    return 0


def cmd_config_drift(args: argparse.Namespace) -> int:
    from repman.drift import compare, declared_settings, load_stack_file, running_variables
    from repman.pulumisecrets import read_passphrase

    if not args.stack:
        raise ConfigError("--stack", "config drift needs the stack file that declares the cluster")
    cfg = _load(args).cluster(args.cluster)
    try:
        passphrase = read_passphrase()
    except RepmanError:
        passphrase = ""
    declared = declared_settings(load_stack_file(args.stack, passphrase))
    drifts = []
    for server in cfg.servers:
        found = compare(server.url, declared, running_variables(server, cfg.admin))
        drifts += found
        print(f"{server.url}: {len(declared) - len(found)} of {len(declared)} declared settings as running")
    for d in drifts:
        print(d.sentence())
    return 3 if drifts else 0


def cmd_config(args: argparse.Namespace) -> int:
    if args.action == "import":
        return cmd_config_import(args)
    if args.action == "drift":
        return cmd_config_drift(args)
    wc = _load(args)
    if args.json:
        api = args._api
        print(json.dumps({"file": str(wc.path), "valid": True, "clusters": [
            {"name": name, "servers": [a.url for a in cfg.servers], "failover_mode": cfg.text("failover-mode"),
             "ticker": cfg.ticker, "routing": [k for k in ("haproxy", "proxysql", "maxscale", "registry-consul",
                                                           "mdbshardproxy") if cfg.flag(k)]}
            for name, cfg in wc.clusters.items()],
            "api": {"enabled": api.enabled, "tls": api.tls, "bind": api.bind, "port": api.port,
                    "users": len(api.users)}}, indent=2, sort_keys=True))
        return 0
    for name, cfg in wc.clusters.items():
        routing = [k for k in ("haproxy", "proxysql", "maxscale", "registry-consul", "mdbshardproxy")
                   if cfg.flag(k)]
        print(f"{name}: {len(cfg.servers)} servers ({', '.join(a.url for a in cfg.servers)}), "
              f"failover-mode {cfg.text('failover-mode')}, ticker {cfg.ticker:g}s, "
              f"routing {', '.join(routing) or 'none'}")
    api = args._api
    if api.enabled:
        scheme = "https" if api.tls else "http"
        print(f"api: {scheme}://{api.bind}:{api.port}, {len(api.users)} users")
    print(f"{wc.path}: configuration is valid")
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    from repman.api.keys import API_KEYS, API_USERS_HELP
    from repman.watcher.config import CLUSTER_TABLES
    sections = [("clusters.<name>", t) for t in CLUSTER_TABLES] + [("api", API_KEYS)]
    rows = []
    for section, table in sections:
        for k in table.values():
            default = "***" if (k.secret and k.default) else k.default
            if isinstance(default, list):
                default = [str(v) for v in default]
            rows.append({"section": section, "name": k.name, "kind": k.kind, "default": default,
                         "choices": list(k.choices), "help": k.help})
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    current = None
    width = max((len(r["name"]) for r in rows), default=0) + 1
    for r in rows:
        if r["section"] != current:
            current = r["section"]
            print(f"{current}:")
        kind = "|".join(r["choices"]) if r["choices"] else r["kind"]
        print(f"  {r['name']:<{width}} {kind:<20} default {r['default']!r}\n      {r['help']}")
    print(f"api:\n  {API_USERS_HELP}")
    return 0


def cmd_hash_password(args: argparse.Namespace) -> int:
    from repman.api.auth import hash_password
    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
    else:
        password = sys.stdin.readline().rstrip("\n")
    if not password:
        raise ConfigError("password", "empty password")
    print(hash_password(password))
    return 0


def cmd_rotate_passwords(args: argparse.Namespace) -> int:
    from pathlib import Path

    from repman.rotation import rotate_replication, rotate_user
    cfg = _load(args).cluster(args.cluster)
    if bool(args.monitoring_user) != bool(args.monitoring_secret_file):
        raise ConfigError("--monitoring-user", "give --monitoring-user and --monitoring-secret-file together")
    secret = cfg.secret_files.get("replication-credential")
    if not secret:
        raise ConfigError(f"clusters.{cfg.name}.replication-credential",
                          "rotation rewrites the secret file: the value must be a {file: PATH} reference")
    done = rotate_replication(cfg, Path(secret))
    if args.monitoring_user:
        done.rotated += rotate_user(cfg, args.monitoring_user, Path(args.monitoring_secret_file)).rotated
    summary = {"cluster": cfg.name, "primary": done.primary.url, "rotated": done.rotated,
               "repointed": [r.url for r in done.repointed]}
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"rotated {', '.join(done.rotated)} on {cfg.name}: primary {done.primary.url}, "
              f"replicas re-pointed: {', '.join(summary['repointed']) or 'none'}")
    return 0


def cmd_certificates(args: argparse.Namespace) -> int:
    from pathlib import Path

    from repman.cert_rotation import rotate_certificates
    cfg = _load(args).cluster(args.cluster)
    done = rotate_certificates(cfg, Path(args.ca_dir), _stderr_log(args.verbose))
    print(f"{cfg.name}: new CA {done.new_ca_subject}; certificates replaced on "
          f"{', '.join(a.url for a in done.servers)}")
    return 0


def cmd_password(args: argparse.Namespace) -> int:
    from pathlib import Path

    from repman.secret_store import KEY_PATH_ENV, encrypt, generate_key_file, read_key
    path = args.key_path or os.environ.get(KEY_PATH_ENV)
    if not path:
        raise ConfigError("--key-path", f"name the key file (--key-path FILE or ${KEY_PATH_ENV})")
    if args.action == "keygen":
        try:
            generate_key_file(Path(path))
        except FileExistsError:
            raise ConfigError("--key-path", f"{path} exists: a key file is never overwritten") from None
        except OSError as exc:
            raise ConfigError("--key-path", f"cannot create {path}: {exc.strerror}") from None
        print(f"wrote {path}")
        return 0
    key = read_key(path, "--key-path")
    secret = getpass.getpass("secret: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    if not secret:
        raise ConfigError("secret", "empty value on stdin")
    print(f"{{encrypted: '{encrypt(secret, key)}'}}")
    return 0


def cmd_reseed(args: argparse.Namespace) -> int:
    server = ServerAddress.parse(args.server, "server")
    source = ServerAddress.parse(args.source, "--from") if args.source else None
    return _operation(args, "reseed", to=server, source=source, base_dir=args.base_dir, verbose=True)


def cmd_rolling_restart(args: argparse.Namespace) -> int:
    return _operation(args, "rolling-restart", verbose=True)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "status": cmd_status, "events": cmd_events, "switchover": lambda a: _operation(a, "switchover"),
    "failover": lambda a: _operation(a, "failover"), "watch": cmd_watch,
    "reset-failover-counter": cmd_reset, "maintenance": cmd_maintenance, "config": cmd_config, "keys": cmd_keys,
    "hash-password": cmd_hash_password, "password": cmd_password, "rotate-passwords": cmd_rotate_passwords,
    "certificates": cmd_certificates,
    "reseed": cmd_reseed, "rolling-restart": cmd_rolling_restart,
}
from repman.backup.cli import COMMANDS as _BACKUP_COMMANDS  # noqa: E402 - backup, backups, restore

COMMANDS.update(_BACKUP_COMMANDS)
from repman.alerts.cli import COMMANDS as _ALERT_COMMANDS  # noqa: E402 - alert test|mute|unmute|status

COMMANDS.update(_ALERT_COMMANDS)


AUDITED = ("switchover", "failover", "maintenance", "reset-failover-counter", "rotate-passwords", "certificates",
           "reseed", "rolling-restart")


def _audit(args: argparse.Namespace, code: int) -> None:
    """Operations run from the shell go to the API's audit log too (api-audit-log), as user (cli)."""
    wc, api = getattr(args, "_loaded", None), getattr(args, "_api", None)
    if args.command not in AUDITED or wc is None or api is None or not api.audit_log:
        return
    from repman.api.audit import AuditLog
    what = " ".join([args.command] + [str(getattr(args, a)) for a in ("state", "server", "to", "action")
                                      if getattr(args, a, None)])
    try:
        cluster = wc.cluster(args.cluster).name
    except ConfigError:
        cluster = None
    try:
        AuditLog(api.audit_log).record(f"{getpass.getuser()} (cli)", "cli", "CLI", what,
                                         {0: 200, 1: 409}.get(code, 400), cluster)
    except OSError as exc:
        print(f"repman: audit log {api.audit_log}: {exc.strerror}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code = 2
    try:
        code = _main(args)
        return code
    finally:
        _audit(args, code)


def _main(args: argparse.Namespace) -> int:
    try:
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        print(f"repman: {exc}", file=sys.stderr)
        return 2
    except RepmanError as exc:
        print(f"repman: {exc}", file=sys.stderr)
        return 1
    except pymysql.MySQLError as exc:
        code, text = (tuple(exc.args) + ("", ""))[:2]
        print(f"repman: database error {code} {text}".rstrip(), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("repman: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
