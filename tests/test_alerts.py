"""Alert channels against real receivers: a stdlib HTTP server gets the webhook JSON, a real
SMTP server (aiosmtpd) gets the mail; dedup, minimum interval, mute and blackout hold alerts back."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from repman.alerts.dispatch import Alerter
from repman.alerts.settings import AlertSettings
from repman.alerts.silence import Mute, MuteStore, blackout_until
from repman.cli import main
from repman.errors import ConfigError
from repman.watcher.config import parse_config
from testkit.smtp import SmtpServer
from testkit.standins.http_recorder import RecordingHTTPServer
from testkit.watcherbed import write_config

SMTP_PASSWORD = "sm7p-s3cret-pw"


def section(tmp_path: Path, **keys: Any) -> dict[str, Any]:
    return {"db-servers-hosts": ["127.0.0.1:1"], "db-servers-credential": "root:pw",
            "replication-credential": "repl:pw", "monitoring-datadir": str(tmp_path / "state"),
            **{k.replace("_", "-"): v for k, v in keys.items()}}


def settings(tmp_path: Path, **keys: Any) -> AlertSettings:
    cfg = parse_config({"clusters": {"c1": section(tmp_path, **keys)}}).cluster("c1")
    return AlertSettings.from_config(cfg, cfg.state_dir)


@pytest.fixture
def hook():
    server = RecordingHTTPServer()
    yield server
    server.close()


def texts(hook: RecordingHTTPServer) -> list[str]:
    return [r.body["text"] for r in hook.requests]


def test_webhook_gets_slack_json(tmp_path, hook):
    s = settings(tmp_path, alert_slack_url=f"http://127.0.0.1:{hook.port}/services/T0/B0/tok",
                 alert_slack_channel="#db", alert_slack_user="repman")
    out = Alerter(s).notify("alert", "master 127.0.0.1:1 is dead")
    assert out.sent == ["webhook"] and not out.failed and not out.held_back
    [req] = hook.requests
    assert req.method == "POST" and req.path == "/services/T0/B0/tok"
    assert req.headers["Content-Type"] == "application/json"
    assert req.body == {"text": "[repman] c1: master 127.0.0.1:1 is dead", "channel": "#db", "username": "repman"}


def test_mail_over_starttls_with_login_and_no_password_in_logs(tmp_path):
    logs: list[str] = []
    with SmtpServer(tmp_path / "smtp-tls", login=("alerts", SMTP_PASSWORD), tls=True) as smtp:
        keys = dict(mail_to="dba@example.org, oncall@example.org", mail_from="repman@example.org",
                    mail_smtp_addr=smtp.addr, mail_smtp_user="alerts", mail_smtp_password=SMTP_PASSWORD)
        # the throw-away CA is not trusted: the certificate check refuses the server
        out = Alerter(settings(tmp_path, **keys), logs.append).notify("alert", "first")
        assert out.sent == [] and "mail" in out.failed and "certificate" in out.failed["mail"].lower()
        assert smtp.mails == []
        out = Alerter(settings(tmp_path, mail_smtp_tls_skip_verify=True, **keys), logs.append).notify("alert", "lag")
        assert out.sent == ["mail"], out
        [(rcpts, msg)] = smtp.mails
        assert rcpts == ["dba@example.org", "oncall@example.org"] and smtp.logins == ["alerts"]
        assert msg["From"] == "repman@example.org" and msg["Subject"] == "[repman] c1: lag"
        assert msg.get_payload().strip() == "[repman] c1: lag"
        # a wrong password: one line naming the user, never the password
        out = Alerter(settings(tmp_path, **{**keys, "mail_smtp_password": "wrong-" + SMTP_PASSWORD},
                               mail_smtp_tls_skip_verify=True), logs.append).notify("alert", "x")
        assert "login of alerts refused" in out.failed["mail"]
    assert logs and all(SMTP_PASSWORD not in line for line in logs)
    assert SMTP_PASSWORD not in repr(settings(tmp_path, **keys))


def test_plain_smtp_without_login(tmp_path):
    with SmtpServer() as smtp:
        out = Alerter(settings(tmp_path, mail_to="dba@example.org", mail_smtp_addr=smtp.addr)).notify("alert", "hi")
        assert out.sent == ["mail"] and len(smtp.mails) == 1


def test_identical_alert_inside_the_window_is_held_back(tmp_path, hook):
    now = [1000.0]
    a = Alerter(settings(tmp_path, alert_slack_url=f"http://127.0.0.1:{hook.port}/x", alert_dedup_window=60),
                clock=lambda: now[0])
    assert a.notify("alert", "replica lags").sent == ["webhook"]
    now[0] += 30
    assert "alert-dedup-window" in a.notify("alert", "replica lags").held_back
    assert a.notify("alert", "another thing").sent == ["webhook"]     # another text goes through
    now[0] += 31
    assert a.notify("alert", "replica lags").sent == ["webhook"]      # the window has passed
    assert texts(hook) == ["[repman] c1: replica lags", "[repman] c1: another thing",
                           "[repman] c1: replica lags"]


def test_minimum_interval_per_kind(tmp_path, hook):
    now = [1000.0]
    a = Alerter(settings(tmp_path, alert_slack_url=f"http://127.0.0.1:{hook.port}/x", alert_min_interval=120,
                         alert_dedup_window=0),
                clock=lambda: now[0])
    assert a.notify("state-change 127.0.0.1:2", "127.0.0.1:2 Slave -> Failed").sent
    now[0] += 10
    assert "alert-min-interval" in a.notify("state-change 127.0.0.1:2", "127.0.0.1:2 Failed -> Slave").held_back
    assert a.notify("state-change 127.0.0.1:3", "127.0.0.1:3 Slave -> Failed").sent   # another kind
    now[0] += 120
    assert a.notify("state-change 127.0.0.1:2", "127.0.0.1:2 Slave -> Failed").sent
    assert len(hook.requests) == 3 and texts(hook)[2] == \
        "[repman] c1: 127.0.0.1:2 Slave -> Failed (1 more alert of this kind held back)"


def test_mute_and_blackout_hold_alerts_back(tmp_path, hook):
    url = f"http://127.0.0.1:{hook.port}/x"
    s = settings(tmp_path, alert_slack_url=url)
    a = Alerter(s)
    MuteStore(s.state_dir).set(Mute(time.time() + 600, "ops (cli)", "upgrade"))
    assert "muted until" in a.notify("alert", "during the upgrade").held_back
    assert MuteStore(s.state_dir).clear()
    assert a.notify("alert", "after the upgrade").sent == ["webhook"]
    # every second opens a one-hour window: always in blackout
    black = Alerter(settings(tmp_path, alert_slack_url=url, scheduler_alert_disable=True,
                             scheduler_alert_disable_cron="* * * * * *", scheduler_alert_disable_time=3600))
    assert "blackout window" in black.notify("alert", "at night").held_back
    assert texts(hook) == ["[repman] c1: after the upgrade"]
    # the window's arithmetic: Sunday 00:00 UTC for an hour
    cron = "0 0 * * 0"
    sunday = 1767484800.0   # 2026-01-04 00:00:00 UTC, a Sunday
    assert blackout_until(cron, 3600, sunday + 10) == sunday + 3600
    assert blackout_until(cron, 3600, sunday + 3600) is None
    assert blackout_until(cron, 3600, sunday - 1) is None


def test_bad_alert_keys_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match="mail-smtp-addr"):
        settings(tmp_path, mail_smtp_addr="nohost")
    with pytest.raises(ConfigError, match="alert-slack-url"):
        settings(tmp_path, alert_slack_url="ftp://x")
    with pytest.raises(ConfigError, match="scheduler-alert-disable-cron"):
        settings(tmp_path, scheduler_alert_disable=True, scheduler_alert_disable_cron="every sunday")


def test_cli_alert_test_mute_unmute(tmp_path, hook, capsys):
    path = write_config(tmp_path / "w.yaml", {"c1": section(
        tmp_path, alert_slack_url=f"http://127.0.0.1:{hook.port}/hook/secret-token")})
    assert main(["--config", str(path), "alert", "test"]) == 0
    assert capsys.readouterr().out.strip() == "webhook: sent"
    assert "test alert requested by" in texts(hook)[0]
    assert main(["--config", str(path), "alert", "mute", "--for", "30m", "--reason", "upgrade", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["reason"] == "upgrade" and 1790 < doc["muted_until"] - time.time() <= 1800
    assert main(["--config", str(path), "alert", "status"]) == 0
    assert "muted until" in capsys.readouterr().out
    assert main(["--config", str(path), "alert", "test"]) == 0        # a test alert ignores the mute
    assert len(hook.requests) == 2
    assert main(["--config", str(path), "alert", "unmute"]) == 0
    assert "unmuted" in capsys.readouterr().out
    assert main(["--config", str(path), "alert", "mute", "--for", "soon"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("repman: --for") and "\n" not in err
    # a dead webhook: exit 1, one line, no token of the URL
    hook.close()
    assert main(["--config", str(path), "alert", "test"]) == 1
    out = capsys.readouterr().out
    assert "webhook: FAILED" in out and "secret-token" not in out
    bare = write_config(tmp_path / "bare.yaml", {"c1": section(tmp_path)})
    assert main(["--config", str(bare), "alert", "test"]) == 2
    assert "no alert channel" in capsys.readouterr().err
