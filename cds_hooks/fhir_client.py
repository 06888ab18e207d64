"""A small FHIR REST client for the EHR's server: reads and searches with the EHR's bearer token.

Every call is bounded: by a deadline shared by all queries of one hook call, a page cap and a response
size cap. Paging only follows ``next`` links on the server's own origin, and redirects are not
followed, so the service cannot be steered to another host. The access token is never logged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

import orjson

from needlecheck.cds_hooks.fhir_pool import environment_settings

if TYPE_CHECKING:
    import requests

FHIR_JSON = "application/fhir+json"


class FhirUnavailable(Exception):
    """The server could not give us the data; the message is safe to show and to log."""


class FhirRefused(FhirUnavailable):
    """The server answered, but not with what was asked (an error status, not JSON, not a FHIR resource)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status, when that was the problem


@dataclass(frozen=True)
class FhirLimits:
    """Bounds on the work one hook call may do against the EHR's FHIR server."""

    time_budget_seconds: float = 3.0
    connect_timeout_seconds: float = 1.0
    max_pages: int = 10
    max_response_bytes: int = 5_000_000


class FhirClient:
    """Reads and searches on one FHIR server until ``deadline`` (a ``time.monotonic()`` value)."""

    def __init__(self, base_url: str, access_token: str | None, limits: FhirLimits,
                 session: requests.Session | None = None, deadline: float | None = None) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.limits = limits
        self.deadline = deadline if deadline is not None else time.monotonic() + limits.time_budget_seconds
        self._origin = _origin(self.base_url)
        self._owns_session = session is None
        if session is None:
            import requests  # here, not at the top: ~90 ms that a request with full prefetch never needs

            session = requests.Session()
            session.trust_env = False  # the environment is read once per worker: fhir_pool.environment_settings
        self._session = session
        self._proxies, self._verify = environment_settings(self.base_url)
        self._headers = {"Accept": FHIR_JSON}
        if access_token:
            self._headers["Authorization"] = f"Bearer {access_token}"

    def close(self) -> None:
        """Release the connections of a session this client opened itself."""
        if self._owns_session:
            self._session.close()

    def get(self, query: str) -> dict[str, Any]:
        """GET a relative query (``Patient/1``, ``Condition?patient=1``) or a same-origin absolute URL."""
        return self._exchange("GET", query)

    def batch(self, queries: list[str]) -> list[dict[str, Any] | FhirUnavailable]:
        """Send ``queries`` (relative reads and searches) as one batch; per query its answer or why not.

        Raises FhirUnavailable when the batch as a whole failed (the caller may then send them one by one),
        FhirRefused when the server answered it with something else than a batch-response.
        A batch's entries are answered in the order of the request's (https://hl7.org/fhir/R4/http.html#transaction-response).
        """
        bundle = {"resourceType": "Bundle", "type": "batch",
                  "entry": [{"request": {"method": "GET", "url": query}} for query in queries]}
        answer = self._exchange("POST", "", orjson.dumps(bundle))
        entries = answer.get("entry")
        if answer.get("resourceType") != "Bundle" or answer.get("type") != "batch-response" \
                or not isinstance(entries, list) or len(entries) != len(queries):
            raise FhirRefused("answer is not the batch-response of the batch")
        return [_entry_answer(entry) for entry in entries]

    def _exchange(self, method: str, query: str, body: bytes | None = None) -> dict[str, Any]:
        url = urljoin(self.base_url, query)
        if _origin(url) != self._origin:
            raise FhirUnavailable("link points outside the FHIR server")
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise FhirUnavailable("time budget exhausted")
        timeout = (min(self.limits.connect_timeout_seconds, remaining), remaining)
        import requests  # loaded by now (a session exists); see __init__

        headers = self._headers if body is None else {**self._headers, "Content-Type": FHIR_JSON}
        try:
            # A copy of the proxies: a session that still reads the environment adds to the dict it is given.
            with self._session.request(method, url, data=body, headers=headers, timeout=timeout,
                                       allow_redirects=False, stream=True, proxies=dict(self._proxies),
                                       verify=self._verify) as response:
                if response.status_code != 200:
                    raise FhirRefused(f"HTTP {response.status_code}", response.status_code)
                body = _read_capped(response, self.limits.max_response_bytes, self.deadline)
        except requests.Timeout as error:
            raise FhirUnavailable("timed out") from error
        except requests.RequestException as error:
            raise FhirUnavailable(f"unreachable ({type(error).__name__})") from error
        try:
            document = orjson.loads(body)  # RFC 8259 JSON only (no NaN), about three times json's speed
        except ValueError as error:
            raise FhirRefused("answer is not JSON") from error
        if not isinstance(document, dict) or not isinstance(document.get("resourceType"), str):
            raise FhirRefused("answer is not a FHIR resource")
        return document

    def search(self, query: str) -> list[dict[str, Any]]:
        """The resources matched by a search, following ``next`` links up to the page cap."""
        page = self.get(query)
        return self.collect(page)

    def collect(self, bundle: dict[str, Any]) -> list[dict[str, Any]]:
        """The match entries of a searchset Bundle and of its following pages."""
        if bundle.get("resourceType") != "Bundle":
            return [bundle]
        resources: list[dict[str, Any]] = []
        pages = 1
        while True:
            resources.extend(matches(bundle))
            next_url = next_link(bundle)
            if next_url is None:
                return resources
            if pages >= self.limits.max_pages:
                raise FhirUnavailable(f"more than {self.limits.max_pages} pages of results")
            bundle = self.get(next_url)
            pages += 1
            if bundle.get("resourceType") != "Bundle":
                raise FhirUnavailable("a page of results is not a Bundle")


