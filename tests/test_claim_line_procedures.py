"""Which Procedures a claim line bills, and when a Procedure is the same one: through the engine and both hooks.

A line that names its Procedures (``item.procedureSequence``) bills those; otherwise it bills the claim's
Procedures with its CPT code on its date, and never a Procedure with another code (issue 9, finding 1).
A Procedure is one Procedure however often the record shows it: by id, by identifier, or as a contained
copy of a Procedure also on the server; the one a line bills is not an earlier session (finding 6).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from needlecheck.cds_hooks.app import create_app
from needlecheck.cds_hooks.fhir_client import FhirLimits
from needlecheck.cds_hooks.settings import Settings
from needlecheck.plugin.engine import evaluate
from needlecheck.plugin.fhir_input import claim_create_context, order_sign_context
from needlecheck.plugin.fhir_record import PatientRecord
from needlecheck.plugin.fhir_view import view_of
from needlecheck.plugin.findings import Finding, Severity
from tests.support.card_conformance import assert_conformant_response
from tests.support.fhir_server import FhirTestServer

REQUESTS = Path(__file__).resolve().parent.parent / "fixtures" / "requests"
CPT = "http://www.ama-assn.org/go/cpt"
SNOMED = "http://snomed.info/sct"
TWO_LINES = REQUESTS / "claim-create" / "code002-two-lines-20560-20561.json"  # contained p1 (20560), p2 (20561)
SAME_DATE_HISTORY = REQUESTS / "claim-create" / "code002-prior-procedure-same-date.json"
ON_SERVER = REQUESTS / "claim-create" / "server-referenced-procedure.json"  # bills Procedure/nc-proc-20560-20260302
ORDER = REQUESTS / "order-sign" / "clean-20560-bilateral-trapezius.json"
SERVER_PROCEDURE = "nc-proc-20560-20260302"  # 20560, 2 muscles, 2026-03-02, in prefetch and on the shared server
OTHER_CODES = ("20552", "97140", "97810")
CLAIM_SERVICE = "/cds-services/dry-needling-claim-create"
ORDER_SERVICE = "/cds-services/dry-needling-order-sign"
RULE = "org.needlecheck.rule-id"


def load(path: Path) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return body


def cpt(code: str) -> dict[str, Any]:
    return {"coding": [{"system": CPT, "code": code}]}


def record_of(body: dict[str, Any]) -> PatientRecord:
    """The record a hook call builds from prefetch (every key, as the service reads them)."""
    record = PatientRecord()
    for value in (body.get("prefetch") or {}).values():
        if not isinstance(value, dict):
            continue
        entries = value.get("entry", []) if value.get("resourceType") == "Bundle" else [{"resource": value}]
        for entry in entries:
            record.add_json(entry["resource"])
    return record


def claim_findings(body: dict[str, Any]) -> list[Finding]:
    """The engine's findings for a claim-create request whose Procedures are contained or in prefetch."""
    claim = view_of(body["context"]["claim"])
    context = claim_create_context(body["context"]["patientId"], claim, record_of(body), dt.date(2026, 5, 1))
    return evaluate(context)


def warnings_about(findings: list[Finding], label: str) -> dict[str, Finding]:
    return {f.rule_id: f for f in findings if f.line_label == label and f.severity is Severity.WARNING}


def unlinked_claim(other_code: str) -> dict[str, Any]:
    """A 20560 line and an ``other_code`` line, neither naming a Procedure; the claim holds only the 20560 one."""
    body = load(TWO_LINES)
    claim = body["context"]["claim"]
    claim["contained"] = [claim["contained"][0]]
    claim["procedure"] = [claim["procedure"][0]]
    first = claim["item"][0]
    first.pop("procedureSequence")
    second = copy.deepcopy(first)
    second.update(sequence=2, productOrService=cpt(other_code))
    claim["item"] = [first, second]
    return body


