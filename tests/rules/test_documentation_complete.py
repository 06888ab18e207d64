"""DN-DOC-010: one card per line listing every missing documentation element, required ones first."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from needlecheck.mappings.documentation import documentation_elements
from needlecheck.plugin.context import BillingContext, CoverageFacts, Performer, RuleOptions, ServiceLine
from needlecheck.plugin.findings import Severity
from needlecheck.plugin.rules.documentation_complete import check_documentation_complete
from needlecheck.plugin.terms import ICD10CM_SYSTEM, Coding
from tests.support.builders import context, line, two_muscles

SOPT = "urn:oid:2.16.840.1.113883.3.221.5"
MEDICARE_FFS = CoverageFacts("Coverage/c1", type_codes=(Coding(SOPT, "121"),))
MEDICARE_ADVANTAGE = CoverageFacts("Coverage/c1", type_codes=(Coding(SOPT, "111"),))
FLORIDA_BLUE = CoverageFacts("Coverage/c1", type_codes=(Coding(SOPT, "6"),), payor_names=("Florida Blue",))
PHYSICIAN = Performer("Practitioner/md-1", (Coding("http://nucc.org/provider-taxonomy", "208100000X"),))
ORDER_ELEMENTS = frozenset({"symptom-duration", "trigger-point-findings", "plan-of-care"})
PROCEDURE_ELEMENTS = ORDER_ELEMENTS | {"no-injectate-statement", "session-date", "technique",
                                       "response-and-complications", "pain-function-outcome", "informed-consent"}
GOOD_PRACTICE_ORDER = ["trigger point findings (location, taut band, referred pain)",
                       "a plan of care with goals, frequency and duration"]


LOW_BACK_PAIN = Coding(ICD10CM_SYSTEM, "M54.50", "Low back pain, unspecified")


def procedure_line(documented: frozenset[str] = PROCEDURE_ELEMENTS, day: dt.date = dt.date(2026, 3, 2),
                   performers: tuple[Performer, ...] = (PHYSICIAN,)) -> ServiceLine:
    return replace(line("20560", *two_muscles(), sequence=1, day=day, indications=(LOW_BACK_PAIN,)),
                   documented=documented, performers=performers, is_procedure_record=True)


def order_line(documented: frozenset[str] = frozenset()) -> ServiceLine:
    return replace(line("20560", *two_muscles(), indications=(LOW_BACK_PAIN,)), documented=documented)


def paid_by(coverage: CoverageFacts | None, *lines: ServiceLine, good_practice: bool = True) -> BillingContext:
    """The context, listing good-practice elements too unless ``good_practice`` is False (the default setting)."""
    return replace(context(*lines), coverage=coverage, options=RuleOptions(good_practice_elements=good_practice))


def test_by_default_good_practice_elements_are_no_card() -> None:
    lacking = procedure_line(PROCEDURE_ELEMENTS - {"technique", "plan-of-care"})
    assert check_documentation_complete(paid_by(None, lacking, good_practice=False)) == []


def test_missing_consent_is_one_info_item_by_default() -> None:
    # DOC-14 (ACA, Hamm): "consent is mandatory", a professional requirement; it was a good-practice element,
    # silent by default.
    lacking = procedure_line(PROCEDURE_ELEMENTS - {"informed-consent", "technique"})
    [finding] = check_documentation_complete(paid_by(None, lacking, good_practice=False))
    assert finding.severity is Severity.INFO
    assert finding.summary == "Document informed consent: professional guidance requires it"
    assert labels_in_order(finding.detail) == ["informed consent"]
    assert "**Required by professional guidance** (not a payer criterion)" in finding.detail
    assert "consent is mandatory" in finding.detail and "acatoday.org" in finding.detail
    assert [source.source_id for source in finding.sources] == ["DOC-14-ACA", "DOC-14"]


def test_consent_joins_the_payers_warning_card_after_the_payers_elements() -> None:
    lacking = procedure_line(PROCEDURE_ELEMENTS - {"informed-consent", "symptom-duration", "technique"})
    [finding] = check_documentation_complete(paid_by(MEDICARE_FFS, lacking, good_practice=False))
    assert finding.severity is Severity.WARNING
    assert finding.summary == "Document the 1 element the payer requires (listed in the detail)"
    assert labels_in_order(finding.detail) == ["how long the symptoms have lasted", "informed consent"]
    [listed] = check_documentation_complete(paid_by(MEDICARE_FFS, lacking))
    assert labels_in_order(listed.detail) == ["how long the symptoms have lasted", "informed consent",
                                              "the technique (needle type and gauge, depth, pistoning)"]


def test_an_order_is_not_asked_for_consent() -> None:
    assert check_documentation_complete(paid_by(None, order_line(ORDER_ELEMENTS), good_practice=False)) == []


def test_by_default_only_the_required_elements_are_listed() -> None:
    lacking = procedure_line(PROCEDURE_ELEMENTS - {"symptom-duration", "technique"})
    [finding] = check_documentation_complete(paid_by(MEDICARE_FFS, lacking, good_practice=False))
    assert finding.severity is Severity.WARNING
    assert labels_in_order(finding.detail) == ["how long the symptoms have lasted"]
    assert finding.summary == "Document the 1 element the payer requires (listed in the detail)"


def test_medicare_asks_no_ncd_elements_for_a_diagnosis_the_ncd_cannot_cover() -> None:
    neck = replace(procedure_line(PROCEDURE_ELEMENTS - {"symptom-duration"}),
                   indications=(Coding(ICD10CM_SYSTEM, "M54.2", "Cervicalgia"),))
    assert check_documentation_complete(paid_by(MEDICARE_FFS, neck, good_practice=False)) == []


def labels_in_order(detail: str) -> list[str]:
    """The element labels of the card's bullets, in the order the card lists them."""
    return [bullet.split("**")[1].lower() for bullet in detail.splitlines() if bullet.startswith("- **")]


