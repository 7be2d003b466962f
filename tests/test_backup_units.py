"""Pure parts of backups: retention policy, cron keys, config checks, archive sequence checks."""

from __future__ import annotations

import calendar

import pytest

from repman.backup.binlogfile import Transaction
from repman.backup.binlogs import sequence_problems
from repman.backup.retention import expired, kept
from repman.backup.settings import cron_expression
from repman.errors import ConfigError
from repman.watcher.config import load_cluster

BASE = {"db-servers-hosts": ["127.0.0.1:3306"], "db-servers-credential": "a:b", "replication-credential": "r:s"}


def _at(text: str) -> float:
    return float(calendar.timegm(tuple(int(x) for x in text.replace("T", "-").replace(":", "-").split("-"))
                                 + (0, 0, 0)))


def test_retention_keeps_newest_per_period_like_restic():
    backups = [("a", _at("2026-11-30T10:05:00")), ("b", _at("2026-11-30T10:45:00")),
               ("c", _at("2026-11-30T11:10:00")), ("d", _at("2026-11-29T23:00:00")),
               ("e", _at("2026-11-20T08:00:00")), ("f", _at("2026-10-02T08:00:00"))]
    assert kept(backups, {"hourly": 2}) == {"c", "b"}
    assert kept(backups, {"daily": 2}) == {"c", "d"}
    assert kept(backups, {"weekly": 3}) == {"c", "d", "e"}  # 2026-11-30 is a Monday: d is the week before
    assert kept(backups, {"monthly": 2}) == {"c", "f"}
    assert kept(backups, {"last": 3}) == {"c", "b", "a"}
    assert kept(backups, {}) == {"c"}                        # the newest is never deleted
    assert sorted(expired(backups, {"hourly": 1, "daily": 2})) == ["a", "b", "e", "f"]


def test_cron_keys_accept_repman_six_fields_and_five_fields():
    assert cron_expression("0 0 1 * * 6", "k") == "0 1 * * 6 0"    # seconds moved last for croniter
    assert cron_expression("*/5 * * * *", "k") == "*/5 * * * *"
    with pytest.raises(ConfigError, match="k: .*fields"):
        cron_expression("* *", "k")
    with pytest.raises(ConfigError, match="not a valid cron"):
        cron_expression("0 0 99 * * *", "k")


@pytest.mark.parametrize("extra,key", [
    ({"scheduler-db-servers-physical-backup-cron": "every day"}, "scheduler-db-servers-physical-backup-cron"),
    ({"backup-restic": True}, "backup-restic-repository"),
    ({"backup-restic": True, "backup-restic-repository": "/r"}, "backup-restic-password"),
    ({"backup-logical-type": "xtrabackup"}, "backup-logical-type"),
    ({"backup-keep-daily": -1}, "backup-keep-daily"),
])
def test_bad_backup_keys_name_the_key(extra, key):
    with pytest.raises(ConfigError) as err:
        load_cluster("c1", {**BASE, **extra})
    assert f"clusters.c1.{key}" in str(err.value) and "\n" not in str(err.value)


def test_restic_password_reference_is_resolved_and_never_shown(tmp_path):
    f = tmp_path / "pw"
    f.write_text("s3cret\n")
    cfg = load_cluster("c1", {**BASE, "backup-restic": True, "backup-restic-repository": "/r",
                              "backup-restic-password": {"file": str(f)}})
    from repman.backup.settings import BackupSettings
    settings = BackupSettings.from_cluster(cfg)
    assert settings.restic_password == "s3cret" and "s3cret" not in repr(settings)


def _t(gtid: str) -> Transaction:
    return Transaction(gtid, 0, 0, 0)


def test_sequence_problems_find_gaps_and_overlaps():
    assert sequence_problems([_t("0-1-1"), _t("0-1-2"), _t("0-2-3"), _t("1-1-1"), _t("0-2-4")]) == []
    assert sequence_problems([_t("0-1-1"), _t("0-1-3")]) == ["gap: 0-1-1 followed by 0-1-3"]
    assert sequence_problems([_t("0-1-1"), _t("0-1-2"), _t("0-2-2")]) == ["overlap: 0-1-2 followed by 0-2-2"]


class _ArchiveStandIn:
    """Stands in for BinlogArchive.pieces (byte ranges are irrelevant to the join checks)."""

    def __init__(self, pieces):
        self._pieces = pieces

    def pieces(self, after, stop):
        return self._pieces


def test_replay_plan_refuses_a_gap_and_an_archive_that_ends_too_early(tmp_path):
    from repman.backup.binlogs import Piece
    from repman.backup.restore import RestoreError, plan_replay
    from repman.gtid import GtidPosition

    p = tmp_path / "f"
    good = [Piece(p, 4, 10, "0-1-6", "0-1-9"), Piece(p, 4, 10, "0-2-10", "0-2-12")]
    assert plan_replay(_ArchiveStandIn(good), GtidPosition.parse("0-1-5"), GtidPosition.parse("0-2-12"), None) == good
    gap = [Piece(p, 4, 10, "0-1-6", "0-1-9"), Piece(p, 4, 10, "0-2-11", "0-2-12")]
    with pytest.raises(RestoreError, match="gap: after 0-\\?-9 the next archived transaction is 0-2-11"):
        plan_replay(_ArchiveStandIn(gap), GtidPosition.parse("0-1-5"), GtidPosition.parse("0-2-12"), None)
    with pytest.raises(RestoreError, match="gap"):
        plan_replay(_ArchiveStandIn(good), GtidPosition.parse("0-1-3"), GtidPosition.parse("0-2-12"), None)
    with pytest.raises(RestoreError, match="ends before 0-2-20"):
        plan_replay(_ArchiveStandIn(good), GtidPosition.parse("0-1-5"), GtidPosition.parse("0-2-20"), None)


@pytest.mark.parametrize("extra,key,words", [
    ({"prov-db-restore-to-time": "2026-12-01T04:50:00Z"}, "prov-db-restore-from", "is required"),
    ({"prov-db-restore-from": "/x.yaml", "prov-db-restore-to-time": "noon"}, "prov-db-restore-to-time",
     "ISO 8601"),
    ({"prov-db-restore-from": "/x.yaml", "prov-db-restore-to-gtid": "0-1"}, "prov-db-restore-to-gtid",
     "not a GTID"),
    ({"prov-db-restore-from": "/x.yaml", "prov-db-restore-to-gtid": "0-1-5", "prov-db-restore-to-time": "@5"},
     "prov-db-restore-to-time", "not both"),
])
def test_stack_restore_keys_are_checked_when_the_stack_loads(extra, key, words):
    from repman.spec import load_cluster_spec
    with pytest.raises(ConfigError) as err:
        load_cluster_spec({"repman:db-servers-credential": "a:b", "repman:replication-credential": "r:s",
                           **{f"repman:{k}": v for k, v in extra.items()}})
    assert str(err.value).startswith(f"repman:{key}: ") and words in str(err.value)
    spec = load_cluster_spec({"repman:db-servers-credential": "a:b", "repman:replication-credential": "r:s",
                              "repman:prov-db-restore-from": "/x.yaml", "repman:prov-db-restore-to-gtid": "0-1-5"})
    assert spec.values["prov-db-restore-to-gtid"] == "0-1-5"