def server_billed_claim(other_code: str) -> dict[str, Any]:
    """The claim of ``server-referenced-procedure.json`` as a 20560 line plus an ``other_code`` line,
    neither naming the Procedure (Procedure/nc-proc-20560-20260302, on the server and in prefetch)."""
    body = load(ON_SERVER)
    claim = body["context"]["claim"]
    first = claim["item"][0]
    first.pop("procedureSequence")
    first["productOrService"] = cpt("20560")
    second = copy.deepcopy(first)
    second.update(sequence=2, productOrService=cpt(other_code))
    claim["item"] = [first, second]
    return body


# ------------------------------------------------------------------------------- finding 1, in the engine


@pytest.mark.parametrize("other_code", OTHER_CODES)
def test_a_line_never_borrows_a_procedure_with_another_code(other_code: str) -> None:
    body = unlinked_claim(other_code)
    claim = view_of(body["context"]["claim"])
    context = claim_create_context("nc-pat-1", claim, record_of(body), dt.date(2026, 5, 1))
    needled, other = context.lines

    assert len(needled.body_sites) == 2 and needled.is_procedure_record
    assert other.body_sites == () and not other.is_procedure_record
    assert not any("dry needling" in words.lower() for words in other.described_as)
    warned = warnings_about(evaluate(context), "claim line 2")
    assert "DN-CODE-005" not in warned, "the other line was told it is dry needling billed under another code"
    assert "DN-PAIR-001" not in warned and "DN-PAIR-001" not in warnings_about(evaluate(context), "claim line 1")


def test_procedures_go_to_the_line_of_their_code_and_date() -> None:
    body = load(TWO_LINES)
    claim = body["context"]["claim"]
    afternoon = claim["contained"][1]
    afternoon["code"] = cpt("20560")
    afternoon["performedDateTime"] = "2026-04-21T14:30:00-06:00"
    afternoon["bodySite"] = afternoon["bodySite"][:2]
    for item, day in zip(claim["item"], ("2026-04-20", "2026-04-21"), strict=True):
        item.pop("procedureSequence")
        item["productOrService"] = cpt("20560")
        item["servicedDate"] = day

    context = claim_create_context("nc-pat-1", view_of(claim), record_of(body), dt.date(2026, 5, 1))

    first, second = context.lines
    assert [s.text for s in first.body_sites] == ["Left levator scapulae", "Right levator scapulae"]
    assert [s.text for s in second.body_sites] == ["Left upper trapezius", "Right upper trapezius"]
    assert not [f for f in evaluate(context) if f.rule_id in ("DN-CODE-001", "DN-UNIT-001")]


def test_a_named_procedure_is_billed_whatever_its_code() -> None:
    body = load(ON_SERVER)
    body["prefetch"] = load(SAME_DATE_HISTORY)["prefetch"]
    [line] = claim_create_context("nc-pat-1", view_of(body["context"]["claim"]), record_of(body),
                                  dt.date(2026, 5, 1)).lines
    assert line.code == "20561" and len(line.body_sites) == 2


# ------------------------------------------------------------------------------- finding 6, in the engine


def body_site_only_claim() -> dict[str, Any]:
    """A 20560 line on 2026-03-02 with ``item.bodySite`` only (no Claim.procedure), and that day's Procedure
    (Procedure/nc-proc-20560-20260302, 20560) in the prefetched history."""
    body = load(SAME_DATE_HISTORY)
    claim = body["context"]["claim"]
    claim.pop("contained")
    claim.pop("procedure")
    item = claim["item"][0]
    item.pop("procedureSequence")
    item["productOrService"] = cpt("20560")
    item["bodySite"] = {"coding": [{"system": SNOMED, "code": "31764008"}], "text": "Trapezius"}
    return body


def test_a_line_with_a_body_site_only_bills_that_days_procedure_rather_than_repeating_it() -> None:
    body = body_site_only_claim()
    claim = view_of(body["context"]["claim"])
    context = claim_create_context("nc-pat-1", claim, record_of(body), dt.date(2026, 5, 1))

    assert f"Procedure/{SERVER_PROCEDURE}" not in {prior.reference for prior in context.history}
    assert not [f for f in evaluate(context) if f.rule_id in ("DN-UNIT-001", "DN-NCCI-002") and not f.unchecked]


