"""HAProxy routing against a real haproxy in front of real mariadbd nodes.

These tests move routing by hand (Topology objects); the switchover/failover tests
with a writer are in test_haproxy_e2e.py.
"""

from __future__ import annotations

import time

import pymysql
import pytest

from repman.db import ServerAddress
from repman.errors import ConfigError
from repman.local.haproxy_process import HAProxyFiles, check_config, haproxy_binary, reload, write_config
from repman.local.testbed import Testbed as LocalBed
from repman.routing import build_routers, failed, notify
from repman.routing.base import Topology
from repman.routing.haproxy import HAProxyRouter
from repman.routing.haproxy_config import HAProxyConfig, render_haproxy_config
from repman.watcher.cluster_config import ClusterConfig
from testkit.polling import wait_until
from testkit.standins.haproxy_local import LocalHAProxy, port_or_none, port_via, ports_via

pytestmark = pytest.mark.skipif(haproxy_binary() is None, reason="haproxy binary not installed")


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    bed = LocalBed.create(tmp_path_factory.mktemp("hanodes"), count=3)
    yield bed
    bed.destroy()


@pytest.fixture
def proxy(tmp_path, nodes):
    hp = LocalHAProxy(tmp_path / "haproxy", nodes.addresses, nodes.addresses[0])
    yield hp
    hp.close()


def topo(primary, replicas, unhealthy=(), servers=(), reason="monitor"):
    return Topology("c1", primary, tuple(replicas), tuple(unhealthy), reason=reason, servers=tuple(servers))


def test_rendered_configs_pass_haproxy_check(tmp_path):
    servers = (ServerAddress("127.0.0.1", 3311), ServerAddress("db2.example", 3312))
    variants = [
        dict(),
        dict(tags=("masterslave", "noreadwritesplit")),
        dict(tags=("masterslave", "readwritesplit", "ssl"), balance="roundrobin"),
        dict(check="http", watcher=ServerAddress("127.0.0.1", 10001), stats_tcp=ServerAddress("127.0.0.1", 9999)),
    ]
    for i, kw in enumerate(variants):
        conf = HAProxyConfig("c1", servers, str(tmp_path / "s.sock"), str(tmp_path / "state"),
                             primary=servers[1], **kw)
        path = tmp_path / f"h{i}.cfg"
        text = render_haproxy_config(conf)
        path.write_text(text)
        check_config(path)  # raises with haproxy's own alert on a bad file
        write_part, _, read_part = text.partition("frontend read_c1")
        if "noreadwritesplit" in conf.tags:
            assert "service_read" not in text
        else:
            # every node has a slot in the read backend; with tcp checks the primary starts disabled
            assert "server 127.0.0.1:3311 127.0.0.1:3311" in read_part
            assert "server db2.example:3312 db2.example:3312" in read_part
            assert read_part.count(" disabled") == (0 if kw.get("check") == "http" else 1)
        if kw.get("check") == "http":
            # a slot per node, the known primary first; the watcher's endpoints name the server
            assert "server leader" not in text
            assert write_part.index("server db2.example:3312") < write_part.index("server 127.0.0.1:3311")
            assert "uri-lf /primary?cluster=c1&server=%[srv_name]" in write_part
            assert "uri-lf /replica?cluster=c1&server=%[srv_name]" in read_part
            assert text.count("check addr 127.0.0.1 port 10001") == 4
        else:
            assert "server leader db2.example:3312 check" in write_part


@pytest.mark.parametrize("kw,key", [
    (dict(tags=("readwritesplit", "noreadwritesplit")), "prov-proxy-tags"),
    (dict(tags=("bogus",)), "prov-proxy-tags"),
    (dict(write_port=3307, read_port=3307), "haproxy-read-port"),
    (dict(check="http"), "haproxy-check"),
    (dict(write_port=70000), "haproxy-write-port"),
])
def test_bad_config_names_the_key(tmp_path, kw, key):
    conf = HAProxyConfig("c1", (ServerAddress("127.0.0.1", 3311),), "s", "t", **kw)
    with pytest.raises(ConfigError) as err:
        render_haproxy_config(conf)
    assert err.value.key == key


