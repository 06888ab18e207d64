"""Loaders of the code-pair, substitute-code and NCCI-modifier tables: the shipped files and malformed rows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from needlecheck.mappings.code_pairs import SAME_MUSCLE, code_pairs, load_code_pairs
from needlecheck.mappings.dry_needling_substitutes import load_substitutes, substitute_for
from needlecheck.mappings.errors import MappingError
from needlecheck.mappings.ncci_ptp import load_ncci_modifiers, ncci_modifiers

PAIRS_HEADER = ("pair_id,first,second,scope,required_modifier,modifier_on,severity,source_id,"
                "effective_from,effective_to,confidence\n")
GOOD_PAIR = "p1,family:dry-needling,97810,same-date,,,warning,NC-03,,,low\n"


def test_the_shipped_tables_load() -> None:
    pairs = code_pairs()
    assert pairs["tpi-same-muscle"].scope == SAME_MUSCLE and pairs["tpi-same-muscle"].second == {"20552", "20553"}
    assert pairs["em-without-25"].required_modifier == "25" and "99213" in pairs["em-without-25"].second
    assert substitute_for("97140", dt.date(2020, 1, 1)) and substitute_for("97140", dt.date(2019, 12, 31)) is None
    assert {"59", "XS", "25", "RT"} <= ncci_modifiers()


def test_a_pair_row_is_in_force_between_its_dates(tmp_path: Path) -> None:
    path = tmp_path / "code_pairs.csv"
    path.write_text(PAIRS_HEADER + "p1,family:dry-needling,97810,same-date,,,warning,NC-03,2024-01-01,2024-12-31,low\n")
    period = load_code_pairs(path)["p1"].period
    assert [period.covers(dt.date(*day)) for day in ((2023, 12, 31), (2024, 1, 1), (2024, 12, 31), (2025, 1, 1))] == [
        False, True, True, False]


@pytest.mark.parametrize(("row", "field"), [
    ("p2,family:no-such-family,97810,same-date,,,warning,NC-03,,,low", "first"),
    ("p2,20560,99999,same-date,,,warning,NC-03,,,low", "second"),
    ("p2,20560,97810,same-week,,,warning,NC-03,,,low", "scope"),
    ("p2,20560,97810,same-date,25,,warning,NC-03,,,low", "modifier_on"),
    ("p2,20560,97810,same-date,,,error,NC-03,,,low", "severity"),
    ("p2,20560,97810,same-date,,,warning,NC-99,,,low", "source_id"),
    ("p2,20560,97810,same-date,,,warning,NC-03,2024-02-30,,low", "effective_from"),
    ("p2,20560,97810,same-date,,,warning,NC-03,,,sure", "confidence"),
    ("p1,20560,97810,same-date,,,warning,NC-03,,,low", "pair_id"),
])
def test_malformed_pair_rows_name_file_row_and_field(tmp_path: Path, row: str, field: str) -> None:
    path = tmp_path / "code_pairs.csv"
    path.write_text(PAIRS_HEADER + GOOD_PAIR + row + "\n")
    with pytest.raises(MappingError) as raised:
        load_code_pairs(path)
    assert (raised.value.file, raised.value.row, raised.value.field) == ("code_pairs.csv", 3, field)


def test_malformed_substitute_and_modifier_rows(tmp_path: Path) -> None:
    substitutes = tmp_path / "dry_needling_substitutes.csv"
    substitutes.write_text("codes,effective_from,effective_to,source_id,confidence\n"
                           "97140,2020-01-01,,CS-02,high\nfamily:manual-therapy,2020-01-01,,CS-02,high\n")
    with pytest.raises(MappingError) as raised:
        load_substitutes(substitutes)
    assert (raised.value.row, raised.value.field) == (3, "codes")
    modifiers = tmp_path / "ncci_modifiers.csv"
    modifiers.write_text("modifier,kind,source_id,confidence\nXS,distinct-service,NC-01,high\nXU,magic,NC-01,high\n")
    with pytest.raises(MappingError) as raised:
        load_ncci_modifiers(modifiers)
    assert (raised.value.row, raised.value.field) == (3, "kind")
