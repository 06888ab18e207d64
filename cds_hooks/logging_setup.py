"""Log output of the service: text (the default) or one JSON object a line (``log_format = "json"``), and an
access log line per request.

The access line names the method, the route *template* (``/cds-services/<service_id>``), the status and the
milliseconds: never the query string, the path a client typed or anything from the body, which may carry a
patient id or a token. The line of an answered hook call also names the service, the rules whose cards it
shows and the number of cards (one line a call: each line costs the request about 50 us and the stream's
lock). gunicorn's own access log stays off; in JSON mode gunicorn's messages ("Listening at", "Booting
worker") go through the same JSON handler, so every line of the output parses.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from flask import Flask, Response, g, request
from gunicorn.glogging import Logger as GunicornLogger

from needlecheck.cds_hooks.audit import card_rule_ids, elapsed_ms

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Standard record attributes each JSON line carries, renamed to what log collectors usually expect.
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s"
JSON_RENAMES = {"asctime": "time", "levelname": "level", "name": "logger", "process": "pid"}
UNMATCHED_ROUTE = "-"  # a path no route matched: the path itself is client text
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})

access_log = logging.getLogger("needlecheck.access")


class _TimeOncePerSecond(logging.Formatter):
    """``asctime`` as ``logging.Formatter`` writes it, its date and time formatted once a second.

    ``time.localtime`` and ``strftime`` cost a busy worker about 0.1 ms a line (glibc looks at /etc/localtime
    on each call when TZ is unset); the milliseconds are added to the cached text as the base class adds them.
    """

    _second: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second, text = self._second
        if second != int(record.created):
            second, text = int(record.created), time.strftime(self.default_time_format,
                                                                self.converter(record.created))
            self._second = (second, text)  # one assignment: threads see the old pair or the new one
        return self.default_msec_format % (text, record.msecs) if self.default_msec_format else text


def log_formatter(log_format: str) -> logging.Formatter:
    """The formatter of ``log_format`` ("text" or "json")."""
    if log_format == "json":
        from pythonjsonlogger.json import JsonFormatter

        class JsonLines(_TimeOncePerSecond, JsonFormatter):  # type: ignore[misc]
            """python-json-logger's formatter with the date and time formatted once a second."""

        return JsonLines(JSON_FIELDS, rename_fields=JSON_RENAMES)
    return _TimeOncePerSecond(TEXT_FORMAT)


class _OutputHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler ``configure_logging`` installs: a type of its own, so a second call replaces it, writing
    to whatever ``sys.stderr`` is when a record comes (as ``logging.lastResort`` does)."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property  # type: ignore[override]
    def stream(self) -> Any:
        """The current standard error."""
        return sys.stderr


def configure_logging(log_format: str) -> None:
    """Send every logger's records at INFO and above to stderr in ``log_format``, at start-up.

    Other handlers on the root logger (a test's log capture) are left in place.
    """
    handler = _OutputHandler()
    handler.setFormatter(log_formatter(log_format))
    root = logging.getLogger()
    for previous in [h for h in root.handlers if isinstance(h, _OutputHandler)]:
        root.removeHandler(previous)
    root.addHandler(handler)
    root.setLevel(logging.INFO)


class JsonGunicornLogger(GunicornLogger):  # type: ignore[misc]
    """gunicorn's logger, whose messages go to the root handler (JSON) instead of gunicorn's text handlers."""

    def setup(self, cfg: Any) -> None:
        """Configure as gunicorn does, then hand the error log to the root logger."""
        super().setup(cfg)
        for handler in list(self.error_log.handlers):
            self.error_log.removeHandler(handler)
        self.error_log.propagate = True


def gunicorn_logger_class(log_format: str) -> type[GunicornLogger]:
    """The gunicorn ``logger_class`` for ``log_format``."""
    return JsonGunicornLogger if log_format == "json" else GunicornLogger


def route_template() -> str:
    """The matched route's template (``/cds-services/<service_id>``), or ``-`` when none matched."""
    return request.url_rule.rule if request.url_rule is not None else UNMATCHED_ROUTE


def install_access_log(app: Flask) -> None:
    """Log one line per request: method, route template, status and milliseconds (``needlecheck.access``)."""

    @app.after_request
    def log_access(response: Response) -> Response:
        ms = elapsed_ms(request.environ)
        method = request.method if request.method in HTTP_METHODS else "OTHER"  # any token is a method
        fields: dict[str, Any] = {"method": method, "route": route_template(), "status": response.status_code,
                                  "ms": ms}
        shown = "-" if ms is None else f"{ms:.1f}"
        trace = g.get("needlecheck_invocation")
        result = trace.result if trace is not None else None
        if result is None:
            access_log.info("%s %s %d %s ms", method, fields["route"], response.status_code, shown, extra=fields)
            return response
        # An answered hook call: the service id matched one of ours; rule ids and a count, no PHI, no tokens.
        fields.update(service=request.view_args["service_id"] if request.view_args else "-",
                      rules=",".join(card_rule_ids(result.body)) or "-", cards=len(result.body["cards"]))
        access_log.info("%s %s %d %s ms service=%s rules=%s cards=%d", method, fields["route"],
                        response.status_code, shown, fields["service"], fields["rules"], fields["cards"],
                        extra=fields)
        return response
