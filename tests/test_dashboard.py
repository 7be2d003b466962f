"""The HTML dashboard: rendered from the monitors' state, escaped, and seen by a real browser."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from repman.api.server import _dashboard_env
from testkit.api_client import Running, call
from testkit.watcherbed import make_table

CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser")) if p), None)


def _status(sentence: str) -> dict:
    server = {"url": "127.0.0.1:3306", "state": "Master", "role": "master", "read_only": False,
              "gtid_current_pos": "0-1-5", "master_url": None, "io_thread": None, "sql_thread": None,
              "seconds_behind_master": None, "error": None, "last_sql_error": None, "last_io_error": None}
    return {"cluster": "c1", "master": "127.0.0.1:3306", "failover_mode": "manual", "failover_count": 0,
            "failover_limit": 5, "operation": None, "last_operation": None, "servers": [server],
            "decision": {"action": "nothing", "sentence": sentence}}


def test_template_escapes_what_it_shows():
    html = _dashboard_env().get_template("index.html.j2").render(
        clusters=[_status("<script>alert(1)</script>")], generated="now")
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html


@pytest.fixture
def bed(testbed):
    testbed.bootstrap()
    make_table(testbed, testbed.addresses[0])
    return testbed


def test_dashboard_lists_servers_roles_and_decision(bed, tmp_path):
    master, r1, r2 = bed.addresses
    with Running(bed, tmp_path, {}) as r:
        assert call(r.url("/"))[0] == 401
        code, headers, html = call(r.url("/"), user=("eve", "eve-pass"))
        assert code == 200 and headers["Content-Type"].startswith("text/html")
        assert "default-src 'none'" in headers["Content-Security-Policy"]
        assert f"master {master} is healthy with 2 replicas" in html
        for addr in (master, r1, r2):
            assert addr.url in html
        assert html.count('class="state Slave"') == 2 and html.count('class="state Master"') == 1
        assert bed.admin.password not in html and bed.replication.password not in html


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_dashboard_in_headless_chromium(bed, tmp_path):
    master = bed.addresses[0]
    shot = tmp_path / "dashboard.png"
    profile = tmp_path / "chromium-profile"
    with Running(bed, tmp_path, {"api-anonymous-read": True}) as r:
        base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--user-data-dir={profile}", "--window-size=1280,800", "--hide-scrollbars"]
        dom = subprocess.run([*base, "--dump-dom", r.url("/")], capture_output=True, text=True, timeout=120)
        assert dom.returncode == 0, dom.stderr[-2000:]
        assert f"master {master} is healthy with 2 replicas" in dom.stdout
        assert 'id="cluster-c1"' in dom.stdout
        done = subprocess.run([*base, f"--screenshot={shot}", r.url("/")], capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
    data = Path(shot).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1280, 800)
    assert len(data) > 10_000        # a blank page compresses to far less
