"""Backup and scheduler keys, named as in replication-manager.

One table shared by the watcher config, the stack spec and the Nix schema, so a
key is declared once and validated, documented and checked everywhere the same.
"""

from __future__ import annotations

from repman.keys import Key, key_table

BACKUP_KEYS = key_table(
    Key("backup-physical-type", "enum", "mariabackup", "physical backup tool (streamed xbstream)",
        choices=("mariabackup",)),
    Key("backup-logical-type", "enum", "mysqldump", "logical backup tool: mysqldump runs mariadb-dump "
        "--single-transaction --gtid; mydumper runs mydumper", choices=("mysqldump", "mydumper")),
    Key("backup-restic", "bool", False, "store backups in a restic repository (else in backup-dir)"),
    Key("backup-restic-repository", "str", "", "restic repository: a local path or sftp:user@host:/path"),
    Key("backup-restic-password", "str", "", "restic repository password; {file: PATH} is passed to restic "
        "as --password-file, never through the environment", secret=True),
    Key("backup-restic-sftp-command", "str", "", "ssh command restic runs for an sftp: repository "
        "(restic -o sftp.command), e.g. 'ssh -p 2222 -i KEY user@host -s sftp'"),
    Key("backup-dir", "path", "", "plain directory repository when backup-restic is off "
        "(default <monitoring-datadir>/<cluster>/backups)"),
    Key("backup-binlogs", "bool", False, "archive the primary's binlogs continuously (follows failovers)"),
    Key("backup-binlogs-dir", "path", "", "binlog archive directory "
        "(default <monitoring-datadir>/<cluster>/binlogs)"),
    Key("backup-keep-last", "int", 0, "newest backups kept per type whatever their age (restic --keep-last)",
        minimum=0),
    Key("backup-keep-hourly", "int", 1, "hourly backups kept per type", minimum=0),
    Key("backup-keep-daily", "int", 1, "daily backups kept per type", minimum=0),
    Key("backup-keep-weekly", "int", 4, "weekly backups kept per type", minimum=0),
    Key("backup-keep-monthly", "int", 12, "monthly backups kept per type", minimum=0),
    Key("monitoring-scheduler", "bool", False, "run the scheduler-* cron jobs in the watcher"),
    Key("scheduler-db-servers-physical-backup-cron", "str", "0 0 1 * * 6",
        "when to take a physical backup: cron with seconds first, as repman (6 fields) or 5 fields"),
    Key("scheduler-db-servers-logical-backup-cron", "str", "0 0 2 * * 6",
        "when to take a logical backup (cron, seconds first as repman, or 5 fields)"),
)
