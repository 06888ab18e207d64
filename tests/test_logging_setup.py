"""``log_format`` in the configuration, the JSON formatter, and the access log line of each request."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import threading
import time
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from needlecheck.cds_hooks.logging_setup import (
    JsonGunicornLogger,
    _BackgroundOutput,
    _OutputHandler,
    configure_logging,
    gunicorn_logger_class,
    log_formatter,
    log_soon,
    stop_background_logs,
    write_logs_in_background,
)
from needlecheck.cds_hooks.settings import Settings, SettingsError, load_settings

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "requests"


def config(tmp_path: Path, text: str) -> Path:
    """A config file holding ``text``."""
    path = tmp_path / "needlecheck.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_log_format_defaults_to_text_and_accepts_json(tmp_path: Path) -> None:
    assert Settings().log_format == "text"
    assert load_settings(config(tmp_path, 'log_format = "json"\n')).log_format == "json"


@pytest.mark.parametrize("value", ['"yaml"', "1", '"JSON"'])
def test_a_bad_log_format_names_the_setting(tmp_path: Path, value: str) -> None:
    with pytest.raises(SettingsError, match="'log_format'"):
        load_settings(config(tmp_path, f"log_format = {value}\n"))


def test_the_json_formatter_writes_one_object_a_line_with_the_extra_fields() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(log_formatter("json"))
    logger = logging.getLogger("needlecheck.test-json")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("two\nlines", extra={"route": "/readyz", "status": 503})
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2  # a newline in a message or a traceback stays inside its JSON string
    first, second = (json.loads(line) for line in lines)
    assert (first["level"], first["logger"], first["message"]) == ("WARNING", "needlecheck.test-json", "two\nlines")
    assert (first["route"], first["status"]) == ("/readyz", 503)
    assert {"time", "pid"} <= set(first)
    assert "ValueError" in second["exc_info"]


def test_gunicorn_uses_its_own_logger_for_text_and_the_json_one_for_json() -> None:
    assert gunicorn_logger_class("json") is JsonGunicornLogger
    assert gunicorn_logger_class("text") is not JsonGunicornLogger


def test_each_request_gets_one_access_line_with_the_route_template_only(
        client: FlaskClient, caplog: pytest.LogCaptureFixture) -> None:
    body = json.loads((FIXTURES / "order-sign/code001-20561-two-muscles.json").read_text(encoding="utf-8"))
    with caplog.at_level(logging.INFO, logger="needlecheck.access"):
        client.post("/cds-services/dry-needling-order-sign?patient=nc-pat-1", json=body)
        client.get("/livez?token=tok-3f9e")
        client.get("/Patient/nc-pat-1")
    access = [record for record in caplog.records if record.name == "needlecheck.access"]
    assert [(r.method, r.route, r.status) for r in access] == [  # type: ignore[attr-defined]
        ("POST", "/cds-services/<service_id>", 200), ("GET", "/livez", 200), ("GET", "-", 404)]
    assert all(isinstance(record.ms, float) for record in access)  # type: ignore[attr-defined]
    # The hook call's line also says what it answered (one line a call); the others do not.
    hook = access[0]
    assert (hook.service, hook.cards) == ("dry-needling-order-sign", 1)  # type: ignore[attr-defined]
    assert hook.rules == "DN-CODE-001"  # type: ignore[attr-defined]
    assert hook.getMessage().endswith(" ms service=dry-needling-order-sign rules=DN-CODE-001 cards=1")
    assert not any(hasattr(record, "service") for record in access[1:])
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "nc-pat-1" not in text and "tok-3f9e" not in text and "?" not in text


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_the_time_formatted_once_a_second_is_the_standard_one(log_format: str) -> None:
    formatter, standard = log_formatter(log_format), logging.Formatter()
    # Twice in one second, then the next second, then an earlier one: each as logging.Formatter writes it.
    for created in (1_700_000_000.125, 1_700_000_000.987, 1_700_000_001.5, 1_600_000_000.0):
        record = logging.LogRecord("needlecheck", logging.INFO, __file__, 1, "message", (), None)
        record.created, record.msecs = created, (created - int(created)) * 1000
        assert formatter.formatTime(record) == standard.formatTime(record)


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_worker_writes_its_lines_in_a_thread_of_its_own_and_loses_none_when_it_stops(
        log_format: str, capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    logger = logging.getLogger("needlecheck.test-background")
    try:
        configure_logging(log_format)
        write_logs_in_background()
        [background] = [h for h in root.handlers if isinstance(h, _BackgroundOutput)]
        assert not any(type(h) is _OutputHandler for h in root.handlers)
        changing = ["before"]

        def log_lines(thread: int) -> None:
            for number in range(200):
                logger.info("thread %d line %d %s", thread, number, changing)

        threads = [threading.Thread(target=log_lines, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        changing[0] = "after"  # the message was made when the record was: what the argument said then
        called = time.time()
        log_soon(logger, logging.INFO, "deferred %s", "line", extra={"route": "/livez", "status": 200})
        log_soon(logger, logging.DEBUG, "below the level %s", "line", extra={})
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed")
        stop_background_logs()  # what was queued is written now, by the time it returns
        assert background._thread.is_alive() is False
        assert any(type(h) is _OutputHandler for h in root.handlers)
        logger.warning("after the stop")  # written by the caller
        lines = capsys.readouterr().err.splitlines()
    finally:
        root.handlers = saved_handlers
        root.setLevel(saved_level)
    if log_format == "json":
        records = [json.loads(line) for line in lines if line.startswith("{")]
        messages = [r["message"] for r in records]
        assert "ValueError" in next(r for r in records if r["message"] == "failed")["exc_info"]
        [deferred] = [r for r in records if r["message"] == "deferred line"]
        assert (deferred["logger"], deferred["route"], deferred["status"]) == ("needlecheck.test-background",
                                                                                 "/livez", 200)
    else:
        messages = [line.split(": ", 1)[1] for line in lines if "needlecheck.test-background" in line]
        assert any("ValueError: boom" in line for line in lines)
        [deferred] = [line for line in lines if line.endswith("deferred line")]
    # The deferred line carries the time of the call, not the time the writer thread made the record.
    stamp = dt.datetime.strptime(deferred["time"] if log_format == "json" else deferred[:23], "%Y-%m-%d %H:%M:%S,%f")
    assert abs(stamp.timestamp() - called) < 0.002
    for thread in range(4):
        # Each thread's lines, all of them, in the order that thread logged them.
        assert [m for m in messages if m.startswith(f"thread {thread} ")] == [
            f"thread {thread} line {n} ['before']" for n in range(200)]
    assert messages[-3:] == ["deferred line", "failed", "after the stop"]


@pytest.mark.parametrize("writer_stopped_first", [False, True])
def test_a_line_queued_behind_the_stop_mark_is_written_when_the_worker_stops(
        writer_stopped_first: bool, capsys: pytest.CaptureFixture[str]) -> None:
    # A request thread can pass the "still open" check just before the stop and queue its line after the mark
    # the writer thread stops at, read with the writer's last batch or after it ended: the stop writes it.
    logger = logging.getLogger("needlecheck.test-late")
    output = _OutputHandler()
    output.setFormatter(log_formatter("text"))
    background = _BackgroundOutput(output)
    background._records.put(None)  # the writer stops here
    if writer_stopped_first:
        background._thread.join(5)
    background._records.put(logging.LogRecord(logger.name, logging.INFO, __file__, 1, "late line", (), None))
    background._thread.join(5)
    background.close()
    assert len([line for line in capsys.readouterr().err.splitlines() if line.endswith("late line")]) == 1


def test_the_writer_makes_a_plain_text_line_exactly_as_the_record_and_the_formatter_would() -> None:
    # The writer's shortcut for deferred lines (no LogRecord) must write what the record path writes, and only
    # when no filter or other handler would have seen the record.
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    logger = logging.getLogger("needlecheck.test-plain")
    output = _OutputHandler()
    output.setFormatter(log_formatter("text"))
    background = _BackgroundOutput(output)
    writer = background._thread
    items = [
        (1_700_000_000.125, logger, logging.INFO, "%s %s %d %s ms service=%s rules=%s cards=%d",
         ("POST", "/cds-services/<service_id>", 200, "0.4", "dry-needling-order-sign", "DN-CODE-001", 1), {}),
        (1_700_000_000.9999, logger, logging.WARNING, "no arguments, 100% literal", (), {"status": 200}),
        (1_600_000_000.0, logger, logging.INFO, "%s and %r", ("é ü", [1, "x"]), {"route": "-"}),
        (1_700_000_001.5, logger, logging.ERROR, "%(a)s mapping", ({"a": "keyed"},), {}),
    ]
    try:
        root.handlers = [background]
        root.setLevel(logging.INFO)
        background._thread = threading.current_thread()  # make records here as the writer thread does
        for item in items:
            expected = [output.format(record) + "\n" for record in background._made_from(item)]
            assert [background._plain_line(item)] == expected
        # Anything else that would see the record: the shortcut steps aside.
        seen: list[logging.LogRecord] = []
        other = logging.Handler()
        other.emit = seen.append  # type: ignore[method-assign]
        for add, remove in [(lambda: logger.addFilter(lambda r: True), lambda: logger.filters.clear()),
                            (lambda: logger.addHandler(other), lambda: logger.removeHandler(other)),
                            (lambda: root.addHandler(other), lambda: root.removeHandler(other)),
                            (lambda: setattr(logger, "propagate", False), lambda: setattr(logger, "propagate", True)),
                            (lambda: background.addFilter(lambda r: True), lambda: background.filters.clear())]:
            add()
            try:
                assert background._plain_line(items[0]) is None
            finally:
                remove()
        output.setFormatter(log_formatter("json"))
        assert background._plain_line(items[0]) is None
    finally:
        background._thread = writer
        root.handlers = saved_handlers
        root.setLevel(saved_level)
        background.close()
