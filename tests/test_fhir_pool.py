"""One FHIR connection pool per worker (cds_hooks/fhir_pool.py), shared by the hook calls' sessions.

Against a small recording HTTP/1.1 server: calls reuse each other's connections, yet each request carries
only its own call's access token, a cookie the server set for one call never reaches another, and each
call's session counts only its own requests.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from needlecheck.cds_hooks.audit import TimedFhirSession
from needlecheck.cds_hooks.fhir_client import FhirClient, FhirLimits
from needlecheck.cds_hooks.fhir_pool import worker_adapter

LIMITS = FhirLimits(time_budget_seconds=30.0, connect_timeout_seconds=10.0)  # guards against a hang only


class Recorder(ThreadingHTTPServer):
    """Answers every GET with a Patient and a cookie; records (client port, path, Authorization, Cookie)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.seen: list[tuple[int, str, str | None, str | None]] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/fhir"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive

    def do_GET(self) -> None:
        server: Recorder = self.server  # type: ignore[assignment]
        with server.lock:
            server.seen.append((self.client_address[1], self.path, self.headers.get("Authorization"),
                                self.headers.get("Cookie")))
        body = json.dumps({"resourceType": "Patient", "id": self.path.rsplit("/", 1)[-1]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Set-Cookie", f"session={self.path.rsplit('/', 1)[-1]}; Path=/")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def one_call(base_url: str, token: str | None, paths: list[str]) -> TimedFhirSession:
    """A hook call's FHIR reads: its own session and client, as ``run_hook`` makes them."""
    with TimedFhirSession() as session:
        client = FhirClient(base_url, token, LIMITS, session)
        for path in paths:
            assert client.get(path)["resourceType"] == "Patient"
        client.close()
    return session


def test_calls_share_connections_but_not_tokens_or_cookies(recorder: Recorder) -> None:
    one_call(recorder.base_url, "token-a", ["Patient/a1", "Patient/a2"])
    one_call(recorder.base_url, "token-b", ["Patient/b1"])
    one_call(recorder.base_url, None, ["Patient/c1"])
    ports = {port for port, *_ in recorder.seen}
    assert len(ports) == 1  # one kept-alive connection served all three calls
    assert [(path, auth) for _, path, auth, _ in recorder.seen] == [
        ("/fhir/Patient/a1", "Bearer token-a"), ("/fhir/Patient/a2", "Bearer token-a"),
        ("/fhir/Patient/b1", "Bearer token-b"), ("/fhir/Patient/c1", None)]
    cookies = [cookie for *_, cookie in recorder.seen]
    assert cookies[1] == "session=a1"  # a call keeps its own cookies ...
    assert cookies[2] is None and cookies[3] is None  # ... and never hands them to the next call


def test_concurrent_calls_each_send_only_their_own_token_and_count_their_own_requests(recorder: Recorder) -> None:
    calls = 24
    with ThreadPoolExecutor(max_workers=8) as pool:
        sessions = list(pool.map(lambda i: one_call(recorder.base_url, f"token-{i}",
                                                    [f"Patient/{i}-1", f"Patient/{i}-2", f"Patient/{i}-3"]),
                                 range(calls)))
    assert len(recorder.seen) == 3 * calls
    for _, path, auth, cookie in recorder.seen:
        call = path.rsplit("/", 1)[-1].split("-")[0]
        assert auth == f"Bearer token-{call}"
        assert cookie is None or cookie.startswith(f"session={call}-")
    assert [session.request_count for session in sessions] == [3] * calls
    assert len({port for port, *_ in recorder.seen}) <= 8  # connections reused, never one per request


def test_the_pool_is_the_processes_own_and_outlives_a_call(recorder: Recorder) -> None:
    adapter = worker_adapter()
    one_call(recorder.base_url, "token-a", ["Patient/a1"])
    assert worker_adapter() is adapter
    assert adapter.poolmanager.pools  # the call's connection stayed open in the shared pool


def test_a_netrc_entry_for_the_server_never_replaces_the_calls_token(recorder: Recorder, tmp_path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """``requests`` sessions that read the environment take credentials from ``~/.netrc`` (or ``$NETRC``) and send
    them instead of the Authorization header given: the EHR's bearer token would be replaced by another one."""
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password not-the-ehr-token\n", encoding="utf-8")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    one_call(recorder.base_url, "token-a", ["Patient/a1"])
    one_call(recorder.base_url, None, ["Patient/b1"])
    assert [auth for *_, auth, _ in recorder.seen] == ["Bearer token-a", None]


def test_the_environments_proxy_is_still_used(recorder: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sessions do not read the environment on each request, but what it says about proxies holds (read
    once per worker and server): a FHIR server behind ``HTTP_PROXY`` is reached through the proxy."""
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", recorder.base_url.removesuffix("/fhir"))
    monkeypatch.setenv("http_proxy", recorder.base_url.removesuffix("/fhir"))
    one_call("http://fhir.example.invalid/r4", "token-a", ["Patient/p1"])
    assert [(path, auth) for _, path, auth, _ in recorder.seen] == [
        ("http://fhir.example.invalid/r4/Patient/p1", "Bearer token-a")]  # the absolute form a proxy is sent