def test_a_second_procedure_of_the_day_is_still_a_repeat() -> None:
    body = body_site_only_claim()
    history = body["prefetch"]["priorProcedures"]["entry"]
    [same_day] = [e["resource"] for e in history if e["resource"]["id"] == SERVER_PROCEDURE]
    history.append({"resource": {**copy.deepcopy(same_day), "id": "nc-proc-20560-20260302-pm",
                                 "performedDateTime": "2026-03-02T15:05:00-07:00"}})

    [repeat] = [f for f in claim_findings(body) if f.rule_id == "DN-UNIT-001"]
    assert "2 times" in repeat.summary


def contained_copy(how: str) -> dict[str, Any]:
    """A claim that bills a contained copy of the server's Procedure/nc-proc-20560-20260302, with the
    original in the prefetched history; the copy is known by ``how``: its id, a shared identifier, or
    nothing but its content (an EHR that copies a resource into a claim gives it a local id)."""
    body = load(SAME_DATE_HISTORY)
    history = body["prefetch"]["priorProcedures"]["entry"]
    [original] = [e["resource"] for e in history if e["resource"]["id"] == SERVER_PROCEDURE]
    copied = copy.deepcopy(original)
    copied["id"] = SERVER_PROCEDURE if how == "id" else "p1"
    if how == "identifier":
        identifier = [{"system": "https://ehr.example.org/identifiers/procedure", "value": "PROC-0302-1"}]
        original["identifier"] = copied["identifier"] = identifier
    claim = body["context"]["claim"]
    claim["contained"] = [copied]
    claim["procedure"][0]["procedureReference"]["reference"] = f"#{copied['id']}"
    claim["item"][0]["productOrService"] = cpt("20560")
    return body


@pytest.mark.parametrize("how", ["id", "identifier", "content"])
def test_a_contained_copy_of_a_procedure_is_that_procedure(how: str) -> None:
    body = contained_copy(how)
    claim = view_of(body["context"]["claim"])
    context = claim_create_context("nc-pat-1", claim, record_of(body), dt.date(2026, 5, 1))

    assert f"Procedure/{SERVER_PROCEDURE}" not in {prior.reference for prior in context.history}
    assert not [f for f in evaluate(context) if f.rule_id in ("DN-UNIT-001", "DN-NCCI-002") and not f.unchecked]


def test_a_procedure_shown_twice_in_the_history_is_one_session() -> None:
    body = body_site_only_claim()
    body["context"]["claim"]["item"][0]["servicedDate"] = "2026-03-03"
    history = body["prefetch"]["priorProcedures"]["entry"]
    identifier = [{"system": "https://ehr.example.org/identifiers/procedure", "value": "PROC-0302-1"}]
    [same_day] = [e["resource"] for e in history if e["resource"]["id"] == SERVER_PROCEDURE]
    same_day["identifier"] = identifier
    history.append({"resource": {**copy.deepcopy(same_day), "id": "mirror-of-0302"}})

    context = claim_create_context("nc-pat-1", view_of(body["context"]["claim"]), record_of(body),
                                   dt.date(2026, 5, 1))
    assert [p.reference for p in context.history if p.date_of_service == dt.date(2026, 3, 2)] == [
        f"Procedure/{SERVER_PROCEDURE}"]


def order_with_its_performed_procedure() -> dict[str, Any]:
    """The 20560 order request, with prefetch holding the Procedure performed for that order (``basedOn`` it)."""
    body = load(ORDER)
    [order] = [e["resource"] for e in body["context"]["draftOrders"]["entry"]
               if e["resource"]["resourceType"] == "ServiceRequest" and e["resource"]["code"]["coding"][0]["code"]
               == "20560"]
    day = order.get("occurrenceDateTime", "2026-03-02")[:10]
    performed = {"resourceType": "Procedure", "id": "done-for-order", "status": "completed",
                 "basedOn": [{"reference": f"ServiceRequest/{order['id']}"}], "code": cpt("20560"),
                 "subject": {"reference": f"Patient/{body['context']['patientId']}"}, "performedDateTime": day}
    body["prefetch"]["priorProcedures"] = {"resourceType": "Bundle", "type": "searchset",
                                           "entry": [{"resource": performed}]}
    return body


