"""Loaders of mappings/: the shipped data loads, and malformed rows are refused with file, row and field."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from needlecheck.mappings.cpt import dry_needling_code_for, load_cpt_codes
from needlecheck.mappings.errors import MappingError
from needlecheck.mappings.muscles import ConceptKind, load_laterality_qualifiers, load_muscle_concepts, muscle_catalog
from needlecheck.mappings.sources import load_policy_sources, load_source_directory, policy_sources

MUSCLE_HEADER = "sctid,name_as_found,name_type,canonical_muscle,kind,laterality,source,verified,confidence,notes\n"
CPT_HEADER = (
    "code,family,muscles_min,muscles_max,effective_from,effective_to,meaning,source_title,source_url,confidence\n"
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_muscle_table_keeps_source_and_confidence() -> None:
    catalog = muscle_catalog()
    assert len(catalog.concepts) == 145
    trapezius = catalog.concept("31764008")
    assert trapezius is not None and trapezius.confidence == "high" and "pydicom" in trapezius.source
    assert catalog.concept("44947003").kind is ConceptKind.GROUP  # type: ignore[union-attr]


@pytest.mark.parametrize(("row", "field"), [
    ("abc,X,FSN,x,muscle,unspecified,src,yes,high,\n", "sctid"),
    ("1,X,FSN,x,blob,unspecified,src,yes,high,\n", "kind"),
    ("1,X,FSN,x,muscle,up,src,yes,high,\n", "laterality"),
    ("1,X,FSN,x,lateralized,unspecified,src,yes,high,\n", "laterality"),
    ("1,X,FSN,x,muscle,unspecified,,yes,high,\n", "source"),
    ("1,X,FSN,x,muscle,unspecified,src,yes,sure,\n", "confidence"),
])
def test_malformed_muscle_rows_name_file_row_and_field(tmp_path: Path, row: str, field: str) -> None:
    path = write(tmp_path, "muscles.csv", MUSCLE_HEADER + "2,Y,FSN,y,muscle,unspecified,src,yes,high,\n" + row)
    with pytest.raises(MappingError) as raised:
        load_muscle_concepts(path)
    assert (raised.value.file, raised.value.row, raised.value.field) == ("muscles.csv", 3, field)


def test_duplicate_concepts_and_missing_columns(tmp_path: Path) -> None:
    row = "1,X,FSN,x,muscle,unspecified,src,yes,high,\n"
    with pytest.raises(MappingError, match="appears twice"):
        load_muscle_concepts(write(tmp_path, "m.csv", MUSCLE_HEADER + row + row))
    with pytest.raises(MappingError, match="column is missing"):
        load_muscle_concepts(write(tmp_path, "n.csv", "sctid,kind\n1,muscle\n"))
    with pytest.raises(MappingError, match="side"):
        load_laterality_qualifiers(write(tmp_path, "l.csv", "sctid,name_as_found,side,source,confidence\n1,x,up,s,h\n"))


def test_cpt_codes_follow_their_effective_dates() -> None:
    assert dry_needling_code_for(2, dt.date(2020, 1, 1)) == "20560"
    assert dry_needling_code_for(7, dt.date(2026, 1, 1)) == "20561"
    assert dry_needling_code_for(2, dt.date(2019, 12, 31)) is None


@pytest.mark.parametrize(("row", "field"), [
    ("20560,dry-needling,1,2,2020-13-01,,m,t,https://a.org,high\n", "effective_from"),
    ("20560,dry-needling,1,2,2020-01-01,2019-01-01,m,t,https://a.org,high\n", "effective_to"),
    ("20560,dry-needling,one,2,2020-01-01,,m,t,https://a.org,high\n", "muscles_min"),
    ("20560,needling,1,2,2020-01-01,,m,t,https://a.org,high\n", "family"),
    ("20560,dry-needling,1,2,2020-01-01,,m,t,ftp://a.org,high\n", "source_url"),
])
def test_malformed_cpt_rows(tmp_path: Path, row: str, field: str) -> None:
    with pytest.raises(MappingError) as raised:
        load_cpt_codes(write(tmp_path, "cpt.csv", CPT_HEADER + row))
    assert (raised.value.row, raised.value.field) == (2, field)


def test_policy_sources_need_title_url_and_statement(tmp_path: Path) -> None:
    assert policy_sources()["CS-01"].url.startswith("https://")
    path = write(tmp_path, "s.yaml", "CS-01:\n  title: t\n  url: http://x\n  statement: s\n  confidence: high\n")
    with pytest.raises(MappingError, match=r"CS-01\.url"):
        load_policy_sources(path)
    with pytest.raises(MappingError, match=r"CS-02\.statement"):
        load_policy_sources(write(tmp_path, "t.yaml", "CS-02:\n  title: t\n  url: https://x\n  confidence: high\n"))


def test_a_source_id_may_be_defined_in_one_file_only(tmp_path: Path) -> None:
    entry = "X-01:\n  title: t\n  url: https://x\n  statement: s\n  confidence: high\n"
    write(tmp_path, "a.yaml", entry)
    assert set(load_source_directory(tmp_path)) == {"X-01"}
    write(tmp_path, "b.yaml", entry)
    with pytest.raises(MappingError, match=r"b\.yaml.*X-01.*another sources file"):
        load_source_directory(tmp_path)


def test_the_verified_column_is_read_and_checked(tmp_path: Path) -> None:
    catalog = muscle_catalog()
    assert catalog.concept("31764008").verified  # type: ignore[union-attr]
    assert not catalog.concept("181700004").verified  # type: ignore[union-attr]
    assert sum(not c.verified and c.kind is ConceptKind.MUSCLE for c in catalog.concepts.values()) == 54
    path = write(tmp_path, "v.csv", MUSCLE_HEADER + "1,X,FSN,x,muscle,unspecified,src,maybe,high,\n")
    with pytest.raises(MappingError) as raised:
        load_muscle_concepts(path)
    assert raised.value.field == "verified"
