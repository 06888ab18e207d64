"""What a release carries besides code: the license pyproject names, a changelog, a ``--help`` naming every command,
README commands that install the product as users get it (and CI running the README's test command), a systemd
unit whose command exists, no citation of a path outside the repository, and a test collection that leaves no
temporary directory behind."""

from __future__ import annotations

import argparse
import configparser
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

from needlecheck.cds_hooks.cli import EXIT_INVALID, build_parser

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text(encoding="utf-8")
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
# Built from parts so that this file does not cite what it looks for.
OUTSIDE_PATHS = ("../" + "shared", "shared/" + "reference")
CITING_FOLDERS = ("docs", "mappings", "plugin", "cds_hooks", "tests", "fixtures", "bench", "needlecheck")
SENTENCE_END = re.compile(r"[.!?](\s|$)")
TEXT_SUFFIXES = {".md", ".py", ".csv", ".yaml", ".yml", ".json", ".toml", ".txt"}


def readme_block(heading: str, language: str) -> str:
    """The first fenced ``language`` block after ``heading`` in the README."""
    section = README.split(heading + "\n", 1)[1]
    return section.split(f"```{language}\n", 1)[1].split("```", 1)[0]


def test_the_license_file_is_the_apache_license_pyproject_names() -> None:
    assert PROJECT["license"] == {"text": "Apache-2.0"}
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text  # the full text, not a pointer to it


def test_the_changelog_has_an_unreleased_section_and_the_current_version() -> None:
    changelog = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "## [Unreleased]" in changelog
    assert re.search(rf"^## \[{re.escape(PROJECT['version'])}\] - \d{{4}}-\d{{2}}-\d{{2}}$", changelog, re.MULTILINE)


def test_help_lists_every_command_with_one_sentence() -> None:
    parser = build_parser()
    [commands] = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    listed = {choice.dest: choice.help for choice in commands._choices_actions}
    assert set(listed) == set(commands.choices) >= {"serve", "check", "rules", "audit"}
    # One sentence each: a sentence ends at ".", "!" or "?" before a space or the end, so a file name
    # ("index.html") is no sentence break but "Writes it. Then exits" is two sentences.
    assert all(summary and not SENTENCE_END.search(summary.rstrip(".!?")) for summary in listed.values()), listed
    text = parser.format_help()
    for name, summary in listed.items():
        assert re.search(rf"^\s+{name}\s+{re.escape(summary.split()[0])}", text, re.MULTILINE), name
    assert "--version" in text


def test_the_readme_installs_the_product_and_ci_runs_its_test_command() -> None:
    install, test = re.findall(r"```bash\n(.+?)\n```", README, re.DOTALL)[:2]
    assert "pip install -q . &&" in install and " -e " not in install and install.endswith("needlecheck serve")
    ci_lines = (REPO / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()
    assert ci_lines[-1] == test


def test_the_systemd_unit_runs_a_command_the_parser_accepts() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None, comment_prefixes=("#", ";"))
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    unit.read_string(readme_block("### systemd", "ini"))
    assert unit.sections() == ["Unit", "Service", "Install"]
    service = unit["Service"]
    program, *arguments = shlex.split(service["ExecStart"])
    assert Path(program).name == "needlecheck"
    parsed = build_parser().parse_args(arguments)  # exits (SystemExit) on an option serve does not have
    assert parsed.command == "serve" and parsed.config == Path("/etc/needlecheck/needlecheck.toml")
    assert service["RestartPreventExitStatus"] == str(EXIT_INVALID)


def test_no_document_cites_a_path_outside_the_repository() -> None:
    files = [REPO / "README.md", REPO / "CHANGELOG.md"] + [
        path for folder in CITING_FOLDERS for path in (REPO / folder).rglob("*")
        if path.suffix in TEXT_SUFFIXES and "__pycache__" not in path.parts]
    citing = [f"{path.relative_to(REPO)}:{number}" for path in files
              for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
              if any(outside in line for outside in OUTSIDE_PATHS)]
    assert citing == []


def test_collecting_the_suite_leaves_no_temporary_directory(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch)}
    collected = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
                               cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert collected.returncode == 0, collected.stdout[-3000:] + collected.stderr[-3000:]
    assert sorted(path.name for path in scratch.iterdir()) == []
