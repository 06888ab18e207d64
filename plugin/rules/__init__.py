"""The rule registry: every module in this package that defines ``RULE`` is a rule.

``needlecheck rules`` and the engine both read this registry, so a new rule is a new module.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import replace
from functools import cache

from needlecheck.plugin.rule import Rule


@cache
def all_rules() -> tuple[Rule, ...]:
    """Every rule, ordered by id; two rules with one id are a programming error."""
    rules: dict[str, Rule] = {}
    for module_info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        rule = getattr(module, "RULE", None)
        if rule is None:
            continue
        if rule.rule_id in rules:
            raise RuntimeError(f"rule id {rule.rule_id} is defined twice")
        # The module docstring is the rule's documentation, as ruff's rules carry theirs.
        rules[rule.rule_id] = replace(rule, docs=(module.__doc__ or "").strip())
    return tuple(rules[rule_id] for rule_id in sorted(rules))
