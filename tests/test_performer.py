"""plugin.performer: provider types from NUCC taxonomy and HL7 v2-0360 degree codes."""

from __future__ import annotations

from pathlib import Path

import pytest

from needlecheck.mappings.errors import MappingError
from needlecheck.mappings.provider_types import load_provider_types
from needlecheck.plugin.context import Performer, ServiceLine
from needlecheck.plugin.performer import ProviderType, provider_types
from needlecheck.plugin.terms import Coding

NUCC = "http://nucc.org/provider-taxonomy"
DEGREE = "http://terminology.hl7.org/CodeSystem/v2-0360"


def performed_by(*codings: Coding) -> ServiceLine:
    return ServiceLine("k", "order", "ServiceRequest/sr-1", "20560", None,
                       performers=(Performer("Practitioner/pr-1", codings),))


@pytest.mark.parametrize(("coding", "expected"), [
    (Coding(NUCC, "207Q00000X"), ProviderType.PHYSICIAN),
    (Coding(NUCC, "208D00000X"), ProviderType.PHYSICIAN),
    (Coding(NUCC, "2084P0800X"), ProviderType.PHYSICIAN),
    (Coding(NUCC, "363A00000X"), ProviderType.PHYSICIAN_ASSISTANT),
    (Coding(NUCC, "363AM0700X"), ProviderType.PHYSICIAN_ASSISTANT),
    (Coding(NUCC, "363LF0000X"), ProviderType.NURSE_PRACTITIONER),
    (Coding(NUCC, "364S00000X"), ProviderType.CLINICAL_NURSE_SPECIALIST),
    (Coding(NUCC, "225100000X"), ProviderType.PHYSICAL_THERAPIST),
    (Coding(NUCC, "2251X0800X"), ProviderType.PHYSICAL_THERAPIST),
    (Coding(NUCC, "225200000X"), ProviderType.PHYSICAL_THERAPIST_ASSISTANT),
    (Coding(NUCC, "111N00000X"), ProviderType.CHIROPRACTOR),
    (Coding(NUCC, "171100000X"), ProviderType.ACUPUNCTURIST),
    (Coding(DEGREE, "MD"), ProviderType.PHYSICIAN),
    (Coding(DEGREE + "|2.7", "DO"), ProviderType.PHYSICIAN),
    (Coding(DEGREE + "|2.7", "PA"), ProviderType.PHYSICIAN_ASSISTANT),
    (Coding(DEGREE, "NP"), ProviderType.NURSE_PRACTITIONER),
    (Coding(DEGREE, "CNS"), ProviderType.CLINICAL_NURSE_SPECIALIST),
])
def test_codes_give_provider_types(coding: Coding, expected: ProviderType) -> None:
    assert provider_types(performed_by(coding)) == {expected}


@pytest.mark.parametrize("coding", [
    Coding(NUCC, "225X00000X"),  # occupational therapist
    Coding(NUCC, "1711"),  # not a whole acupuncturist code
    Coding(DEGREE, "RN"),
    Coding("http://example.org/roles", "MD"),
    Coding(None, "207Q00000X"),
    Coding(NUCC, None),
])
def test_other_codes_give_nothing(coding: Coding) -> None:
    assert provider_types(performed_by(coding)) == frozenset()


def test_every_performer_and_code_counts() -> None:
    line = ServiceLine("k", "order", "ServiceRequest/sr-1", "20560", None, performers=(
        Performer("PractitionerRole/r1", (Coding(NUCC, "225100000X"),)),
        Performer("Practitioner/p2", (Coding(DEGREE, "MD"), Coding(NUCC, "171100000X"))),
    ))
    assert provider_types(line) == {ProviderType.PHYSICAL_THERAPIST, ProviderType.PHYSICIAN,
                                    ProviderType.ACUPUNCTURIST}
    assert provider_types(ServiceLine("k", "order", "ServiceRequest/sr-1", "20560", None)) == frozenset()


HEADER = "system,code,match,provider_type,meaning,source_title,source_url,confidence\n"


@pytest.mark.parametrize(("row", "field"), [
    (f"{NUCC},20,fuzzy,physician,m,t,https://e.org,high\n", "match"),
    (f"{NUCC},20,prefix,doctor,m,t,https://e.org,high\n", "provider_type"),
    (f"{NUCC},20,prefix,physician,m,t,http://e.org,high\n", "source_url"),
    (f"{NUCC},363A,prefix,physician,m,t,https://e.org,high\n", "code"),
    (f"{NUCC},,prefix,physician,m,t,https://e.org,high\n", "code"),
])
def test_malformed_provider_type_rows(tmp_path: Path, row: str, field: str) -> None:
    path = tmp_path / "types.csv"
    path.write_text(HEADER + f"{NUCC},363A,prefix,physician-assistant,m,t,https://e.org,high\n" + row,
                    encoding="utf-8")
    with pytest.raises(MappingError) as raised:
        load_provider_types(path)
    assert (raised.value.file, raised.value.row, raised.value.field) == ("types.csv", 3, field)
