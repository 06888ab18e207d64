"""Timed HTTP load rounds with ``wrk`` (C, epoll), the tool issue 10 measured with, when it is installed.

``wrk`` spends far less CPU per request than any Python client, which matters on a 2-core machine where the
load generator shares the cores with the server it measures. A small Lua script makes every request a
``POST`` of the benchmark body and, when the round ends, writes the counts, the error counts and the whole
latency histogram (microseconds, value and count) as JSON, so percentiles can be pooled over rounds. wrk 4
corrects that histogram for coordinated omission (a closed-loop client sends nothing while it waits, so a
stall would hide the requests it delayed): it adds the latencies the delayed requests would have had, which is
why the histogram holds more entries than answered requests, and why its p99 is above a naive client's.

``find_wrk()`` looks for it on ``PATH`` and, when asked to, installs Debian's package (``apt-get install -y
wrk``, root only); when it cannot be had the benchmark uses ``bench/load.py`` instead and says so.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench.load import LoadResult

_SCRIPT = """\
local body = assert(io.open({body}, "rb"))
wrk.method = "POST"
wrk.body = body:read("*a")
body:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"

function done(summary, latency, requests)
  local out = assert(io.open({out}, "w"))
  local e = summary.errors
  out:write(string.format('{{"requests": %d, "duration_us": %d, "errors": {{"connect": %d, "read": %d, ' ..
    '"write": %d, "status": %d, "timeout": %d}}, "histogram": [',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout))
  for i = 1, #latency do
    local value, count = latency(i)
    out:write(string.format('%s[%d, %d]', i > 1 and ", " or "", value, count))
  end
  out:write("]}}\\n")
  out:close()
end
"""


def find_wrk(install: bool) -> tuple[str | None, str]:
    """(path of ``wrk`` or None, how it was found or why not). With ``install``, try Debian's package as root."""
    found = shutil.which("wrk")
    if found:
        return found, f"wrk found at {found}"
    if not install:
        return None, "wrk is not installed and --no-install-wrk was given"
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or not shutil.which("apt-get"):
        return None, "wrk is not installed and apt-get as root is not available to install it"
    try:
        done = subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], capture_output=True, text=True,
                              timeout=180, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    except (OSError, subprocess.TimeoutExpired) as error:
        return None, f"installing wrk failed: {error}"
    found = shutil.which("wrk")
    if done.returncode != 0 or not found:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return None, f"apt-get install wrk failed (exit {done.returncode}: {last[0]})"
    return found, f"wrk installed with apt-get at {found}"


def _lua_string(path: Path) -> str:
    return json.dumps(str(path))  # a JSON string literal is a valid Lua string literal for a plain path


def parse_summary(text: str, client_cpu_seconds: float) -> LoadResult:
    """The ``LoadResult`` of one round from the JSON the Lua ``done`` hook wrote."""
    summary = json.loads(text)
    errors = summary["errors"]
    latencies: list[float] = []
    for value_us, count in summary["histogram"]:
        latencies.extend([value_us / 1e6] * count)
    failed = errors["connect"] + errors["read"] + errors["write"] + errors["timeout"]
    result = LoadResult(latencies=latencies, wall_seconds=summary["duration_us"] / 1e6,
                        client_cpu_seconds=client_cpu_seconds, uncounted_errors=failed, answered=summary["requests"])
    # wrk counts answers that are not 2xx/3xx as status errors; the benchmark expects 200 only.
    result.statuses = {200: summary["requests"] - errors["status"]}
    if errors["status"]:
        result.statuses[0] = errors["status"]
    return result


def run_wrk(wrk: str, url: str, body: bytes, connections: int, threads: int, seconds: float,
            timeout: float = 10.0) -> LoadResult:
    """One timed round: ``wrk -t threads -c connections -d seconds`` POSTing ``body`` to ``url``.

    The client CPU is wrk's own (the children's rusage around the run: the servers are children of this
    process too, but they are still running, so their time is not in it)."""
    with tempfile.TemporaryDirectory(prefix="needlecheck-wrk-") as scratch:
        folder = Path(scratch)
        (folder / "body.json").write_bytes(body)
        out = folder / "summary.json"
        script = folder / "post.lua"
        script.write_text(_SCRIPT.format(body=_lua_string(folder / "body.json"), out=_lua_string(out)),
                          encoding="utf-8")
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run([wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
                               f"--timeout={max(1, round(timeout))}s", "-s", str(script), url],
                              capture_output=True, text=True, timeout=seconds + timeout + 30)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        if done.returncode != 0 or not out.exists():
            result = LoadResult(wall_seconds=seconds, client_cpu_seconds=cpu)
            result.failures.append(f"wrk exited {done.returncode}: {(done.stderr or done.stdout).strip()[:300]}")
            return result
        return parse_summary(out.read_text(encoding="utf-8"), cpu)
