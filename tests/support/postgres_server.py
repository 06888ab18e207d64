"""A throw-away PostgreSQL server for the tests: initdb in a temporary directory, a private unix socket.

The server binaries come from Debian's ``postgresql`` package (``/usr/lib/postgresql/<version>/bin``), which
the README's test command installs when missing. initdb refuses to run as root, so as root the server runs
as the ``postgres`` user the package creates, in a directory that user owns. Nothing listens on TCP: the
socket lives in the temporary directory, so no port can clash with another server on the machine.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg

SUPERUSER = "postgres"
_PORT = 5432  # names the socket file only


class PostgresUnavailable(RuntimeError):
    """PostgreSQL could not be found or started; the message says why."""


def server_binaries() -> Path:
    """The newest installed ``/usr/lib/postgresql/*/bin`` (or ``$NEEDLECHECK_PG_BIN``) holding initdb."""
    configured = os.environ.get("NEEDLECHECK_PG_BIN")
    candidates = [Path(configured)] if configured else sorted(
        Path("/usr/lib/postgresql").glob("*/bin"), key=lambda path: int(path.parent.name)
        if path.parent.name.isdigit() else 0)
    for directory in reversed(candidates):
        if (directory / "initdb").is_file() and (directory / "pg_ctl").is_file():
            return directory
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise PostgresUnavailable("PostgreSQL server binaries not found: install Debian's 'postgresql' package "
                              "(the README's test command does)")


@dataclass
class PostgresServer:
    """One running server; ``url(database)`` names a database on it."""

    root: Path
    binaries: Path
    run_as: str | None

    @property
    def data_dir(self) -> Path:
        """The cluster's data directory."""
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        """Where the server's unix socket is."""
        return self.root / "socket"

    @property
    def log_file(self) -> Path:
        """The server's log."""
        return self.root / "server.log"

    def url(self, database: str = "postgres") -> str:
        """A libpq URL for ``database`` over the private socket (trust authentication)."""
        return f"postgresql://{SUPERUSER}@/{database}?host={self.socket_dir}&port={_PORT}"

    def _run(self, *args: str) -> None:
        completed = subprocess.run([str(self.binaries / args[0]), *args[1:]], cwd=self.root, user=self.run_as,
                                   capture_output=True, text=True, timeout=60, check=False)
        if completed.returncode != 0:
            raise PostgresUnavailable(f"{args[0]} failed ({completed.returncode}): "
                                      f"{completed.stderr.strip() or completed.stdout.strip()}\n{self.log_tail()}")

    def log_tail(self) -> str:
        """The end of the server's log, for failure messages."""
        try:
            return self.log_file.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def start(self) -> None:
        """initdb and start; raises PostgresUnavailable with the reason."""
        self.socket_dir.mkdir()
        if self.run_as is not None:
            account = pwd.getpwnam(self.run_as)
            for path in (self.root, self.socket_dir):
                os.chown(path, account.pw_uid, account.pw_gid)
        self._run("initdb", "-D", str(self.data_dir), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--no-locale",
                  "--no-sync")
        # Durability is not under test here (fsync off keeps the suite fast); concurrency and locking are.
        options = (f"-k {self.socket_dir} -p {_PORT} -c listen_addresses='' -c fsync=off "
                   "-c full_page_writes=off -c max_connections=200")
        self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-w", "-t", "60", "-o", options,
                  "start")

    def stop(self) -> None:
        """Stop the server and delete its directory."""
        try:
            if (self.data_dir / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def create_database(self) -> str:
        """A new empty database; returns its URL."""
        name = f"needlecheck_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def start_postgres() -> PostgresServer:
    """A started server in a new temporary directory; raises PostgresUnavailable with the reason."""
    binaries = server_binaries()
    run_as = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SUPERUSER)
        except KeyError as error:
            raise PostgresUnavailable("running as root and there is no 'postgres' user to run PostgreSQL as "
                                      "(Debian's 'postgresql' package creates it)") from error
        run_as = SUPERUSER
    # Not under pytest's tmp_path: its parents are private to root, and the server runs as 'postgres'.
    server = PostgresServer(Path(tempfile.mkdtemp(prefix="needlecheck-pg-")), binaries, run_as)
    try:
        server.start()
    except BaseException:
        server.stop()
        raise
    return server
