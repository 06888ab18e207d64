"""A fault-injecting HTTP proxy in front of the real test FHIR server, for the tests of broken EHR servers.

``FaultProxy(upstream_base_url)`` listens on 127.0.0.1 and forwards ``GET``s to sekmet, rewriting the
upstream base URL in answers to its own (as a reverse proxy does), so paging links stay on the proxy.
Setting ``proxy.fault`` makes it misbehave, for every request or, with ``proxy.only``, for those whose
path and query contain that text (the other requests pass through):

=================  ==============================================================================
``PASS``           forward unchanged
``HANG_UP``        accept the connection and close it without an answer
``SLOW``           wait ``slow_seconds`` before answering (then forward)
``DRIP``           send the headers of a real answer at once, then its body a byte every ``drip_interval``
                   (the rest after ``slow_seconds``)

A slow or dripping answer still running when ``reset()`` is called (the next test begins) or the proxy stops
ends there, without the rest of its answer: ``slow_seconds`` can be far longer than any client's patience.
``UNAUTHORIZED``   401 with an OperationOutcome (also 403, 404, 500: ``FORBIDDEN``, ``NOT_FOUND``, ``SERVER_ERROR``)
``INVALID_JSON``   200, ``application/fhir+json``, a truncated document
``ENDLESS_NEXT``   forward, but every searchset Bundle gets a ``next`` link to one more page, forever
``HUGE_BODY``      200 with a valid-looking Bundle of ``huge_body_bytes`` (streamed; stops when the client does)
=================  ==============================================================================

A batch Bundle ``POST``ed to the base URL is forwarded too: it counts as a request for each of its entries' URLs
(``seen`` lists them, ``only`` matches any of them) and its fault hits the whole batch, as one slow query holds up
a server's answer to a batch; ``ENDLESS_NEXT`` gives each searchset in the batch-response a ``next`` link.

When the upstream server is down the proxy answers 502, as a real gateway would. To refuse connections,
``stop()`` the proxy: its ``base_url`` stays readable. Every request path is recorded in ``seen``.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, urlencode, urlsplit

import requests

__all__ = ["Fault", "FaultProxy"]

FHIR_JSON = "application/fhir+json"
_HOST = "127.0.0.1"
_PAGE_PARAMETER = "_proxy_page"  # marks the proxy's invented pages; stripped before forwarding


class Fault(StrEnum):
    """How the proxy misbehaves."""

    PASS = "pass"
    HANG_UP = "hang-up"
    SLOW = "slow"
    DRIP = "drip"
    UNAUTHORIZED = "401"
    FORBIDDEN = "403"
    NOT_FOUND = "404"
    SERVER_ERROR = "500"
    INVALID_JSON = "invalid-json"
    ENDLESS_NEXT = "endless-next"
    HUGE_BODY = "huge-body"


_STATUS_FAULTS = {Fault.UNAUTHORIZED: 401, Fault.FORBIDDEN: 403, Fault.NOT_FOUND: 404, Fault.SERVER_ERROR: 500}


class FaultProxy:
    """A proxy on 127.0.0.1 in front of ``upstream`` (a FHIR base URL); see the module docstring."""

    def __init__(self, upstream: str, *, slow_seconds: float = 5.0, drip_interval: float = 0.2,
                 huge_body_bytes: int = 64_000_000) -> None:
        """Prepare (not start) a proxy; the knobs bound how slow and how big its faults are."""
        self.upstream = upstream.rstrip("/")
        self.slow_seconds = slow_seconds
        self.drip_interval = drip_interval
        self.huge_body_bytes = huge_body_bytes
        self.fault = Fault.PASS
        self.only: str | None = None
        self.seen: list[str] = []
        self._lock = threading.Lock()
        self._released = threading.Event()  # set to end the slow answers begun before a reset or a stop
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None
        self._session = requests.Session()

    @property
    def base_url(self) -> str:
        """The FHIR base URL clients use instead of the upstream one; readable after ``stop()``."""
        if self._port is None:
            raise RuntimeError("FaultProxy has not been started")
        return f"http://{_HOST}:{self._port}{urlsplit(self.upstream).path}"

    def reset(self) -> None:
        """Back to pass-through, forgetting what was seen and ending the slow answers still running."""
        self.fault, self.only = Fault.PASS, None
        with self._lock:
            self.seen.clear()
            self._released.set()
            self._released = threading.Event()

    def start(self) -> Self:
        """Listen on a free loopback port and serve in a daemon thread."""
        proxy = self

        class Handler(_ProxyHandler):
            owner = proxy

        self._server = _QuietServer((_HOST, 0), Handler)
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"fault-proxy-{self._port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening (connections to ``base_url`` are then refused) and end slow answers early."""
        with self._lock:
            self._released.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
        self._session.close()

    def __enter__(self) -> Self:
        """Start the proxy."""
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """Stop the proxy."""
        self.stop()

    def fault_for(self, *paths: str) -> tuple[Fault, threading.Event]:
        """The fault that applies to a request for ``paths`` (each with its query; a batch has several), and the
        event that ends it early."""
        with self._lock:
            self.seen.extend(paths)
            released = self._released
        if self.only is not None and not any(self.only in path for path in paths):
            return Fault.PASS, released
        return self.fault, released

    def forward(self, path: str, headers: dict[str, str]) -> tuple[int, str, bytes]:
        """(status, content type, body) of ``path`` on the upstream server, links rewritten to the proxy."""
        parts = urlsplit(path)
        query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != _PAGE_PARAMETER])
        upstream_path = parts.path[len(urlsplit(self.upstream).path):]
        url = f"{self.upstream}{upstream_path}" + (f"?{query}" if query else "")
        answer = self._upstream("GET", url, headers)
        body = answer.content.replace(self.upstream.encode(), self.base_url.encode())
        return answer.status_code, answer.headers.get("Content-Type", FHIR_JSON), body

    def _upstream(self, method: str, url: str, headers: dict[str, str], data: bytes | None = None) -> requests.Response:
        """The upstream's answer; sent again once on a connection error (both are reads, safe to repeat): a
        kept-alive connection the upstream closed after its idle timeout (uvicorn's is 5 s) just as this proxy
        reused it would otherwise surface as a 502 the service did not cause."""
        try:
            return self._session.request(method, url, data=data, headers=headers, timeout=10, allow_redirects=False)
        except requests.ConnectionError:
            return self._session.request(method, url, data=data, headers=headers, timeout=10, allow_redirects=False)

    def forward_batch(self, batch: bytes, headers: dict[str, str]) -> tuple[int, str, bytes]:
        """(status, content type, body) of a batch POSTed to the upstream base URL, links rewritten to the proxy."""
        answer = self._upstream("POST", self.upstream, {**headers, "Content-Type": FHIR_JSON}, batch)
        body = answer.content.replace(self.upstream.encode(), self.base_url.encode())
        return answer.status_code, answer.headers.get("Content-Type", FHIR_JSON), body

    def next_page(self, path: str) -> str:
        """An absolute URL on the proxy for the page after ``path``'s (which may be invented already)."""
        parts = urlsplit(path)
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        page = int(dict(pairs).get(_PAGE_PARAMETER, "1")) + 1
        pairs = [(k, v) for k, v in pairs if k != _PAGE_PARAMETER] + [(_PAGE_PARAMETER, str(page))]
        return f"http://{_HOST}:{self._port}{parts.path}?{urlencode(pairs)}"


