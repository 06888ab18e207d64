"""What each gunicorn worker does around its calls: threads from the settings, a warm-up call that leaves no
trace in the database, and an audit writer closed by the worker's exit hook."""

from __future__ import annotations

import socket
import sys
import threading
from pathlib import Path

import pytest

from needlecheck.cds_hooks import server as cds_server
from needlecheck.cds_hooks.audit_writer import QueuedAuditStore
from needlecheck.cds_hooks.settings import Settings, SettingsError, load_settings
from needlecheck.cds_hooks.warm_up import warm_up_call

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
        # What the first suggestion needs is loaded before the fork, so every worker shares it.
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
        result = warm_up_call(application)
        assert [card["extension"]["org.needlecheck.rule-id"] for card in result.body["cards"]] == ["DN-CODE-001"]
        assert result.issued == ()  # no card recorded as shown
        assert store.invocations() == []
        assert store.report_data(None, None).issued == []
    finally:
        application.extensions["needlecheck.pool"].shutdown(wait=False)
        store.close()