@pytest.mark.parametrize("coverage", [MEDICARE_FFS, MEDICARE_ADVANTAGE, FLORIDA_BLUE, None])
def test_a_fully_documented_procedure_gets_no_card(coverage: CoverageFacts | None) -> None:
    assert check_documentation_complete(paid_by(coverage, procedure_line())) == []


def test_a_fully_documented_order_gets_no_card_though_it_shows_no_procedure_element() -> None:
    assert check_documentation_complete(paid_by(MEDICARE_FFS, order_line(ORDER_ELEMENTS))) == []


@pytest.mark.parametrize("element", sorted(PROCEDURE_ELEMENTS - {"informed-consent"} | {"provider-qualification"}))
def test_each_missing_element_shows_up_alone(element: str) -> None:
    performers = () if element == "provider-qualification" else (PHYSICIAN,)
    lacking = procedure_line(PROCEDURE_ELEMENTS - {element}, performers=performers)
    [finding] = check_documentation_complete(paid_by(None, lacking))
    assert labels_in_order(finding.detail) == [documentation_elements()[element].label]
    assert finding.severity is Severity.INFO  # every element is good practice when the payer is unknown
    assert finding.summary == "Consider documenting 1 good-practice element (listed in the detail)"


def test_medicare_requires_symptom_duration_and_qualification_and_lists_them_first() -> None:
    lacking = procedure_line(PROCEDURE_ELEMENTS - {"symptom-duration", "technique", "plan-of-care"}, performers=())
    [finding] = check_documentation_complete(paid_by(MEDICARE_FFS, lacking))
    assert finding.severity is Severity.WARNING
    assert finding.summary == "Document the 2 elements the payer requires (listed in the detail)"
    assert labels_in_order(finding.detail) == [
        "how long the symptoms have lasted", "who furnished it and their qualification",
        "a plan of care with goals, frequency and duration", "the technique (needle type and gauge, depth, pistoning)"]
    required, advised = finding.detail.split("**Good practice**")
    assert "NCD 30.3.3" in required and "cms.gov" in required and "12 weeks or longer" in required
    assert "Required" in required and "acatoday.org" in advised
    assert [source.source_id for source in finding.sources] == ["DOC-05", "DOC-08", "DOC-11", "DOC-12"]


