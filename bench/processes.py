"""The servers and commands the benchmark starts, and what ``/proc`` says about them.

- ``served``: run a gunicorn master (``needlecheck serve`` or the ceiling app) for a block, ready when a hook
  call answers 200; the seconds from spawn to that first answer are kept (``Served.first_answer_seconds``).
- ``worker_memory``: RSS (``/proc/PID/status``) and PSS (``/proc/PID/smaps_rollup``) of a master's workers.
  RSS counts every page a worker maps, including the pages it shares with the master after ``fork`` (copy on
  write) and with its sibling; PSS divides each shared page among the processes that share it, so the PSS of
  master + workers adds up to what the service really holds.
- ``timed_command``: wall time and peak RSS of a command (``needlecheck check FILE``), from ``wait4``.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def post(port: int, path: str, body: bytes, timeout: float) -> tuple[int, bytes]:
    """(status, body) of one ``POST path`` with a JSON body on a fresh connection."""
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request("POST", path, body, {"Content-Type": "application/json", "Accept": "application/json"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@dataclass
class Served:
    """A running server: its master process, port, and the seconds from spawn to its first 200 hook answer."""

    process: subprocess.Popen[bytes]
    port: int
    first_answer_seconds: float
    first_answer: bytes


def _log_tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


def first_answer(process: subprocess.Popen[bytes], port: int, path: str, body: bytes, log: Path,
                 timeout: float, started: float) -> tuple[float, bytes]:
    """Send ``body`` to ``path`` until the server answers 200; seconds from ``started`` and the answer.

    Polls every 10 ms while the port refuses connections; once gunicorn listens, the request waits in its
    backlog until a worker takes it, and that wait is part of the figure."""
    give_up = started + timeout
    last = "no answer"
    while time.perf_counter() < give_up:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{_log_tail(log)}")
        try:
            status, answer = post(port, path, body, timeout=max(0.1, give_up - time.perf_counter()))
        except (ConnectionRefusedError, ConnectionResetError, http.client.RemoteDisconnected) as error:
            last = f"{type(error).__name__}"
            time.sleep(0.01)
            continue
        except (OSError, http.client.HTTPException) as error:
            last = f"{type(error).__name__}: {error}"
            time.sleep(0.01)
            continue
        if status == 200:
            return time.perf_counter() - started, answer
        last = f"HTTP {status}: {answer[:200]!r}"
        time.sleep(0.01)
    raise RuntimeError(f"no 200 hook answer within {timeout:.0f} s (last: {last}):\n{_log_tail(log)}")


@contextlib.contextmanager
def served(command: list[str], port: int, env: dict[str, str], log: Path, path: str, body: bytes,
           start_timeout: float, cwd: Path) -> Iterator[Served]:
    """Run ``command`` (a gunicorn master on ``port``) until the block ends, once it answers ``body`` with 200."""
    with log.open("ab") as sink:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=sink, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
        try:
            seconds, answer = first_answer(process, port, path, body, log, start_timeout, started)
            yield Served(process, port, seconds, answer)
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (a gunicorn master's workers); empty off Linux."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            text = stat.read_text()
            if int(text[text.rindex(")") + 2:].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return sorted(found)


def _kib(path: Path, field: str) -> int | None:
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


@dataclass
class ProcessMemory:
    """One process's resident memory, MiB (NaN when unreadable)."""

    pid: int
    rss_mib: float
    pss_mib: float


def process_memory(pid: int) -> ProcessMemory:
    """VmRSS and Pss of ``pid``."""
    rss = _kib(Path(f"/proc/{pid}/status"), "VmRSS")
    pss = _kib(Path(f"/proc/{pid}/smaps_rollup"), "Pss")
    return ProcessMemory(pid, rss / 1024 if rss is not None else float("nan"),
                         pss / 1024 if pss is not None else float("nan"))


def worker_memory(master: int) -> tuple[ProcessMemory, list[ProcessMemory]]:
    """The master's memory and each worker's."""
    return process_memory(master), [process_memory(pid) for pid in children(master)]


@dataclass
class CommandRun:
    """One run of a command: exit status, wall seconds, peak RSS (MiB) and what it printed."""

    returncode: int
    wall_seconds: float
    max_rss_mib: float
    stdout: bytes


def timed_command(command: list[str], env: dict[str, str], cwd: Path, out: Path, timeout: float) -> CommandRun:
    """Run ``command`` to the end; its wall time and peak RSS (``ru_maxrss`` from ``wait4``)."""
    with out.open("wb") as sink:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=sink, stderr=subprocess.DEVNULL,
                                   stdin=subprocess.DEVNULL)
        give_up = started + timeout
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > give_up:
                process.kill()
                pid, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(0.002)
        wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    return CommandRun(process.returncode, wall, usage.ru_maxrss / 1024, out.read_bytes())
