"""DN-FREQ-001: session caps from frequency_limits.csv, counting earlier Procedures and the lines checked."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from needlecheck.plugin.context import BillingContext, CoverageFacts, PriorService
from needlecheck.plugin.findings import Severity, Topic
from needlecheck.plugin.rules import session_frequency
from needlecheck.plugin.rules.session_frequency import check_session_frequency as check
from needlecheck.plugin.sessions import first_day_of_next_ncd_year, ncd_year_start
from needlecheck.plugin.terms import Coding
from tests.support.builders import context, line

SOPT = "urn:oid:2.16.840.1.113883.3.221.5"
LOW_BACK_PAIN = Coding("http://hl7.org/fhir/sid/icd-10-cm", "M54.50", "Low back pain, unspecified")
# Until 2021-09-30 low back pain was M54.5 (IC-01): the NCD list, when installed, covers the code of the day.
LOW_BACK_PAIN_BEFORE_2021_10 = Coding("http://hl7.org/fhir/sid/icd-10-cm", "M54.5", "Low back pain")


def low_back_pain_on(day: dt.date) -> Coding:
    return LOW_BACK_PAIN if day >= dt.date(2021, 10, 1) else LOW_BACK_PAIN_BEFORE_2021_10
MEDICARE = ("121",)
FIRST = dt.date(2025, 3, 21)


def weekly(count: int, start: dt.date = FIRST, code: str = "20560", step: int = 7) -> tuple[PriorService, ...]:
    return tuple(PriorService(f"Procedure/p{i}", code, start + dt.timedelta(days=step * i)) for i in range(count))


def claim(day: dt.date, history: tuple[PriorService, ...], sopt: tuple[str, ...] = MEDICARE,
          names: tuple[str, ...] = (), modifiers: tuple[str, ...] = ()) -> BillingContext:
    ctx = context(line("20560", day=day, sequence=1, modifiers=modifiers, indications=(low_back_pain_on(day),)),
                  history=history, today=day)
    return replace(ctx, coverage=CoverageFacts("Coverage/cov-1", tuple(Coding(SOPT, c) for c in sopt), (), names))


def test_ncd_year_starts_with_the_first_session_and_lasts_11_full_months() -> None:
    assert first_day_of_next_ncd_year(dt.date(2020, 3, 21)) == dt.date(2021, 3, 1)
    assert first_day_of_next_ncd_year(dt.date(2020, 12, 5)) == dt.date(2021, 12, 1)
    sessions = (dt.date(2020, 3, 21), dt.date(2021, 2, 28), dt.date(2021, 3, 1), dt.date(2022, 2, 1))
    assert [ncd_year_start(sessions, day) for day in sessions] == [
        dt.date(2020, 3, 21), dt.date(2020, 3, 21), dt.date(2021, 3, 1), dt.date(2021, 3, 1)]


def test_twelfth_session_is_fine() -> None:
    assert check(claim(FIRST + dt.timedelta(days=7 * 11), weekly(11))) == []


def test_thirteenth_session_without_kx_is_a_warning() -> None:
    [finding] = check(claim(FIRST + dt.timedelta(days=7 * 12), weekly(12)))
    assert (finding.rule_id, finding.severity, finding.topic) == ("DN-FREQ-001", Severity.WARNING, Topic.LIMITS)
    assert "session 13" in finding.summary and "KX" in finding.summary and len(finding.summary) < 140
    assert {source.source_id for source in finding.sources} >= {"MC-03", "MC-05"}


def test_the_card_and_the_docs_cite_mc_05_for_the_11_full_month_year() -> None:
    [finding] = check(claim(FIRST + dt.timedelta(days=7 * 12), weekly(12)))
    assert ("the NCD year that began 2025-03-21 (it runs until 11 full months have passed after that month, MC-05: "
            "a new year can start on 2026-03-01)") in finding.detail
    docs = " ".join((session_frequency.__doc__ or "").split())
    assert "ends when 11 full months have passed after the month of that session (MC-05" in docs


def test_thirteenth_session_with_kx_is_fine() -> None:
    assert check(claim(FIRST + dt.timedelta(days=7 * 12), weekly(12), modifiers=("KX",))) == []


def test_twenty_first_session_in_the_year_is_not_covered_even_with_kx() -> None:
    [finding] = check(claim(FIRST + dt.timedelta(days=7 * 20), weekly(20), modifiers=("KX",)))
    assert "session 21" in finding.summary and "past the cap" in finding.summary and "ABN" in finding.summary
    assert finding.decisive and "**GA**" in finding.detail


def test_the_next_ncd_year_starts_on_the_first_of_the_month_after_11_full_months() -> None:
    # 20 sessions from 2025-03-21; a session on 2026-02-28 is the 21st of the first year ...
    history = weekly(20, step=14)
    assert history[-1].date_of_service is not None and history[-1].date_of_service < dt.date(2026, 2, 28)
    [inside] = check(claim(dt.date(2026, 2, 28), history, modifiers=("KX",)))
    assert "session 21" in inside.summary and "2025-03-21" in inside.detail
    # ... while 2026-03-01 opens a new year: session 1, nothing to report.
    assert check(claim(dt.date(2026, 3, 1), history, modifiers=("KX",))) == []


def test_more_than_12_in_90_days_across_a_year_boundary_needs_kx() -> None:
    # First year: one session in March 2025, then 11 in February 2026 (all in year 1: 12 in the year).
    history = (PriorService("Procedure/first", "20560", FIRST), *weekly(11, start=dt.date(2026, 2, 1), step=2))
    # 2026-03-01 opens year 2 (session 1 of the year) but is the 12th session in 90 days: fine.
    assert check(claim(dt.date(2026, 3, 1), history)) == []
    # One more session inside the 90 days makes 13: KX needed although the year count is only 2.
    later = (*history, PriorService("Procedure/y2-1", "20560", dt.date(2026, 3, 1)))
    [finding] = check(claim(dt.date(2026, 3, 3), later))
    assert "90 days" in finding.detail and "session 13" in finding.summary


def test_sessions_older_than_90_days_drop_out_of_the_rolling_window() -> None:
    history = weekly(12, start=dt.date(2025, 3, 21), step=1)  # 12 sessions, 2025-03-21 .. 2025-04-01
    # 2025-06-19 is 90 days after 2025-03-22: the window 2025-03-22..2025-06-19 holds 11 earlier sessions + this.
    # The year count is 13 though, so KX is needed for the year cap; check the window text only names the year.
    [finding] = check(claim(dt.date(2025, 6, 19), history))
    assert "NCD year" in finding.detail and "90 days" not in finding.detail
    # 2025-06-18: the window 2025-03-21..2025-06-18 holds all 12 earlier sessions: 13 in 90 days too.
    [both] = check(claim(dt.date(2025, 6, 18), history))
    assert "NCD year" in both.detail and "90 days" in both.detail


def test_acupuncture_sessions_count_for_medicare_and_same_date_counts_once() -> None:
    history = weekly(6) + weekly(6, start=FIRST + dt.timedelta(days=42), code="97810")
    history += (PriorService("Procedure/dup", "97811", FIRST),)  # same date as a 20560: one session
    [finding] = check(claim(FIRST + dt.timedelta(days=7 * 12), history))
    assert "session 13" in finding.summary


def test_lines_being_checked_count_too() -> None:
    day = FIRST + dt.timedelta(days=7 * 12)
    ctx = context(*(line("20560", day=FIRST + dt.timedelta(days=7 * i), sequence=i + 1, indications=(LOW_BACK_PAIN,))
                    for i in range(13)), today=day)
    ctx = replace(ctx, coverage=CoverageFacts("Coverage/cov-1", (Coding(SOPT, "121"),)))
    [finding] = check(ctx)
    assert finding.line_key == "Claim/c1#item-13"


def test_medicare_advantage_has_the_same_caps() -> None:
    assert check(claim(FIRST + dt.timedelta(days=7 * 12), weekly(12), sopt=("112",)))


def test_caps_apply_from_the_ncd_date() -> None:
    start = dt.date(2019, 10, 1)
    assert check(claim(dt.date(2020, 1, 20), weekly(15, start=start))) == []
    assert check(claim(dt.date(2020, 1, 21), weekly(15, start=start)))


def test_washington_lni_three_then_justification_then_six() -> None:
    lni = ("95",)
    names = ("Washington State Department of Labor & Industries",)
    assert check(claim(FIRST + dt.timedelta(days=14), weekly(2), sopt=lni, names=names)) == []
    [fourth] = check(claim(FIRST + dt.timedelta(days=21), weekly(3), sopt=lni, names=names))
    assert "treatment 4" in fourth.summary and "justification" in fourth.summary
    assert [source.source_id for source in fourth.sources] == ["PY-10"]
    [seventh] = check(claim(FIRST + dt.timedelta(days=42), weekly(6), sopt=lni, names=names))
    assert "denial" in seventh.summary and "past the payer's cap" in seventh.summary


def test_washington_lni_counts_trigger_point_injections_together_with_dry_needling() -> None:
    history = weekly(2) + weekly(1, start=FIRST + dt.timedelta(days=14), code="20552")
    names = ("Washington State Department of Labor & Industries",)
    assert check(claim(FIRST + dt.timedelta(days=21), history, sopt=("95",), names=names))


def test_payers_without_caps_or_unknown_payers_are_not_checked() -> None:
    assert check(claim(FIRST + dt.timedelta(days=7 * 30), weekly(30), sopt=("5",), names=("Aetna",))) == []
    assert check(claim(FIRST + dt.timedelta(days=7 * 30), weekly(30), sopt=())) == []
