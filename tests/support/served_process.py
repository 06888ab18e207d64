"""``needlecheck serve`` (gunicorn) as a subprocess on a free loopback port, for tests that need real workers."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

STARTUP_TIMEOUT = 300.0  # a backstop against a hang (the wait ends at /healthz's 200 or the exit), not a bound
STOP_TIMEOUT = 15.0
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@dataclass
class ServedProcess:
    """A running service."""

    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        """What the process wrote so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def log_once(self, pattern: str) -> str:
        """What the process wrote, once it holds a match of the regular expression ``pattern``
        (``log_matching``)."""
        return log_matching(self.log, pattern)


LOG_WAIT_SECONDS = 30.0  # a backstop against a line that never comes, not a bound on how soon it comes


def log_matching(read: Callable[[], str], pattern: str) -> str:
    """``read()`` once it holds a match of ``pattern``: a worker writes its log lines from a thread of its own
    (``logging_setup.write_logs_in_background``), so the line of a request may land just after its answer.
    Fails the test with the log's tail if no match comes within ``LOG_WAIT_SECONDS``."""
    deadline = time.monotonic() + LOG_WAIT_SECONDS
    while True:
        text = read()
        if re.search(pattern, text):
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"no line matching {pattern!r} in the log:\n{text[-3000:]}")
        time.sleep(0.02)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)  # the session created for it: the master and its workers only
        process.wait(5)


def _healthy(process: subprocess.Popen[bytes], base_url: str) -> str | None:
    """None once GET /healthz answers 200, else why not."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    with requests.Session() as session:
        session.trust_env = False
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return f"exited with status {process.returncode}"
            try:
                if session.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                    return None
            except requests.RequestException:
                pass
            time.sleep(0.1)
    return f"no 200 from /healthz within {STARTUP_TIMEOUT:.0f} s"


@contextmanager
def serve_needlecheck(workdir: Path, config: str, workers: int) -> Iterator[ServedProcess]:
    """Serve with ``config`` (TOML text) and ``workers`` gunicorn workers; raises RuntimeError if it does not
    start."""
    config_path = workdir / "needlecheck.toml"
    config_path.write_text(config, encoding="utf-8")
    env = {key: value for key, value in os.environ.items()
           if key not in PROXY_VARIABLES and key != "NEEDLECHECK_DATABASE_URL"}
    env.update(NEEDLECHECK_DATA_DIR=str(workdir / "data"), PYTHONUNBUFFERED="1")
    problem = "not started"
    for attempt in range(3):  # the free port may be taken between probing and binding ("already in use")
        port = _free_port()
        log_path = workdir / f"serve-{attempt}.log"
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "needlecheck", "serve", "--host", "127.0.0.1", "--port", str(port),
                 "--workers", str(workers), "--config", str(config_path)],
                cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                start_new_session=True)
        served = ServedProcess(f"http://127.0.0.1:{port}", process, log_path)
        try:
            problem = _healthy(process, served.base_url) or ""
            if not problem:
                yield served
                return
        finally:
            _stop(process)
        if "already in use" not in served.log():
            break
    raise RuntimeError(f"needlecheck serve did not start: {problem}\n{served.log()[-3000:]}")
