"""DN-SCOPE-001: the performer's profession may dry needle in the state of the service."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from needlecheck.plugin.context import Performer, ServiceLine
from needlecheck.plugin.findings import Severity
from needlecheck.plugin.rules.scope_of_practice import check_scope_of_practice
from needlecheck.plugin.terms import Coding
from tests.support.builders import context, line, two_muscles

NUCC = "http://nucc.org/provider-taxonomy"
PHYSICAL_THERAPIST = Performer("Practitioner/pt-1", (Coding(NUCC, "225100000X", "Physical Therapist"),))
PHYSICIAN = Performer("Practitioner/md-1", (Coding(NUCC, "208100000X"),))
UNCODED = Performer("Practitioner/x-1")
ENDORSEMENT_RULES = dt.date(2024, 6, 22)


def needled(state: str | None, *performers: Performer, day: dt.date = dt.date(2026, 3, 2)) -> ServiceLine:
    return replace(line("20560", *two_muscles(), sequence=1, day=day), service_state=state, performers=performers)


@pytest.mark.parametrize("state", ["CA", "HI", "NY", "OR"])
def test_a_physical_therapist_may_not_needle_in_these_states(state: str) -> None:
    [finding] = check_scope_of_practice(context(needled(state, PHYSICAL_THERAPIST)))
    assert finding.severity is Severity.WARNING
    assert finding.summary == (f"Have an allowed provider needle: a physical therapist may not perform dry needling "
                               f"in {state}")
    assert "`Practitioner/pt-1`" in finding.detail
    assert len(finding.summary) < 140


def test_the_card_cites_the_sources_of_that_state_only() -> None:
    [finding] = check_scope_of_practice(context(needled("CA", PHYSICAL_THERAPIST)))
    assert [source.source_id for source in finding.sources] == ["SC-06", "SC-02"]
    assert "legalclarity.org" in finding.detail


def test_oregon_says_that_no_end_date_is_known() -> None:
    [finding] = check_scope_of_practice(context(needled("OR", PHYSICAL_THERAPIST, day=dt.date(2027, 8, 1))))
    assert "No end date is known" in finding.detail


@pytest.mark.parametrize(("performers", "state"), [
    ((PHYSICIAN,), "CA"),            # another profession in the same state
    ((PHYSICAL_THERAPIST,), "CO"),   # a state the table does not list
    ((PHYSICAL_THERAPIST,), "PA"),   # a state listed as silent
    ((PHYSICIAN,), None),            # the state is unknown, but no state restricts a physician
    ((UNCODED,), "CO"),              # the profession is unknown, but the state restricts none
])
def test_no_card_when_the_table_does_not_forbid_it(performers: tuple[Performer, ...], state: str | None) -> None:
    assert check_scope_of_practice(context(needled(state, *performers))) == []


@pytest.mark.parametrize(("performers", "state", "missing"), [
    ((PHYSICAL_THERAPIST,), None, "the state"),   # some states restrict a physical therapist
    ((UNCODED,), "CA", "the profession of"),      # California restricts some professions
    ((), "CA", "who will perform it"),            # no performer at all
])
def test_not_checked_when_what_is_missing_would_decide(performers: tuple[Performer, ...], state: str | None,
                                                      missing: str) -> None:
    # Issue 9, finding 10: these were silently skipped.
    [finding] = check_scope_of_practice(context(needled(state, *performers)))
    assert finding.unchecked and finding.summary == "Not checked: Scope of practice" and missing in finding.detail


def test_a_physical_therapist_among_several_performers_is_still_reported() -> None:
    [finding] = check_scope_of_practice(context(needled("NY", PHYSICIAN, PHYSICAL_THERAPIST)))
    assert finding.severity is Severity.WARNING


def test_washington_asks_for_the_endorsement_from_2024_06_22() -> None:
    [finding] = check_scope_of_practice(context(needled("WA", PHYSICAL_THERAPIST, day=ENDORSEMENT_RULES)))
    assert finding.severity is Severity.INFO
    assert finding.summary == "Confirm the physical therapist's dry needling endorsement for WA"
    assert "cannot show it" in finding.detail
    assert [source.source_id for source in finding.sources] == ["SC-03"]


def test_washington_did_not_permit_it_the_day_before() -> None:
    day_before = ENDORSEMENT_RULES - dt.timedelta(days=1)
    [finding] = check_scope_of_practice(context(needled("WA", PHYSICAL_THERAPIST, day=day_before)))
    assert finding.severity is Severity.WARNING
    assert "may not perform dry needling in WA" in finding.summary


def test_an_order_without_a_date_is_checked_on_the_day_it_is_signed() -> None:
    order = replace(line("20560", *two_muscles(), day=None), service_state="WA", performers=(PHYSICAL_THERAPIST,))
    [before] = check_scope_of_practice(context(order, today=dt.date(2024, 6, 1)))
    [after] = check_scope_of_practice(context(order, today=dt.date(2024, 7, 1)))
    assert (before.severity, after.severity) == (Severity.WARNING, Severity.INFO)


def test_lines_that_are_not_dry_needling_are_not_checked() -> None:
    other = replace(line("20552", *two_muscles(), sequence=1), service_state="CA", performers=(PHYSICAL_THERAPIST,))
    assert check_scope_of_practice(context(other)) == []
