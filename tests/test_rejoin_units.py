"""Pure pieces of rejoin and switchover: binlog tail parsing, own extra GTIDs, master finding."""

from __future__ import annotations

from repman.db import ServerAddress
from repman.keys import validate_section
from repman.topology import ReplicaStatus, ServerState
from repman.watcher.cluster_config import ClusterConfig
from repman.watcher.demote import own_beyond
from repman.watcher.flashback import parse_tail
from repman.watcher.keys import WATCHER_KEYS
from repman.watcher.primary import dead_primary, find_primary
from repman.watcher.rejoin import _start_position
from repman.watcher.state_store import StateStore

A, B, C = (ServerAddress("127.0.0.1", p) for p in (3301, 3302, 3303))

ROW_TAIL = """\
# at 379
#261121 22:28:39 server id 1  end_log_pos 421 CRC32 0x35baed37 \tGTID 0-1-10 trans
/*M!100001 SET @@session.gtid_seq_no=10*//*!*/;
START TRANSACTION
/*!*/;
# at 421
#261121 22:28:39 server id 1  end_log_pos 472 CRC32 0xb4cda9ec \tAnnotate_rows:
#Q> insert into t.a values (3,3)
#261121 22:28:39 server id 1  end_log_pos 514 CRC32 0x42bef8f6 \tTable_map: `t`.`a` mapped to number 23
#261121 22:28:39 server id 1  end_log_pos 556 CRC32 0x239009b4 \tWrite_rows: table id 23 flags: STMT_END_F
### INSERT INTO `t`.`a`
# at 556
#261121 22:28:39 server id 1  end_log_pos 587 CRC32 0xa6300a2c \tXid = 87
COMMIT/*!*/;
# at 755
#261121 22:31:56 server id 1  end_log_pos 1767 CRC32 0xda61994b \tQuery\tthread_id=33\texec_time=0\terror_code=0
SET TIMESTAMP=1795300316/*!*/;
COMMIT
/*!*/;
"""

DDL_AND_STATEMENT_TAIL = """\
#261121 22:31:56 server id 1  end_log_pos 1407 CRC32 0xe1df650e \tGTID 0-1-15 ddl
# at 464
#261121 22:31:56 server id 1  end_log_pos 1528 CRC32 0x8a402e7a \tQuery\tthread_id=33\texec_time=0\terror_code=0
SET TIMESTAMP=1795300316/*!*/;
create table t.m (id int primary key) engine=aria
/*!*/;
#261121 22:31:56 server id 1  end_log_pos 1809 CRC32 0x6e8db892 \tGTID 0-1-17 trans
START TRANSACTION
/*!*/;
#261121 22:31:56 server id 1  end_log_pos 1902 CRC32 0x14ca6baf \tQuery\tthread_id=33\texec_time=0\terror_code=0
SET TIMESTAMP=1795300316/*!*/;
insert into t.a values (50,50)
/*!*/;
"""


def _cfg() -> ClusterConfig:
    raw = {"db-servers-hosts": [A.url, B.url, C.url], "db-servers-credential": "u:p",
           "replication-credential": "r:p"}
    return ClusterConfig("t", validate_section(raw, [WATCHER_KEYS]))


def _state(addr, master=None, read_only=True, reachable=True, binlog="", slave="", server_id=1) -> ServerState:
    rep = None
    if master is not None:
        rep = ReplicaStatus(master.host, master.port, "Yes", "Yes", 0, "", "", slave, "Slave_Pos", 0, "")
    return ServerState(address=addr, reachable=reachable, read_only=read_only, replica=rep, server_id=server_id,
                       gtid_binlog_pos=binlog, gtid_slave_pos=slave, log_bin=True)


def test_row_events_are_reversible_and_listed():
    tail = parse_tail(ROW_TAIL)
    assert tail.gtids == ["0-1-10"]
    assert tail.reversible


def test_ddl_and_statement_events_block_flashback():
    tail = parse_tail(DDL_AND_STATEMENT_TAIL)
    assert tail.gtids == ["0-1-15", "0-1-17"]
    assert not tail.reversible
    assert any("0-1-15 is DDL" in b for b in tail.blockers)
    assert any("0-1-17 is a statement-format event" in b for b in tail.blockers)


