"""Every table, source file and installed data set of ``mappings/``, loaded and validated in one call.

``needlecheck serve`` calls ``load_all`` before it listens (in the gunicorn master, so forked workers share the
loaded tables), and ``check`` and ``rules`` before they evaluate anything: a missing or malformed file stops
them at once with a ``MappingError`` naming the file, row and field, instead of surfacing on a hook call.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from needlecheck.mappings.code_pairs import code_pairs
from needlecheck.mappings.code_systems import code_system_spellings
from needlecheck.mappings.cpt import cpt_codes
from needlecheck.mappings.datasets import configure_datasets, load_all_datasets
from needlecheck.mappings.documentation import documentation_elements, documentation_requirements
from needlecheck.mappings.dry_needling_substitutes import substitutes
from needlecheck.mappings.fhir_types import fhir_types
from needlecheck.mappings.frequency_limits import frequency_limits
from needlecheck.mappings.icd10cm import icd10cm_changes, preload_release
from needlecheck.mappings.liability_modifiers import liability_modifiers
from needlecheck.mappings.medicare_ncd import ncd_criteria, ncd_exclusions, ncd_scope
from needlecheck.mappings.mpfs_indicators import mpfs_indicators
from needlecheck.mappings.muscles import muscle_catalog
from needlecheck.mappings.ncci_mue import mue_defaults
from needlecheck.mappings.ncci_ptp import ncci_modifiers
from needlecheck.mappings.payer_policies import payer_policies
from needlecheck.mappings.payers import claim_filing_indicators, payer_classes, payer_directory
from needlecheck.mappings.payment_figures import payment_figures
from needlecheck.mappings.provider_types import provider_type_rows
from needlecheck.mappings.scope_of_practice import scope_of_practice
from needlecheck.mappings.sources import policy_sources

# The cached loader of every file shipped in mappings/ (tests/test_load_all.py checks none is left out).
# Sources first: the tables' source columns are checked against them.
TABLE_LOADERS: tuple[Callable[[], object], ...] = (
    policy_sources,
    code_pairs,
    code_system_spellings,
    cpt_codes,
    documentation_elements,
    documentation_requirements,
    substitutes,
    fhir_types,
    frequency_limits,
    icd10cm_changes,
    liability_modifiers,
    ncd_criteria,
    ncd_scope,
    ncd_exclusions,
    mpfs_indicators,
    muscle_catalog,
    mue_defaults,
    ncci_modifiers,
    payer_policies,
    payment_figures,
    payer_classes,
    claim_filing_indicators,
    payer_directory,
    provider_type_rows,
    scope_of_practice,
)


def load_all(datasets_directory: Path | None) -> dict[str, bool]:
    """Load and validate every shipped table and source file, the ICD-10-CM release, and the data sets installed
    under ``datasets_directory`` (which becomes the configured directory); whether each data set is present.

    Raises ``MappingError`` (file, row, field) on the first missing or malformed file.
    """
    for loader in TABLE_LOADERS:
        loader()
    # The ICD-10-CM release takes seconds to parse: pay it at start-up, not in a clinician's first hook call.
    preload_release()
    configure_datasets(datasets_directory)
    return load_all_datasets()
