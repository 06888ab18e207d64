"""The README's alert-governance example is a valid configuration that means what the README says."""

from __future__ import annotations

import re
from pathlib import Path

from needlecheck.cds_hooks.settings import load_settings
from needlecheck.plugin.findings import Severity
from needlecheck.plugin.rule_settings import RuleSetting

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_readme_example_loads(tmp_path: Path) -> None:
    (block,) = [b for b in re.findall(r"```toml\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
                if b.startswith("# alert governance")]
    config = tmp_path / "needlecheck.toml"
    config.write_text(block, encoding="utf-8")
    settings = load_settings(config)
    assert settings.suppress_overridden_days == 30
    assert settings.policy_dir == Path("/etc/needlecheck/policy")
    assert settings.rules == {"DN-DOC-010": RuleSetting(enabled=False),
                              "DN-PAYER-002": RuleSetting(severity=Severity.INFO)}
    client = settings.rule_settings_for("https://ehr.example.org")
    assert client["DN-SCOPE-001"] == RuleSetting(enabled=False)
    assert client["DN-CODE-001"].severity is Severity.CRITICAL
    assert client["DN-DOC-010"].enabled is False
