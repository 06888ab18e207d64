"""A site's own policy rows (``policy_dir``), merged over the shipped tables.

``policy_dir`` holds CSV files named and shaped as the shipped ``payer_directory.csv``, ``payer_policies.csv``,
``frequency_limits.csv`` and ``documentation_requirements.csv``, each optional, each row with its source (and
dates where the table has them), read by the same loader with the same checks. A local row whose key a
shipped row has replaces it from the local row's ``effective_from`` on (the shipped row stays in force before
that date; a local row without ``effective_from`` replaces it outright); any other local row is added. Keys:

| file | key |
|---|---|
| payer_directory.csv | pack, match, identifier_system, pattern (no dates: the local row replaces it) |
| payer_policies.csv | pack, code_family |
| frequency_limits.csv | pack, limit_id |
| documentation_requirements.csv | element, payer |

Local directory rows are tried before the shipped ones (the first matching row wins), so a site's own name
for a payer is found first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Hashable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from needlecheck.mappings.errors import MappingError
from needlecheck.mappings.tables import EffectivePeriod

LOCAL_FILES = ("payer_directory.csv", "payer_policies.csv", "frequency_limits.csv", "documentation_requirements.csv")

Row = TypeVar("Row")
_policy_dir: Path | None = None


def configure_policy_dir(path: Path | None) -> None:
    """Use the local rows of ``path`` (None: the shipped tables only) and validate them now.

    Raises MappingError naming the file, row and field of the first bad local row, or an unexpected file.
    """
    global _policy_dir
    if path is not None:
        if not path.is_dir():
            raise MappingError(str(path), None, "policy_dir", "is not a directory")
        for unexpected in sorted(p.name for p in path.glob("*.csv") if p.name not in LOCAL_FILES):
            raise MappingError(str(path / unexpected), None, None,
                               f"is not one of the local tables ({', '.join(LOCAL_FILES)})")
    _policy_dir = path
    _forget_loaded_tables()
    if path is not None:
        _load_all()


def policy_dir() -> Path | None:
    """The configured local policy folder, if any."""
    return _policy_dir


def local_file(name: str) -> Path | None:
    """The local table ``name`` when a policy folder is configured and holds it."""
    if _policy_dir is None:
        return None
    path = _policy_dir / name
    return path if path.is_file() else None


def _cut_before(period: EffectivePeriod, start: dt.date) -> EffectivePeriod | None:
    """``period`` ended the day before ``start``; None when nothing of it is left."""
    if period.effective_from is not None and period.effective_from >= start:
        return None
    end = start - dt.timedelta(days=1)
    return EffectivePeriod(period.effective_from,
                           end if period.effective_to is None or period.effective_to > end else period.effective_to)


def merged_by_period(shipped: tuple[Row, ...], local: tuple[Row, ...],
                     key: Callable[[Row], Hashable]) -> tuple[Row, ...]:
    """Shipped rows cut short where a local row of their key takes over, then the local rows."""
    takeover: dict[Hashable, dt.date | None] = {}
    for row in local:
        start = _period(row).effective_from
        if key(row) not in takeover:
            takeover[key(row)] = start
        else:
            known = takeover[key(row)]
            takeover[key(row)] = None if known is None or start is None else min(known, start)
    kept: list[Row] = []
    for row in shipped:
        if key(row) not in takeover:
            kept.append(row)
            continue
        start = takeover[key(row)]
        cut = _cut_before(_period(row), start) if start is not None else None
        if cut is not None:
            kept.append(replace(row, period=cut))  # type: ignore[type-var]
    return (*kept, *local)


def merged_in_front(shipped: tuple[Row, ...], local: tuple[Row, ...],
                    key: Callable[[Row], Hashable]) -> tuple[Row, ...]:
    """The local rows first, then the shipped rows whose key no local row has (for first-match tables)."""
    replaced = {key(row) for row in local}
    return (*local, *(row for row in shipped if key(row) not in replaced))


def with_local_rows(shipped: tuple[Row, ...], name: str, loader: Callable[[Path], tuple[Row, ...]],
                    merge: Callable[[tuple[Row, ...], tuple[Row, ...], Callable[[Row], Hashable]], tuple[Row, ...]],
                    key: Callable[[Row], Hashable]) -> tuple[Row, ...]:
    """``shipped`` merged with the rows of the local table ``name`` (read by ``loader``), if there is one."""
    path = local_file(name)
    if path is None:
        return shipped
    try:
        local = loader(path)
    except MappingError as error:  # say it is the local file, not the shipped one of the same name
        raise MappingError(f"local policy file {path}", None, None, str(error)) from error
    return merge(shipped, local, key)


def _period(row: Any) -> EffectivePeriod:
    period = getattr(row, "period", None)
    return period if isinstance(period, EffectivePeriod) else EffectivePeriod()


def _forget_loaded_tables() -> None:
    from needlecheck.mappings import documentation, frequency_limits, payer_policies, payers

    for accessor in (payers.payer_directory, payers.directory_entry_for, payer_policies.payer_policies,
                     frequency_limits.frequency_limits, documentation.documentation_requirements):
        accessor.cache_clear()


def _load_all() -> None:
    from needlecheck.mappings import documentation, frequency_limits, payer_policies, payers

    payers.payer_directory()
    payer_policies.payer_policies()
    frequency_limits.frequency_limits()
    documentation.documentation_requirements()
