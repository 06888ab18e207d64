"""plugin.payer: payer class from the SOPT code, pack from the payer directory, and the loaders behind them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from needlecheck.mappings.errors import MappingError
from needlecheck.mappings.payers import (
    load_claim_filing_indicators,
    load_payer_classes,
    load_payer_directory,
    payer_class_of_sopt,
)
from needlecheck.plugin.context import BillingContext, CoverageFacts
from needlecheck.plugin.payer import Payer, PayerClass, payer_of
from needlecheck.plugin.terms import Coding

SOPT = "urn:oid:2.16.840.1.113883.3.221.5"


def with_coverage(*sopt: str, names: tuple[str, ...] = (), system: str = SOPT,
                  identifiers: tuple[tuple[str | None, str], ...] = ()) -> BillingContext:
    coverage = CoverageFacts("Coverage/cov-1", tuple(Coding(system, code) for code in sopt), identifiers, names)
    return BillingContext("claim-create", "p1", (), dt.date(2026, 3, 2), coverage=coverage)


def test_no_coverage_is_an_unknown_payer() -> None:
    context = BillingContext("claim-create", "p1", (), dt.date(2026, 3, 2))
    assert payer_of(context) == Payer(PayerClass.UNKNOWN, None, None)


@pytest.mark.parametrize(("code", "expected"), [
    ("1", PayerClass.MEDICARE_FFS), ("12", PayerClass.MEDICARE_FFS), ("121", PayerClass.MEDICARE_FFS),
    ("11", PayerClass.MEDICARE_ADVANTAGE), ("111", PayerClass.MEDICARE_ADVANTAGE),
    ("119", PayerClass.MEDICARE_ADVANTAGE), ("2", PayerClass.MEDICAID), ("213", PayerClass.MEDICAID),
    ("311", PayerClass.TRICARE), ("3111", PayerClass.TRICARE), ("32", PayerClass.OTHER),
    ("5", PayerClass.COMMERCIAL), ("512", PayerClass.COMMERCIAL), ("95", PayerClass.WORKERS_COMP),
    ("951", PayerClass.WORKERS_COMP), ("9", PayerClass.OTHER), ("9999", PayerClass.UNKNOWN),
])
def test_sopt_code_gives_the_class_longest_prefix_first(code: str, expected: PayerClass) -> None:
    assert payer_of(with_coverage(code)).payer_class is expected


def test_medicare_classes_get_their_packs_without_a_directory_match() -> None:
    assert payer_of(with_coverage("121")).pack == "medicare-ffs"
    assert payer_of(with_coverage("112")).pack == "medicare-advantage"
    assert payer_of(with_coverage("5", names=("Acme Health Plan",))) == Payer(PayerClass.COMMERCIAL, None,
                                                                              "Acme Health Plan")


def test_the_thos_sopt_uri_counts_too_and_other_systems_do_not() -> None:
    assert payer_of(with_coverage("121", system="https://nahdo.org/sopt")).payer_class is PayerClass.MEDICARE_FFS
    assert payer_of(with_coverage("121", system="http://example.org/plans")).payer_class is PayerClass.UNKNOWN


@pytest.mark.parametrize(("name", "pack", "payer_class"), [
    ("Aetna Life Insurance Company", "aetna", PayerClass.COMMERCIAL),
    ("Anthem Blue Cross", "anthem-elevance", PayerClass.COMMERCIAL),
    ("Independence Blue Cross", "amerihealth-ibx", PayerClass.COMMERCIAL),
    ("AmeriHealth New Jersey", "amerihealth-ibx", PayerClass.COMMERCIAL),
    ("Florida Blue", "bcbsa-mp-740", PayerClass.COMMERCIAL),
    ("Blue Cross and Blue Shield of Florida", "bcbsa-mp-740", PayerClass.COMMERCIAL),
    # MP-740 is Florida Blue's policy: other Blue plans are commercial payers with no pack of their own.
    ("Blue Cross Blue Shield of Michigan", None, PayerClass.COMMERCIAL),
    ("Blue Cross and Blue Shield of Texas", None, PayerClass.COMMERCIAL),
    ("Wellmark Blue Cross Blue Shield", None, PayerClass.COMMERCIAL),
    ("EmblemHealth", "emblemhealth", PayerClass.COMMERCIAL),
    ("UnitedHealthcare", "uhc", PayerClass.COMMERCIAL),
    ("Cigna Health and Life", "cigna", PayerClass.COMMERCIAL),
    ("TRICARE East", "tricare", PayerClass.TRICARE),
    ("Washington State Department of Labor & Industries", "wa-lni", PayerClass.WORKERS_COMP),
    ("Humana Medicare Advantage", "medicare-advantage", PayerClass.MEDICARE_ADVANTAGE),
    ("Medicare", "medicare-ffs", PayerClass.MEDICARE_FFS),
])
def test_directory_names_decide_the_pack(name: str, pack: str | None, payer_class: PayerClass) -> None:
    payer = payer_of(with_coverage(names=(name,)))
    assert (payer.pack, payer.payer_class, payer.name) == (pack, payer_class, name)


def test_a_medicare_advantage_plan_of_a_commercial_brand_keeps_the_ncd_pack() -> None:
    assert payer_of(with_coverage("112", names=("Aetna Better Health",))).pack == "medicare-advantage"
    assert payer_of(with_coverage("5", names=("Aetna Better Health",))).pack == "aetna"


def test_amerihealth_caritas_is_not_the_independence_commercial_pack() -> None:
    assert payer_of(with_coverage("2", names=("AmeriHealth Caritas",))).pack is None


def test_unknown_names_without_a_code_stay_unknown() -> None:
    assert payer_of(with_coverage(names=("Acme",))) == Payer(PayerClass.UNKNOWN, None, "Acme")


CLASS_HEADER = "code_prefix,payer_class,meaning,source_title,source_url,confidence\n"
DIRECTORY_HEADER = ("pack,payer_class,match,identifier_system,pattern,applies_when,display_name,source_id,"
                    "source_title,source_url,confidence\n")


def write(tmp_path: Path, text: str, name: str = "table.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("row", "field"), [
    ("1x,medicare-ffs,m,t,https://example.org,high\n", "code_prefix"),
    ("2,medicare,m,t,https://example.org,high\n", "payer_class"),
    ("2,medicaid,m,t,http://example.org,high\n", "source_url"),
    ("2,medicaid,m,t,https://example.org,\n", "confidence"),
    ("1,medicaid,m,t,https://example.org,high\n", "code_prefix"),
])
def test_malformed_payer_class_rows(tmp_path: Path, row: str, field: str) -> None:
    path = write(tmp_path, CLASS_HEADER + "1,medicare-ffs,m,t,https://example.org,high\n" + row)
    with pytest.raises(MappingError) as raised:
        load_payer_classes(path)
    assert (raised.value.file, raised.value.row, raised.value.field) == ("table.csv", 3, field)


def test_longest_prefix_wins_in_any_table(tmp_path: Path) -> None:
    table = load_payer_classes(write(tmp_path, CLASS_HEADER + "3,other,m,t,https://e.org,high\n"
                                                "311,tricare,m,t,https://e.org,high\n"))
    assert payer_class_of_sopt("3112", table).payer_class == "tricare"  # type: ignore[union-attr]
    assert payer_class_of_sopt("32", table).payer_class == "other"  # type: ignore[union-attr]
    assert payer_class_of_sopt("5", table) is None


@pytest.mark.parametrize(("row", "field"), [
    ("p,commercial,phone,,x,,X,PY-01,t,https://e.org,high\n", "match"),
    ("p,commercial,name,,(unclosed,,X,PY-01,t,https://e.org,high\n", "pattern"),
    ("p,commercial,identifier,,12345,,X,PY-01,t,https://e.org,high\n", "identifier_system"),
    ("p,commercial,name,,x,medicare,X,PY-01,t,https://e.org,high\n", "applies_when"),
    ("p,private,name,,x,,X,PY-01,t,https://e.org,high\n", "payer_class"),
    ("p,commercial,name,,x,,X,PY-01,t,ftp://e.org,high\n", "source_url"),
    ("p,commercial,name,,x,,X,,t,https://e.org,high\n", "source_id"),
])
def test_malformed_directory_rows(tmp_path: Path, row: str, field: str) -> None:
    good = "p,commercial,name,,good,,X,PY-01,t,https://e.org,high\n"
    with pytest.raises(MappingError) as raised:
        load_payer_directory(write(tmp_path, DIRECTORY_HEADER + good + row, "directory.csv"))
    assert (raised.value.file, raised.value.row, raised.value.field) == ("directory.csv", 3, field)


def test_identifier_rows_match_system_and_value_exactly(tmp_path: Path) -> None:
    # Test-only identifier: the shipped directory carries no payer ids, none being sourced.
    [entry] = load_payer_directory(write(tmp_path, DIRECTORY_HEADER + (
        "test-pack,commercial,identifier,http://example.org/test-payer-ids,TEST-1,,Test payer,PY-14,t,"
        "https://e.org,high\n")))
    assert entry.matches((("http://example.org/test-payer-ids", "TEST-1"),), ())
    assert not entry.matches((("http://example.org/test-payer-ids", "TEST-10"),), ())
    assert not entry.matches((("http://example.org/other", "TEST-1"),), ("TEST-1",))


def test_directory_header_must_have_every_column(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="column is missing"):
        load_payer_directory(write(tmp_path, "pack,payer_class\np,commercial\n"))


X12_CFI = "https://codesystem.x12.org/005010/1032"


@pytest.mark.parametrize(("code", "expected"), [
    ("MA", PayerClass.MEDICARE_FFS), ("MB", PayerClass.MEDICARE_FFS), ("16", PayerClass.MEDICARE_ADVANTAGE),
    ("MC", PayerClass.MEDICAID), ("CH", PayerClass.TRICARE), ("WC", PayerClass.WORKERS_COMP),
    ("CI", PayerClass.COMMERCIAL), ("BL", PayerClass.COMMERCIAL), ("12", PayerClass.UNKNOWN),
])
def test_x12_claim_filing_indicators_give_the_class(code: str, expected: PayerClass) -> None:
    payer = payer_of(with_coverage(code, system=X12_CFI, names=("Acme Claims Services",)))
    assert payer.payer_class is expected
    if expected.value.startswith("medicare"):
        assert payer.pack == expected.value


@pytest.mark.parametrize(("name", "payer_class"), [
    ("Medicare Part B (Novitas Solutions)", PayerClass.MEDICARE_FFS),
    ("Novitas Solutions, Inc.", PayerClass.MEDICARE_FFS),
    ("First Coast Service Options", PayerClass.MEDICARE_FFS),
    ("Noridian Healthcare Solutions", PayerClass.MEDICARE_FFS),
    ("Palmetto GBA", PayerClass.MEDICARE_FFS),
    ("Original Medicare", PayerClass.MEDICARE_FFS),
    ("Medicare Part A and B", PayerClass.MEDICARE_FFS),
    ("Aetna Medicare Eagle PPO", PayerClass.MEDICARE_ADVANTAGE),
    ("UnitedHealthcare Medicare Advantage Choice", PayerClass.MEDICARE_ADVANTAGE),
    ("Blue Cross Medicare Advantage", PayerClass.MEDICARE_ADVANTAGE),
    ("Medicare (Humana Gold Plus)", PayerClass.MEDICARE_ADVANTAGE),
])
def test_medicare_names_are_recognised_before_the_carriers_commercial_pack(name: str,
                                                                          payer_class: PayerClass) -> None:
    payer = payer_of(with_coverage(names=(name,)))
    assert (payer.payer_class, payer.pack) == (payer_class, payer_class.value)


def test_a_medicare_plan_name_beats_a_commercial_type_code() -> None:
    assert payer_of(with_coverage("5", names=("Aetna Medicare Eagle PPO",))).payer_class is \
        PayerClass.MEDICARE_ADVANTAGE


@pytest.mark.parametrize("name", ["Aetna Medicare Supplement", "Medicare Part D Prescription Plan"])
def test_medigap_and_part_d_are_not_medicare_advantage(name: str) -> None:
    assert payer_of(with_coverage(names=(name,))).payer_class is not PayerClass.MEDICARE_ADVANTAGE


def test_a_part_b_plan_class_is_medicare_fee_for_service() -> None:
    coverage = CoverageFacts("Coverage/c", payor_names=("Acme Claims Services",), plan_names=("Part B",))
    context = BillingContext("claim-create", "p1", (), dt.date(2026, 3, 2), coverage=coverage)
    assert payer_of(context).payer_class is PayerClass.MEDICARE_FFS
    eagle = CoverageFacts("Coverage/c", payor_names=("Aetna",), plan_names=("Aetna Medicare Eagle PPO",))
    context = BillingContext("claim-create", "p1", (), dt.date(2026, 3, 2), coverage=eagle)
    assert payer_of(context).pack == "medicare-advantage"


def test_claim_filing_indicator_rows_are_checked(tmp_path: Path) -> None:
    header = "code,payer_class,meaning,source_id,confidence,notes\n"
    for row, field in (("M,medicare-ffs,x,X12-1032,medium,\n", "code"),
                       ("MB,medicare,x,X12-1032,medium,\n", "payer_class"),
                       ("MB,medicare-ffs,x,NOPE,medium,\n", "source_id")):
        with pytest.raises(MappingError) as raised:
            load_claim_filing_indicators(write(tmp_path, header + row))
        assert raised.value.field == field


def test_directory_rows_cite_known_sources(tmp_path: Path) -> None:
    row = "p,commercial,name,,x,,X,NOT-A-SOURCE,t,https://e.org,high\n"
    with pytest.raises(MappingError) as raised:
        load_payer_directory(write(tmp_path, DIRECTORY_HEADER + row))
    assert raised.value.field == "source_id"
