"""Session caps per policy pack: how many sessions a window allows, and what more sessions need.

One row of ``frequency_limits.csv`` is one cap. ``window`` is how sessions are grouped:

- ``rolling-days``: the ``window_days`` days ending on the date of service;
- ``ncd-year``: NCD 30.3.3's year, which starts with the first session and ends when 11 full months have
  passed after that session's month (first session 2020-03-21 → the next year starts 2021-03-01 at the
  earliest); the next year starts with the first session after that;
- ``per-patient``: every session the patient ever had.

Up to ``sessions`` sessions are plain; up to ``extended_sessions`` need ``extension`` (modifier KX, or a
written justification); beyond that nothing is covered. An empty ``extended_sessions`` means the row
sets no outer cap.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from needlecheck.mappings.errors import MappingError
from needlecheck.mappings.local_policy import merged_by_period, with_local_rows
from needlecheck.mappings.payer_policies import CODE_FAMILIES
from needlecheck.mappings.provenance import parse_source_ids
from needlecheck.mappings.sources import PolicySource
from needlecheck.mappings.tables import (
    DATA_DIR,
    EffectivePeriod,
    parse_choice,
    parse_https_url,
    parse_period,
    read_table,
)

FREQUENCY_LIMITS_FILE = DATA_DIR / "frequency_limits.csv"

ROLLING_DAYS = "rolling-days"
NCD_YEAR = "ncd-year"
PER_PATIENT = "per-patient"
WINDOWS = frozenset({ROLLING_DAYS, NCD_YEAR, PER_PATIENT})
KX_MODIFIER = "kx-modifier"
JUSTIFICATION = "justification"
EXTENSIONS = frozenset({KX_MODIFIER, JUSTIFICATION})


@dataclass(frozen=True)
class FrequencyLimit:
    """One row of ``frequency_limits.csv``."""

    pack: str
    limit_id: str
    counted_families: frozenset[str]
    window: str
    window_days: int | None
    sessions: int
    extended_sessions: int | None
    extension: str
    period: EffectivePeriod
    statement: str
    source_id: str
    source_title: str
    source_url: str
    confidence: str
    # Where the window itself is defined, when another source than the limit's: the NCD "year" of
    # 11 full months after the first session's month is Priority Health's worked example (MC-05).
    window_source_id: str | None = None

    @property
    def source(self) -> PolicySource:
        """The row's source as findings cite it."""
        return PolicySource(self.source_id, self.source_title, self.source_url, self.statement, self.confidence)


def _count(path: Path, row_number: int, field: str, value: str, *, required: bool) -> int | None:
    if not value and not required:
        return None
    if not value.isdigit() or int(value) == 0:
        raise MappingError(path.name, row_number, field, f"'{value}' is not a positive whole number")
    return int(value)


def _families(path: Path, row_number: int, value: str) -> frozenset[str]:
    families = frozenset(part.strip() for part in value.split("|") if part.strip())
    for family in families:
        parse_choice(path, row_number, "counted_families", family, CODE_FAMILIES)
    return families


def load_frequency_limits(path: Path = FREQUENCY_LIMITS_FILE) -> tuple[FrequencyLimit, ...]:
    """Read and validate the frequency limit table."""
    limits: list[FrequencyLimit] = []
    seen: set[tuple[str, str]] = set()
    required = ("pack", "limit_id", "counted_families", "window", "sessions", "extension", "statement",
                "source_id", "source_title", "source_url", "confidence")
    for row_number, row in read_table(path, required):
        if (row["pack"], row["limit_id"]) in seen:
            raise MappingError(path.name, row_number, "limit_id", f"{row['limit_id']} appears twice for {row['pack']}")
        seen.add((row["pack"], row["limit_id"]))
        window = parse_choice(path, row_number, "window", row["window"], WINDOWS)
        window_days = _count(path, row_number, "window_days", row.get("window_days", ""),
                             required=window == ROLLING_DAYS)
        sessions = _count(path, row_number, "sessions", row["sessions"], required=True)
        extended = _count(path, row_number, "extended_sessions", row.get("extended_sessions", ""), required=False)
        if sessions is None:  # pragma: no cover - required=True never returns None
            raise MappingError(path.name, row_number, "sessions", "must not be empty")
        if extended is not None and extended < sessions:
            raise MappingError(path.name, row_number, "extended_sessions", "is below sessions")
        limits.append(FrequencyLimit(
            pack=row["pack"],
            limit_id=row["limit_id"],
            counted_families=_families(path, row_number, row["counted_families"]),
            window=window,
            window_days=window_days,
            sessions=sessions,
            extended_sessions=extended,
            extension=parse_choice(path, row_number, "extension", row["extension"], EXTENSIONS),
            period=parse_period(path, row_number, row),
            statement=row["statement"],
            source_id=row["source_id"],
            source_title=row["source_title"],
            source_url=parse_https_url(path, row_number, "source_url", row["source_url"]),
            confidence=row["confidence"],
            window_source_id=_window_source(path, row_number, row.get("window_source_id", ""), window),
        ))
    return tuple(limits)


def _window_source(path: Path, row_number: int, value: str, window: str) -> str | None:
    if not value:
        if window == NCD_YEAR:
            raise MappingError(path.name, row_number, "window_source_id",
                               "an ncd-year window must cite where the 11-full-month year is defined")
        return None
    return parse_source_ids(path, row_number, "window_source_id", value)[0]


@cache
def frequency_limits() -> tuple[FrequencyLimit, ...]:
    """The frequency limit table shipped in ``mappings/`` with the local rows of ``policy_dir``, loaded once."""
    return with_local_rows(load_frequency_limits(), "frequency_limits.csv", load_frequency_limits, merged_by_period,
                           lambda row: (row.pack, row.limit_id))
