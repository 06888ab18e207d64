"""What each payer's policy pack says about a code family on a date: covered, not covered, investigational ...

``payer_policies.csv`` has one row per (pack, code family, effective period), each with its source. A new
payer is a new directory row plus policy rows here, with no code change. Periods of one pack and family
must not overlap, so exactly one row (or none: no statement known) is in force on a date of service.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from needlecheck.mappings.errors import MappingError
from needlecheck.mappings.local_policy import merged_by_period, with_local_rows
from needlecheck.mappings.sources import PolicySource
from needlecheck.mappings.tables import (
    DATA_DIR,
    EffectivePeriod,
    parse_choice,
    parse_https_url,
    parse_period,
    read_table,
)

PAYER_POLICIES_FILE = DATA_DIR / "payer_policies.csv"

COVERED = "covered"
NOT_COVERED = "not-covered"
INVESTIGATIONAL = "investigational"
FOLLOWS_NCD = "follows-ncd"
UNKNOWN = "unknown"
STATUSES = frozenset({COVERED, NOT_COVERED, INVESTIGATIONAL, FOLLOWS_NCD, UNKNOWN})
CODE_FAMILIES = frozenset({"dry-needling", "acupuncture", "trigger-point-injection"})


@dataclass(frozen=True)
class PayerPolicy:
    """One row of ``payer_policies.csv``: a pack's coverage of a code family over a period."""

    pack: str
    code_family: str
    status: str
    period: EffectivePeriod
    statement: str
    source_id: str
    source_title: str
    source_url: str
    confidence: str

    @property
    def source(self) -> PolicySource:
        """The row's source as findings cite it."""
        return PolicySource(self.source_id, self.source_title, self.source_url, self.statement, self.confidence)


def _overlaps(first: EffectivePeriod, second: EffectivePeriod) -> bool:
    start = max(first.effective_from or dt.date.min, second.effective_from or dt.date.min)
    end = min(first.effective_to or dt.date.max, second.effective_to or dt.date.max)
    return start <= end


def load_payer_policies(path: Path = PAYER_POLICIES_FILE) -> tuple[PayerPolicy, ...]:
    """Read and validate the payer policy table."""
    policies: list[PayerPolicy] = []
    required = ("pack", "code_family", "status", "statement", "source_id", "source_title", "source_url",
                "confidence")
    for row_number, row in read_table(path, required):
        policy = PayerPolicy(
            pack=row["pack"],
            code_family=parse_choice(path, row_number, "code_family", row["code_family"], CODE_FAMILIES),
            status=parse_choice(path, row_number, "status", row["status"], STATUSES),
            period=parse_period(path, row_number, row),
            statement=row["statement"],
            source_id=row["source_id"],
            source_title=row["source_title"],
            source_url=parse_https_url(path, row_number, "source_url", row["source_url"]),
            confidence=row["confidence"],
        )
        for earlier in policies:
            if (earlier.pack, earlier.code_family) == (policy.pack, policy.code_family) and _overlaps(
                    earlier.period, policy.period):
                raise MappingError(path.name, row_number, "effective_from",
                                   f"overlaps another {policy.pack} {policy.code_family} row")
        policies.append(policy)
    return tuple(policies)


@cache
def payer_policies() -> tuple[PayerPolicy, ...]:
    """The payer policy table shipped in ``mappings/`` with the local rows of ``policy_dir``, loaded once."""
    return with_local_rows(load_payer_policies(), "payer_policies.csv", load_payer_policies, merged_by_period,
                           lambda row: (row.pack, row.code_family))


def policy_on(pack: str, code_family: str, day: dt.date,
              table: tuple[PayerPolicy, ...] | None = None) -> PayerPolicy | None:
    """The row of ``pack`` for ``code_family`` in force on ``day``, or None when the pack says nothing then."""
    for policy in payer_policies() if table is None else table:
        if policy.pack == pack and policy.code_family == code_family and policy.period.covers(day):
            return policy
    return None
