"""The Medicare Physician Fee Schedule payment-policy indicators of the dry-needling codes, as sourced.

One row of ``mpfs_indicators.csv`` is the indicator block of one code as one fee-schedule year's source gives
it: status, global days, and the modifier indicators (multiple procedure 51, bilateral surgery 50, assistant
surgeon, co-surgeons, team surgery), PC/TC, physician supervision and type of service. The values are those
of CMS's relative value file, read on a secondary page (source FE-06, medium confidence).

Decisions: a row is in force from the start of the fee-schedule year it was read for and stays in force until a
newer row of the code starts (the last indicators we have a source for; a date before the first row has none,
and the rules then fall back to what they say without an indicator). 20561 has no row: the source gives only
20560's block, and a value by analogy would be a guess.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from needlecheck.mappings.cpt import cpt_codes
from needlecheck.mappings.errors import MappingError
from needlecheck.mappings.provenance import parse_confidence, parse_source_ids
from needlecheck.mappings.sources import PolicySource, policy_source
from needlecheck.mappings.tables import DATA_DIR, EffectivePeriod, parse_choice, parse_period, read_table

MPFS_INDICATORS_FILE = DATA_DIR / "mpfs_indicators.csv"
NO_GLOBAL_PERIOD = "XXX"  # "the global concept does not apply"
NO_BILATERAL_ADJUSTMENT = "0"  # "150% payment adjustment for bilateral procedures does not apply"

# The values CMS's relative value file documents for each column.
_STATUSES = frozenset("ABCDEFGHIJMNPRTX")
_GLOBAL_DAYS = frozenset({"000", "010", "090", "MMM", "XXX", "YYY", "ZZZ"})
_MULTIPLE_PROCEDURE = frozenset("01234579")
_BILATERAL = frozenset("01239")
_SURGEON_INDICATORS = frozenset("0129")
_PC_TC = frozenset("0123456789")
_SUPERVISION = frozenset({"01", "02", "03", "04", "05", "06", "09", "21", "22", "66", "6A", "77", "7A"})


@dataclass(frozen=True)
class MpfsIndicators:
    """One row of ``mpfs_indicators.csv``."""

    code: str
    fee_year: int
    period: EffectivePeriod
    status: str
    global_days: str
    multiple_procedure: str
    bilateral_surgery: str
    assistant_surgeon: str
    co_surgeons: str
    team_surgery: str
    pc_tc: str
    physician_supervision: str
    type_of_service: str
    source_id: str
    confidence: str

    @property
    def source(self) -> PolicySource:
        """The document that gives the indicators."""
        return policy_source(self.source_id)

    @property
    def has_global_period(self) -> bool:
        """False for XXX: no global-surgery package, so a same-day E/M follows the ordinary modifier-25 rule."""
        return self.global_days != NO_GLOBAL_PERIOD

    @property
    def bilateral_adjustment(self) -> bool:
        """False for indicator 0: modifier 50 (or RT and LT lines) never doubles the service."""
        return self.bilateral_surgery != NO_BILATERAL_ADJUSTMENT


def _fee_year(path: Path, row_number: int, value: str, period: EffectivePeriod) -> int:
    if not (value.isdigit() and len(value) == 4):
        raise MappingError(path.name, row_number, "fee_year", f"'{value}' is not a year")
    if period.effective_from is None or period.effective_from != dt.date(int(value), 1, 1):
        raise MappingError(path.name, row_number, "effective_from", f"must be the first day of fee year {value}")
    return int(value)


def load_mpfs_indicators(path: Path = MPFS_INDICATORS_FILE) -> tuple[MpfsIndicators, ...]:
    """Read and validate the table: known codes, CMS's values for each indicator, one row per code and date."""
    columns = {
        "status": _STATUSES, "global_days": _GLOBAL_DAYS, "multiple_procedure": _MULTIPLE_PROCEDURE,
        "bilateral_surgery": _BILATERAL, "assistant_surgeon": _SURGEON_INDICATORS,
        "co_surgeons": _SURGEON_INDICATORS, "team_surgery": _SURGEON_INDICATORS, "pc_tc": _PC_TC,
        "physician_supervision": _SUPERVISION,
    }
    required = ("code", "fee_year", "effective_from", *columns, "type_of_service", "source_id", "confidence")
    rows: list[MpfsIndicators] = []
    for row_number, row in read_table(path, required):
        if row["code"] not in cpt_codes():
            raise MappingError(path.name, row_number, "code", f"'{row['code']}' is not in cpt_codes.csv")
        period = parse_period(path, row_number, row)
        source_ids = parse_source_ids(path, row_number, "source_id", row["source_id"])
        if len(source_ids) != 1:
            raise MappingError(path.name, row_number, "source_id", "an indicator block comes from exactly one source")
        if not (len(row["type_of_service"]) == 1 and row["type_of_service"].isalnum()):
            raise MappingError(path.name, row_number, "type_of_service", f"'{row['type_of_service']}' is not one "
                                                                         "character")
        values = {column: parse_choice(path, row_number, column, row[column], choices)
                  for column, choices in columns.items()}
        indicators = MpfsIndicators(code=row["code"], fee_year=_fee_year(path, row_number, row["fee_year"], period),
                                    period=period, type_of_service=row["type_of_service"], source_id=source_ids[0],
                                    confidence=parse_confidence(path, row_number, row["confidence"]), **values)
        if any(other.code == indicators.code and other.period.effective_from == period.effective_from
               for other in rows):
            raise MappingError(path.name, row_number, "effective_from", f"a second {indicators.code} row starts then")
        rows.append(indicators)
    return tuple(sorted(rows, key=lambda item: (item.code, item.period.effective_from or dt.date.min)))


@cache
def mpfs_indicators() -> tuple[MpfsIndicators, ...]:
    """The shipped table, loaded once per process."""
    return load_mpfs_indicators()


def mpfs_indicators_for(code: str, day: dt.date) -> MpfsIndicators | None:
    """The indicators of ``code`` in force on ``day``: the latest row started by then, unless it has ended."""
    started = [row for row in mpfs_indicators() if row.code == code and row.period.covers(day)]
    return started[-1] if started else None