def test_an_order_is_not_repeated_by_the_procedure_performed_for_it() -> None:
    body = order_with_its_performed_procedure()
    record = record_of(body)
    context = order_sign_context(body["context"]["patientId"],
                                 view_of(body["context"]["draftOrders"]), record, dt.date(2026, 3, 2))
    assert context.history == ()


# -------------------------------------------------------------------------------------- both hooks, over HTTP


@pytest.fixture
def patient_client(tmp_path: Path) -> Iterator[FlaskClient]:
    """The service with a time budget no busy test machine exhausts: these tests are about which Procedure a
    line bills, not about time (the budget's behaviour is tests/test_faults.py's)."""
    app = create_app(Settings(data_dir=tmp_path / "data", allow_http=True, fhir=FhirLimits(time_budget_seconds=60)))
    yield app.test_client()
    app.extensions["needlecheck.pool"].shutdown(wait=False)


def cards(client: FlaskClient, service: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    response = client.post(service, json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    answer = response.get_json()
    assert_conformant_response(answer)
    found: list[dict[str, Any]] = answer["cards"]
    return found


def warning_rules(found: list[dict[str, Any]]) -> list[str]:
    return sorted(c["extension"][RULE] for c in found if "extension" in c and c["indicator"] == "warning")


def against_server(body: dict[str, Any], server: FhirTestServer) -> dict[str, Any]:
    pointed = copy.deepcopy(body)
    pointed.pop("prefetch", None)
    pointed["fhirServer"] = server.base_url
    pointed["fhirAuthorization"] = {"access_token": server.token, "token_type": "Bearer", "expires_in": 300,
                                    "scope": "patient/*.read", "subject": "needlecheck"}
    return pointed


@pytest.mark.parametrize("other_code", OTHER_CODES)
def test_claim_create_with_the_procedure_in_prefetch(client: FlaskClient, other_code: str) -> None:
    body = server_billed_claim(other_code)
    body["prefetch"] = load(SAME_DATE_HISTORY)["prefetch"]

    found = cards(client, CLAIM_SERVICE, body)

    assert "DN-CODE-005" not in warning_rules(found) and "DN-PAIR-001" not in warning_rules(found)
    assert "DN-UNIT-001" not in warning_rules(found), "the billed Procedure is no earlier session"
    assert not any("20552" in s["label"] or "20560" in s["label"]
                   for c in found if "Claim line 2" in c["summary"] for s in c.get("suggestions", []))


@pytest.mark.parametrize("other_code", OTHER_CODES)
def test_claim_create_with_the_procedure_read_from_the_fhir_server(
        patient_client: FlaskClient, fhir_server: FhirTestServer, other_code: str) -> None:
    body = against_server(server_billed_claim(other_code), fhir_server)

    found = cards(patient_client, CLAIM_SERVICE, body)

    assert "DN-CODE-005" not in warning_rules(found) and "DN-PAIR-001" not in warning_rules(found)
    assert "DN-UNIT-001" not in warning_rules(found)
    assert not [c for c in found if c["indicator"] == "info" and "extension" not in c], "every check must have run"


def test_claim_create_line_with_a_body_site_only_over_http(
        patient_client: FlaskClient, fhir_server: FhirTestServer) -> None:
    body = body_site_only_claim()
    assert "DN-UNIT-001" not in warning_rules(cards(patient_client, CLAIM_SERVICE, body))
    from_server = cards(patient_client, CLAIM_SERVICE, against_server(body, fhir_server))
    assert "DN-UNIT-001" not in warning_rules(from_server)
    assert not [c for c in from_server if c["indicator"] == "info" and "extension" not in c], "history was read"


def test_order_sign_for_an_order_already_performed_over_http(client: FlaskClient) -> None:
    body = order_with_its_performed_procedure()
    assert "DN-UNIT-001" not in warning_rules(cards(client, ORDER_SERVICE, body))


# ------------------------------------------------------------- finding 7: several lines of one session, over HTTP


def merge_suggestion(found: list[dict[str, Any]], rule: str) -> dict[str, Any]:
    [card] = [c for c in found if c.get("extension", {}).get(RULE) == rule]
    [suggestion] = card["suggestions"]
    return {"card": card, "suggestion": suggestion, "claim": suggestion["actions"][0]["resource"]}


def test_two_20560_lines_of_one_session_become_one_20561_line(client: FlaskClient) -> None:
    body = load(TWO_LINES)
    claim = body["context"]["claim"]
    afternoon = claim["contained"][1]
    afternoon["code"] = cpt("20560")
    afternoon["bodySite"] = afternoon["bodySite"][:2]  # left and right upper trapezius
    claim["item"][1]["productOrService"] = cpt("20560")

    merged = merge_suggestion(cards(client, CLAIM_SERVICE, body), "DN-UNIT-001")

    assert merged["card"]["summary"].startswith("Bill one 20561 line for 2026-04-20:")
    assert "4 muscles in all" in merged["card"]["summary"]
    assert merged["suggestion"]["isRecommended"] is True
    assert merged["suggestion"]["label"] == "Bill lines 1 and 2 as one 20561 line"
    [item] = merged["claim"]["item"]
    assert item["productOrService"]["coding"][0]["code"] == "20561"
    assert item["procedureSequence"] == [1, 2] and item["quantity"]["value"] == 1


def test_20560_and_20561_lines_of_one_session_become_one_line(client: FlaskClient) -> None:
    merged = merge_suggestion(cards(client, CLAIM_SERVICE, load(TWO_LINES)), "DN-CODE-002")

    summary = merged["card"]["summary"]
    assert summary.startswith("Bill one 20561 line") and "5 muscles in all" in summary
    [item] = merged["claim"]["item"]
    assert item["productOrService"]["coding"][0]["code"] == "20561" and item["procedureSequence"] == [1, 2]


def test_a_contained_procedure_of_another_time_that_day_is_another_session() -> None:
    body = contained_copy("content")
    body["context"]["claim"]["contained"][0]["performedDateTime"] = "2026-03-02T15:05:00-07:00"
    claim = view_of(body["context"]["claim"])
    context = claim_create_context("nc-pat-1", claim, record_of(body), dt.date(2026, 5, 1))
    assert f"Procedure/{SERVER_PROCEDURE}" in {prior.reference for prior in context.history}


def order_with(other_code: str) -> dict[str, Any]:
    """The 20560 order of the fixture (left and right upper trapezius) and a second order for ``other_code`` on
    the left levator scapulae, the same morning. Each order carries its own code and body sites."""
    body = load(ORDER)
    [needling] = [e["resource"] for e in body["context"]["draftOrders"]["entry"]
                  if e["resource"]["id"] == "nc-sr-dn-0414a"]
    other = copy.deepcopy(needling)
    other.update(id=f"nc-sr-{other_code}-0414a", code=cpt(other_code),
                 bodySite=[{"coding": [{"system": SNOMED, "code": "11327007"}], "text": "Left levator scapulae",
                            "extension": [{"url": "http://hl7.org/fhir/us/mcode/StructureDefinition/"
                                                  "mcode-laterality-qualifier",
                                           "valueCodeableConcept": {"coding": [{"system": SNOMED,
                                                                                "code": "7771000"}]}}]}])
    body["context"]["draftOrders"]["entry"].append({"resource": other})
    return body


@pytest.mark.parametrize("other_code", OTHER_CODES)
def test_order_sign_orders_keep_their_own_codes_and_muscles(
        patient_client: FlaskClient, fhir_server: FhirTestServer, other_code: str) -> None:
    body = order_with(other_code)
    for answer in (cards(patient_client, ORDER_SERVICE, body),
                   cards(patient_client, ORDER_SERVICE, against_server(body, fhir_server))):
        assert "DN-CODE-005" not in warning_rules(answer) and "DN-PAIR-001" not in warning_rules(answer)