def test_the_same_gaps_are_only_good_practice_for_a_commercial_payer() -> None:
    lacking = procedure_line(PROCEDURE_ELEMENTS - {"symptom-duration"})
    commercial = CoverageFacts("Coverage/c1", type_codes=(Coding(SOPT, "5"),), payor_names=("Acme Health",))
    [finding] = check_documentation_complete(paid_by(commercial, lacking))
    assert finding.severity is Severity.INFO
    assert "**Acme Health**, a commercial payer" in finding.detail


def test_medicare_advantage_cites_the_plans_that_follow_the_ncd() -> None:
    [finding] = check_documentation_complete(paid_by(MEDICARE_ADVANTAGE, procedure_line(PROCEDURE_ELEMENTS -
                                                                                        {"symptom-duration"})))
    assert finding.severity is Severity.WARNING
    assert [source.source_id for source in finding.sources] == ["DOC-05-MA"]


@pytest.mark.parametrize(("day", "severity"), [
    (dt.date(2021, 6, 30), Severity.WARNING),  # MP-740 still asked for trigger point findings
    (dt.date(2021, 7, 1), Severity.INFO),      # investigational from then on: no longer a criterion
])
def test_blue_plans_required_trigger_point_findings_before_2021_07_01(day: dt.date, severity: Severity) -> None:
    lacking = procedure_line(PROCEDURE_ELEMENTS - {"trigger-point-findings"}, day=day)
    [finding] = check_documentation_complete(paid_by(FLORIDA_BLUE, lacking))
    assert finding.severity is severity


@pytest.mark.parametrize(("day", "severity"), [
    (dt.date(2020, 1, 20), Severity.INFO),     # the day before NCD 30.3.3 took effect
    (dt.date(2020, 1, 21), Severity.WARNING),
])
def test_medicare_requirements_start_with_the_ncd(day: dt.date, severity: Severity) -> None:
    # M54.5 was the low back pain code until 2021-09-30 (M54.50 replaced it), so the NCD can cover it then.
    lacking = replace(procedure_line(PROCEDURE_ELEMENTS - {"symptom-duration"}, day=day),
                      indications=(Coding(ICD10CM_SYSTEM, "M54.5", "Low back pain"),))
    [finding] = check_documentation_complete(paid_by(MEDICARE_FFS, lacking))
    assert finding.severity is severity


def test_an_order_is_asked_only_for_order_elements() -> None:
    [finding] = check_documentation_complete(paid_by(MEDICARE_FFS, order_line()))
    assert labels_in_order(finding.detail) == ["how long the symptoms have lasted", *GOOD_PRACTICE_ORDER]
    assert finding.summary == "Document the 1 element the payer requires (listed in the detail)"
    assert "An order is asked only for what it can carry" in finding.detail


def test_elements_other_rules_report_never_appear_in_this_card() -> None:
    bare = replace(procedure_line(frozenset(), performers=()), body_sites=(), indications=())
    [finding] = check_documentation_complete(paid_by(None, bare))
    listed = labels_in_order(finding.detail)
    assert "each muscle named, with its side" not in listed and "the diagnosis the needling treats" not in listed
    assert len(listed) == len(PROCEDURE_ELEMENTS) + 1
    assert "DN-DOC-001, DN-DOC-002 and DN-DOC-003" in finding.detail


def test_one_card_per_line_and_none_for_lines_that_are_not_dry_needling() -> None:
    second = replace(procedure_line(frozenset()), key="Claim/c1#item-2", label="claim line 2", item_sequence=2)
    injection = replace(line("20552", *two_muscles(), sequence=3), is_procedure_record=True)
    findings = check_documentation_complete(paid_by(None, procedure_line(frozenset()), second, injection))
    assert [finding.line_key for finding in findings] == ["Claim/c1#item-1", "Claim/c1#item-2"]
    assert all(len(finding.summary) <= 100 for finding in findings)
