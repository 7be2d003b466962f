"""The watcher's HTTP API with real HTTP requests, a real cluster and a real watcher loop."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request

import pytest

from repman.tls import ensure_server_certificates
from testkit.api_client import Running, call
from testkit.watcherbed import converged, insert, master_of, sql, wait_until


@pytest.fixture
def bed(seeded_bed):
    return seeded_bed


def test_access_control_and_no_secrets(bed, tmp_path):
    with Running(bed, tmp_path, {}) as r:
        code, headers, _ = call(r.url("/api/clusters"))
        assert code == 401 and headers["WWW-Authenticate"].startswith("Basic")
        assert call(r.url("/api/clusters"), user=("eve", "wrong"))[0] == 401
        assert call(r.url("/api/clusters"), user=("nobody", "eve-pass"))[0] == 401
        code, _, body = call(r.url("/api/clusters"), user=("eve", "eve-pass"))
        assert code == 200
        summary = json.loads(body)["clusters"]
        assert summary[0]["name"] == "c1" and summary[0]["master"] == bed.addresses[0].url
        code, _, body = call(r.url("/api/clusters/c1"), user=("eve", "eve-pass"))
        assert code == 200
        for secret in (bed.admin.password, bed.replication.password, "eve-pass", "ops-pass", "pbkdf2"):
            assert secret not in body
        st = json.loads(body)
        assert {s["url"] for s in st["servers"]} == {a.url for a in bed.addresses}
        assert st["decision"]["sentence"] == f"master {bed.addresses[0]} is healthy with 2 replicas"
        # a viewer may not operate; unknown paths and clusters
        code, _, body = call(r.url("/api/clusters/c1/switchover"), "POST", ("eve", "eve-pass"), {})
        assert code == 403 and "operator role needed" in body
        assert call(r.url("/api/clusters/zz"), user=("eve", "eve-pass"))[0] == 404
        assert call(r.url("/api/nothing"), user=("eve", "eve-pass"))[0] == 404
        assert call(r.url("/api/clusters/c1/explode"), "POST", ("ops", "ops-pass"), {})[0] == 404
        # a cross-site browser POST is refused even with valid credentials
        code, _, body = call(r.url("/api/clusters/c1/switchover"), "POST", ("ops", "ops-pass"), {},
                             headers={"Origin": "http://evil.example"})
        assert code == 403 and "cross-origin" in body
        assert master_of(bed) == bed.addresses[0]


def test_health_endpoints_follow_roles_and_lag(bed, tmp_path):
    master, r1, r2 = bed.addresses
    with Running(bed, tmp_path, {}) as r:
        for path in (f"/primary?server={master}", f"/primary/c1/{master}", f"/master?cluster=c1&server={master}"):
            assert call(r.url(path))[0] == 200, path
        for replica in (r1, r2):
            assert call(r.url(f"/primary?server={replica}"))[0] == 503
            code, _, body = call(r.url(f"/replica?server={replica}"))
            assert code == 200 and json.loads(body)["role"] == "replica"
            assert call(r.url(f"/replica?server={replica}&lag=0"))[0] == 200
        assert call(r.url(f"/replica?server={master}"))[0] == 503
        # HAProxy's default httpchk sends OPTIONS; HEAD works too
        assert call(r.url(f"/primary?server={master}"), "OPTIONS")[0] == 200
        assert call(r.url(f"/replica?server={r1}"), "HEAD")[0] == 200
        assert call(r.url("/primary?server=127.0.0.1:1"))[0] == 404
        assert call(r.url("/replica?server=junk"))[0] == 400
        assert call(r.url(f"/replica?server={r1}&lag=abc"))[0] == 400
        # a replica whose SQL thread stops is no longer served for reads
        sql(bed, r1, "STOP SLAVE SQL_THREAD")
        try:
            wait_until(lambda: call(r.url(f"/replica?server={r1}"))[0] == 503, 30, "replica drained")
            assert call(r.url(f"/replica?server={r2}"))[0] == 200
        finally:
            sql(bed, r1, "START SLAVE SQL_THREAD")
        wait_until(lambda: call(r.url(f"/replica?server={r1}"))[0] == 200, 30, "replica back")
        # a dead master: no primary anywhere
        bed.kill(master)
        wait_until(lambda: call(r.url(f"/primary?server={master}"))[0] == 503, 30, "dead master unhealthy")
        assert call(r.url(f"/primary?server={r1}"))[0] == 503


def test_health_needs_a_viewer_when_anonymous_health_is_off(bed, tmp_path):
    with Running(bed, tmp_path, {"api-anonymous-health": False}) as r:
        assert call(r.url(f"/primary?server={bed.addresses[0]}"))[0] == 401
        assert call(r.url(f"/primary?server={bed.addresses[0]}"), user=("eve", "eve-pass"))[0] == 200


def test_operator_switchover_over_https(bed, tmp_path):
    certs = tmp_path / "certs"
    ensure_server_certificates(certs, ["127.0.0.1"])
    api = {"api-tls-cert": str(certs / "server-cert.pem"), "api-tls-key": str(certs / "server-key.pem")}
    old, new = bed.addresses[0], bed.addresses[2]
    with Running(bed, tmp_path, api) as r:
        assert r.server.url.startswith("https://")
        ctx = ssl.create_default_context(cafile=str(certs / "ca.pem"))
        # an unverified client is refused by the TLS handshake
        with pytest.raises(urllib.error.URLError):
            call(r.url("/health"), context=ssl.create_default_context())
        code, _, body = call(r.url("/api/clusters/c1/switchover"), "POST", ("ops", "ops-pass"),
                             {"to": new.url}, context=ctx)
        assert code == 200, body
        result = json.loads(body)
        assert result["ok"] and result["new_primary"] == new.url and result["old_primary"] == old.url
        assert master_of(bed) == new
        wait_until(lambda: call(r.url(f"/primary?server={new}"), context=ctx)[0] == 200, 30, "primary moved")
        wait_until(lambda: call(r.url(f"/replica?server={old}"), context=ctx)[0] == 200, 30, "old master reads")
        assert call(r.url(f"/primary?server={old}"), context=ctx)[0] == 503
        # failover refused while the master lives: 409 with the reason
        code, _, body = call(r.url("/api/clusters/c1/failover"), "POST", ("ops", "ops-pass"), {}, context=ctx)
        assert code == 409 and not json.loads(body)["ok"]
        assert call(r.url("/api/clusters/c1/failover"), "POST", ("ops", "ops-pass"), {"to": old.url},
                    context=ctx)[0] == 400
        code, _, body = call(r.url("/api/clusters/c1/switchover"), "POST", ("ops", "ops-pass"),
                             {"to": "127.0.0.1:1"}, context=ctx)
        assert code == 409 and "127.0.0.1:1" in json.loads(body)["sentence"]
        insert(bed, new, 3)
        converged(bed)


def test_maintenance_over_the_api_excludes_a_replica_and_holds_the_master_failover(bed, tmp_path):
    from repman.watcher.state_store import StateStore
    from testkit.watcherbed import restart

    master, held, other = bed.addresses
    ops, eve = ("ops", "ops-pass"), ("eve", "eve-pass")
    with Running(bed, tmp_path, {}, failover_mode="automatic") as r:
        path = f"/api/clusters/c1/servers/{held}/maintenance"
        assert call(r.url(path), "POST", eve, {"state": "on"})[0] == 403
        assert call(r.url(path), "POST", None, {"state": "on"})[0] == 401
        code, _, body = call(r.url(path), "POST", ops, {"state": "maybe"})
        assert code == 400 and "maybe" in body
        code, _, body = call(r.url("/api/clusters/c1/servers/127.0.0.1:1/maintenance"), "POST", ops, {"state": "on"})
        assert code == 404 and "is not a server of cluster c1" in body
        assert call(r.url(path), user=ops)[0] == 405
        code, _, body = call(r.url(path), "POST", ops, {"state": "on"})
        assert code == 200, body
        assert json.loads(body)["maintenance"] is True and json.loads(body)["server"] == held.url
        assert StateStore(tmp_path / "state" / "c1").load().maintenance == [held.url]
        wait_until(lambda: r.mon.labels.get(held) == "Maintenance", 30, "the Maintenance state")
        st = json.loads(call(r.url("/api/clusters/c1"), user=eve)[2])
        servers = {s["url"]: s for s in st["servers"]}
        assert st["maintenance"] == [held.url]
        assert servers[held.url]["maintenance"] is True and servers[held.url]["state"] == "Maintenance"
        assert call(r.url(f"/replica?server={held}"))[0] == 503          # no reads on it
        assert call(r.url(f"/replica?server={other}"))[0] == 200
        page = call(r.url("/"), user=eve)[2]
        assert 'class="state Maintenance">maintenance</span>' in page
        assert r.mon.decision.rule == "healthy"
        assert f"{held} in maintenance" in r.mon.decision.sentence

        # the master in maintenance keeps its writes and is not failed over while it is down
        code, _, body = call(r.url(f"/api/clusters/c1/servers/{master}/maintenance"), "POST", ops, {"state": "on"})
        assert code == 200, body
        wait_until(lambda: r.mon.labels.get(master) == "Maintenance", 30, "the master in maintenance")
        assert call(r.url(f"/primary?server={master}"))[0] == 200
        bed.kill(master)
        wait_until(lambda: r.mon.decision.rule == "master-maintenance", 30, "the maintenance hold")
        ticks = r.mon.ticks
        wait_until(lambda: r.mon.ticks >= ticks + 15, 60, "15 more ticks")
        assert r.mon.decision.rule == "master-maintenance"
        assert r.mon.candidate == other                  # the replica in maintenance is never the candidate
        assert StateStore(tmp_path / "state" / "c1").load().failover_count == 0
        for a in (held, other):
            assert sql(bed, a, "SHOW SLAVE STATUS")[0]["Master_Port"] == master.port
        restart(bed, master)
        wait_until(lambda: (r.mon.decision.rule == "healthy"
                            and sql(bed, master, "SELECT @@read_only AS ro")[0]["ro"] == 0),
                   60, "the master back with writes")
        for a in (master, held):
            code, _, body = call(r.url(f"/api/clusters/c1/servers/{a}/maintenance"), "POST", ops, {"state": "off"})
            assert code == 200 and json.loads(body)["maintenance"] is False, body
        wait_until(lambda: r.mon.labels.get(held) == "Slave" and r.mon.labels.get(master) == "Master", 30,
                   "out of maintenance")
        wait_until(lambda: call(r.url(f"/replica?server={held}"))[0] == 200, 30, "reads back")
        assert StateStore(tmp_path / "state" / "c1").load().maintenance == []
        insert(bed, master, 2)
        converged(bed)
