"""Benchmark of ``needlecheck scan`` on a synthetic Bulk Data export (``bench/bulk_export.py``).

    python -m bench.scan_bench --claims 200000 --workers 2 [--gzip]

Generates the export in a temporary folder, runs ``python -m needlecheck scan`` on it as a separate process
(with the sample data sets of ``tests/data`` installed, so every rule runs), and reports: wall time and its
index/check split, claims per second, CPU seconds of the scan's processes, peak memory of the whole process
tree (the sum of RSS, and the sum of PSS, which counts pages the forked workers share once), the time a
1,000,000-claim export would take at the measured rate, and how many seeded defects the scan caught.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.bulk_export import generate

REPO = Path(__file__).resolve().parent.parent


def _tree(root: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
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


class MemoryWatch(threading.Thread):
    """Samples the memory of a process and all its descendants until stopped; keeps the peaks."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak_rss_kb, self.peak_pss_kb, self.peak_processes = pid, 0, 0, 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.25):
            pids = _tree(self.pid)
            samples = [_memory_kb(pid) for pid in pids]
            self.peak_rss_kb = max(self.peak_rss_kb, sum(s[0] for s in samples))
            self.peak_pss_kb = max(self.peak_pss_kb, sum(s[1] for s in samples))
            self.peak_processes = max(self.peak_processes, len(pids))


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--claims", type=int, default=200_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--gzip", action="store_true", help="gzip the export's files")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (export and results)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="needlecheck-scan-bench-"))
    try:
        export, out = work / "export", work / "out"
        started = time.monotonic()
        claims = generate(export, args.claims, compress=args.gzip)
        generated = time.monotonic() - started
        size = sum(p.stat().st_size for p in export.iterdir())
        env = {**os.environ, "NEEDLECHECK_DATASETS_DIR": str(REPO / "tests" / "data")}
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        process = subprocess.Popen([sys.executable, "-m", "needlecheck", "scan", str(export), "--out", str(out),
                                    "--workers", str(args.workers)], env=env, cwd=REPO)
        watch = MemoryWatch(process.pid)
        watch.start()
        status = process.wait()
        wall = time.monotonic() - started
        watch.stopped.set()
        watch.join()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if status != 0:
            sys.exit(f"scan exited {status}")
        summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        rate = claims / wall
        print(f"# needlecheck scan, {claims} claims, --workers {args.workers}, {os.cpu_count()} cores\n")
        print("| measure | value |\n|---|---|")
        print(f"| export | {claims} claims, {size / 1e6:.0f} MB {'gzipped ' if args.gzip else ''}NDJSON, "
              f"generated in {generated:.0f} s |")
        print(f"| wall time | {wall:.1f} s (index {summary['input']['index_seconds']} s, check "
              f"{summary['input']['check_seconds']} s) |")
        print(f"| claims per second (wall) | {rate:.0f} |")
        print(f"| CPU seconds, all processes | {cpu:.0f} ({1000 * cpu / claims:.2f} ms per claim) |")
        print(f"| peak memory, process tree | RSS {watch.peak_rss_kb / 1024:.0f} MB, "
              f"PSS {watch.peak_pss_kb / 1024:.0f} MB ({watch.peak_processes} processes) |")
        print(f"| 1,000,000 claims at this rate | {1_000_000 / rate / 60:.0f} min |")
        print(f"| claims checked / with a warning | {summary['claims_checked']} / {summary['claims_with_warning']} |")
        print("\n| seeded defect (rule) | seeded | caught |\n|---|---|---|")
        for name, (seeded, caught) in sorted(detection(export, out).items()):
            print(f"| {name} | {seeded} | {caught} |")
        if args.keep:
            print(f"\nkept: {work}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