def test_own_beyond_only_counts_the_servers_own_writes():
    assert own_beyond("0-1-105", 1, "0-1-100") == ["0-1-105"]
    assert own_beyond("0-2-150", 1, "0-1-100") == []           # replicated from server 2
    assert own_beyond("0-1-100", 1, "0-1-100") == []
    assert own_beyond("0-1-7,1-1-3", 1, "0-1-7") == ["1-1-3"]  # a domain the reference lacks


def test_start_position_is_the_furthest_of_binlog_and_applied():
    s = _state(A, binlog="0-1-100", slave="0-1-90,1-2-5")
    assert _start_position(s) == "0-1-100,1-2-5"


def test_find_master_prefers_the_followed_root_and_refuses_split_brain():
    cfg = _cfg()
    states = {A: _state(A, read_only=False), B: _state(B, master=A), C: _state(C, master=A)}
    assert find_primary(states, cfg.servers).address == A
    # Nobody replicates: the lone writable server.
    states = {A: _state(A, read_only=False), B: _state(B), C: _state(C)}
    assert find_primary(states, cfg.servers).address == A
    states = {A: _state(A, read_only=False), B: _state(B, read_only=False), C: _state(C)}
    found = find_primary(states, cfg.servers)
    assert found.address is None and "several writable" in found.reason
    # A chain: B follows A, C follows B: A is the only root.
    states = {A: _state(A, read_only=False), B: _state(B, master=A), C: _state(C, master=B)}
    assert find_primary(states, cfg.servers).address == A
    # After a failover: the dead old master is unreachable, the replica follows the new one.
    states = {A: _state(A, reachable=False), B: _state(B, read_only=False), C: _state(C, master=B)}
    assert find_primary(states, cfg.servers).address == B


def test_find_dead_master_refuses_a_live_one(tmp_path):
    cfg = _cfg()
    store = StateStore(tmp_path)
    states = {A: _state(A, read_only=False), B: _state(B, master=A), C: _state(C, master=A)}
    found = dead_primary(cfg, states, store)
    assert found.address is None and "answers" in found.reason and A.url in found.reason
    states[A] = _state(A, reachable=False)
    assert dead_primary(cfg, states, store).address == A


def test_client_tools_get_the_password_from_a_private_file_never_argv_or_environment(tmp_path, monkeypatch):
    """mariadb / mariadb-binlog / mariadb-dump started by rejoin and reseed: the admin password is in
    a 0600 option file named first on the command line, gone afterwards; not in argv, not in the
    environment (``/proc/PID/environ`` is readable by the same user)."""
    import os
    import stat
    import subprocess

    from repman.watcher import flashback

    cfg = ClusterConfig("t", validate_section({"db-servers-hosts": ["127.0.0.1:3310"],
                                               "db-servers-credential": "admin:s3cret-pw"}, [WATCHER_KEYS]))
    seen: dict = {}

    def fake_run(cmd, **kwargs):
        option = cmd[1]
        assert option.startswith("--defaults-extra-file=")
        path = option.split("=", 1)[1]
        seen.update(cmd=cmd, env=kwargs.get("env"), mode=stat.S_IMODE(os.stat(path).st_mode),
                    text=open(path).read(), path=path)
        return subprocess.CompletedProcess(cmd, 0, b"", b"")

    monkeypatch.setattr(flashback.subprocess, "run", fake_run)
    sql = tmp_path / "x.sql"
    sql.write_text("SELECT 1;\n")
    flashback.apply_sql_file(cfg, ServerAddress("127.0.0.1", 3310), sql)
    assert "s3cret-pw" not in " ".join(seen["cmd"])
    assert seen["env"] is None or "s3cret-pw" not in repr(seen["env"])      # the process inherits no password
    assert "MYSQL_PWD" not in os.environ
    assert seen["mode"] == 0o600 and 'password="s3cret-pw"' in seen["text"]
    assert not os.path.exists(seen["path"])