def test_writes_follow_the_primary_and_reads_only_healthy_replicas(proxy, nodes):
    a, b, c = nodes.addresses
    router = HAProxyRouter(proxy.endpoint)
    router.apply(topo(a, [b, c], servers=[a, b, c]))
    assert port_via(proxy.write, nodes.admin) == a.port
    assert ports_via(proxy.read, nodes.admin) == {b.port, c.port}

    router.apply(topo(b, [a], unhealthy=[c], servers=[a, b, c], reason="switchover"))
    assert router.leader().target == b
    assert port_via(proxy.write, nodes.admin) == b.port
    assert ports_via(proxy.read, nodes.admin) == {a.port}        # c drained, b is the primary

    router.apply(topo(b, [a, c], servers=[a, b, c]))             # c healthy again: back in
    assert ports_via(proxy.read, nodes.admin, tries=20) == {a.port, c.port}


def test_no_primary_refuses_writes_instead_of_guessing(proxy, nodes):
    a, b, c = nodes.addresses
    router = HAProxyRouter(proxy.endpoint)
    router.apply(topo(None, [b, c], unhealthy=[a], servers=[a, b, c], reason="failover"))
    with pytest.raises(pymysql.MySQLError):
        port_via(proxy.write, nodes.admin, timeout=2)
    router.apply(topo(c, [b], unhealthy=[a], servers=[a, b, c], reason="failover"))
    assert port_via(proxy.write, nodes.admin) == c.port


def test_open_write_sessions_are_cut_but_read_sessions_survive_a_change(proxy, nodes):
    a, b, c = nodes.addresses
    router = HAProxyRouter(proxy.endpoint)
    router.apply(topo(a, [b, c], servers=[a, b, c]))
    writer = pymysql.connect(host="127.0.0.1", port=proxy.write_port, user=nodes.admin.user,
                             password=nodes.admin.password, read_timeout=5)
    reader = pymysql.connect(host="127.0.0.1", port=proxy.read_port, user=nodes.admin.user,
                             password=nodes.admin.password, read_timeout=5)
    with reader.cursor() as cur:
        cur.execute("SELECT @@port")
        read_port = cur.fetchone()[0]
    lagging = ServerAddress("127.0.0.1", read_port)
    other = c if lagging == b else b
    # The replica serving `reader` starts lagging: drained, but its open session keeps working.
    router.apply(topo(other, [a], unhealthy=[lagging], servers=[a, b, c], reason="switchover"))
    with reader.cursor() as cur:
        cur.execute("SELECT @@port")
        assert cur.fetchone()[0] == read_port
    with pytest.raises(pymysql.MySQLError):
        with writer.cursor() as cur:
            cur.execute("SELECT 1")
    assert port_via(proxy.write, nodes.admin) == other.port
    assert ports_via(proxy.read, nodes.admin) == {a.port}
    reader.close()


def test_primary_is_a_read_fallback_only_when_asked(proxy, nodes):
    a, b, c = nodes.addresses
    router = HAProxyRouter(proxy.endpoint, read_on_master=True)
    router.apply(topo(a, [], unhealthy=[b, c], servers=[a, b, c]))
    assert ports_via(proxy.read, nodes.admin) == {a.port}
    router.apply(topo(a, [b], unhealthy=[c], servers=[a, b, c]))
    assert ports_via(proxy.read, nodes.admin) == {b.port}


def test_a_server_unknown_to_the_config_is_added_at_run_time(tmp_path, nodes):
    a, b, c = nodes.addresses
    hp = LocalHAProxy(tmp_path / "hp", [a, b], a)
    try:
        router = HAProxyRouter(hp.endpoint)
        router.apply(topo(a, [b, c], servers=[a, b, c]))
        wait_until(lambda: ports_via(hp.read, nodes.admin, tries=20) == {b.port, c.port}, timeout=20,
                 what="the added server to serve reads")
    finally:
        hp.close()


def test_reload_keeps_the_runtime_routing(proxy, nodes):
    a, b, c = nodes.addresses
    router = HAProxyRouter(proxy.endpoint)
    router.apply(topo(c, [a, b], servers=[a, b, c], reason="switchover"))
    text = proxy.files.config.read_text().replace("maxconn 4096", "maxconn 4000")
    assert write_config(proxy.files, text) is True
    old_pid = proxy.pid
    new_pid = reload(proxy.files)
    assert new_pid != old_pid
    assert router.leader().target == c
    assert port_via(proxy.write, nodes.admin) == c.port
    assert ports_via(proxy.read, nodes.admin) == {a.port, b.port}


