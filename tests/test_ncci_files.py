"""Loaders for CMS's NCCI practitioner PTP and MUE files: the sample layouts, and malformed rows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from needlecheck.mappings.errors import MappingError
from needlecheck.mappings.ncci_mue import load_mue_tables
from needlecheck.mappings.ncci_ptp import load_ptp_edits

SAMPLES = Path(__file__).resolve().parent / "data"
PTP_HEADER = ("Column 1\tColumn 2\t*=in existence prior to 1996\tEffective Date\tDeletion Date *=no data\t"
              "Modifier 0=not allowed 1=allowed 9=not applicable\tPTP Edit Rationale\n")
MUE_HEADER = '"HCPCS/CPT Code","Practitioner Services MUE Values","MUE Adjudication Indicator","MUE Rationale"\n'


def test_the_ptp_sample_keeps_pairs_of_known_codes_with_their_dates() -> None:
    edits = load_ptp_edits(sorted((SAMPLES / "ncci-ptp-practitioner").iterdir()))
    [deleted] = edits.by_pair[("20560", "97810")]
    assert deleted.deleted == dt.date(2023, 12, 31) and deleted.modifier_indicator == "0"
    assert edits.edit_between("97140", "20561", dt.date(2022, 4, 1)) is not None
    assert ("11111", "22222") not in edits.by_pair


def test_the_mue_sample_reads_the_wrapped_header_and_the_date_in_the_name() -> None:
    tables = load_mue_tables(sorted((SAMPLES / "ncci-mue-practitioner").iterdir()))
    [table] = tables.tables
    assert table.effective == dt.date(2026, 1, 1)
    assert table.values["20560"].max_units == 1 and table.values["20560"].adjudication_indicator == "2"


def test_a_later_mue_table_takes_over_from_its_date(tmp_path: Path) -> None:
    for name, value in (("MCR_MUE_PractitionerServices_Eff_01-01-2026.csv", 1),
                        ("MCR_MUE_PractitionerServices_Eff_04-01-2026.csv", 2)):
        (tmp_path / name).write_text(MUE_HEADER + f'20560,{value},"3 Date of Service Edit: Clinical",test\n')
    tables = load_mue_tables(sorted(tmp_path.iterdir()))
    march_31 = tables.value_on("20560", dt.date(2026, 3, 31))
    april_1 = tables.value_on("20560", dt.date(2026, 4, 1))
    assert (march_31.max_units if march_31 else None, april_1.max_units if april_1 else None) == (1, 2)


@pytest.mark.parametrize(("row", "field"), [
    ("20560\t97140\t\t2020-13-01\t*\t0\tx", "Effective Date"),
    ("20560\t97140\t\t20200101\tsoon\t0\tx", "Deletion Date"),
    ("20560\t97140\t\t20200101\t*\t2\tx", "Modifier"),
    ("2056\t97140\t\t20200101\t*\t0\tx", "Column 1"),
    ("20560\t97140\tyes\t20200101\t*\t0\tx", "*=in existence prior to 1996"),
    ("20560\t97140", "row"),
])
def test_malformed_ptp_rows_name_file_line_and_field(tmp_path: Path, row: str, field: str) -> None:
    path = tmp_path / "ccipra-test-f1.txt"
    path.write_text("FICTITIOUS\n" + PTP_HEADER + "20560\t20552\t\t20200101\t*\t1\tok\n" + row + "\n")
    with pytest.raises(MappingError) as raised:
        load_ptp_edits([path])
    assert (raised.value.file, raised.value.row, raised.value.field) == ("ccipra-test-f1.txt", 4, field)


def test_a_ptp_file_without_its_header_or_in_xlsx_form_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ccipra-test-f1.txt"
    path.write_text("20560\t20552\t\t20200101\t*\t1\tok\n")
    with pytest.raises(MappingError, match="no header row"):
        load_ptp_edits([path])
    workbook = tmp_path / "ccipra-test-f1.xlsx"
    workbook.write_bytes(b"PK")
    with pytest.raises(MappingError, match=r"save an \.xlsx as CSV"):
        load_ptp_edits([workbook])


@pytest.mark.parametrize(("row", "field"), [
    ('20560,one,"2 Date of Service Edit: Policy",x', "Practitioner Services MUE Values"),
    ('20560,1,"4 Something",x', "MUE Adjudication Indicator"),
    ('205601,1,"1 Line Edit",x', "HCPCS/CPT Code"),
    ('20552,1,"1 Line Edit",x', "HCPCS/CPT Code"),
])
def test_malformed_mue_rows_name_file_line_and_field(tmp_path: Path, row: str, field: str) -> None:
    path = tmp_path / "mue.csv"
    path.write_text('"FICTITIOUS",,,\n' + MUE_HEADER + '20552,1,"1 Line Edit",ok\n' + row + "\n")
    with pytest.raises(MappingError) as raised:
        load_mue_tables([path])
    assert (raised.value.file, raised.value.row, raised.value.field) == ("mue.csv", 4, field)


def test_an_mue_header_without_its_value_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "mue.csv"
    path.write_text('"HCPCS/CPT Code","MUE Adjudication Indicator","MUE Rationale"\n20560,"1 Line Edit",x\n')
    with pytest.raises(MappingError) as raised:
        load_mue_tables([path])
    assert raised.value.field == "practitioner services mue values"
