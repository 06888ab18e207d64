"""Benchmark of ``needlecheck scan`` on a synthetic Bulk Data export (``bench/bulk_export.py``).

    python -m bench.scan_bench --claims 200000 --workers 2 [--gzip]

Generates the export in a temporary folder, runs ``python -m needlecheck scan`` on it as a separate process
(with the sample data sets of ``tests/data`` installed, so every rule runs), and reports: wall time and its
index/check split, claims per second, CPU seconds of the scan's processes (its own and its workers'), the
rate that CPU time allows on idle cores (the machine may be shared: the load average is printed), peak memory
of the whole process tree (the sum of RSS, and the sum of PSS, which counts pages the forked workers share
once) and of each process, the time a 1,000,000-claim export would take at the measured and at the projected
rate, and how many seeded defects the scan caught. ``--export DIR`` keeps the generated export there and
reuses it, so that runs to be compared read the same claims.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bench.bulk_export import generate

REPO = Path(__file__).resolve().parent.parent


_TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            return handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _tree(root: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(int(entry))) is not None:
            parents.setdefault(int(fields[1]), []).append(int(entry))
    found, pending = [], [root]
    while pending:
        pid = pending.pop()
        found.append(pid)
        pending.extend(parents.get(pid, []))
    return found


def _memory_kb(pid: int) -> tuple[int, int]:
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


@dataclass
class ProcessPeak:
    """What one process of the scan's tree used: peak RSS and PSS, and its CPU seconds when last seen."""

    rss_kb: int = 0
    pss_kb: int = 0
    cpu_seconds: float = 0.0


class MemoryWatch(threading.Thread):
    """Samples every process of the scan's tree until stopped: the peaks of the sums, and each process's own."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_rss_kb = self.peak_pss_kb = self.peak_processes = 0
        self.processes: dict[int, ProcessPeak] = {}
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            pids = _tree(self.pid)
            samples = [(pid, *_memory_kb(pid), _stat(pid)) for pid in pids]
            self.peak_rss_kb = max(self.peak_rss_kb, sum(s[1] for s in samples))
            self.peak_pss_kb = max(self.peak_pss_kb, sum(s[2] for s in samples))
            self.peak_processes = max(self.peak_processes, len(pids))
            for pid, rss, pss, fields in samples:
                peak = self.processes.setdefault(pid, ProcessPeak())
                peak.rss_kb, peak.pss_kb = max(peak.rss_kb, rss), max(peak.pss_kb, pss)
                if fields is not None:  # utime + stime, fields 14 and 15 of /proc/PID/stat
                    peak.cpu_seconds = (int(fields[11]) + int(fields[12])) / _TICKS

    def workers(self) -> list[ProcessPeak]:
        """The processes other than the scan's own (its pool of workers)."""
        return [peak for pid, peak in self.processes.items() if pid != self.pid]


def detection(export: Path, out: Path) -> dict[str, tuple[int, int]]:
    """Per seeded defect: (claims seeded, claims on which the expected rule gave a warning)."""
    fired: set[tuple[str, str]] = set()
    with (out / "findings.csv").open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["severity"] == "warning":
                fired.add((row["claim_id"], row["rule_id"]))
    counts: dict[str, list[int]] = {}
    with (export / "seeded.csv").open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            seeded = counts.setdefault(f"{row['defect']} ({row['rule_id']})", [0, 0])
            seeded[0] += 1
            seeded[1] += (row["claim_id"], row["rule_id"]) in fired
    return {name: (c[0], c[1]) for name, c in counts.items()}


