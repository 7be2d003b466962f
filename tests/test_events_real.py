"""The event history with a real watcher on a real 3-node mariadbd cluster: operations, a killed
master, the `repman events` command, the API route and its server-sent-events stream."""

from __future__ import annotations

import base64
import http.client
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

from repman.api.auth import hash_password
from repman.watcher.state_store import StateStore
from testkit.api_client import USERS, Running, call
from testkit.watcherbed import cluster_section, master_of, wait_until, write_config

OPS, EVE, TEN = ("ops", "ops-pass"), ("eve", "eve-pass"), ("ten", "ten-pass")
TENANT_USERS = {**USERS, "ten": {"role": "operator", "password-hash": hash_password("ten-pass"),
                                 "clusters": ["elsewhere"]}}


ROOT = Path(__file__).resolve().parents[1]


def repman(*args: str) -> subprocess.CompletedProcess:
    """This checkout's `repman` (the shared virtualenv's script may point at another checkout)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "repman.cli", *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env=env)


@pytest.fixture
def bed(seeded_bed):
    return seeded_bed


def _events(tmp_path) -> list[dict]:
    return StateStore(tmp_path / "state" / "c1").load().events


def _kinds(evs: list[dict]) -> list[str]:
    return [e["kind"] for e in evs]


def test_switchover_events_name_the_operator_and_the_outcome_and_every_face_shows_them(bed, tmp_path):
    master, r1, _ = bed.addresses
    with Running(bed, tmp_path, {"api-users": TENANT_USERS}) as r:
        code, _, body = call(r.url("/api/clusters/c1/switchover"), "POST", OPS, {"to": r1.url})
        assert code == 200, body
        assert master_of(bed) == r1
        r.wait_tick()
        evs = wait_until(lambda: [e for e in _events(tmp_path) if e["kind"] == "operation"], 10, "operation events")
        start, end = evs[0], evs[-1]
        assert start["details"]["phase"] == "start" and start["details"]["by"] == "ops over the API"
        assert "ops over the API" in start["message"]
        assert end["details"]["phase"] == "end" and end["details"]["by"] == "ops over the API"
        assert end["details"]["ok"] is True and end["severity"] == "info"
        assert end["details"]["operation"] == "switchover"
        assert end["details"]["old_primary"] == master.url and end["details"]["new_primary"] == r1.url
        assert end["details"]["seconds"] > 0 and end["details"]["started_at"] <= end["at"]
        timed = [s for s in end["details"]["steps"] if s["seconds"] is not None]
        assert timed, end["details"]["steps"]               # each step with its duration
        assert all(e["cluster"] == "c1" for e in evs)
        seqs = [e["seq"] for e in _events(tmp_path)]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        # the monitor saw the roles swap: state events for both servers
        wait_until(lambda: {e["details"]["server"] for e in _events(tmp_path) if e["kind"] == "state"}
                   >= {master.url, r1.url}, 20, "state events of both servers")

        # the API: the grant's holder reads them; no login 401; another tenant's user 404
        code, _, body = call(r.url("/api/clusters/c1/events?kind=operation"), user=EVE)
        assert code == 200, body
        api = json.loads(body)
        assert api["cluster"] == "c1" and [e["seq"] for e in api["events"]] == [e["seq"] for e in evs]
        code, _, body = call(r.url("/api/clusters/c1/events?limit=1"), user=EVE)
        assert len(json.loads(body)["events"]) == 1
        since = urllib.parse.quote(str(end["at"]))
        code, _, body = call(r.url(f"/api/clusters/c1/events?since={since}&kind=operation"), user=EVE)
        assert [e["seq"] for e in json.loads(body)["events"]] == [end["seq"]]
        assert call(r.url("/api/clusters/c1/events"))[0] == 401
        assert call(r.url("/api/clusters/c1/events"), user=TEN)[0] == 404
        assert call(r.url("/api/clusters/nope/events"), user=EVE)[0] == 404
        code, _, body = call(r.url("/api/clusters/c1/events?since=yesterday"), user=EVE)
        assert code == 400 and "since" in body and "yesterday" in body
        assert call(r.url("/api/clusters/c1/events?limit=-3"), user=EVE)[0] == 400
        assert call(r.url("/api/clusters/c1/events"), "POST", OPS, {})[0] == 405

        # the command line reads the same history from the state store
        cfg = write_config(tmp_path / "repman.yaml", {"c1": cluster_section(bed, tmp_path / "state")})
        p = repman("--config", str(cfg), "events", "--json", "--kind", "operation")
        assert p.returncode == 0, p.stderr
        out = json.loads(p.stdout)
        assert out["cluster"] == "c1" and [e["seq"] for e in out["events"]] == [e["seq"] for e in evs]
        p = repman("--config", str(cfg), "events", "--limit", "2")
        assert p.returncode == 0 and len(p.stdout.strip().splitlines()) == 2
        assert "\x1b[" not in p.stdout                     # no colour into a pipe
        p = repman("--config", str(cfg), "events", "--since", "soon")
        assert p.returncode == 2 and p.stderr.startswith("repman: --since: 'soon' is not a time")
        assert "Traceback" not in p.stderr


def test_event_stream_delivers_a_new_event_within_seconds(bed, tmp_path):
    _, r1, _ = bed.addresses
    with Running(bed, tmp_path, {}) as r:
        r.server.stream_lifetime = 30.0
        host, port = r.server.httpd.server_address[:2]
        conn = http.client.HTTPConnection(str(host), int(port), timeout=10)
        conn.request("GET", "/api/clusters/c1/events/stream",
                     headers={"Authorization": "Basic " + base64.b64encode(b"eve:eve-pass").decode()})
        resp = conn.getresponse()
        assert resp.status == 200 and resp.getheader("Content-Type") == "text/event-stream"
        before = _events(tmp_path)
        asked = time.monotonic()
        assert call(r.url(f"/api/clusters/c1/servers/{r1}/maintenance"), "POST", OPS, {"state": "on"})[0] == 200
        got = [_read_sse_from(resp, asked + 10)]
        first_delay = time.monotonic() - asked
        while got[-1]["kind"] != "state":
            got.append(_read_sse_from(resp, asked + 10))
        delay = time.monotonic() - asked
        assert got[-1]["details"] == {"server": r1.url, "from": "Slave", "to": "Maintenance"}
        assert {e["kind"] for e in got} <= {"state", "decision"}    # the decision names the maintenance too
        seqs = [e["seq"] for e in got]
        assert seqs == sorted(seqs) and seqs[0] > (before[-1]["seq"] if before else 0)
        assert first_delay < 3.0 and delay < 3.0, (first_delay, delay)
        conn.close()
        # streams are bounded: with every slot taken a new one answers 503
        r.server.streams = threading.BoundedSemaphore(1)
        r.server.streams.acquire()
        code, headers, body = call(r.url("/api/clusters/c1/events/stream"), user=EVE)
        assert code == 503 and headers.get("Retry-After") == "5", body
        r.server.streams.release()
        assert call(r.url("/api/clusters/c1/events/stream"))[0] == 401


def _read_sse_from(resp: http.client.HTTPResponse, deadline: float) -> dict:
    data: list[str] = []
    while time.monotonic() < deadline:
        line = resp.fp.readline().decode().rstrip("\n")
        if line.startswith("data: "):
            data.append(line[6:])
        elif line == "" and data:
            return json.loads("\n".join(data))
    raise AssertionError("no event on the stream in time")


def test_killed_master_failed_over_by_the_watcher_gives_ordered_events(bed, tmp_path):
    master, _, _ = bed.addresses
    with Running(bed, tmp_path, {}, failover_mode="automatic") as r:
        r.wait_tick()
        first = max([e["seq"] for e in _events(tmp_path)] or [0])
        bed.kill(master)
        wait_until(lambda: r.mon.master is not None and r.mon.master != master, 60, "a new master")
        wait_until(lambda: any(e["kind"] == "operation" and e["details"].get("phase") == "end"
                               for e in _events(tmp_path)), 30, "the failover's end event")
        evs = [e for e in _events(tmp_path) if e["seq"] > first]
        suspect = _first(evs, "state", server=master.url)
        decided = _first(evs, "decision", action="failover")
        started = _first(evs, "operation", phase="start")
        ended = _first(evs, "operation", phase="end")
        assert suspect < decided < started < ended, _kinds(evs)
        assert evs[suspect]["details"]["to"] == "Suspect" and evs[decided]["severity"] == "warning"
        end = evs[ended]["details"]
        assert end["operation"] == "failover" and end["ok"] is True and end["by"] == "the watcher"
        assert end["old_primary"] == master.url and end["new_primary"] == r.mon.master.url
        assert evs[ended]["message"].startswith("failover done")


def test_killed_master_in_manual_mode_gives_decision_then_alert_then_the_operators_failover(bed, tmp_path):
    master, _, _ = bed.addresses
    with Running(bed, tmp_path, {}, failover_mode="manual") as r:
        r.wait_tick()
        first = max([e["seq"] for e in _events(tmp_path)] or [0])
        bed.kill(master)
        wait_until(lambda: any(e["kind"] == "alert" for e in _events(tmp_path)), 60, "an alert event")
        code, _, body = call(r.url("/api/clusters/c1/failover"), "POST", OPS, {})
        assert code == 200, body
        wait_until(lambda: any(e["kind"] == "operation" and e["details"].get("phase") == "end"
                               for e in _events(tmp_path)), 30, "the failover's end event")
        evs = [e for e in _events(tmp_path) if e["seq"] > first]
        alerted = _first(evs, "alert")
        decided = _first(evs, "decision", action="alert")
        assert "failover-mode is manual" in evs[decided]["message"]
        started = _first(evs, "operation", phase="start")
        ended = _first(evs, "operation", phase="end")
        assert decided < alerted < started < ended, _kinds(evs)
        assert evs[alerted]["severity"] == "error" and evs[alerted]["message"] == evs[decided]["message"]
        assert evs[started]["details"]["by"] == "ops over the API"
        assert evs[ended]["details"]["ok"] is True and evs[ended]["details"]["operation"] == "failover"


def _first(evs: list[dict], kind: str, **details: str) -> int:
    """Index of the first event of ``kind`` whose details hold ``details``."""
    for i, e in enumerate(evs):
        if e["kind"] == kind and all(e["details"].get(k) == v for k, v in details.items()):
            return i
    raise AssertionError(f"no {kind} event with {details} in {_kinds(evs)}")
