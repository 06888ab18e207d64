"""The registry finds every rule, each with a docstring in the ruff shape and resolvable sources."""

from __future__ import annotations

from pathlib import Path

from needlecheck.plugin.rules import all_rules

RULES_DIR = Path(__file__).resolve().parent.parent / "plugin" / "rules"
TESTS_DIR = Path(__file__).resolve().parent / "rules"


def test_every_rule_module_is_registered_with_a_test_file() -> None:
    modules = {path.stem for path in RULES_DIR.glob("*.py") if path.stem != "__init__"}
    assert len(all_rules()) == len(modules)
    for module in modules:
        assert (TESTS_DIR / f"test_{module}.py").exists(), module


def test_every_rule_documents_itself_and_cites_sources() -> None:
    for rule in all_rules():
        for heading in ("## What it does", "## Why is this bad?", "## Example", "## Use instead"):
            assert heading in rule.docs, (rule.rule_id, heading)
        assert rule.docs.startswith(rule.rule_id)
        assert rule.sources and all(source.url.startswith("https://") for source in rule.sources)


def test_docs_rules_md_is_generated_from_the_registry() -> None:
    from needlecheck.cds_hooks.cli import rules_markdown

    docs = Path(__file__).resolve().parent.parent / "docs" / "rules.md"
    assert docs.read_text(encoding="utf-8") == rules_markdown(), "run: needlecheck rules --markdown > docs/rules.md"


def test_the_readme_lists_every_rule() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    assert [rule.rule_id for rule in all_rules() if f"| {rule.rule_id} |" not in readme] == []


def test_every_rule_declares_its_family_and_docs_name_it() -> None:
    from needlecheck.plugin.families import FAMILY_TEXT, Family

    docs = (Path(__file__).resolve().parent.parent / "docs" / "rules.md").read_text(encoding="utf-8")
    for rule in all_rules():
        assert isinstance(rule.family, Family) and rule.family in FAMILY_TEXT, rule.rule_id
        section = docs.split(f"## {rule.rule_id}", 1)[1].split("\n## ", 1)[0]
        assert f"Family: {rule.family}." in section, rule.rule_id
