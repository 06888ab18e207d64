"""How ``needlecheck serve`` starts: the config file from ``--config`` or ``NEEDLECHECK_CONFIG``, open mode only on
loopback unless ``--insecure``, and trusted clients allowed on any address, each said in the start-up log."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from needlecheck.cds_hooks import server as cds_server
from needlecheck.cds_hooks.cli import main
from needlecheck.cds_hooks.settings import Settings
from tests.support.client_tokens import ec_key

TRUSTED = ('public_base_url = "https://cds.example.org"\n\n[[trusted_clients]]\niss = "https://ehr.example.org"\n'
           '[[trusted_clients.keys]]\n' + "\n".join(f'{k} = "{v}"' for k, v in ec_key("k").public_jwk.items()) + "\n")


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[Settings]:
    """Record the settings ``serve`` would run gunicorn with, instead of running it."""
    started: list[Settings] = []
    monkeypatch.setattr(cds_server.NeedlecheckServer, "run", lambda self: started.append(self.settings))
    monkeypatch.setattr(cds_server, "build_app", lambda settings: None)  # no port, tables nor database here
    monkeypatch.delenv("NEEDLECHECK_CONFIG", raising=False)
    return started


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "needlecheck.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_needlecheck_config_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           served: list[Settings]) -> None:
    monkeypatch.setenv("NEEDLECHECK_CONFIG", str(config(tmp_path, "port = 8123\n" + TRUSTED)))
    assert main(["serve"]) == 0
    assert served[0].port == 8123 and served[0].trusted_clients[0].iss == "https://ehr.example.org"


def test_config_option_wins_over_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 served: list[Settings]) -> None:
    monkeypatch.setenv("NEEDLECHECK_CONFIG", str(tmp_path / "missing.toml"))
    assert main(["serve", "--config", str(config(tmp_path, "port = 8124\n"))]) == 0
    assert served[0].port == 8124


def test_a_bad_file_named_by_the_environment_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str],
                                                         served: list[Settings]) -> None:
    monkeypatch.setenv("NEEDLECHECK_CONFIG", str(config(tmp_path, "[auth]\nclock_leeway_seconds = 300\n")))
    assert main(["serve"]) == 2
    assert "auth.clock_leeway_seconds" in capsys.readouterr().err and not served


def test_trusted_clients_may_listen_on_a_public_address(tmp_path: Path, served: list[Settings],
                                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    assert main(["serve", "--host", "0.0.0.0", "--config", str(config(tmp_path, TRUSTED))]) == 0
    assert served and "client authentication required: 1 trusted CDS client(s)" in caplog.text
    assert "unauthenticated" not in caplog.text


def test_open_mode_on_a_public_address_needs_insecure_and_warns(served: list[Settings],
                                                                capsys: pytest.CaptureFixture[str],
                                                                caplog: pytest.LogCaptureFixture) -> None:
    assert main(["serve", "--host", "0.0.0.0"]) == 2 and "--insecure" in capsys.readouterr().err
    assert not served
    assert main(["serve", "--host", "0.0.0.0", "--insecure"]) == 0
    [warning] = [r for r in caplog.records if "unauthenticated" in r.getMessage()]
    assert warning.levelno == logging.WARNING and "NOT loopback" in warning.getMessage()
