"""CPT codes Needlecheck reasons about, with the dates they are valid for and where that is written."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from needlecheck.mappings.errors import MappingError
from needlecheck.mappings.tables import DATA_DIR, parse_choice, parse_date, read_table

CPT_FILE = DATA_DIR / "cpt_codes.csv"
CPT_SYSTEM = "http://www.ama-assn.org/go/cpt"

DRY_NEEDLING = "dry-needling"
TRIGGER_POINT_INJECTION = "trigger-point-injection"
ACUPUNCTURE = "acupuncture"
UNLISTED_MUSCULOSKELETAL = "unlisted-musculoskeletal"
TENDON_INJECTION = "tendon-injection"
MANUAL_THERAPY = "manual-therapy"
ELECTRICAL_STIMULATION = "electrical-stimulation"
EVALUATION_MANAGEMENT = "evaluation-management"
MANIPULATION = "manipulation"
_FAMILIES = frozenset({DRY_NEEDLING, TRIGGER_POINT_INJECTION, ACUPUNCTURE, UNLISTED_MUSCULOSKELETAL, TENDON_INJECTION,
                       MANUAL_THERAPY, ELECTRICAL_STIMULATION, EVALUATION_MANAGEMENT, MANIPULATION})


@dataclass(frozen=True)
class CptCode:
    """One row of ``cpt_codes.csv``."""

    code: str
    family: str
    muscles_min: int | None
    muscles_max: int | None
    effective_from: dt.date | None
    effective_to: dt.date | None
    meaning: str
    source_title: str
    source_url: str

    def valid_on(self, day: dt.date) -> bool:
        """Whether the code can be reported for a service on ``day``."""
        if self.effective_from and day < self.effective_from:
            return False
        return not (self.effective_to and day > self.effective_to)

    def fits_muscle_count(self, muscle_count: int) -> bool:
        """Whether the code's descriptor covers this many muscles."""
        if self.muscles_min is not None and muscle_count < self.muscles_min:
            return False
        return not (self.muscles_max is not None and muscle_count > self.muscles_max)


def _optional_int(path: Path, row_number: int, field: str, value: str) -> int | None:
    if not value:
        return None
    if not value.isdigit():
        raise MappingError(path.name, row_number, field, f"'{value}' is not a whole number")
    return int(value)


def load_cpt_codes(path: Path = CPT_FILE) -> dict[str, CptCode]:
    """Read and validate the CPT table."""
    codes: dict[str, CptCode] = {}
    required = ("code", "family", "meaning", "source_title", "source_url", "confidence")
    for row_number, row in read_table(path, required):
        if row["code"] in codes:
            raise MappingError(path.name, row_number, "code", f"{row['code']} appears twice")
        if not row["source_url"].startswith("https://"):
            raise MappingError(path.name, row_number, "source_url", "must be an https URL")
        effective_from = parse_date(path, row_number, "effective_from", row["effective_from"])
        effective_to = parse_date(path, row_number, "effective_to", row["effective_to"])
        if effective_from and effective_to and effective_to < effective_from:
            raise MappingError(path.name, row_number, "effective_to", "ends before effective_from")
        codes[row["code"]] = CptCode(
            code=row["code"],
            family=parse_choice(path, row_number, "family", row["family"], _FAMILIES),
            muscles_min=_optional_int(path, row_number, "muscles_min", row["muscles_min"]),
            muscles_max=_optional_int(path, row_number, "muscles_max", row["muscles_max"]),
            effective_from=effective_from,
            effective_to=effective_to,
            meaning=row["meaning"],
            source_title=row["source_title"],
            source_url=row["source_url"],
        )
    return codes


@cache
def cpt_codes() -> dict[str, CptCode]:
    """The CPT table shipped in ``mappings/``, loaded once per process."""
    return load_cpt_codes()


@cache
def codes_in_family(family: str) -> tuple[str, ...]:
    """The codes of one family, e.g. the dry-needling codes, in table order."""
    return tuple(code for code, row in cpt_codes().items() if row.family == family)


def is_dry_needling_code(code: str) -> bool:
    """Whether ``code`` is CPT 20560 or 20561 (the dry-needling family of the table)."""
    row = cpt_codes().get(code)
    return row is not None and row.family == DRY_NEEDLING


def dry_needling_code_for(muscle_count: int, day: dt.date) -> str | None:
    """The dry-needling code whose descriptor covers ``muscle_count`` muscles on ``day``."""
    for code in codes_in_family(DRY_NEEDLING):
        row = cpt_codes()[code]
        if row.valid_on(day) and row.fits_muscle_count(muscle_count):
            return code
    return None
