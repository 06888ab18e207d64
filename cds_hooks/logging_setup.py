"""Log output of the service: text (the default) or one JSON object a line (``log_format = "json"``), and an
access log line per request.

The access line names the method, the route *template* (``/cds-services/<service_id>``), the status and the
milliseconds: never the query string, the path a client typed or anything from the body, which may carry a
patient id or a token. The line of an answered hook call also names the service, the rules whose cards it
shows and the number of cards (one line a call). gunicorn's own access log stays off; in JSON mode gunicorn's
messages ("Listening at", "Booting worker") go through the same JSON handler, so every line of the output parses.

In a ``needlecheck serve`` worker the lines are formatted and written off the request threads
(``write_logs_in_background``): a request thread only queues the record (the access line only the tuple it is
made of, ``log_soon``), and one thread of the worker makes, formats and writes what has queued up, in one
write. Making, formatting and writing a line in the request cost it 40-80 us and the stream's lock, on which
the other request threads of a busy worker queued while the holder waited for the GIL to come back from its
write. The records of a process are written in the order they were queued; what is queued when the worker
stops is written before it exits (gunicorn's ``worker_exit``, and ``logging.shutdown`` at exit as a
backstop), and a record made after that is written by its caller. Only a SIGKILL or a crash loses queued
lines: those of the last ``LINGER_SECONDS`` or so.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from gunicorn.glogging import Logger as GunicornLogger
from werkzeug.routing import Rule

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
        return self.time_of(record.created, record.msecs)

    def time_of(self, created: float, msecs: float) -> str:
        """``asctime`` of a record ``created`` at that time (``msecs``: its milliseconds, as LogRecord has them)."""
        second, text = self._second
        if second != int(created):
            second, text = int(created), time.strftime(self.default_time_format, self.converter(created))
            self._second = (second, text)  # one assignment: threads see the old pair or the new one
        return self.default_msec_format % (text, msecs) if self.default_msec_format else text


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


Deferred = tuple[float, logging.Logger, int, str, tuple[Any, ...], dict[str, Any]]


class _BackgroundOutput(logging.Handler):
    """The root handler of a ``needlecheck serve`` worker: a record is queued by the thread that makes it, and one
    thread formats and writes the records with ``output``, in batches (what queued up within ``LINGER_SECONDS``
    of the first, or while it wrote).

    ``handle`` takes no lock (the queue is thread-safe) and formats only the message itself, so the record no
    longer depends on the objects its arguments name. ``defer`` queues what a record is made of, and the writer
    thread makes it (``log_soon``). Made in a worker after the fork (the master, which forks, keeps no thread
    and writes its few lines itself).
    """

    def __init__(self, output: logging.Handler) -> None:
        super().__init__()
        self.output = output
        self._records: queue.SimpleQueue[logging.LogRecord | Deferred | None] = queue.SimpleQueue()
        self._closed = False  # set under ``self.lock``: later records are written by their callers
        self._made: list[logging.LogRecord] = []  # records the writer thread made and passed to the loggers
        self._thread = threading.Thread(target=self._write, name="log-writer", daemon=True)
        self._thread.start()

    def handle(self, record: logging.LogRecord) -> bool:  # type: ignore[override]
        """Queue ``record`` (or write it here once the writer is closed)."""
        if not self.filter(record):
            return False
        if threading.current_thread() is self._thread:
            self._made.append(record)  # a deferred record, made by the writer: written with its batch
            return True
        try:
            record.msg, record.args = record.getMessage(), None
        except Exception:
            self.handleError(record)
            return False
        if self._closed:
            self.output.handle(record)
        else:
            self._records.put(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        """As ``handle``."""
        self.handle(record)

    def defer(self, logger: logging.Logger, level: int, msg: str, args: tuple[Any, ...],
              extra: dict[str, Any]) -> None:
        """Have the writer thread make the record ``logger.log(level, msg, *args, extra=extra)`` would make now
        (with this moment's time), and pass it to the loggers' handlers: the caller only queues a tuple."""
        if self._closed:
            logger.log(level, msg, *args, extra=extra)
        else:
            self._records.put((time.time(), logger, level, msg, args, extra))

    def _write(self) -> None:
        """The writer thread: format what has queued up, write it in one go, repeat until the stop mark."""
        stopping = False
        while not stopping:
            batch = [self._records.get()]
            if batch[0] is not None and not self._closed:
                time.sleep(LINGER_SECONDS)  # let a batch gather: one wake-up and one write for several lines
            while True:
                try:
                    batch.append(self._records.get_nowait())
                except queue.Empty:
                    break
            lines = []
            for item in batch:
                if item is None:
                    stopping = True  # what came after the mark is still written (see _write_late_records)
                    continue
                line = self._plain_line(item) if isinstance(item, tuple) else None
                if line is not None:
                    lines.append(line)
                    continue
                for record in self._made_from(item) if isinstance(item, tuple) else (item,):
                    try:
                        lines.append(self.output.format(record) + "\n")
                    except Exception:
                        self.output.handleError(record)
            if lines:
                self._write_text("".join(lines))

    def _plain_line(self, deferred: Deferred) -> str | None:
        """The text line of a deferred call, made without a LogRecord when nothing but this handler would see one
        (no filter, no other handler, the text format): the line ``_made_from`` and the formatter would make, at
        a fraction of the cost (making a record is most of what a line cost the writer). None otherwise."""
        created, logger, level, msg, args, _extra = deferred
        formatter = self.output.formatter
        if type(formatter) is not _TimeOncePerSecond or formatter._fmt != TEXT_FORMAT or self.filters \
                or level < self.level or not self._only_handler_of(logger):
            return None
        if args and len(args) == 1 and isinstance(args[0], Mapping) and args[0]:
            args = args[0]  # as LogRecord takes a lone mapping: "%(key)s" formats
        try:
            message = str(msg) % args if args else str(msg)
        except Exception:
            return None  # the record path reports it (handleError)
        msecs = int((created - int(created)) * 1000) + 0.0
        return f"{formatter.time_of(created, msecs)} {logging.getLevelName(level)} {logger.name}: {message}\n"

    def _only_handler_of(self, logger: logging.Logger) -> bool:
        """Whether a record of ``logger`` would reach this handler only, unfiltered (``Logger.handle`` and
        ``callHandlers`` would pass it through every logger up to the root, whose one handler this is)."""
        current: logging.Logger | None = logger
        while current is not None:
            if current.disabled or current.filters:
                return False
            if current.parent is None:
                return current.handlers == [self]
            if current.handlers or not current.propagate:
                return False
            current = current.parent
        return False

    def _made_from(self, deferred: Deferred) -> list[logging.LogRecord]:
        """The records of a deferred call this handler is to write (the logger's other handlers have theirs)."""
        created, logger, level, msg, args, extra = deferred
        try:
            record = logger.makeRecord(logger.name, level, __file__, 0, msg, args, None, extra=extra)
            # As LogRecord sets them, from the time of the call instead of now.
            record.relativeCreated += (created - record.created) * 1000
            record.created, record.msecs = created, int((created - int(created)) * 1000) + 0.0
            self._made.clear()
            logger.handle(record)
            return list(self._made)
        except Exception:
            self.output.handleError(None)  # type: ignore[arg-type]
            return []

    def _write_text(self, text: str) -> None:
        self.output.acquire()
        try:
            stream = self.output.stream  # type: ignore[attr-defined]
            stream.write(text)
            stream.flush()
        except Exception:
            self.output.handleError(None)  # type: ignore[arg-type]
        finally:
            self.output.release()

    def flush(self) -> None:
        """Nothing to do: ``close`` writes what is queued (``logging.shutdown`` calls both at exit)."""

    def close(self) -> None:
        """Write what is queued and stop the writer; later records are written by their callers. Idempotent."""
        with self.lock or contextlib.nullcontext():
            already, self._closed = self._closed, True
        if not already:
            # A record queued before the flag flipped is ahead of the stop mark; one queued after is written inline.
            self._records.put(None)
            self._thread.join(CLOSE_TIMEOUT_SECONDS)
            if not self._thread.is_alive():
                self._write_late_records()
        super().close()

    def _write_late_records(self) -> None:
        """Write what a thread queued behind the stop mark: ``handle`` reads the flag without the lock, so a record
        can pass the check just before ``close`` flips it and land after the mark the writer stopped at."""
        while True:
            try:
                item = self._records.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, logging.LogRecord):
                self.output.handle(item)
            elif item is not None:
                _created, logger, level, msg, args, extra = item
                logger.log(level, msg, *args, extra=extra)  # the handler is closed: its caller writes it


CLOSE_TIMEOUT_SECONDS = 5.0  # a writer blocked on a full pipe must not hold a worker's exit past its graceful stop
# How long the writer lets lines gather after the first: a busy worker's writer wakes up and writes ~50 times a
# second instead of once or twice a call (each wake-up takes the GIL from the request threads).
LINGER_SECONDS = 0.02
_background: _BackgroundOutput | None = None  # this process's, once ``write_logs_in_background`` made it


def log_soon(logger: logging.Logger, level: int, msg: str, *args: Any, extra: dict[str, Any]) -> None:
    """``logger.log(level, msg, *args, extra=extra)``; in a serve worker the record is made, formatted and written
    by the log writer thread, with the time of this call (the request thread only queues a tuple). The arguments
    must not change afterwards."""
    if not logger.isEnabledFor(level):
        return
    background = _background
    if background is None:
        logger.log(level, msg, *args, extra=extra)
    else:
        background.defer(logger, level, msg, args, extra)


def configure_logging(log_format: str) -> None:
    """Send every logger's records at INFO and above to stderr in ``log_format``, at start-up.

    Other handlers on the root logger (a test's log capture) are left in place.
    """
    handler = _OutputHandler()
    handler.setFormatter(log_formatter(log_format))
    root = logging.getLogger()
    for previous in [h for h in root.handlers if isinstance(h, _OutputHandler | _BackgroundOutput)]:
        root.removeHandler(previous)
        previous.close()
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def write_logs_in_background() -> None:
    """From now on this process's output lines (``configure_logging``'s) are formatted and written by a thread
    of its own (gunicorn's ``post_worker_init``, in each worker); no-op without ``configure_logging``."""

    def background(handler: logging.Handler) -> logging.Handler:
        global _background
        if type(handler) is not _OutputHandler:
            return handler
        _background = _BackgroundOutput(handler)
        return _background

    _swap_output(background)


def stop_background_logs() -> None:
    """Write the lines this process queued and go back to writing them in the calling thread (``worker_exit``)."""
    global _background
    _background = None  # new calls log in their thread; what is queued is written by close()

    def inline(handler: logging.Handler) -> logging.Handler:
        if isinstance(handler, _BackgroundOutput):
            handler.close()
            return handler.output
        return handler

    _swap_output(inline)


def _swap_output(change: Callable[[logging.Handler], logging.Handler]) -> None:
    # A new list in one assignment: a thread logging meanwhile goes through the old list or the new one, so no
    # record is written twice or skipped.
    root = logging.getLogger()
    root.handlers = [change(handler) for handler in root.handlers]


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


def route_template(rule: Rule | None) -> str:
    """The matched route's template (``/cds-services/<service_id>``), or ``-`` when none matched."""
    return rule.rule if rule is not None else UNMATCHED_ROUTE


def log_access(method: str, rule: Rule | None, status: int, ms: float | None, service_id: Any = None,
               rule_ids: tuple[str, ...] = (), cards: int | None = None) -> None:
    """Log the line of one request (``needlecheck.access``): method, route template (``rule``), status and
    milliseconds; for an answered hook call (``cards`` given) also the service, the rules whose cards it shows and
    the number of cards. The app's after-request hook calls it for every request."""
    method = method if method in HTTP_METHODS else "OTHER"  # any token is a method
    fields: dict[str, Any] = {"method": method, "route": route_template(rule), "status": status, "ms": ms}
    shown = "-" if ms is None else f"{ms:.1f}"
    if cards is None:
        log_soon(access_log, logging.INFO, "%s %s %d %s ms", method, fields["route"], status, shown, extra=fields)
        return
    # An answered hook call: the service id matched one of ours; rule ids and a count, no PHI, no tokens.
    fields.update(service=service_id if service_id is not None else "-", rules=",".join(rule_ids) or "-",
                  cards=cards)
    log_soon(access_log, logging.INFO, "%s %s %d %s ms service=%s rules=%s cards=%d", method, fields["route"],
             status, shown, fields["service"], fields["rules"], cards, extra=fields)
