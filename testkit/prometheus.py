"""A real Prometheus server (Debian's ``/usr/bin/prometheus``) scraping one target, for tests and benches.

Started on a free port with a temporary config and storage folder, scraping every second;
``query`` asks its HTTP API (PromQL) and returns the result vector.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from repman.local.ports import free_port_block
from testkit.polling import wait_until

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def have_prometheus() -> bool:
    return Path(PROMETHEUS).exists()


class PrometheusServer:
    """``with PrometheusServer(base, target_url, auth=(user, password), rules=[path]) as prom: prom.query(...)``."""

    def __init__(self, base: Path, target: str, auth: tuple[str, str] | None = None,
                 rules: list[Path] | None = None) -> None:
        self.base = Path(base)
        self.port = free_port_block(1)
        parts = urllib.parse.urlsplit(target)
        job: dict[str, Any] = {"job_name": "repman", "scheme": parts.scheme, "metrics_path": parts.path or "/metrics",
                               "static_configs": [{"targets": [parts.netloc]}]}
        if auth is not None:
            pw = self.base / "scrape-password"
            self.base.mkdir(parents=True, exist_ok=True)
            pw.write_text(auth[1])
            pw.chmod(0o600)
            job["basic_auth"] = {"username": auth[0], "password_file": str(pw)}
        config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"}, "scrape_configs": [job]}
        if rules:
            config["rule_files"] = [str(p) for p in rules]
        self.config = self.base / "prometheus.yml"
        self.base.mkdir(parents=True, exist_ok=True)
        self.config.write_text(yaml.safe_dump(config))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> PrometheusServer:
        log = (self.base / "prometheus.log").open("wb")
        self.proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={self.config}", f"--storage.tsdb.path={self.base / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-lifecycle"],
            stdout=log, stderr=subprocess.STDOUT)
        wait_until(self._ready, 60, "prometheus ready", every=0.2)
        return self

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"prometheus exited: {(self.base / 'prometheus.log').read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as resp:
                return resp.status == 200
        except OSError:
            return False

    def __exit__(self, *exc: Any) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def api(self, path: str, **params: str) -> Any:
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as resp:
            body = json.loads(resp.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query's vector: [{"metric": {labels}, "value": [time, "text"]}, ...]."""
        data = self.api("query", query=promql)
        return list(data["result"])

    def targets(self) -> list[dict[str, Any]]:
        return list(self.api("targets")["activeTargets"])
