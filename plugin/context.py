"""The normalized billing context every rule reads: the services being checked and what came before.

Rules never see FHIR: ``plugin.fhir_input`` builds this from the resources an EHR sends or lets us
fetch, so a rule is a plain function of dates, codes, units and body sites.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from typing import NamedTuple, TypeVar

from needlecheck.mappings.cpt import is_dry_needling_code
from needlecheck.plugin.frozen import built_at_once
from needlecheck.plugin.muscles import MuscleCount, count_muscles
from needlecheck.plugin.terms import BodySite, Coding

T = TypeVar("T")


@built_at_once
@dataclass(frozen=True)
class Performer:
    """Who furnishes (or will furnish) a service: a Practitioner or PractitionerRole, as far as it resolved.

    ``codes`` are the PractitionerRole.code and Practitioner.qualification codings (NUCC taxonomy,
    HL7 v2-0360 degrees, ...); ``plugin.performer`` turns them into provider types.
    """

    reference: str
    codes: tuple[Coding, ...] = ()


@built_at_once
@dataclass(frozen=True)
class ConditionFacts:
    """A Condition of the patient: its codes, when it began and whether it is current."""

    reference: str
    codes: tuple[Coding, ...]
    onset: dt.date | None = None
    recorded: dt.date | None = None
    clinical_status: str | None = None


@built_at_once
@dataclass(frozen=True)
class CoverageFacts:
    """The patient's coverage as the record gives it; ``plugin.payer`` decides which payer it is.

    ``payor_identifiers`` are ``(system, value)`` pairs of the payor Organization (or of the
    reference's identifier); ``type_codes`` are the Coverage.type codings (Source of Payment Typology or
    X12 claim filing indicator); ``plan_names`` are the Coverage.class values and names ("Part B",
    "Aetna Medicare Eagle PPO").
    """

    reference: str
    type_codes: tuple[Coding, ...] = ()
    payor_identifiers: tuple[tuple[str | None, str], ...] = ()
    payor_names: tuple[str, ...] = ()
    plan_names: tuple[str, ...] = ()


@built_at_once
@dataclass(frozen=True)
class ServiceLine:
    """One ordered or billed service: a draft ServiceRequest, or one line of a draft Claim.

    ``resource_ref`` names the draft resource a fix would update and ``item_sequence`` the claim line
    inside it; ``label`` is how a person would name the line ("order ServiceRequest/sr-1").
    ``described_as`` holds the words the record uses for the service (code displays and texts), so a
    rule can tell dry needling billed under another code; ``documented`` holds the ids of the
    documentation elements (``mappings/documentation_elements.csv``) the record shows for a dry-needling
    line (empty on other lines: those elements document dry needling, and reading them is not free);
    ``injected_substances`` are drugs the record shows as injected, ``drugs_route_unknown`` drugs it shows
    as used without saying how (``plugin.fhir_injectates``); ``is_procedure_record`` says whether the
    line rests on a performed Procedure (a claim line or a Procedure draft) rather than on an order,
    which documents less.
    """

    key: str
    label: str
    resource_ref: str
    code: str
    date_of_service: dt.date | None
    units: Decimal = Decimal(1)
    item_sequence: int | None = None
    modifiers: tuple[str, ...] = ()
    body_sites: tuple[BodySite, ...] = ()
    indications: tuple[Coding, ...] = ()
    injected_substances: tuple[str, ...] = ()
    drugs_route_unknown: tuple[str, ...] = ()
    described_as: tuple[str, ...] = ()
    performers: tuple[Performer, ...] = ()
    service_state: str | None = None
    documented: frozenset[str] = frozenset()
    is_procedure_record: bool = False

    @cached_property
    def muscles(self) -> MuscleCount:
        """The muscles of the line's body sites, counted once however many rules ask."""
        return count_muscles(self.body_sites)

    @property
    def is_dry_needling(self) -> bool:
        """Whether the line carries CPT 20560 or 20561."""
        return is_dry_needling_code(self.code)


class PriorService(NamedTuple):
    """A service the record shows as already performed (an earlier Procedure); a tuple, as ``Coding`` is."""

    reference: str
    code: str
    date_of_service: dt.date | None


@dataclass(frozen=True)
class RuleOptions:
    """What an administrator chose to see beyond the defaults (``[documentation]`` in the config file).

    ``good_practice_elements``: list the good-practice documentation elements a line lacks (DOC-02,
    DOC-12, DOC-13 ...) in the documentation card; by default only the elements a payer requires are cards.
    """

    good_practice_elements: bool = False


@built_at_once
@dataclass(frozen=True)
class BillingContext:
    """Everything the rules may look at for one hook call."""

    hook: str
    patient_id: str
    lines: tuple[ServiceLine, ...]
    evaluated_on: dt.date
    history: tuple[PriorService, ...] = ()
    missing_data: tuple[str, ...] = field(default=())
    coverage: CoverageFacts | None = None
    conditions: tuple[ConditionFacts, ...] = ()
    options: RuleOptions = field(default_factory=RuleOptions)

    def derived(self, key: str, compute: Callable[[BillingContext], T]) -> T:
        """A value several rules derive from the context (its payer, say), computed once per context."""
        memo = self.__dict__.get("_derived")
        if memo is None:
            memo = self.__dict__["_derived"] = {}
        elif key in memo:
            return memo[key]  # type: ignore[no-any-return]
        value = memo[key] = compute(self)
        return value

    def date_of(self, line: ServiceLine) -> dt.date:
        """The line's date of service; an order without one is taken to be for the day it is signed."""
        return line.date_of_service or self.evaluated_on

    @cached_property
    def dry_needling_lines(self) -> tuple[ServiceLine, ...]:
        """The lines the dry-needling rules check (most rules ask: worked out once)."""
        return tuple(line for line in self.lines if line.is_dry_needling)
