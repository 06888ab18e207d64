"""A small closed-loop HTTP/1.1 load generator on asyncio streams, loopback only.

``concurrency`` persistent keep-alive connections each send the next request as soon as the previous
answer is read, until ``total`` requests are done or ``time_limit`` seconds pass; with ``duration``, each
connection stops sending once ``duration`` seconds have passed (a timed round, as ``wrk -d``). It is the
fallback when ``wrk`` (``bench/wrk.py``) is not installed. The request bytes are
built once, so the client spends little CPU per request: on a 2-core machine the load generator
competes with the server for the same cores, and a heavier client (``requests``) would lower the
ceiling more than the service and flatter the ratio.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class LoadResult:
    """What one load run measured; latencies are seconds, in completion order."""

    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0
    client_cpu_seconds: float = 0.0
    timed_out: bool = False
    sample_body: bytes = b""
    #: requests that failed without an entry in ``failures`` (wrk reports counts, not messages)
    uncounted_errors: int = 0

    #: answered requests when not one per latency (wrk's distribution adds coordinated-omission corrections)
    answered: int | None = None

    @property
    def completed(self) -> int:
        """Requests answered with any HTTP status."""
        return len(self.latencies) if self.answered is None else self.answered

    @property
    def errors(self) -> int:
        """Non-200 answers plus requests that got no answer (connection errors, timeouts)."""
        return (sum(count for status, count in self.statuses.items() if status != 200) + len(self.failures)
                + self.uncounted_errors)

    @property
    def throughput(self) -> float:
        """Answered requests per second of wall time."""
        return self.completed / self.wall_seconds if self.wall_seconds else 0.0


def build_request(host: str, port: int, path: str, body: bytes) -> bytes:
    """The bytes of one keep-alive ``POST path`` with a JSON body."""
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Accept: application/json\r\nContent-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n")
    return head.encode("ascii") + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, server keeps the connection open) of one response with a Content-Length."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip().lower()
    if "content-length" not in headers:
        raise ValueError(f"response without Content-Length (status {status})")
    body = await reader.readexactly(int(headers["content-length"]))
    return status, body, headers.get("connection") != "close"


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


async def _connection_loop(host: str, port: int, payload: bytes, next_ticket: list[int], total: int,
                           request_timeout: float, result: LoadResult, stop_at: float) -> None:
    connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    try:
        while next_ticket[0] < total and time.perf_counter() < stop_at:
            next_ticket[0] += 1
            if connection is None:
                connection = await asyncio.wait_for(asyncio.open_connection(host, port), request_timeout)
            reader, writer = connection
            started = time.perf_counter()
            try:
                writer.write(payload)
                await writer.drain()
                status, body, keep_alive = await asyncio.wait_for(_read_response(reader), request_timeout)
            except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                    TimeoutError) as error:
                result.failures.append(f"{type(error).__name__}: {error}")
                keep_alive = False
            else:
                result.latencies.append(time.perf_counter() - started)
                result.statuses[status] = result.statuses.get(status, 0) + 1
                if not result.sample_body:
                    result.sample_body = body
            if not keep_alive:
                connection = None
                await _close(writer)
    finally:
        if connection is not None:
            await _close(connection[1])


async def _run(host: str, port: int, payload: bytes, total: int, concurrency: int, time_limit: float,
               request_timeout: float, duration: float | None) -> LoadResult:
    result = LoadResult()
    next_ticket = [0]
    cpu_before = time.process_time()
    started = time.perf_counter()
    stop_at = started + duration if duration is not None else float("inf")
    tasks = [asyncio.create_task(_connection_loop(host, port, payload, next_ticket, total, request_timeout, result,
                                                  stop_at))
             for _ in range(concurrency)]
    done, pending = await asyncio.wait(tasks, timeout=time_limit)
    result.wall_seconds = time.perf_counter() - started
    result.client_cpu_seconds = time.process_time() - cpu_before
    if pending:
        result.timed_out = True
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    for task in done:
        if task.exception() is not None:
            result.failures.append(f"connection task: {task.exception()!r}")
    return result


def run_load(host: str, port: int, path: str, body: bytes, total: int, concurrency: int,
             time_limit: float, request_timeout: float = 10.0, duration: float | None = None) -> LoadResult:
    """Send ``total`` POSTs of ``body`` over ``concurrency`` connections; stop after ``time_limit`` s.

    With ``duration``, connections send no new request after ``duration`` s (the requests in flight finish):
    a timed round; ``time_limit`` still bounds the whole run."""
    if not ipaddress.ip_address(host).is_loopback:
        raise ValueError("the benchmark only sends loopback traffic")
    payload = build_request(host, port, path, body)
    return asyncio.run(_run(host, port, payload, total, concurrency, time_limit, request_timeout, duration))


def process_tree_cpu(pid: int) -> dict[int, float] | None:
    """User+system CPU seconds of ``pid`` and of each direct child (the gunicorn workers); None off Linux."""
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    cpu: dict[int, float] = {}
    for stat in proc.glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()
        this_pid = int(stat.parent.name)
        if this_pid == pid or int(fields[1]) == pid:
            cpu[this_pid] = (int(fields[11]) + int(fields[12])) / ticks
    return cpu


def system_busy_seconds() -> float | None:
    """CPU seconds all processes on the machine have used since boot (``/proc/stat``); None off Linux."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    # user nice system idle iowait irq softirq steal ...; guest time is already inside user and nice.
    ticks = [int(value) for value in first[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")
