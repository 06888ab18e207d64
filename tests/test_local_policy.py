"""``policy_dir``: a site's own policy rows, validated like the shipped ones, added or replacing from their date.

The local rows below are test-only fixtures (a fictitious payer "Acme Health Plan" and example.org sources);
they never ship in ``mappings/``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from needlecheck.cds_hooks.app import create_app
from needlecheck.cds_hooks.cli import main
from needlecheck.cds_hooks.settings import Settings
from needlecheck.mappings.errors import MappingError
from needlecheck.mappings.frequency_limits import frequency_limits
from needlecheck.mappings.local_policy import configure_policy_dir
from needlecheck.mappings.payer_policies import payer_policies, policy_on
from needlecheck.plugin.context import BillingContext, CoverageFacts
from needlecheck.plugin.rules.payer_coverage_policy import check_payer_coverage_policy
from needlecheck.plugin.terms import Coding
from tests.support.builders import context, line

SOPT = "urn:oid:2.16.840.1.113883.3.221.5"
SOURCE = "LOCAL-1,Test-only local policy,https://example.org/test-only-policy,medium"
DIRECTORY = ("pack,payer_class,match,identifier_system,pattern,applies_when,display_name,source_id,source_title,"
             "source_url,confidence\n"
             f"acme-local,commercial,name,,\\bacme\\s+health\\b,commercial|other|unknown,Acme Health Plan,{SOURCE}\n")
POLICIES = ("pack,code_family,status,effective_from,effective_to,statement,source_id,source_title,source_url,"
            "confidence\n"
            f'acme-local,dry-needling,covered,2026-01-01,,"Test only: covered.",{SOURCE}\n'
            f'bcbsa-mp-740,dry-needling,covered,2026-01-01,,"Test only: the site\'s contract covers it.",{SOURCE}\n')
LIMITS = ("pack,limit_id,counted_families,window,window_days,sessions,extended_sessions,extension,effective_from,"
          "effective_to,statement,source_id,source_title,source_url,confidence\n"
          f'medicare-ffs,ncd-90-days,dry-needling|acupuncture,rolling-days,90,10,,kx-modifier,2026-01-01,,"Test only.",'
          f"{SOURCE}\n")


@pytest.fixture
def policy_dir(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "policy"
    folder.mkdir()
    (folder / "payer_directory.csv").write_text(DIRECTORY, encoding="utf-8")
    (folder / "payer_policies.csv").write_text(POLICIES, encoding="utf-8")
    (folder / "frequency_limits.csv").write_text(LIMITS, encoding="utf-8")
    configure_policy_dir(folder)
    yield folder
    configure_policy_dir(None)


def billed(day: dt.date, name: str) -> BillingContext:
    coverage = CoverageFacts("Coverage/cov-1", (Coding(SOPT, "5"),), (), (name,))
    return replace(context(line("20560", day=day, sequence=1), today=day), coverage=coverage)


def test_a_payer_the_shipped_tables_do_not_have_is_added(policy_dir: Path) -> None:
    assert check_payer_coverage_policy(billed(dt.date(2026, 3, 2), "Acme Health Plan")) == []
    configure_policy_dir(None)
    [finding] = check_payer_coverage_policy(billed(dt.date(2026, 3, 2), "Acme Health Plan"))
    assert "PY-14" in [source.source_id for source in finding.sources]  # the shipped default for unknown payers


def test_a_local_row_replaces_the_shipped_one_from_its_effective_date(policy_dir: Path) -> None:
    before = policy_on("bcbsa-mp-740", "dry-needling", dt.date(2025, 12, 31))
    after = policy_on("bcbsa-mp-740", "dry-needling", dt.date(2026, 1, 1))
    assert before is not None and before.status == "investigational" and before.source_id != "LOCAL-1"
    assert before.period.effective_to == dt.date(2025, 12, 31)
    assert after is not None and (after.status, after.source_id) == ("covered", "LOCAL-1")
    assert check_payer_coverage_policy(billed(dt.date(2026, 3, 2), "Florida Blue")) == []
    assert check_payer_coverage_policy(billed(dt.date(2025, 3, 2), "Florida Blue")) != []
    shipped_rows = [p for p in payer_policies() if p.pack == "bcbsa-mp-740" and p.source_id != "LOCAL-1"]
    assert all(p.period.effective_to and p.period.effective_to < dt.date(2026, 1, 1) for p in shipped_rows)


def test_a_frequency_limit_is_replaced_from_its_date(policy_dir: Path) -> None:
    rows = [limit for limit in frequency_limits() if (limit.pack, limit.limit_id) == ("medicare-ffs", "ncd-90-days")]
    assert sorted((limit.sessions, limit.period.effective_to) for limit in rows) == [
        (10, None), (12, dt.date(2025, 12, 31))]


def test_without_a_policy_dir_the_shipped_tables_are_unchanged(tmp_path: Path) -> None:
    configure_policy_dir(None)
    assert all(policy.source_id != "LOCAL-1" for policy in payer_policies())


@pytest.mark.parametrize(("file", "content", "named"), [
    ("payer_policies.csv", POLICIES.replace("covered,2026", "maybe,2026", 1), "row 2, field 'status'"),
    ("payer_policies.csv", POLICIES.replace("https://example.org", "http://example.org", 1),
     "row 2, field 'source_url'"),
    ("frequency_limits.csv", LIMITS.replace(",10,", ",,"), "field 'sessions'"),
    ("payer_directory.csv", DIRECTORY.replace("\\bacme", "(acme"), "field 'pattern'"),
    ("payer_rules.csv", "a,b\n1,2\n", "payer_rules.csv"),
])
def test_a_bad_local_file_stops_start_up_naming_file_row_and_field(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                   file: str, content: str, named: str) -> None:
    folder = tmp_path / "policy"
    folder.mkdir()
    (folder / file).write_text(content, encoding="utf-8")
    with pytest.raises(MappingError, match=r".*") as raised:
        configure_policy_dir(folder)
    configure_policy_dir(None)
    assert named in str(raised.value) and str(folder) in str(raised.value)
    config = tmp_path / "needlecheck.toml"
    config.write_text(f'policy_dir = "{folder}"\n', encoding="utf-8")
    assert main(["serve", "--config", str(config)]) == 2
    assert named in capsys.readouterr().err
    configure_policy_dir(None)


def test_the_service_answers_with_the_local_rows(tmp_path: Path) -> None:
    folder = tmp_path / "policy"
    folder.mkdir()
    (folder / "payer_directory.csv").write_text(DIRECTORY.replace("acme-local", "northwind-local").replace(
        "\\bacme\\s+health\\b", "\\bnorthwind\\b"), encoding="utf-8")
    (folder / "payer_policies.csv").write_text(
        POLICIES.splitlines()[0] + "\n"
        f'northwind-local,dry-needling,not-covered,2026-01-01,,"Test only: not covered.",{SOURCE}\n', encoding="utf-8")
    request = json.loads((Path(__file__).resolve().parent.parent / "fixtures" / "requests" / "order-sign" /
                          "code001-20561-two-muscles.json").read_text(encoding="utf-8"))

    def cards(settings: Settings) -> dict[str, dict[str, object]]:
        app = create_app(settings)
        body = app.test_client().post("/cds-services/dry-needling-order-sign", json=request).get_json()
        app.extensions["needlecheck.pool"].shutdown(wait=False)
        return {card["extension"]["org.needlecheck.rule-id"]: card for card in body["cards"] if "extension" in card}

    try:
        shipped = cards(Settings(data_dir=tmp_path / "a"))
        # Northwind is unknown to the shipped data: no policy card (and, since the card economy, no "payer not
        # identified" card either); the coding card shows the request was evaluated.
        assert "DN-CODE-001" in shipped and "DN-PAYER-002" not in shipped and "DN-PAYER-001" not in shipped
        local = cards(Settings(data_dir=tmp_path / "b", policy_dir=folder))
        assert "DN-PAYER-001" not in local
        assert local["DN-PAYER-002"]["indicator"] == "warning"
        assert "https://example.org/test-only-policy" in json.dumps(local["DN-PAYER-002"])
    finally:
        configure_policy_dir(None)
