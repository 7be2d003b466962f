"""Where backups live: a restic repository (local path or SFTP) or a plain directory.

Both take a byte stream or a folder under a backup id and give it back; restic
adds encryption and deduplication. restic gets its password with
``--password-file`` (a private file removed after the call), never through the
environment.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import IO, Iterator, Protocol

from repman.backup.secretfiles import private_file
from repman.backup.settings import BackupSettings
from repman.errors import RepmanError

CHUNK = 1 << 20


class RepositoryError(RepmanError):
    """The backup repository refused an operation."""


class ByteSource(Protocol):
    """What ``put_stream`` reads from: a binary file or pipe, or a reader wrapping one."""

    def read(self, size: int = -1, /) -> bytes: ...


class Repository(Protocol):
    description: str

    def init(self) -> bool: ...
    def put_stream(self, backup_id: str, name: str, source: ByteSource) -> tuple[str, int]: ...
    def put_dir(self, backup_id: str, folder: Path) -> tuple[str, int]: ...
    def open_stream(self, location: str, name: str) -> AbstractContextManager[IO[bytes]]: ...
    def get_dir(self, location: str, target: Path) -> Path: ...
    def remove(self, locations: list[str]) -> None: ...
    def check(self) -> str: ...


def copy_stream(source: ByteSource, sink: IO[bytes]) -> int:
    total = 0
    while True:
        chunk = source.read(CHUNK)
        if not chunk:
            return total
        sink.write(chunk)
        total += len(chunk)


class DirectoryRepository:
    """``<dir>/<backup id>/<name>``: the plain-directory repository."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.description = f"directory {self.root}"

    def init(self) -> bool:
        existed = self.root.is_dir()
        self.root.mkdir(parents=True, exist_ok=True)
        return not existed

    def put_stream(self, backup_id: str, name: str, source: ByteSource) -> tuple[str, int]:
        folder = self.root / backup_id
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / name, "wb") as sink:
            size = copy_stream(source, sink)
        return backup_id, size

    def put_dir(self, backup_id: str, folder: Path) -> tuple[str, int]:
        target = self.root / backup_id
        shutil.copytree(folder, target / folder.name, dirs_exist_ok=True)
        return backup_id, sum(f.stat().st_size for f in target.rglob("*") if f.is_file())

    @contextmanager
    def open_stream(self, location: str, name: str) -> Iterator[IO[bytes]]:
        path = self.root / location / name
        if not path.is_file():
            raise RepositoryError(f"backup {location}: {path} is missing")
        with open(path, "rb") as f:
            yield f

    def get_dir(self, location: str, target: Path) -> Path:
        source = self.root / location
        if not source.is_dir():
            raise RepositoryError(f"backup {location}: {source} is missing")
        shutil.copytree(source, target, dirs_exist_ok=True)
        return target

    def remove(self, locations: list[str]) -> None:
        for loc in locations:
            shutil.rmtree(self.root / loc, ignore_errors=True)

    def check(self) -> str:
        if not self.root.is_dir():
            raise RepositoryError(f"{self.description} does not exist")
        return f"{self.description}: {sum(1 for p in self.root.iterdir() if p.is_dir())} backups"


class ResticRepository:
    """A restic repository; each backup is one snapshot tagged ``repman`` and ``id=<backup id>``."""

    def __init__(self, repository: str, password: str, host: str, sftp_command: str = "") -> None:
        self.repository = repository
        self._password = password
        self.host = host
        self.sftp_command = sftp_command
        self.description = f"restic {repository}"

    def __repr__(self) -> str:
        return f"ResticRepository({self.repository!r})"

    @contextmanager
    def _argv(self, *args: str) -> Iterator[list[str]]:
        with private_file(self._password + "\n", "restic-password") as pw:
            cmd = ["restic", "--repo", self.repository, "--password-file", str(pw), "--no-cache"]
            if self.sftp_command:
                cmd += ["-o", f"sftp.command={self.sftp_command}"]
            yield cmd + list(args)

    def _run(self, *args: str, input_bytes: bytes | None = None, timeout: float = 3600) -> str:
        with self._argv(*args) as cmd:
            done = subprocess.run(cmd, input=input_bytes, capture_output=True, timeout=timeout)
        if done.returncode != 0:
            tail = (done.stderr.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
            raise RepositoryError(f"restic {args[0]} on {self.repository} failed: {tail}")
        return done.stdout.decode(errors="replace")

    def init(self) -> bool:
        try:
            self._run("cat", "config")
            return False
        except RepositoryError:
            self._run("init")
            return True

    def _snapshot_of(self, output: str) -> tuple[str, int]:
        for line in reversed(output.strip().splitlines()):
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if msg.get("message_type") == "summary":
                return str(msg["snapshot_id"]), int(msg.get("total_bytes_processed", 0))
        raise RepositoryError(f"restic backup on {self.repository} gave no summary")

    def put_stream(self, backup_id: str, name: str, source: ByteSource) -> tuple[str, int]:
        with self._argv("backup", "--json", "--stdin", "--stdin-filename", name, "--host", self.host,
                        "--tag", "repman", "--tag", f"id={backup_id}") as cmd, \
                tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            # Output goes to files: a full pipe would stall restic while we feed its stdin.
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=out, stderr=err)
            assert proc.stdin is not None
            try:
                copy_stream(source, proc.stdin)
            except BrokenPipeError:
                pass
            finally:
                try:
                    proc.stdin.close()
                except BrokenPipeError:
                    pass
            code = proc.wait()
            out.seek(0)
            err.seek(0)
            out_text, err_text = out.read().decode(errors="replace"), err.read().decode(errors="replace")
        if code != 0:
            tail = (err_text.strip().splitlines() or ["no output"])[-1]
            raise RepositoryError(f"restic backup on {self.repository} failed: {tail}")
        return self._snapshot_of(out_text)

    def put_dir(self, backup_id: str, folder: Path) -> tuple[str, int]:
        out = self._run("backup", "--json", "--host", self.host, "--tag", "repman", "--tag", f"id={backup_id}",
                        str(folder))
        return self._snapshot_of(out)

    @contextmanager
    def open_stream(self, location: str, name: str) -> Iterator[IO[bytes]]:
        with self._argv("dump", location, f"/{name}") as cmd:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            assert proc.stdout is not None
            try:
                yield proc.stdout
            finally:
                proc.stdout.close()
                err = proc.stderr.read() if proc.stderr else b""
                code = proc.wait()
        if code not in (0, -13, 141):  # -13/141: our side closed the pipe early on purpose
            tail = (err.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
            raise RepositoryError(f"restic dump {location} failed: {tail}")

    def get_dir(self, location: str, target: Path) -> Path:
        self._run("restore", location, "--target", str(target))
        return target

    def snapshots(self) -> list[dict]:
        return json.loads(self._run("snapshots", "--json", "--tag", "repman") or "[]")

    def remove(self, locations: list[str]) -> None:
        if locations:
            self._run("forget", "--prune", *locations)

    def check(self) -> str:
        out = self._run("check")
        return f"{self.description}: " + (out.strip().splitlines() or ["checked"])[-1]


def open_repository(settings: BackupSettings) -> Repository:
    if settings.restic:
        return ResticRepository(settings.restic_repository, settings.restic_password, settings.cluster,
                                settings.restic_sftp_command)
    return DirectoryRepository(settings.backup_dir)
