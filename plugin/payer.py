"""Which payer a coverage belongs to: its payer class and the policy pack whose rules apply.

The class comes from the Coverage.type codes: a Source of Payment Typology code
(``mappings/payer_classes.csv``, longest prefix wins) or an X12 claim filing indicator
(``mappings/claim_filing_indicators.csv``: MA, MB, 16 ...). The pack comes from the payer directory
(``mappings/payer_directory.csv``), which matches payor identifiers, payor names and plan names
(Coverage.class): MAC names and "Part B" are Medicare fee-for-service, a carrier's "Medicare" plan name is
Medicare Advantage and is tried before the carrier's commercial pack. A directory row that matches decides
the class as well (it is more specific than the broad type code it was allowed to apply under). Without a
directory match, Medicare fee-for-service and Medicare Advantage coverages still get their packs from the
class alone, since the NCD applies to both. A row without a pack (other Blue plans) gives the class only:
no source covers that payer's own policy, so the generic advice applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property

from needlecheck.mappings.payers import (
    CLAIM_FILING_INDICATOR_SYSTEMS,
    SOPT_SYSTEMS,
    DirectoryEntry,
    claim_filing_indicators,
    directory_entry_for,
    payer_class_of_sopt,
)
from needlecheck.plugin.context import BillingContext, CoverageFacts


class PayerClass(StrEnum):
    """Broad kinds of payer, as the Source of Payment Typology groups them."""

    MEDICARE_FFS = "medicare-ffs"
    MEDICARE_ADVANTAGE = "medicare-advantage"
    MEDICAID = "medicaid"
    TRICARE = "tricare"
    COMMERCIAL = "commercial"
    WORKERS_COMP = "workers-comp"
    OTHER = "other"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Payer:
    """The payer of the services being checked: its class, its policy pack (None: no pack), and its name."""

    payer_class: PayerClass
    pack: str | None
    name: str | None

    @cached_property  # most rules ask, several times a call
    def is_medicare(self) -> bool:
        """Whether NCD 30.3.3 governs coverage (traditional Medicare or Medicare Advantage)."""
        return self.payer_class in (PayerClass.MEDICARE_FFS, PayerClass.MEDICARE_ADVANTAGE)


UNKNOWN_PAYER = Payer(PayerClass.UNKNOWN, None, None)

_PACK_OF_CLASS = {
    PayerClass.MEDICARE_FFS: "medicare-ffs",
    PayerClass.MEDICARE_ADVANTAGE: "medicare-advantage",
}


def sopt_class(coverage: CoverageFacts) -> PayerClass:
    """The payer class the Coverage.type SOPT codes give; the most specific (longest) code decides."""
    codes = [coding.code for coding in coverage.type_codes if coding.code and coding.system in SOPT_SYSTEMS]
    codes.sort(key=len, reverse=True)
    for code in codes:
        row = payer_class_of_sopt(code.strip())
        if row is not None:
            return PayerClass(row.payer_class)
    return PayerClass.UNKNOWN


def type_class(coverage: CoverageFacts) -> PayerClass:
    """The payer class Coverage.type gives: its SOPT code, else its X12 claim filing indicator."""
    by_sopt = sopt_class(coverage)
    if by_sopt is not PayerClass.UNKNOWN:
        return by_sopt
    for coding in coverage.type_codes:
        if coding.system in CLAIM_FILING_INDICATOR_SYSTEMS and coding.code:
            row = claim_filing_indicators().get(coding.code.strip().upper())
            if row is not None:
                return PayerClass(row.payer_class)
    return PayerClass.UNKNOWN


def directory_entry(coverage: CoverageFacts, payer_class: PayerClass) -> DirectoryEntry | None:
    """The first directory row that names this payor and may apply to a coverage of ``payer_class``."""
    return directory_entry_for(coverage.payor_identifiers, coverage.payor_names + coverage.plan_names,
                               payer_class.value)


def payer_of(context: BillingContext) -> Payer:
    """The payer of the call's coverage; no coverage (or nothing recognisable in it) is ``UNKNOWN``."""
    # Most rules ask; the directory's name patterns are matched once per call.
    return context.derived("payer", _payer_of)


def _payer_of(context: BillingContext) -> Payer:
    coverage = context.coverage
    if coverage is None:
        return UNKNOWN_PAYER
    by_code = type_class(coverage)
    entry = directory_entry(coverage, by_code)
    name = coverage.payor_names[0] if coverage.payor_names else None
    if entry is not None:
        payer_class = PayerClass(entry.payer_class)
        return Payer(payer_class, entry.pack or _PACK_OF_CLASS.get(payer_class), name or entry.display_name)
    return Payer(by_code, _PACK_OF_CLASS.get(by_code), name)
