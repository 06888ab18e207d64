"""``[documentation]`` in the config file: the administrator's rule options, validated like every other setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from needlecheck.cds_hooks.settings import SettingsError, load_settings


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "needlecheck.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_good_practice_elements_is_off_by_default_and_can_be_set(tmp_path: Path) -> None:
    assert load_settings(config(tmp_path, "")).rule_options.good_practice_elements is False
    on = load_settings(config(tmp_path, "[documentation]\ngood_practice_elements = true\n"))
    assert on.rule_options.good_practice_elements is True


@pytest.mark.parametrize(("text", "named"), [
    ("[documentation]\nbogus = true\n", "documentation.bogus"),
    ("[documentation]\ngood_practice_elements = 1\n", "documentation.good_practice_elements"),
    ("documentation = 3\n", "documentation"),
])
def test_a_bad_rule_option_names_the_setting(tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(SettingsError, match=named.replace(".", r"\.")):
        load_settings(config(tmp_path, text))