def test_dead_proxy_is_reported_never_raised_and_retried(tmp_path, nodes):
    a, b, c = nodes.addresses
    files = HAProxyFiles(tmp_path / "later")
    cfg = ClusterConfig("c1", {"haproxy": True, "haproxy-runtime-api-servers": [str(files.socket)],
                               "proxy-timeout": 0.5})
    routers = build_routers(cfg)
    assert [r.name for r in routers] == [f"haproxy:{files.socket}"]
    lines: list[str] = []
    t0 = time.monotonic()
    result = notify(routers, topo(b, [c], unhealthy=[a], servers=[a, b, c], reason="failover"), lines.append)
    assert time.monotonic() - t0 < 10
    assert failed(result) and "unreachable" in result[routers[0].name]
    assert any("retried on the next tick" in line for line in lines)
    # The proxy comes (back) up: the very same topology is applied on the next call.
    hp = LocalHAProxy(tmp_path / "later", [a, b, c], a)
    try:
        result = notify(routers, topo(b, [c], unhealthy=[a], servers=[a, b, c], reason="monitor"), lines.append)
        assert result == {routers[0].name: "ok"}
        assert port_via(hp.write, nodes.admin) == b.port
        # unchanged routing is not pushed again on every tick
        result = notify(routers, topo(b, [c], unhealthy=[a], servers=[a, b, c]), lines.append)
        assert result == {routers[0].name: "unchanged"}
    finally:
        hp.close()


def test_http_check_mode_follows_the_watcher_endpoints(tmp_path, nodes):
    """HAProxy asks /primary and /replica for each node by name (host:port): with no runtime
    push at all it follows what those endpoints answer; the router still moves it at once."""
    from testkit.standins.http_recorder import RecordingHTTPServer

    a, b, c = nodes.addresses
    view = {"primary": a.url}

    def health(req):
        from urllib.parse import parse_qs, urlsplit
        url = urlsplit(req.path)
        q = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if q.get("cluster") != "c1":
            return 404, {"error": "unknown cluster"}
        is_primary = q.get("server") == view["primary"]
        ok = is_primary if url.path == "/primary" else not is_primary
        return (200 if ok else 503), {"server": q.get("server")}

    endpoint = RecordingHTTPServer(health)
    hp = LocalHAProxy(tmp_path / "hp", [a, b, c], a, check="http",
                      watcher=ServerAddress("127.0.0.1", endpoint.port), check_inter="200ms")
    try:
        wait_until(lambda: {f"/primary?cluster=c1&server={s.url}" for s in (a, b, c)}
                 <= set(p for _, p in endpoint.calls()),
                 timeout=20, what="HAProxy to check every node by name")
        wait_until(lambda: ports_via(hp.read, nodes.admin, tries=10) == {b.port, c.port}, timeout=20,
                 what="reads on the replicas only")
        assert port_via(hp.write, nodes.admin) == a.port
        view["primary"] = c.url                       # the watcher's view changes: checks follow
        wait_until(lambda: port_or_none(hp.write, nodes.admin) == c.port, timeout=20, what="writes to follow checks")
        wait_until(lambda: ports_via(hp.read, nodes.admin, tries=10) == {a.port, b.port}, timeout=20,
                 what="reads to follow checks")
        view["primary"] = b.url
        router = HAProxyRouter(hp.endpoint)           # the runtime push does not wait for checks
        router.apply(topo(b, [a, c], servers=[a, b, c], reason="switchover"))
        assert port_via(hp.write, nodes.admin) == b.port
    finally:
        hp.close()
        endpoint.close()


def test_runtime_api_over_tcp(tmp_path, nodes):
    from repman.local.testbed import free_ports

    a, b, c = nodes.addresses
    (api_port,) = free_ports(1)
    hp = LocalHAProxy(tmp_path / "hp", [a, b, c], a, stats_tcp=ServerAddress("127.0.0.1", api_port))
    try:
        cfg = ClusterConfig("c1", {"haproxy": True, "haproxy-runtime-api-servers": [f"127.0.0.1:{api_port}"]})
        (router,) = build_routers(cfg)
        assert notify([router], topo(c, [a, b], servers=[a, b, c], reason="switchover")) == {
            f"haproxy:127.0.0.1:{api_port}": "ok"}
        assert port_via(hp.write, nodes.admin) == c.port
    finally:
        hp.close()
