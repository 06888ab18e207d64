"""Short builders for engine values, so rule tests read like the cases they describe."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from needlecheck.plugin.context import BillingContext, PriorService, ServiceLine
from needlecheck.plugin.terms import ICD10CM_SYSTEM, SNOMED_SYSTEM, BodySite, Coding

TRAPEZIUS = "31764008"
LEVATOR_SCAPULAE = "11327007"
INFRASPINATUS = "72573008"
SUPRASPINATUS = "6423006"
ERECTOR_SPINAE = "44947003"
BACK_REGION = "77568009"
LEFT, RIGHT, BOTH = "7771000", "24028007", "51440002"
DOS = dt.date(2026, 3, 2)
MYALGIA = Coding(ICD10CM_SYSTEM, "M79.18", "Myalgia, other site")


def site(code: str | None = None, *laterality: str, text: str | None = None) -> BodySite:
    """A body site with a SNOMED code (or expression) and laterality qualifiers."""
    codings = (Coding(SNOMED_SYSTEM, code),) if code else ()
    return BodySite(codings, text, tuple(laterality))


def line(code: str, *sites: BodySite, day: dt.date | None = DOS, units: int = 1, sequence: int | None = None,
         substances: tuple[str, ...] = (), indications: tuple[Coding, ...] = (MYALGIA,),
         modifiers: tuple[str, ...] = (), described_as: tuple[str, ...] = (),
         route_unknown: tuple[str, ...] = ()) -> ServiceLine:
    """A claim line (with ``sequence``) or an order."""
    if sequence is None:
        key = ref = "ServiceRequest/sr-1"
        label = "order ServiceRequest/sr-1"
    else:
        key, ref, label = f"Claim/c1#item-{sequence}", "Claim/c1", f"claim line {sequence}"
    return ServiceLine(key=key, label=label, resource_ref=ref, code=code, date_of_service=day, units=Decimal(units),
                       item_sequence=sequence, body_sites=sites, indications=indications,
                       injected_substances=substances, drugs_route_unknown=route_unknown, modifiers=modifiers,
                       described_as=described_as)


def context(*lines: ServiceLine, history: tuple[PriorService, ...] = (), today: dt.date = DOS) -> BillingContext:
    """A claim-create context over ``lines``."""
    return BillingContext(hook="claim-create", patient_id="p1", lines=lines, evaluated_on=today, history=history)


def two_muscles() -> tuple[BodySite, BodySite]:
    """Left and right trapezius: two muscles."""
    return site(TRAPEZIUS, LEFT), site(TRAPEZIUS, RIGHT)


def three_muscles() -> tuple[BodySite, BodySite, BodySite]:
    """Left and right trapezius and left levator scapulae."""
    return site(TRAPEZIUS, LEFT), site(TRAPEZIUS, RIGHT), site(LEVATOR_SCAPULAE, LEFT)
