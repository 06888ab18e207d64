"""What a dry-needling line is worth, as far as the sources give it: the payment figures of the scan report.

One row of ``payment_figures.csv`` is one published figure for one code, setting and fee-schedule year, with
the source that gives it. Every figure is an **estimate** of what a denied line would have paid: a national
Medicare Physician Fee Schedule amount read from a secondary copy of the CMS files, not adjusted for locality
and not what a commercial payer pays. Years the sources do not cover (CY2021 to CY2024, 20561 in CY2025)
have no row, so a line of such a year has no estimate rather than a guessed one.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path

from needlecheck.mappings.cpt import cpt_codes
from needlecheck.mappings.errors import MappingError
from needlecheck.mappings.provenance import parse_confidence, parse_source_ids
from needlecheck.mappings.sources import PolicySource, policy_source
from needlecheck.mappings.tables import DATA_DIR, EffectivePeriod, parse_choice, parse_period, read_table

PAYMENT_FIGURES_FILE = DATA_DIR / "payment_figures.csv"
NON_FACILITY = "non-facility"
SETTINGS = frozenset({NON_FACILITY, "facility"})
ESTIMATE = "estimate"


@dataclass(frozen=True)
class PaymentFigure:
    """One row of ``payment_figures.csv``."""

    code: str
    setting: str
    amount: Decimal
    fee_year: int
    period: EffectivePeriod
    basis: str
    kind: str
    source_id: str
    confidence: str

    @property
    def source(self) -> PolicySource:
        """The document that gives the figure."""
        return policy_source(self.source_id)


def _amount(path: Path, row_number: int, value: str) -> Decimal:
    try:
        amount = Decimal(value)
    except InvalidOperation as error:
        raise MappingError(path.name, row_number, "amount_usd", f"'{value}' is not a number") from error
    if not amount.is_finite() or amount <= 0:
        raise MappingError(path.name, row_number, "amount_usd", f"'{value}' is not a positive amount")
    return amount


def _fee_year(path: Path, row_number: int, value: str, period: EffectivePeriod) -> int:
    if not (value.isdigit() and len(value) == 4):
        raise MappingError(path.name, row_number, "fee_year", f"'{value}' is not a year")
    year = int(value)
    # A fee schedule year is a calendar year: a figure must not be applied outside the year it was published for.
    if period.effective_from is None or period.effective_to is None:
        raise MappingError(path.name, row_number, "effective_to", "a fee-schedule figure needs both effective dates")
    if period.effective_from.year != year or period.effective_to.year != year:
        raise MappingError(path.name, row_number, "effective_from", f"the effective dates lie outside {year}")
    return year


def load_payment_figures(path: Path = PAYMENT_FIGURES_FILE) -> tuple[PaymentFigure, ...]:
    """Read and validate the table: known codes, positive amounts, one figure per code, setting and date."""
    required = ("code", "setting", "amount_usd", "fee_year", "effective_from", "effective_to", "basis", "kind",
                "source_id", "confidence")
    figures: list[PaymentFigure] = []
    for row_number, row in read_table(path, required):
        if row["code"] not in cpt_codes():
            raise MappingError(path.name, row_number, "code", f"'{row['code']}' is not in cpt_codes.csv")
        period = parse_period(path, row_number, row)
        source_ids = parse_source_ids(path, row_number, "source_id", row["source_id"])
        if len(source_ids) != 1:
            raise MappingError(path.name, row_number, "source_id", "a figure comes from exactly one source")
        figure = PaymentFigure(
            code=row["code"],
            setting=parse_choice(path, row_number, "setting", row["setting"], SETTINGS),
            amount=_amount(path, row_number, row["amount_usd"]),
            fee_year=_fee_year(path, row_number, row["fee_year"], period),
            period=period,
            basis=row["basis"],
            kind=parse_choice(path, row_number, "kind", row["kind"], frozenset({ESTIMATE})),
            source_id=source_ids[0],
            confidence=parse_confidence(path, row_number, row["confidence"]),
        )
        for other in figures:
            if (other.code, other.setting) == (figure.code, figure.setting) and _overlap(other.period, period):
                raise MappingError(path.name, row_number, "effective_from",
                                   f"overlaps another {figure.code} {figure.setting} figure")
        figures.append(figure)
    return tuple(figures)


def _overlap(first: EffectivePeriod, second: EffectivePeriod) -> bool:
    assert first.effective_from and first.effective_to and second.effective_from and second.effective_to
    return first.effective_from <= second.effective_to and second.effective_from <= first.effective_to


@cache
def payment_figures() -> tuple[PaymentFigure, ...]:
    """The shipped table, loaded once per process."""
    return load_payment_figures()


def payment_figure_for(code: str, day: dt.date, setting: str = NON_FACILITY) -> PaymentFigure | None:
    """The figure for ``code`` in the fee-schedule year of ``day``, or None where the sources give none."""
    return next((f for f in payment_figures() if f.code == code and f.setting == setting and f.period.covers(day)),
                None)
