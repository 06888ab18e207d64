"""``[rules]`` in the config file: the administrator's rule options, validated like every other setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from needlecheck.cds_hooks.settings import SettingsError, load_settings


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "needlecheck.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_good_practice_documentation_is_off_by_default_and_can_be_set(tmp_path: Path) -> None:
    assert load_settings(config(tmp_path, "")).rules.good_practice_documentation is False
    on = load_settings(config(tmp_path, "[rules]\ngood_practice_documentation = true\n"))
    assert on.rules.good_practice_documentation is True


@pytest.mark.parametrize(("text", "named"), [
    ("[rules]\nbogus = true\n", "rules.bogus"),
    ("[rules]\ngood_practice_documentation = 1\n", "rules.good_practice_documentation"),
    ("rules = 3\n", "rules"),
])
def test_a_bad_rule_option_names_the_setting(tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(SettingsError, match=named.replace(".", r"\.")):
        load_settings(config(tmp_path, text))
