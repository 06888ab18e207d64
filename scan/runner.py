"""A scan from input to the files in ``DIR``: index, check in parallel, total up, write, replace atomically.

Everything the scan writes goes into a work folder inside ``DIR`` (the index database too); the finished
files then replace the previous run's one by one with ``os.replace``, and the work folder is removed
whatever happens. Nothing is written anywhere else (SQLite may spill sorts to the system temp).
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from tqdm import tqdm

from needlecheck.cds_hooks.fhir_client import FhirLimits, FhirUnavailable
from needlecheck.plugin.context import RuleOptions
from needlecheck.plugin.rule_settings import RuleSetting
from needlecheck.scan.ndjson_claims import check_patients, start_worker
from needlecheck.scan.ndjson_index import build_index, claim_patients, claims_in_range, ndjson_files, open_index
from needlecheck.scan.problems import InputProblem, ProblemLog
from needlecheck.scan.results import Batch, ResultFiles, Totals
from needlecheck.scan.selection import DateRange
from needlecheck.scan.server_claims import check_server_claims, claim_pages, start_server_worker

OUTPUTS = ("findings.csv", "findings.ndjson", "summary.json", "report.html")
PATIENTS_PER_CHUNK = 32


@dataclass(frozen=True)
class ScanOptions:
    """What ``needlecheck scan`` was asked to do (arguments already checked)."""

    source: str  # a folder of NDJSON files, or a FHIR base URL
    out_dir: Path
    dates: DateRange
    workers: int
    fhir_limits: FhirLimits
    token: str | None = None
    # The site's rule options and settings, as the hook applies them (trusted-client overrides do not apply).
    rule_options: RuleOptions = field(default_factory=RuleOptions)
    rule_settings: dict[str, RuleSetting] = field(default_factory=dict)

    @property
    def is_server(self) -> bool:
        """Whether the input is a FHIR server rather than a folder."""
        return self.source.startswith(("https://", "http://"))


class NothingRead(Exception):
    """The input gave not a single usable resource."""


def run(options: ScanOptions) -> int:
    """Run the scan; 0 when it finished, 1 when nothing could be read (the message is printed)."""
    options.out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".needlecheck-scan-", dir=options.out_dir))
    try:
        problems, totals = ProblemLog(), Totals()
        files = ResultFiles(work)
        try:
            described = (_scan_server if options.is_server else _scan_folder)(options, work, problems, totals, files)
        finally:
            files.close()
        summary = {"input": described, "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                   **totals.summary(), "input_problems": problems.as_json()}
        (work / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        from needlecheck.scan.report import write_report  # matplotlib: only once there is something to draw

        write_report(summary, work / "report.html")
        for name in OUTPUTS:
            os.replace(work / name, options.out_dir / name)
        return 0
    except NothingRead as error:
        print(f"needlecheck: scan: nothing could be read from {options.source}: {error}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _progress(total: int | None, what: str) -> tqdm:
    # A bar on a terminal only: a log file or a pipe gets nothing but the final files. A terminal that does
    # not report its width (a bare pty) still gets a readable bar.
    width = shutil.get_terminal_size((100, 24)).columns or 100
    return tqdm(total=total, unit=what, desc=f"{what}s", disable=not sys.stderr.isatty(), ncols=min(width, 120),
                smoothing=0.1)


def _warm_up() -> None:
    """Load every rule table once before the workers fork, so they share it instead of each reading it."""
    from needlecheck.cds_hooks.invoke import decide
    from needlecheck.plugin.context import BillingContext, ServiceLine
    from needlecheck.plugin.terms import Coding

    line = ServiceLine(key="warm-up", label="warm-up", resource_ref="Claim/warm-up", code="20560",
                       date_of_service=dt.date(2026, 1, 5), item_sequence=1,
                       indications=(Coding("http://hl7.org/fhir/sid/icd-10-cm", "M54.50", None),))
    decide(BillingContext("claim-create", "warm-up", (line,), dt.date(2026, 1, 5)), "warm-up", {})
    gc.freeze()


def _map(function: Callable[[Any], Batch], chunks: Iterable[Any], workers: int,
         initializer: Callable[..., None], initargs: tuple[Any, ...]) -> Generator[Batch, None, None]:
    """``function`` over the chunks, in order: in this process for one worker, else in a pool of processes."""
    _warm_up()
    if workers == 1:
        initializer(*initargs)
        yield from map(function, chunks)
        return
    # fork: the workers inherit the loaded tables (copy-on-write) instead of loading them again. The pool reads
    # ``chunks`` as the workers take them, so a million patients are never a list in this process.
    context = multiprocessing.get_context("fork")
    with context.Pool(workers, initializer, initargs) as pool:
        yield from pool.imap(function, chunks)


def _add(batch: Batch, totals: Totals, files: ResultFiles, problems: ProblemLog) -> int:
    for problem in batch.problems:
        problems.append(problem)
    totals.merge(batch.totals)
    files.write(batch)
    return batch.claims


def _scan_folder(options: ScanOptions, work: Path, problems: ProblemLog, totals: Totals,
                 files: ResultFiles) -> dict[str, Any]:
    folder = Path(options.source)
    paths = ndjson_files(folder)
    if not paths:
        raise NothingRead("the folder holds no .ndjson or .ndjson.gz files")
    index_path = work / "index.sqlite3"
    connection = open_index(index_path)
    started, started_cpu = time.monotonic(), time.process_time()
    try:
        with _progress(len(paths), "file") as bar:
            stats = build_index(connection, folder, problems, on_file=lambda _: bar.update())
        indexed, index_cpu = time.monotonic(), time.process_time() - started_cpu
        if stats.resources == 0:
            raise NothingRead(f"none of its {len(paths)} files held a usable FHIR resource")
        totals.claims_read, totals.claims_in_range = stats.claims, claims_in_range(connection, options.dates)
    finally:
        connection.close()
    initargs = (index_path, options.dates, options.rule_options, options.rule_settings)
    with (_progress(totals.claims_in_range, "claim") as bar,
          claim_patients(index_path, PATIENTS_PER_CHUNK, options.dates) as chunks,
          closing(_map(check_patients, chunks, options.workers, start_worker, initargs)) as batches):
        for batch in batches:
            bar.update(_add(batch, totals, files, problems))
    return {"kind": "bulk-data-ndjson", "source": str(folder), "files": [p.name for p in paths],
            "since": _iso(options.dates.since), "until": _iso(options.dates.until), "workers": options.workers,
            "index_seconds": round(indexed - started, 1), "index_cpu_seconds": round(index_cpu, 1),
            "check_seconds": round(time.monotonic() - indexed, 1)}


def _scan_server(options: ScanOptions, work: Path, problems: ProblemLog, totals: Totals,
                 files: ResultFiles) -> dict[str, Any]:
    session = requests.Session()
    pages = claim_pages(options.source, options.token, options.fhir_limits, options.dates, session)
    try:
        first = next(pages)
    except FhirUnavailable as error:
        raise NothingRead(f"the Claim search failed ({error})") from error
    except StopIteration:
        first = []
    failures: list[InputProblem] = []

    def batches() -> Iterator[list[dict[str, Any]]]:
        yield first
        try:
            yield from pages
        except FhirUnavailable as error:  # a later page: what was read is still scanned, and the gap reported
            failures.append(InputProblem("search-failed", options.source, None,
                                         f"the Claim search stopped: {error}; later Claims were not read"))

    initargs = (options.source, options.token, options.fhir_limits, options.dates, options.rule_options,
                options.rule_settings)
    read = out_of_range = 0
    with _progress(None, "claim") as bar:
        for batch in _map(check_server_claims, batches(), options.workers, start_server_worker, initargs):
            read += batch.claims + batch.out_of_range
            out_of_range += batch.out_of_range
            bar.update(_add(batch, totals, files, problems))
    session.close()
    for failure in failures:
        problems.append(failure)
    totals.claims_read, totals.claims_in_range = read, read - out_of_range
    return {"kind": "fhir-server", "source": options.source, "since": _iso(options.dates.since),
            "until": _iso(options.dates.until), "workers": options.workers}


def _iso(day: dt.date | None) -> str | None:
    return day.isoformat() if day else None

