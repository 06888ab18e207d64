"""When two Procedures in a record are one Procedure, and what a Procedure's JSON says about it.

An EHR shows the same Procedure in several places: on its server, in the prefetched history, copied into
a claim's ``contained`` list, under a second id that carries the same business identifier. Counting it
once per place would turn one session into "20560 appears 2 times" and tell a biller to delete the only
charge. So a Procedure is identified by

- its ``Procedure/<id>`` on the server (a resource with an identity of its own);
- any business ``identifier`` (system and value), wherever it appears;
- for a contained copy, which has only a local id: the id it was copied under, or failing that its
  content (the same CPT code, date and body sites, and the same time where both give one), because a
  contained resource has no identity apart from what it says.

Two server resources with different ids and no shared identifier stay two Procedures, even when
they read the same: that is what a duplicate record looks like, and the rules should see it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import cache, lru_cache, partial
from typing import Any, NamedTuple

from needlecheck.mappings.code_systems import canonical_system, spellings_of
from needlecheck.mappings.cpt import CPT_SYSTEM
from needlecheck.plugin.fhir_view import FhirView


class ProcedureIdentity(NamedTuple):
    """What identifies one Procedure: ``reference`` is None for a contained copy (``local_id`` is its id).

    A tuple, as ``Coding`` is: every earlier Procedure of every call gets one."""

    reference: str | None
    local_id: str | None
    identifiers: frozenset[tuple[str, str]]
    code: str | None
    day: dt.date | None
    sites: Any  # the bodySite JSON: equal JSON is equal whatever the order of its keys
    moment: dt.datetime | None = None

    def is_same_as(self, other: ProcedureIdentity) -> bool:
        """Whether ``self`` and ``other`` are the same Procedure (see the module docstring)."""
        if self.identifiers & other.identifiers:
            return True
        if self.reference is not None and other.reference is not None:
            return self.reference == other.reference
        if (self.code, self.day) != (other.code, other.day) or self.day is None:
            return False
        ids = {ref.split("/")[-1] for ref in (self.reference, other.reference) if ref}
        ids |= {local for local in (self.local_id, other.local_id) if local}
        if len(ids) == 1:
            return True  # copied under its own id
        # Same content, and not two times of one day (a morning and an afternoon session are two).
        moments_differ = None not in (self.moment, other.moment) and self.moment != other.moment
        return self.sites == other.sites and not moments_differ


_NO_IDENTIFIERS: frozenset[tuple[str, str]] = frozenset()


# ``ProcedureIdentity(...)`` without the Python frame of a named tuple's ``__new__`` (every earlier Procedure of
# every call gets one); the fields in their order.
_new_identity = partial(tuple.__new__, ProcedureIdentity)


@cache
def cpt_spellings() -> frozenset[str]:
    """Every system URI that is CPT (``canonical_system`` gives ``CPT_SYSTEM``): one set lookup per coding."""
    return frozenset(system for system in spellings_of(CPT_SYSTEM) if canonical_system(system) == CPT_SYSTEM)


def _day_of(value: str) -> dt.date | None:
    if len(value) < 10:
        return None
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        return None


def _moment_of(value: str) -> dt.datetime | None:
    if "T" not in value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


# A patient's earlier Procedures come back in every call of their visit: each time is parsed once per process.
@lru_cache(maxsize=8192)
def _day_and_moment(value: str) -> tuple[dt.date | None, dt.datetime | None]:
    """The calendar day a performed[x] value names, and its instant when it gives a time with an offset."""
    return _day_of(value), _moment_of(value)


def json_identity(resource: dict[str, Any], contained: bool = False) -> ProcedureIdentity:
    """The identity of a Procedure given as JSON; ``contained`` when it was found in a ``contained`` list.

    Its ``code`` is the Procedure's CPT code (a coding in another system never counts, whatever its digits).
    """
    resource_id = resource.get("id")
    if not isinstance(resource_id, str):
        resource_id = None
    listed = resource.get("identifier")
    identifiers = frozenset(
        (str(i.get("system") or ""), str(i["value"])) for i in listed
        if isinstance(i, dict) and isinstance(i.get("value"), str)) if listed else _NO_IDENTIFIERS
    performed = resource.get("performedDateTime")
    if not performed:
        period = resource.get("performedPeriod")
        performed = period.get("start") if isinstance(period, dict) else None
    day, moment = _day_and_moment(performed) if isinstance(performed, str) else (None, None)
    cpt_code = None
    concept = resource.get("code")
    codings = concept.get("coding") if isinstance(concept, dict) else None
    if isinstance(codings, list):
        spellings = cpt_spellings()
        for coding in codings:
            if isinstance(coding, dict):
                value, system = coding.get("code"), coding.get("system")
                # A system that is not a string is not CPT whatever it reads as (``str(5)`` is no URI).
                if isinstance(value, str) and system.__class__ is str and system in spellings:
                    cpt_code = value
                    break
    return _new_identity((
        None if contained or resource_id is None else f"Procedure/{resource_id}",
        resource_id if contained else None,
        identifiers,
        cpt_code,
        day,
        resource.get("bodySite") or [],
        moment,
    ))


def procedure_identity(procedure: FhirView, contained: bool = False) -> ProcedureIdentity:
    """The identity of a Procedure read through a view (see ``json_identity``)."""
    return json_identity(procedure.json, contained)


def is_any_of(identity: ProcedureIdentity, others: list[ProcedureIdentity]) -> bool:
    """Whether ``identity`` is the same Procedure as one of ``others``."""
    return any(identity.is_same_as(other) for other in others)


def same_as_any(others: list[ProcedureIdentity]) -> Callable[[ProcedureIdentity], bool]:
    """``is_any_of`` against ``others``, for many identities in turn: a server resource of another id, another
    code or another date (a patient's history against what is billed now) is told apart without comparing it
    with each of them."""
    if not others:
        return lambda identity: False
    identifiers = frozenset().union(*(other.identifiers for other in others))
    references = {other.reference for other in others if other.reference is not None}
    by_content = {(other.code, other.day) for other in others if other.reference is None}

    def is_same(identity: ProcedureIdentity) -> bool:
        if identity.identifiers and identity.identifiers & identifiers:
            return True
        if identity.reference is None:
            return is_any_of(identity, others)
        if identity.reference in references:
            return True
        # Only a contained copy with its code and date can still be the same Procedure.
        return (identity.code, identity.day) in by_content and is_any_of(identity, others)

    return is_same