def _entry_answer(entry: Any) -> dict[str, Any] | FhirUnavailable:
    """The resource a batch-response entry holds, or why the server did not answer that query."""
    response = entry.get("response") if isinstance(entry, dict) else None
    status = response.get("status") if isinstance(response, dict) else None
    if not isinstance(status, str) or not status.strip():
        return FhirUnavailable("batch entry without a status")
    code = status.split()[0]
    if code != "200":
        return FhirUnavailable(f"HTTP {code}")
    resource = entry.get("resource")
    if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
        return FhirUnavailable("answer is not a FHIR resource")
    return resource


def matches(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    """The resources of a Bundle, without the OperationOutcomes a server adds as search outcomes."""
    found: list[dict[str, Any]] = []
    entries = bundle.get("entry")
    if not isinstance(entries, list):  # a client's Bundle may hold anything there
        return found
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        resource = entry.get("resource")
        if not isinstance(resource, dict) or resource.get("resourceType") == "OperationOutcome":
            continue
        search = entry.get("search")
        if search and isinstance(search, dict) and search.get("mode") == "outcome":
            continue
        found.append(resource)
    return found


def next_link(bundle: dict[str, Any]) -> str | None:
    """The URL of the next page, if any."""
    links = bundle.get("link")
    for link in links if isinstance(links, list) else []:
        if isinstance(link, dict) and link.get("relation") == "next" and isinstance(link.get("url"), str):
            return link["url"]
    return None


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or ""), port


def _read_capped(response: requests.Response, limit: int, deadline: float) -> bytes:
    """The body, refused past ``limit`` bytes or past ``deadline``.

    A read timeout bounds each wait for data, not the whole body: a server sending a byte every second
    would hold a plain ``iter_content`` loop for hours. So each read takes what has arrived (``read1``)
    and may wait only until the deadline.
    """
    import urllib3  # loaded with requests; see FhirClient.__init__

    raw: urllib3.HTTPResponse = response.raw
    connection = getattr(raw, "connection", None)
    sock = getattr(connection, "sock", None)
    chunks: list[bytes] = []
    size = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FhirUnavailable("timed out")
        if sock is not None:
            sock.settimeout(remaining)
        try:
            chunk = raw.read1(65536, decode_content=True)
        except (urllib3.exceptions.TimeoutError, TimeoutError) as error:
            raise FhirUnavailable("timed out") from error
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise FhirUnavailable(f"unreachable ({type(error).__name__})") from error
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise FhirUnavailable(f"answer larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
