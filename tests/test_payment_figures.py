"""The payment figures of the scan report: the shipped table loads, and a bad row stops loading with its place."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from needlecheck.mappings.errors import MappingError
from needlecheck.mappings.payment_figures import PAYMENT_FIGURES_FILE, load_payment_figures, payment_figure_for

HEADER = PAYMENT_FIGURES_FILE.read_text(encoding="utf-8").splitlines()[0]
GOOD = '20560,non-facility,25.74,2020,2020-01-01,2020-12-31,"MPFS national non-facility",estimate,FE-01,medium-high'


def test_shipped_figures_are_the_sourced_ones() -> None:
    figure = payment_figure_for("20560", dt.date(2026, 3, 2))
    assert figure is not None
    assert (figure.amount, figure.fee_year, figure.kind, figure.source_id) == (Decimal("24.72"), 2026, "estimate",
                                                                             "FE-05")
    assert figure.source.url.startswith("https://")
    assert payment_figure_for("20561", dt.date(2020, 6, 1)).amount == Decimal("38.32")  # type: ignore[union-attr]
    assert payment_figure_for("20560", dt.date(2025, 6, 1), "facility").amount == Decimal("14.56")  # type: ignore[union-attr]


def test_years_the_sources_do_not_give_have_no_figure() -> None:
    assert payment_figure_for("20560", dt.date(2023, 5, 1)) is None
    assert payment_figure_for("20561", dt.date(2025, 5, 1)) is None


@pytest.mark.parametrize(("row", "field"), [
    (GOOD.replace("20560,", "2056X,", 1), "code"),
    (GOOD.replace("25.74", "-1"), "amount_usd"),
    (GOOD.replace("25.74", "lots"), "amount_usd"),
    (GOOD.replace(",2020,", ",2021,", 1), "effective_from"),
    (GOOD.replace("2020-12-31", ""), "effective_to"),
    (GOOD.replace("estimate", "exact"), "kind"),
    (GOOD.replace("FE-01", "FE-99"), "source_id"),
    (GOOD.replace("FE-01", "FE-01;FE-04"), "source_id"),
    (GOOD.replace("non-facility", "hospital"), "setting"),
])
def test_bad_row_names_file_row_and_field(tmp_path: Path, row: str, field: str) -> None:
    path = tmp_path / "payment_figures.csv"
    path.write_text(f"{HEADER}\n{row}\n", encoding="utf-8")
    with pytest.raises(MappingError) as raised:
        load_payment_figures(path)
    assert (raised.value.file, raised.value.row, raised.value.field) == ("payment_figures.csv", 2, field)


def test_overlapping_figures_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "payment_figures.csv"
    path.write_text(f"{HEADER}\n{GOOD}\n{GOOD.replace('25.74', '26.00')}\n", encoding="utf-8")
    with pytest.raises(MappingError, match="overlaps"):
        load_payment_figures(path)