def _claims_in(export: Path) -> int:
    count = 0
    for path in export.glob("Claim*.ndjson*"):
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rb") as handle:
            count += sum(1 for _ in handle)
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--claims", type=int, default=200_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--gzip", action="store_true", help="gzip the export's files")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (export and results)")
    parser.add_argument("--export", type=Path, help="use (and keep) this export folder, generating it only if it "
                                                    "does not exist: runs to compare then read the same claims")
    parser.add_argument("--python", default=sys.executable,
                        help="the interpreter that runs the scan (another checkout's venv, to compare two versions "
                             "on the same export at the same time)")
    parser.add_argument("--since", help="passed to the scan: only Claims created from this date are checked")
    parser.add_argument("--until", help="passed to the scan: only Claims created up to this date are checked (the "
                                        "whole export is still indexed: memory at a large export's size, sooner)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="needlecheck-scan-bench-"))
    try:
        export, out = args.export or work / "export", work / "out"
        started = time.monotonic()
        if (export / "seeded.csv").exists():
            claims = _claims_in(export)
        else:
            claims = generate(export, args.claims, compress=args.gzip)
        generated = time.monotonic() - started
        size = sum(p.stat().st_size for p in export.iterdir())
        env = {**os.environ, "NEEDLECHECK_DATASETS_DIR": str(REPO / "tests" / "data")}
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        load_before = os.getloadavg()
        started = time.monotonic()
        # Run outside the checkout, so that the interpreter's installed needlecheck is the one measured.
        dates = [*(["--since", args.since] if args.since else []), *(["--until", args.until] if args.until else [])]
        process = subprocess.Popen([args.python, "-m", "needlecheck", "scan", str(export.resolve()), "--out",
                                    str(out), "--workers", str(args.workers), *dates], env=env, cwd=work)
        watch = MemoryWatch(process.pid)
        watch.start()
        status = process.wait()
        wall = time.monotonic() - started
        load_after = os.getloadavg()
        watch.stopped.set()
        watch.join()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if status != 0:
            sys.exit(f"scan exited {status}")
        summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        exported, claims = claims, summary["claims_in_range"]  # the rates are of the claims in the date range
        rate = claims / wall
        workers = watch.workers()
        worker_cpu = sum(p.cpu_seconds for p in workers)
        main_cpu = watch.processes[process.pid].cpu_seconds if process.pid in watch.processes else cpu - worker_cpu
        index_cpu = summary["input"].get("index_cpu_seconds", 0.0)
        # On dedicated cores the scan would take its indexing (one process) and then its checking spread over the
        # cores: what the CPU seconds measured allow, whatever other sessions took from the machine meanwhile.
        cores = min(args.workers, os.cpu_count() or 1)
        projected = claims / (index_cpu + (cpu - index_cpu) / cores)
        print(f"# needlecheck scan, {exported} claims, --workers {args.workers}, {os.cpu_count()} cores\n")
        print("| measure | value |\n|---|---|")
        print(f"| export | {exported} claims, {size / 1e6:.0f} MB {'gzipped ' if args.gzip else ''}NDJSON, "
              f"generated in {generated:.0f} s |")
        if claims != exported:
            print(f"| claims in the date range (rates below are of these) | {claims} |")
        print(f"| load average (1 min) before / after | {load_before[0]:.2f} / {load_after[0]:.2f} |")
        print(f"| wall time | {wall:.1f} s (index {summary['input']['index_seconds']} s, check "
              f"{summary['input']['check_seconds']} s) |")
        print(f"| claims per second (wall) | {rate:.0f} |")
        print(f"| CPU seconds, all processes | {cpu:.0f} ({1000 * cpu / claims:.2f} ms per claim) |")
        print(f"| CPU seconds, scan process / workers | {main_cpu:.1f} (index {index_cpu:.1f}) / {worker_cpu:.1f} "
              f"({len(workers)} workers) |")
        print(f"| claims per second projected on {cores} idle cores (from CPU) | {projected:.0f} |")
        print(f"| peak memory, process tree | RSS {watch.peak_rss_kb / 1024:.0f} MB, "
              f"PSS {watch.peak_pss_kb / 1024:.0f} MB ({watch.peak_processes} processes) |")
        main_peak = watch.processes.get(process.pid, ProcessPeak())
        print(f"| peak memory, scan process | RSS {main_peak.rss_kb / 1024:.0f} MB, "
              f"PSS {main_peak.pss_kb / 1024:.0f} MB |")
        if workers:
            print(f"| peak memory, largest worker | RSS {max(p.rss_kb for p in workers) / 1024:.0f} MB, "
                  f"PSS {max(p.pss_kb for p in workers) / 1024:.0f} MB |")
        print(f"| 1,000,000 claims at this rate (wall) / projected on idle cores | {1_000_000 / rate / 60:.0f} min / "
              f"{1_000_000 / projected / 60:.0f} min |")
        print(f"| claims checked / with a warning | {summary['claims_checked']} / {summary['claims_with_warning']} |")
        if claims == exported:  # with a date range, most seeded claims were not to be checked
            print("\n| seeded defect (rule) | seeded | caught |\n|---|---|---|")
            for name, (seeded, caught) in sorted(detection(export, out).items()):
                print(f"| {name} | {seeded} | {caught} |")
        if args.keep:
            print(f"\nkept: {work}")
    finally:
        if not args.keep:  # an --export folder is kept: it is not under ``work``
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
