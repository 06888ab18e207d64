"""HTTP load against ``needlecheck serve`` and the ceiling app running side by side, in alternating rounds.

Each round sends one body for ``seconds`` over ``connections`` keep-alive connections (closed loop) to one of
the two servers, with ``wrk`` when it is available (``bench/wrk.py``) and ``bench/load.py`` otherwise. The
servers take turns (service first in even rounds, ceiling first in odd ones), so a change in the machine's
other load falls on both about equally; both servers stay up throughout and the one not measured is idle.
Around each round the server's CPU time (master + workers, ``/proc``), the client's and the whole machine's
are read, so the report can show the CPU per request and what other processes took meanwhile.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.inprocess import percentile
from bench.load import LoadResult, process_tree_cpu, run_load, system_busy_seconds
from bench.processes import HOST
from bench.wrk import run_wrk


@dataclass
class Round:
    """One measured round against one server."""

    load: LoadResult
    server_cpu: dict[int, float] = field(default_factory=dict)
    machine_busy: float = math.nan

    @property
    def server_cpu_seconds(self) -> float:
        """Master + workers, seconds."""
        return sum(self.server_cpu.values())

    @property
    def other_cores(self) -> float:
        """CPU used meanwhile by processes that are neither this server nor the load generator, in cores."""
        if math.isnan(self.machine_busy) or not self.server_cpu or not self.load.wall_seconds:
            return math.nan
        other = self.machine_busy - self.server_cpu_seconds - self.load.client_cpu_seconds
        return max(0.0, other) / self.load.wall_seconds


@dataclass
class Rounds:
    """Every round one server got with one body, pooled."""

    rounds: list[Round] = field(default_factory=list)

    @property
    def answered(self) -> int:
        """Requests answered over all rounds."""
        return sum(r.load.completed for r in self.rounds)

    @property
    def wall_seconds(self) -> float:
        """Measured seconds over all rounds."""
        return sum(r.load.wall_seconds for r in self.rounds)

    @property
    def throughput(self) -> float:
        """Answered requests per second over all rounds."""
        return self.answered / self.wall_seconds if self.wall_seconds else 0.0

    @property
    def errors(self) -> int:
        """Failed or non-200 requests over all rounds."""
        return sum(r.load.errors for r in self.rounds)

    @property
    def timed_out(self) -> bool:
        """Whether a round hit its time limit."""
        return any(r.load.timed_out for r in self.rounds)

    def latency(self, q: float) -> float:
        """The ``q`` percentile of the pooled latencies, seconds."""
        return percentile([value for r in self.rounds for value in r.load.latencies], q)

    @property
    def cpu_ms_per_request(self) -> float:
        """Server CPU (master + workers) per answered request, ms; NaN when unknown."""
        cpu = sum(r.server_cpu_seconds for r in self.rounds)
        return 1000 * cpu / self.answered if self.answered and cpu else math.nan

    @property
    def client_cores(self) -> float:
        """The load generator's CPU, in cores, over all rounds."""
        wall = self.wall_seconds
        return sum(r.load.client_cpu_seconds for r in self.rounds) / wall if wall else math.nan

    @property
    def other_cores(self) -> float:
        """Other processes' CPU, in cores, over all rounds (NaN when unknown)."""
        known = [r for r in self.rounds if not math.isnan(r.other_cores)]
        wall = sum(r.load.wall_seconds for r in known)
        return sum(r.other_cores * r.load.wall_seconds for r in known) / wall if wall else math.nan

    @property
    def worker_split(self) -> str:
        """Each process's share of the server CPU, largest first (shows whether the workers shared the load)."""
        per_pid: dict[int, float] = {}
        for r in self.rounds:
            for pid, cpu in r.server_cpu.items():
                per_pid[pid] = per_pid.get(pid, 0.0) + cpu
        total = sum(per_pid.values())
        if not total:
            return "n/a"
        return "/".join(f"{100 * cpu / total:.0f}" for cpu in sorted(per_pid.values(), reverse=True)
                        if cpu / total >= 0.01) + " %"

    @property
    def failures(self) -> list[str]:
        """The first few failure messages."""
        return [f for r in self.rounds for f in r.load.failures][:3]


Sender = Callable[[int, str, bytes, float], LoadResult]


def sender(wrk: str | None, connections: int, threads: int, time_limit: float) -> Sender:
    """A function (port, path, body, seconds) -> LoadResult: wrk when given, else the asyncio client."""
    if wrk:
        return lambda port, path, body, seconds: run_wrk(wrk, f"http://{HOST}:{port}{path}", body, connections,
                                                         threads, seconds)
    return lambda port, path, body, seconds: run_load(HOST, port, path, body, 10**9, connections,
                                                      time_limit=seconds + time_limit, duration=seconds)


def measured_round(send: Sender, master_pid: int, port: int, path: str, body: bytes, seconds: float) -> Round:
    """One round with the server's and the machine's CPU read around it."""
    before, busy_before = process_tree_cpu(master_pid) or {}, system_busy_seconds()
    load = send(port, path, body, seconds)
    after, busy_after = process_tree_cpu(master_pid) or {}, system_busy_seconds()
    busy = busy_after - busy_before if busy_before is not None and busy_after is not None else math.nan
    return Round(load, {pid: after[pid] - before.get(pid, 0.0) for pid in after}, busy)


def alternate(send: Sender, servers: dict[str, tuple[int, int]], path: str, body: bytes, rounds: int,
              seconds: float, warmup_seconds: float) -> dict[str, Rounds]:
    """Warm each server up with ``body``, then ``rounds`` rounds each, taking turns.

    ``servers`` maps a name ("service", "ceiling") to (master pid, port)."""
    for _, port in servers.values():
        if warmup_seconds > 0:
            send(port, path, body, warmup_seconds)
    results = {name: Rounds() for name in servers}
    names = list(servers)
    for number in range(rounds):
        for name in names if number % 2 == 0 else reversed(names):
            pid, port = servers[name]
            results[name].rounds.append(measured_round(send, pid, port, path, body, seconds))
    return results
