"""The installed product is the tested product: the sdist and the wheel built from it hold every file the code reads,
and the wheel installed in a fresh venv (no editable install, no checkout on ``sys.path``, another working directory)
answers the README's example with the right cards from its console script and from ``needlecheck serve``.

The venv is built once for the module (about a minute: build, then pip installs the dependencies as a user's pip
would). A corrupted copy of the installed package (a bad row, a missing table, no ``policy_sources`` folder) makes
``needlecheck serve`` stop before it listens, with one line naming the file, row and field and exit status 2.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from needlecheck.plugin.rules import all_rules

REPO = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
VERSION = PROJECT["version"]
REQUESTS = REPO / "fixtures" / "requests"
MANIFEST: list[dict[str, Any]] = yaml.safe_load((REQUESTS / "manifest.yaml").read_text(encoding="utf-8"))
EXAMPLE = "order-sign/code001-20560-three-muscles-postcoordinated.json"  # the README's request
CLAIM = "claim-create/code002-two-lines-20560-20561.json"
# Every file the code reads at run time (tests/test_load_all.py proves load_all opens each of these).
RUNTIME_FILES = sorted(
    [f"mappings/{path.name}" for path in (REPO / "mappings").glob("*.csv")]
    + [f"mappings/policy_sources/{path.name}" for path in (REPO / "mappings" / "policy_sources").glob("*.yaml")]
    + ["cds_hooks/openapi.yaml"])
NOT_SOURCE = shutil.ignore_patterns(".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
                                    ".ruff_cache")
TIMEOUT = 120.0  # a guard against a hang, not a speed requirement


@dataclass
class Installation:
    """The built distributions and a venv holding only the wheel and its dependencies."""

    sdist: Path
    wheel: Path
    venv: Path
    workdir: Path  # outside the checkout
    env: dict[str, str]

    def run(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """``needlecheck ARGS`` from the venv, in the working directory outside the checkout."""
        return subprocess.run([str(self.venv / "bin" / "needlecheck"), *args], cwd=self.workdir,
                              env={**self.env, **(env or {})}, capture_output=True, text=True, timeout=TIMEOUT,
                              check=False)

    @property
    def package(self) -> Path:
        """The installed ``needlecheck`` package folder."""
        [package] = self.venv.glob("lib/python*/site-packages/needlecheck")
        return package


def _clean_env(home: Path) -> dict[str, str]:
    # What a user's shell gives: no PYTHONPATH, no NEEDLECHECK_* of the test run, no proxies. The data sets of
    # tests/data are installed as an operator installs official files (the manifest's cards expect them).
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
           "NEEDLECHECK_DATASETS_DIR": str(REPO / "tests" / "data"), "NEEDLECHECK_DATA_DIR": str(home / "data")}
    for key in ("PIP_CONFIG_FILE", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_CERT",
                "PIP_DEFAULT_TIMEOUT", "PIP_DISABLE_PIP_VERSION_CHECK"):
        if key in os.environ:
            env[key] = os.environ[key]
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installation:
    """Build the sdist, then the wheel from the sdist (``python -m build``) from a copy of the sources, and install
    the wheel with its dependencies into a fresh venv."""
    root = tmp_path_factory.mktemp("installed")
    source, dist, venv, workdir = root / "source", root / "dist", root / "venv", root / "work"
    shutil.copytree(REPO, source, ignore=NOT_SOURCE)  # the build writes egg-info next to the sources
    workdir.mkdir()
    env = _clean_env(workdir)
    build_env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    subprocess.run([sys.executable, "-m", "build", "--outdir", str(dist), str(source)], cwd=root, env=build_env,
                   check=True, capture_output=True, timeout=600)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=TIMEOUT)
    [sdist], [wheel] = dist.glob("*.tar.gz"), dist.glob("*.whl")
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)], cwd=workdir, env=env, check=True,
                   capture_output=True, timeout=900)
    return Installation(sdist, wheel, venv, workdir, env)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _rule_ids(response: dict[str, Any], indicator: str) -> list[str]:
    return sorted(card["extension"]["org.needlecheck.rule-id"] for card in response["cards"]
                  if card["indicator"] == indicator)


def _expected(fixture: str) -> tuple[list[str], list[str]]:
    [case] = [case for case in MANIFEST if case["file"] == fixture]
    return sorted(case["expect_rules"]), sorted(case.get("expect_info", []))


# ------------------------------------------------------------------------------------------------ contents


def test_the_sdist_and_the_wheel_hold_every_runtime_file(installed: Installation) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        in_wheel = set(wheel.namelist())
    with tarfile.open(installed.sdist) as sdist:
        in_sdist = {name.partition("/")[2] for name in sdist.getnames()}

    assert [f for f in RUNTIME_FILES if f"needlecheck/{f}" not in in_wheel] == []
    assert [f for f in RUNTIME_FILES if f not in in_sdist] == []
    assert len(RUNTIME_FILES) > 25
    assert "LICENSE" in in_sdist and any(".dist-info/" in name and name.endswith("/LICENSE") for name in in_wheel)


def test_only_the_needlecheck_namespace_is_installed(installed: Installation) -> None:
    python = str(installed.venv / "bin" / "python")
    for name in ("plugin", "mappings", "cds_hooks"):  # names other distributions ship
        collision = subprocess.run([python, "-c", f"import {name}"], cwd=installed.workdir, env=installed.env,
                                   capture_output=True, text=True, timeout=TIMEOUT, check=False)
        assert collision.returncode == 1 and f"No module named '{name}'" in collision.stderr
    where = subprocess.run(
        [python, "-c", "import needlecheck.plugin, needlecheck.mappings, needlecheck.cds_hooks, sys; "
                       "print(needlecheck.__file__); print(sys.path)"],
        cwd=installed.workdir, env=installed.env, capture_output=True, text=True, timeout=TIMEOUT, check=True)
    assert where.stdout.startswith(str(installed.package)) and str(REPO) not in where.stdout


# ------------------------------------------------------------------------------------------- console script


def test_version_and_help_name_every_command(installed: Installation) -> None:
    version = installed.run("--version")
    assert (version.returncode, version.stdout) == (0, f"needlecheck {VERSION}\n")
    helped = installed.run("--help")
    assert helped.returncode == 0
    for command in ("serve", "check", "rules", "audit"):
        assert any(line.split()[:1] == [command] and len(line.split()) > 3 for line in helped.stdout.splitlines())


def test_rules_lists_every_rule(installed: Installation) -> None:
    listed = installed.run("rules")
    assert listed.returncode == 0, listed.stderr
    assert [rule.rule_id for rule in all_rules() if f"\n{rule.rule_id}  " not in f"\n{listed.stdout}"] == []


@pytest.mark.parametrize("fixture", [EXAMPLE, CLAIM])
def test_check_gives_the_expected_cards(installed: Installation, fixture: str) -> None:
    checked = installed.run("check", str(REQUESTS / fixture))
    assert checked.returncode == 0, checked.stderr
    response = json.loads(checked.stdout)
    assert (_rule_ids(response, "warning"), _rule_ids(response, "info")) == _expected(fixture)


def test_serve_answers_the_readme_example(installed: Installation) -> None:
    port = _free_port()
    body = (REQUESTS / EXAMPLE).read_bytes()
    server = subprocess.Popen([str(installed.venv / "bin" / "needlecheck"), "serve", "--port", str(port),
                               "--workers", "2"], cwd=installed.workdir, env=installed.env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        answer = _first_answer(server, f"http://127.0.0.1:{port}/cds-services/dry-needling-order-sign", body)
    finally:
        server.send_signal(signal.SIGTERM)
        _, log = server.communicate(timeout=30)
    assert answer is not None, log.decode(errors="replace")[-3000:]
    assert answer.status_code == 200
    assert (_rule_ids(answer.json(), "warning"), _rule_ids(answer.json(), "info")) == _expected(EXAMPLE)
    assert server.returncode == 0 and b"Traceback" not in log


def _first_answer(server: subprocess.Popen[bytes], url: str, body: bytes) -> requests.Response | None:
    deadline = time.monotonic() + TIMEOUT
    with requests.Session() as session:
        session.trust_env = False
        while time.monotonic() < deadline and server.poll() is None:
            try:
                return session.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=10)
            except requests.ConnectionError:
                time.sleep(0.1)
    return None


# ------------------------------------------------------------------------------------------------ fail fast


@pytest.fixture
def corrupted(installed: Installation, tmp_path: Path) -> Iterator[Path]:
    """A copy of the installed package, first on ``sys.path`` through PYTHONPATH, for the test to damage."""
    shutil.copytree(installed.package, tmp_path / "needlecheck", ignore=shutil.ignore_patterns("__pycache__"))
    yield tmp_path / "needlecheck"


def _serve_fails(installed: Installation, package: Path) -> str:
    """Run ``needlecheck serve`` on the damaged copy; it must exit 2 before listening, with one line."""
    port = _free_port()
    started = installed.run("serve", "--port", str(port), env={"PYTHONPATH": str(package.parent)})
    output = (started.stdout + started.stderr).strip()
    assert started.returncode == 2, output
    assert len(output.splitlines()) == 1 and "Traceback" not in output, output
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))  # nothing listens there
    return output


def test_a_malformed_row_stops_serve_naming_file_row_and_field(installed: Installation, corrupted: Path) -> None:
    table = corrupted / "mappings" / "documentation_elements.csv"
    rows = list(csv.DictReader(io.StringIO(table.read_text(encoding="utf-8"))))
    rows[0]["source_ids"] = "NOPE-99"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    table.write_text(out.getvalue(), encoding="utf-8")

    assert _serve_fails(installed, corrupted) == (
        "needlecheck: documentation_elements.csv, row 2, field 'source_ids': 'NOPE-99' is not a source in "
        "policy_sources/")


def test_a_missing_table_stops_serve_naming_it(installed: Installation, corrupted: Path) -> None:
    (corrupted / "mappings" / "cpt_codes.csv").unlink()
    assert _serve_fails(installed, corrupted) == (
        f"needlecheck: {corrupted / 'mappings' / 'cpt_codes.csv'}: cannot be read: No such file or directory")


def test_a_missing_policy_sources_folder_stops_serve(installed: Installation, corrupted: Path) -> None:
    shutil.rmtree(corrupted / "mappings" / "policy_sources")
    assert _serve_fails(installed, corrupted) == (
        f"needlecheck: {corrupted / 'mappings' / 'policy_sources'}: folder is missing (the installation is "
        "incomplete)")


def test_a_sources_file_that_is_not_yaml_stops_serve_in_one_line(installed: Installation, corrupted: Path) -> None:
    sources = corrupted / "mappings" / "policy_sources" / "coding.yaml"
    sources.write_text(sources.read_text(encoding="utf-8") + "\nCS-99: [unclosed\n", encoding="utf-8")
    assert _serve_fails(installed, corrupted).startswith("needlecheck: coding.yaml: not valid YAML: ")
