"""A real watcher on a real 3-node cluster sends its alerts to a real webhook receiver and a real
SMTP server; a mute set from the CLI's store holds them back without a restart."""

from __future__ import annotations

import logging
import time

import pytest

from repman.alerts.silence import Mute, MuteStore
from testkit.api_client import Running
from testkit.smtp import SmtpServer
from testkit.standins.http_recorder import RecordingHTTPServer
from testkit.watcherbed import restart, wait_until

PASSWORD = "smtp-pw-never-logged"


@pytest.fixture
def hook():
    server = RecordingHTTPServer()
    yield server
    server.close()


def test_watcher_alerts_reach_webhook_and_mail_and_mute_holds_them(testbed, tmp_path, hook, caplog):
    caplog.set_level(logging.INFO, logger="repman.watcher")
    testbed.bootstrap()
    master, r1, r2 = testbed.addresses
    with SmtpServer(login=("alerts", PASSWORD)) as smtp, \
            Running(testbed, tmp_path, {}, alert_slack_url=f"http://127.0.0.1:{hook.port}/hooks/abc",
                    mail_to="dba@example.org", mail_smtp_addr=smtp.addr, mail_smtp_user="alerts",
                    mail_smtp_password=PASSWORD) as r:
        assert hook.requests == []                      # a healthy start alerts nobody
        testbed.kill(r2)
        wait_until(lambda: any(r2.url in req.body["text"] for req in hook.requests), 30, "webhook alert")
        text = next(req.body["text"] for req in hook.requests if r2.url in req.body["text"])
        assert text.startswith(f"[repman] c1: {r2} Slave -> ")
        wait_until(lambda: any(msg["Subject"] == text[:120] for _, msg in smtp.mails), 30, "mail alert")
        assert smtp.logins and smtp.logins[0] == "alerts"
        # muted (as `repman alert mute` does): the replica's return is logged, not sent
        MuteStore(r.mon.cfg.state_dir).set(Mute(time.time() + 600, "test"))
        sent = len(hook.requests)
        restart(testbed, r2)
        wait_until(lambda: r.mon.labels.get(r2) == "Slave", 60, "replica back")
        wait_until(lambda: "alert not sent (muted until" in caplog.text, 30, "held back in the log")
        assert len(hook.requests) == sent
        assert master == r.mon.master and r1 in r.mon.labels
    assert PASSWORD not in caplog.text