class _QuietServer(ThreadingHTTPServer):
    """Threads that die with the tests, and no tracebacks for clients that hang up (the faults cause that)."""

    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore: a client closing its connection early is expected here."""


def _batch_paths(base_path: str, batch: bytes) -> list[str]:
    """The path (with query) of each entry of a batch Bundle POSTed to ``base_path``, as a GET of it would have."""
    try:
        document = json.loads(batch)
    except ValueError:
        return [base_path]
    entries = document.get("entry") if isinstance(document, dict) else None
    urls = [e["request"]["url"] for e in entries or [] if isinstance(e, dict) and isinstance(e.get("request"), dict)
            and isinstance(e["request"].get("url"), str)]
    return [f"{base_path.rstrip('/')}/{url}" for url in urls] or [base_path]


def _outcome(status: int) -> bytes:
    return json.dumps({"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "processing", "diagnostics": f"fault proxy: HTTP {status}"}]}).encode()


class _ProxyHandler(BaseHTTPRequestHandler):
    owner: FaultProxy
    released: threading.Event  # of the request being answered: set when a reset or a stop ends it early
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test output is not the place for an access log."""

    def do_GET(self) -> None:
        """Answer according to the proxy's current fault."""
        self._answer(None)

    def do_POST(self) -> None:
        """A batch Bundle to the base URL: forwarded (and faulted) as one request for all of its entries."""
        self._answer(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

    def _answer(self, batch: bytes | None) -> None:
        proxy = self.owner
        paths = [self.path] if batch is None else _batch_paths(self.path, batch)
        fault, self.released = proxy.fault_for(*paths)
        headers = {name: value for name, value in self.headers.items() if name.lower() in ("authorization", "accept")}
        if fault is Fault.HANG_UP:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault in _STATUS_FAULTS:
            self._send(_STATUS_FAULTS[fault], FHIR_JSON, _outcome(_STATUS_FAULTS[fault]))
            return
        if fault is Fault.INVALID_JSON:
            self._send(200, FHIR_JSON, b'{"resourceType": "Bundle", "type": "searchset", "entry": [{"resou')
            return
        if fault is Fault.HUGE_BODY:
            self._send_huge(proxy.huge_body_bytes)
            return
        if fault is Fault.SLOW and self.released.wait(proxy.slow_seconds):
            return
        try:
            status, content_type, body = (proxy.forward(self.path, headers) if batch is None
                                          else proxy.forward_batch(batch, headers))
        except requests.RequestException:
            self._send(502, FHIR_JSON, _outcome(502))
            return
        if fault is Fault.ENDLESS_NEXT:
            body = self._with_endless_next(body)
        if fault is Fault.DRIP:
            self._drip(status, content_type, body)
            return
        self._send(status, content_type, body)

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            self.close_connection = True  # the client gave up waiting, which is what a slow answer tests

    def _with_endless_next(self, body: bytes) -> bytes:
        try:
            document = json.loads(body)
        except ValueError:
            return body
        if not (isinstance(document, dict) and document.get("resourceType") == "Bundle"):
            return body
        if document.get("type") == "batch-response":
            for entry in document.get("entry") or []:
                resource = entry.get("resource") if isinstance(entry, dict) else None
                if isinstance(resource, dict) and resource.get("resourceType") == "Bundle":
                    self._add_next(resource, self._self_path(resource))
            return json.dumps(document).encode()
        self._add_next(document, self.path)
        return json.dumps(document).encode()

    def _add_next(self, bundle: dict[str, Any], path: str) -> None:
        links = [link for link in bundle.get("link") or [] if link.get("relation") != "next"]
        bundle["link"] = [*links, {"relation": "next", "url": self.owner.next_page(path)}]

    def _self_path(self, bundle: dict[str, Any]) -> str:
        """The path and query of a searchset's ``self`` link (the search a batch entry ran)."""
        for link in bundle.get("link") or []:
            if link.get("relation") == "self" and isinstance(link.get("url"), str):
                parts = urlsplit(link["url"])
                return parts.path + (f"?{parts.query}" if parts.query else "")
        return self.path

    def _drip(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.flush()
        # For at most slow_seconds, then the rest at once: a client that ignores its deadline is late, not hung.
        until = time.monotonic() + self.owner.slow_seconds
        try:
            for index in range(len(body)):
                if time.monotonic() > until:
                    self.wfile.write(body[index:])
                    return
                if self.released.wait(self.owner.drip_interval):
                    return
                self.wfile.write(body[index:index + 1])
                self.wfile.flush()
        except OSError:
            return  # the client gave up, as it should

    def _send_huge(self, size: int) -> None:
        head = b'{"resourceType": "Bundle", "type": "searchset", "entry": ['
        entry = b'{"resource": {"resourceType": "Procedure", "id": "x", "status": "completed"}},'
        tail = b'{"resource": {"resourceType": "Procedure", "id": "y", "status": "completed"}}]}'
        count = max(0, (size - len(head) - len(tail)) // len(entry))
        self.send_response(200)
        self.send_header("Content-Type", FHIR_JSON)
        self.send_header("Content-Length", str(len(head) + count * len(entry) + len(tail)))
        self.end_headers()
        chunk = entry * 1000
        try:
            self.wfile.write(head)
            for _ in range(count // 1000):
                self.wfile.write(chunk)
            self.wfile.write(entry * (count % 1000) + tail)
        except OSError:
            return  # the client stopped reading at its size cap
        finally:
            self.close_connection = True
