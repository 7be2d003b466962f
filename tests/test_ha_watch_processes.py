"""Two `repman watch` processes sharing one real etcd and one real cluster: kill -9 the leader watcher,
the other takes over within the TTL; kill -9 the master: exactly one failover, counted once in etcd,
and with semi-sync every write a client saw acknowledged is on the new master (none lost, none invented)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from testkit.watcherbed import cluster_section, converged, insert, make_table, master_of, wait_until

TTL = 2
ROOT = Path(__file__).resolve().parent.parent


def start_watcher(bed, etcd, tmp_path: Path, name: str) -> subprocess.Popen[bytes]:
    config = tmp_path / f"{name}.yaml"
    config.write_text(yaml.safe_dump({
        "clusters": {"c1": cluster_section(bed, tmp_path / name, failover_mode="automatic", semisync=True)},
        "ha": {"ha-etcd-endpoints": etcd.endpoints, "ha-etcd-prefix": "/procs", "ha-lease-ttl": TTL,
               "ha-watcher-name": name, "ha-etcd-timeout": 0.5},
    }))
    log = open(tmp_path / f"{name}.log", "wb")   # noqa: SIM115 - the process writes it until the end
    # this checkout's repman (the virtualenv may be shared with another checkout)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "repman.cli", "--config", str(config), "watch", "--no-api"],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env, cwd=ROOT)


def leader(etcd) -> str:
    kv = etcd.client().get(b"/procs/c1/leader")
    return kv.value.decode() if kv is not None else ""


def state(etcd) -> dict[str, object]:
    kv = etcd.client().get(b"/procs/c1/state")
    return json.loads(kv.value) if kv is not None else {}


def test_kill_9_the_leader_watcher_then_the_master(cluster_factory, etcd_factory, tmp_path) -> None:
    c = cluster_factory(semisync=True)
    bed = c.bed
    etcd = etcd_factory(1)
    old = c.primary()
    make_table(bed, old)
    insert(bed, old, 10)
    converged(bed)
    writer = c.writer().start()
    procs = {name: start_watcher(bed, etcd, tmp_path, name) for name in ("w1", "w2")}
    try:
        writer.wait_acks(200)
        first = wait_until(lambda: leader(etcd), 30, "a leader watcher")
        second = "w2" if first == "w1" else "w1"
        wait_until(lambda: "not acting: watcher" in (tmp_path / f"{second}.log").read_text(), 30,
                   f"{second} to monitor and say who acts")
        killed_at = time.monotonic()
        os.killpg(procs[first].pid, signal.SIGKILL)
        procs[first].wait(10)
        wait_until(lambda: leader(etcd) == second, 3 * TTL, f"{second} to take the leader key")
        took = time.monotonic() - killed_at
        assert took < TTL + 1.5, took
        bed.kill(old)
        # Counted when its record is written (before the promotion); finished once the new master
        # takes writes: only then is there one writable master to find.
        wait_until(lambda: state(etcd).get("failover_count") == 1 and state(etcd)["crashes"][-1].get("finished"),
                   40, "one failover counted and finished in etcd")
        new = master_of(bed)
        assert new != old
        assert state(etcd)["crashes"][-1]["new_master"] == new.url
        # a few more seconds of ticks: no second failover, one writable master
        time.sleep(2.0)        # an observation window of several tickers: nothing may happen in it
        assert state(etcd)["failover_count"] == 1
        assert master_of(bed) == new
        log = (tmp_path / f"{second}.log").read_text()
        assert "starting failover" in log and f"this watcher ({second}) leads c1" in log
        assert "Traceback" not in log
        writer.wait_acks(200, 60)                   # writes go on, on the new master
        writer.stop()
        lost, unexpected = writer.verify(new)
        assert not lost and not unexpected, (sorted(lost)[:10], sorted(unexpected)[:10])
        assert len(writer.acked) >= 400
    finally:
        writer.stop()
        for p in procs.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(60)
