"""Start-up never crashes on its own: 50 fresh starts in a row of ``needlecheck serve`` (2 workers, a new data
directory each) all answer their first hook call with 200 and stop cleanly.

Before the schema was created once in the gunicorn master, about 1 start in 17 died: both workers created the
SQLite schema at once and one got ``database is locked``, and gunicorn shut down.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "fixtures" / "requests" / "order-sign" / "code001-20560-three-muscles-postcoordinated.json"
STARTS = 50
TIMEOUT = 120.0  # a guard against a hang, not a speed requirement


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start_answer_stop(data_dir: Path, log_path: Path) -> str | None:
    """One fresh start: serve, wait for the first answer to a hook call, stop. None if all went well, else why;
    "port taken" when another process took the probed port first (not a start)."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("NEEDLECHECK_") or key == "NEEDLECHECK_DATASETS_DIR"}
    env["NEEDLECHECK_DATA_DIR"] = str(data_dir)
    port = _free_port()
    with log_path.open("wb") as log:
        server = subprocess.Popen([sys.executable, "-m", "needlecheck", "serve", "--port", str(port), "--workers", "2"],
                                  cwd=data_dir.parent, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    problem = None
    try:
        answer = _first_answer(server, f"http://127.0.0.1:{port}/cds-services/dry-needling-order-sign")
        if answer is None:
            problem = f"no answer (exit status {server.poll()})"
        elif answer.status_code != 200 or "DN-CODE-001" not in answer.text:
            problem = f"answered {answer.status_code}"
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(TIMEOUT)
    output = log_path.read_text(encoding="utf-8", errors="replace")
    if "the port is already in use" in output:
        return "port taken"
    if problem is None and (server.returncode != 0 or "Traceback" in output or "locked" in output):
        problem = f"exit status {server.returncode}"
    return None if problem is None else f"{problem}:\n{output[-2000:]}"


def _first_answer(server: subprocess.Popen[bytes], url: str) -> requests.Response | None:
    body = EXAMPLE.read_bytes()
    deadline = time.monotonic() + TIMEOUT
    with requests.Session() as session:
        session.trust_env = False
        while time.monotonic() < deadline and server.poll() is None:
            try:
                return session.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=30)
            except requests.ConnectionError:
                time.sleep(0.05)
    return None


def test_fifty_fresh_starts_in_a_row_all_answer(tmp_path: Path) -> None:
    failures: list[str] = []
    started = 0
    while started < STARTS:
        data_dir = tmp_path / f"start-{started}" / "data"
        data_dir.parent.mkdir(exist_ok=True)
        problem = _start_answer_stop(data_dir, data_dir.parent / "serve.log")
        if problem == "port taken":
            continue
        started += 1
        if problem:
            failures.append(f"start {started}: {problem}")
    assert failures == []
