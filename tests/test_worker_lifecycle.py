"""What each gunicorn worker does around its calls: threads from the settings, a warm-up call that leaves no
trace in the database, and an audit writer closed by the worker's exit hook."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from needlecheck.cds_hooks import server as cds_server
from needlecheck.cds_hooks.audit_writer import QueuedAuditStore
from needlecheck.cds_hooks.settings import Settings, SettingsError, load_settings
from needlecheck.cds_hooks.warm_up import warm_up, warm_up_call

SECRET = "a-test-secret-of-at-least-32-characters"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_threads_and_the_worker_hooks_reach_gunicorn(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", port=free_port(), threads=2)
    application = cds_server.build_app(settings)
    try:
        configured = cds_server.NeedlecheckServer(settings, application).cfg
        assert configured.threads == 2 and configured.worker_class_str == "gthread"
        assert configured.post_worker_init is cds_server._post_worker_init
        assert configured.worker_exit is cds_server._worker_exit
        assert isinstance(application.extensions["needlecheck.store"], QueuedAuditStore)
    finally:
        application.extensions["needlecheck.pool"].shutdown(wait=False)
        application.extensions["needlecheck.store"].close()


def test_the_master_warms_up_without_leaving_a_thread_to_cross_the_fork(tmp_path: Path) -> None:
    before = set(threading.enumerate())
    application = cds_server.build_app(Settings(data_dir=tmp_path / "data", port=free_port()))
    try:
        assert set(threading.enumerate()) == before
        pool = application.extensions["needlecheck.pool"]
        assert not pool._threads  # the app's FHIR pool starts its threads in a worker, on first use
    finally:
        application.extensions["needlecheck.pool"].shutdown(wait=False)
        application.extensions["needlecheck.store"].close()


def test_the_master_loads_neither_the_suggestion_models_nor_pyjwt_in_open_mode(tmp_path: Path) -> None:
    # Each costs the start before the service listens (the models ~0.7 s, PyJWT with cryptography ~0.1 s); the
    # workers load the models once they serve, and open mode never verifies a token. In a process of its own:
    # this one may have imported them in another test.
    script = (f"from needlecheck.cds_hooks import server; from needlecheck.cds_hooks.settings import Settings; "
              f"import pathlib, sys; app = server.build_app(Settings(data_dir=pathlib.Path({str(tmp_path)!r}), "
              f"port={free_port()})); print(sorted(m for m in sys.modules if m.startswith(('fhir.resources', 'jwt'))))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]", done.stderr


def test_the_engine_warm_up_fires_no_card_and_the_suggestion_warm_up_one_with_a_suggestion(tmp_path: Path) -> None:
    application = cds_server.build_app(Settings(data_dir=tmp_path / "data", port=free_port()))
    try:
        assert warm_up_call(application, suggestion=False).body["cards"] == []
        cards = warm_up_call(application).body["cards"]
        assert [card["extension"]["org.needlecheck.rule-id"] for card in cards] == ["DN-CODE-001"]
        assert cards[0]["suggestions"][0]["actions"][0]["resource"]["code"]["coding"][0]["code"] == "20560"
    finally:
        application.extensions["needlecheck.pool"].shutdown(wait=False)
        application.extensions["needlecheck.store"].close()


def test_a_worker_loads_the_suggestion_models_in_the_background(tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    application = cds_server.build_app(Settings(data_dir=tmp_path / "data", port=free_port()))
    try:
        with caplog.at_level(logging.INFO, logger="needlecheck"):
            thread = warm_up(application)
            assert thread.daemon and thread.name == "needlecheck-warm-up"
            thread.join(timeout=120)
        assert not thread.is_alive()
        messages = [record.getMessage() for record in caplog.records if record.name == "needlecheck"]
        assert [m.split(" in ")[0] for m in messages] == ["worker warmed up: 0 card(s)",
                                                          "suggestion models loaded: 1 card(s)"]
        assert {"fhir.resources.R4B.claim", "fhir.resources.R4B.servicerequest"} <= set(sys.modules)
    finally:
        application.extensions["needlecheck.pool"].shutdown(wait=False)
        application.extensions["needlecheck.store"].close()


def test_audit_queue_0_writes_in_the_request(tmp_path: Path) -> None:
    application = cds_server.build_app(Settings(data_dir=tmp_path / "data", port=free_port(), audit_queue=0))
    try:
        assert not isinstance(application.extensions["needlecheck.store"], QueuedAuditStore)
    finally:
        application.extensions["needlecheck.pool"].shutdown(wait=False)
        application.extensions["needlecheck.store"].close()


@pytest.mark.parametrize(("text", "named"), [("threads = 0", "threads"), ("audit_queue = -1", "audit_queue"),
                                              ('threads = "4"', "threads")])
def test_bad_thread_and_queue_settings_are_named(tmp_path: Path, text: str, named: str) -> None:
    path = tmp_path / "needlecheck.toml"
    path.write_text(text + "\n", encoding="utf-8")
    with pytest.raises(SettingsError, match=f"'{named}'"):
        load_settings(path)


def test_the_warm_up_call_answers_and_leaves_nothing_in_the_database(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", port=free_port(), suppress_overridden_days=30,
                        suppression_secret=SECRET)
    application = cds_server.build_app(settings)
    store = application.extensions["needlecheck.store"]
    try:
        cds_server._post_worker_init(type("Worker", (), {"wsgi": application})())
        for thread in threading.enumerate():  # the worker's background warm-up call, which writes nothing either
            if thread.name == "needlecheck-warm-up":
                thread.join(timeout=120)
        result = warm_up_call(application)
        assert [card["extension"]["org.needlecheck.rule-id"] for card in result.body["cards"]] == ["DN-CODE-001"]
        assert result.issued == ()  # no card recorded as shown
        assert store.invocations() == []
        assert store.report_data(None, None).issued == []
    finally:
        application.extensions["needlecheck.pool"].shutdown(wait=False)
        store.close()
