"""Loaders of payer_policies.csv and frequency_limits.csv: shipped data is consistent, bad rows are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from needlecheck.mappings.errors import MappingError
from needlecheck.mappings.frequency_limits import frequency_limits, load_frequency_limits
from needlecheck.mappings.payer_policies import load_payer_policies, payer_policies
from needlecheck.mappings.payers import payer_directory
from needlecheck.mappings.sources import policy_sources

POLICY_HEADER = ("pack,code_family,status,effective_from,effective_to,statement,source_id,source_title,source_url,"
                 "confidence\n")
LIMIT_HEADER = ("pack,limit_id,counted_families,window,window_days,sessions,extended_sessions,extension,"
                "effective_from,effective_to,statement,source_id,source_title,source_url,confidence\n")


def write(tmp_path: Path, text: str, name: str = "t.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_every_pack_with_data_is_reachable_and_sources_agree_with_the_catalog() -> None:
    packs = {entry.pack for entry in payer_directory()} | {"medicare-ffs", "medicare-advantage"}
    sources = policy_sources()
    for row in (*payer_policies(), *frequency_limits()):
        assert row.pack in packs, row
        if row.source_id in sources and row.source_id.startswith("PY-"):
            assert sources[row.source_id].url == row.source_url, row.source_id


@pytest.mark.parametrize(("row", "field"), [
    ("p,dry-needling,covered,2021-13-01,,s,PY-01,t,https://e.org,high\n", "effective_from"),
    ("p,dry-needling,covered,2021-02-01,2021-01-01,s,PY-01,t,https://e.org,high\n", "effective_to"),
    ("p,dry-needling,maybe,,,s,PY-01,t,https://e.org,high\n", "status"),
    ("p,massage,covered,,,s,PY-01,t,https://e.org,high\n", "code_family"),
    ("p,dry-needling,covered,,,s,PY-01,t,http://e.org,high\n", "source_url"),
    ("q,dry-needling,covered,2021-06-30,,s,PY-01,t,https://e.org,high\n", "effective_from"),
])
def test_malformed_policy_rows(tmp_path: Path, row: str, field: str) -> None:
    good = "q,dry-needling,covered,,2021-06-30,s,PY-01,t,https://e.org,high\n"
    with pytest.raises(MappingError) as raised:
        load_payer_policies(write(tmp_path, POLICY_HEADER + good + row, "policies.csv"))
    assert (raised.value.file, raised.value.row, raised.value.field) == ("policies.csv", 3, field)


def test_policy_rows_next_to_each_other_do_not_overlap(tmp_path: Path) -> None:
    rows = ("q,dry-needling,covered,,2021-06-30,s,PY-04,t,https://e.org,high\n"
            "q,dry-needling,investigational,2021-07-02,,s,PY-04,t,https://e.org,high\n")
    assert len(load_payer_policies(write(tmp_path, POLICY_HEADER + rows))) == 2


@pytest.mark.parametrize(("row", "field"), [
    ("p,b,dry-needling,weekly,,3,6,justification,,,s,PY-10,t,https://e.org,high\n", "window"),
    ("p,b,dry-needling,rolling-days,,3,6,justification,,,s,PY-10,t,https://e.org,high\n", "window_days"),
    ("p,b,dry-needling,per-patient,,x,6,justification,,,s,PY-10,t,https://e.org,high\n", "sessions"),
    ("p,b,dry-needling,per-patient,,6,3,justification,,,s,PY-10,t,https://e.org,high\n", "extended_sessions"),
    ("p,b,dry-needling,per-patient,,3,6,prayer,,,s,PY-10,t,https://e.org,high\n", "extension"),
    ("p,b,needling,per-patient,,3,6,justification,,,s,PY-10,t,https://e.org,high\n", "counted_families"),
    ("p,b,dry-needling,per-patient,,3,6,justification,2020-02-30,,s,PY-10,t,https://e.org,high\n",
     "effective_from"),
    ("p,a,dry-needling,per-patient,,3,6,justification,,,s,PY-10,t,https://e.org,high\n", "limit_id"),
    ("p,b,dry-needling,per-patient,,3,6,justification,,,s,PY-10,t,http://e.org,high\n", "source_url"),
])
def test_malformed_limit_rows(tmp_path: Path, row: str, field: str) -> None:
    good = "p,a,dry-needling|acupuncture,rolling-days,90,12,,kx-modifier,,,s,MC-03,t,https://e.org,high\n"
    with pytest.raises(MappingError) as raised:
        load_frequency_limits(write(tmp_path, LIMIT_HEADER + good + row, "limits.csv"))
    assert (raised.value.file, raised.value.row, raised.value.field) == ("limits.csv", 3, field)


def test_the_ncd_year_cites_where_its_11_full_months_are_defined(tmp_path: Path) -> None:
    ncd_years = [limit for limit in frequency_limits() if limit.window == "ncd-year"]
    assert ncd_years and all(limit.window_source_id == "MC-05" for limit in ncd_years)
    assert "11 full months" in policy_sources()["MC-05"].statement
    header = LIMIT_HEADER.replace("source_id,source_title", "window_source_id,source_id,source_title")
    row = "p,y,dry-needling,ncd-year,,12,20,kx-modifier,,,s,,MC-03,t,https://e.org,high\n"
    with pytest.raises(MappingError) as raised:
        load_frequency_limits(write(tmp_path, header + row))
    assert raised.value.field == "window_source_id"
