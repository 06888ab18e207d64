"""``needlecheck serve`` that cannot start says why in one line and exits 2, before it listens, with no traceback:
a port in use or privileged, a data directory it cannot write, a database it cannot reach.

The suite runs as root, which may bind any port and write anywhere: ``setpriv`` (util-linux) drops the capability
in question for the one command, as an operator's unprivileged service account lacks it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

TIMEOUT = 120.0  # a guard against a hang, not a speed requirement
# Without these capabilities root binds no port below 1024 and obeys file modes, as a service account does.
AS_SERVICE_ACCOUNT = ["setpriv", "--bounding-set", "-net_bind_service,-dac_override,-dac_read_search",
                      "--inh-caps", "-net_bind_service,-dac_override,-dac_read_search"]


def serve(tmp_path: Path, *args: str, data_dir: Path | None = None, database_url: str | None = None,
          wrapper: list[str] | None = None) -> tuple[int, str]:
    """Run ``needlecheck serve ARGS``; its exit status and everything it wrote."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("NEEDLECHECK_") or key == "NEEDLECHECK_DATASETS_DIR"}
    env["NEEDLECHECK_DATA_DIR"] = str(data_dir or tmp_path / "data")
    if database_url:
        env["NEEDLECHECK_DATABASE_URL"] = database_url
    done = subprocess.run([*(wrapper or []), sys.executable, "-m", "needlecheck", "serve", *args], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    return done.returncode, (done.stdout + done.stderr).strip()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # nothing listens once the probe is closed


def test_a_port_in_use_is_one_line_at_once(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status, output = serve(tmp_path, "--port", str(port))
    assert (status, output) == (2, f"needlecheck: cannot listen on 127.0.0.1:{port}: the port is already in use")


def test_a_privileged_port_is_one_line(tmp_path: Path) -> None:
    status, output = serve(tmp_path, "--port", "80", wrapper=AS_SERVICE_ACCOUNT)
    assert status == 2 and output.startswith("needlecheck: cannot listen on 127.0.0.1:80: port 80 is privileged")
    assert len(output.splitlines()) == 1


@pytest.mark.parametrize("where", ["missing under a read-only folder", "a read-only folder"])
def test_a_data_directory_that_cannot_be_written_is_one_line(tmp_path: Path, where: str) -> None:
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    read_only.chmod(0o555)
    data_dir = read_only / "data" if where.startswith("missing") else read_only
    status, output = serve(tmp_path, "--port", str(closed_port()), data_dir=data_dir, wrapper=AS_SERVICE_ACCOUNT)
    expected = (f"needlecheck: cannot create the data directory {data_dir}: Permission denied"
                if where.startswith("missing") else
                f"needlecheck: SQLite {data_dir / 'needlecheck.sqlite3'}: unable to open database file")
    assert (status, output) == (2, expected)


def test_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    port = closed_port()
    status, output = serve(tmp_path, "--port", str(closed_port()),
                           database_url=f"postgresql://needlecheck:secret@127.0.0.1:{port}/needlecheck")
    assert (status, output) == (
        2, f"needlecheck: cannot connect to PostgreSQL needlecheck on 127.0.0.1:{port} (OperationalError)")
    assert "secret" not in output
