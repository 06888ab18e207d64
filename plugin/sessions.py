"""Counting a patient's sessions for frequency caps: which dates count, and which window a date falls in.

A session is a date of service with at least one counted code, from earlier Procedures
(``context.history``) or from the lines being checked; several codes on one date are one session.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from needlecheck.mappings.cpt import cpt_codes
from needlecheck.mappings.frequency_limits import NCD_YEAR, PER_PATIENT, ROLLING_DAYS, FrequencyLimit
from needlecheck.plugin.context import BillingContext


def session_dates(context: BillingContext, families: Iterable[str]) -> tuple[dt.date, ...]:
    """The distinct dates, in order, on which the patient has a service of one of ``families``."""
    wanted = frozenset(families)

    def counted(code: str) -> bool:
        row = cpt_codes().get(code)
        return row is not None and row.family in wanted

    days = {prior.date_of_service for prior in context.history if prior.date_of_service and counted(prior.code)}
    days |= {context.date_of(line) for line in context.lines if counted(line.code)}
    return tuple(sorted(days))


def first_day_of_next_ncd_year(first_session: dt.date) -> dt.date:
    """The earliest day a new NCD year may start: 11 full months after the month of ``first_session``.

    First session 2020-03-21 → April 2020 to February 2021 are the 11 full months → 2021-03-01.
    """
    month_index = first_session.year * 12 + (first_session.month - 1) + 12
    return dt.date(month_index // 12, month_index % 12 + 1, 1)


def ncd_year_start(sessions: tuple[dt.date, ...], day: dt.date) -> dt.date:
    """The first session of the NCD year that ``day`` (one of ``sessions``) belongs to.

    Years chain: the first year starts with the first session; each next year starts with the first
    session on or after the earliest day the previous year allows.
    """
    start = sessions[0]
    for session in sessions:
        if session > day:
            break
        if session >= first_day_of_next_ncd_year(start):
            start = session
    return start


def sessions_in_window(limit: FrequencyLimit, sessions: tuple[dt.date, ...], day: dt.date) -> int:
    """How many sessions up to and including ``day`` fall in ``day``'s window of ``limit``."""
    if limit.window == ROLLING_DAYS:
        assert limit.window_days is not None
        first = day - dt.timedelta(days=limit.window_days - 1)
        return sum(1 for session in sessions if first <= session <= day)
    if limit.window == NCD_YEAR:
        start = ncd_year_start(sessions, day)
        return sum(1 for session in sessions if start <= session <= day)
    if limit.window == PER_PATIENT:
        return sum(1 for session in sessions if session <= day)
    raise ValueError(f"unknown window {limit.window}")
