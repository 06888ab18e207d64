"""A synthetic FHIR Bulk Data export of dry-needling claims with a known share of seeded defects.

    python -m bench.bulk_export --claims 200000 --out /tmp/export [--seed 7] [--gzip]

Patients come with a Coverage (Medicare FFS, Medicare Advantage, commercial, workers' comp or an
unidentifiable payer), a low back or neck pain Condition and a course of weekly sessions; each session is an
Encounter, a Procedure naming 1 to 4 muscles with their side, and a Claim billing it. Clinicians are
physicians, physical therapists and chiropractors in clinics of several states. One claim in ten bills only
therapeutic exercise (97110), which the scan skips. ``seeded.csv`` (in the folder; not NDJSON, so the scan
does not read it) lists each claim given a defect and the rule that must catch it; the shares are in
``SEEDED``. Files are split at 100,000 lines as an ``$export`` splits them (``Claim.ndjson``,
``Claim.2.ndjson`` ...). Everything is fictitious.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import random
from pathlib import Path
from typing import IO, Any

CPT = "http://www.ama-assn.org/go/cpt"
SCT = "http://snomed.info/sct"
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
SOPT = "urn:oid:2.16.840.1.113883.3.221.5"
LATERALITY = "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-laterality-qualifier"
SIDES = (("7771000", "Left"), ("24028007", "Right"))
MUSCLES = (("31764008", "Trapezius muscle"), ("11327007", "Levator scapulae muscle"),
           ("6001004", "Quadratus lumborum muscle"), ("78333006", "Gluteus medius muscle"),
           ("75699001", "Piriformis muscle"))
DIAGNOSES = (("M54.59", "Other low back pain"), ("M54.50", "Low back pain, unspecified"),
             ("M79.18", "Myalgia, other site"), ("M54.2", "Cervicalgia"))
# (payer id, name, SOPT code or None, share of patients)
PAYERS = (("medicare", "Medicare Part B", "121", 0.35), ("ma", "Summit Medicare Advantage HMO", "111", 0.10),
          ("northwind", "Northwind Health Plan", "5", 0.35), ("lni", "Washington L&I", "95", 0.05),
          ("selfpay", "Unlisted Benefit Administrators", None, 0.15))
CLINICIANS = (("MD", "Doctor of Medicine", "207Q00000X", "Family Medicine Physician"),
              ("PT", "Physical Therapist", "225100000X", "Physical Therapist"),
              ("DC", "Doctor of Chiropractic", "111N00000X", "Chiropractor"))
STATES = ("CO", "TX", "FL", "AZ", "WA", "GA")
# defect: (share of dry-needling claims, the rule that must catch it)
SEEDED = {"code-does-not-match-muscles": (0.06, "DN-CODE-001"), "two-units": (0.04, "DN-UNIT-001"),
          "deleted-icd-code": (0.03, "DN-ICD-001"), "no-diagnosis": (0.03, "DN-DOC-003"),
          "no-laterality": (0.04, "DN-DOC-002")}
NON_DRY_NEEDLING_SHARE = 0.10
LINES_PER_FILE = 100_000
SESSIONS_PER_PATIENT = (4, 12)


class Writer:
    """One NDJSON file series per resource type, split every ``LINES_PER_FILE`` lines."""

    def __init__(self, folder: Path, compress: bool) -> None:
        self.folder, self.compress = folder, compress
        self.handles: dict[str, tuple[IO[str], int, int]] = {}

    def write(self, resource: dict[str, Any]) -> None:
        kind = resource["resourceType"]
        handle, lines, part = self.handles.get(kind, (None, 0, 0))  # type: ignore[assignment]
        if handle is None or lines >= LINES_PER_FILE:
            if handle is not None:
                handle.close()
            part += 1
            name = f"{kind}.ndjson" if part == 1 else f"{kind}.{part}.ndjson"
            path = self.folder / (name + ".gz" if self.compress else name)
            # Kept open across calls (one per resource type) and closed by close().
            handle = gzip.open(path, "wt", encoding="utf-8") if self.compress else path.open("w", encoding="utf-8")  # noqa: SIM115
            lines = 0
        handle.write(json.dumps(resource, separators=(",", ":")) + "\n")
        self.handles[kind] = (handle, lines + 1, part)

    def close(self) -> None:
        for handle, _, _ in self.handles.values():
            handle.close()


def _concept(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}]}


def _shared(writer: Writer) -> None:
    for payer_id, name, _, _ in PAYERS:
        writer.write({"resourceType": "Organization", "id": f"payer-{payer_id}", "active": True, "name": name,
                      "type": [_concept("http://terminology.hl7.org/CodeSystem/organization-type", "pay", "Payer")]})
    for index, state in enumerate(STATES):
        writer.write({"resourceType": "Organization", "id": f"clinic-{index}", "active": True,
                      "name": f"Synthetic Spine & Sports Clinic {index}",
                      "address": [{"line": [f"{100 + index} Main St"], "city": "Springfield", "state": state}]})
        writer.write({"resourceType": "Location", "id": f"loc-{index}", "status": "active", "name": f"Clinic {index}",
                      "address": {"state": state},
                      "managingOrganization": {"reference": f"Organization/clinic-{index}"}})
        for degree, degree_name, taxonomy, taxonomy_name in CLINICIANS:
            practitioner = f"prac-{index}-{degree.lower()}"
            writer.write({"resourceType": "Practitioner", "id": practitioner, "active": True,
                          "name": [{"family": f"Clinician{index}", "given": [degree]}],
                          "qualification": [{"code": _concept("http://terminology.hl7.org/CodeSystem/v2-0360",
                                                              degree, degree_name)}]})
            writer.write({"resourceType": "PractitionerRole", "id": f"role-{index}-{degree.lower()}", "active": True,
                          "practitioner": {"reference": f"Practitioner/{practitioner}"},
                          "organization": {"reference": f"Organization/clinic-{index}"},
                          "location": [{"reference": f"Location/loc-{index}"}],
                          "code": [_concept("http://nucc.org/provider-taxonomy", taxonomy, taxonomy_name)]})


def _body_sites(rng: random.Random, count: int, with_side: bool) -> list[dict[str, Any]]:
    pairs = rng.sample([(m, s) for m in MUSCLES for s in SIDES], count)
    sites = []
    for (code, name), (side_code, side) in pairs:
        site: dict[str, Any] = {"coding": [{"system": SCT, "code": code, "display": name}]}
        if with_side:
            site["extension"] = [{"url": LATERALITY, "valueCodeableConcept": _concept(SCT, side_code, side)}]
        sites.append(site)
    return sites


def _pick_defect(rng: random.Random) -> str | None:
    roll, cumulative = rng.random(), 0.0
    for defect, (share, _) in SEEDED.items():
        cumulative += share
        if roll < cumulative:
            return defect
    return None


def _patient(writer: Writer, rng: random.Random, number: int, sessions: int, year: int,
             seeded: IO[str]) -> int:
    patient = f"pat-{number}"
    writer.write({"resourceType": "Patient", "id": patient, "gender": rng.choice(("female", "male")),
                  "birthDate": f"{rng.randint(1940, 2000)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
                  "name": [{"family": f"Synthetic{number}", "given": ["Pat"]}]})
    payer_id, payer_name, sopt, _ = rng.choices(PAYERS, weights=[p[3] for p in PAYERS])[0]
    coverage: dict[str, Any] = {"resourceType": "Coverage", "id": f"cov-{number}", "status": "active",
                                "beneficiary": {"reference": f"Patient/{patient}"},
                                "payor": [{"reference": f"Organization/payer-{payer_id}", "display": payer_name}]}
    if sopt:
        coverage["type"] = _concept(SOPT, sopt, payer_name)
    writer.write(coverage)
    diagnosis = rng.choice(DIAGNOSES)
    first = dt.date(year, 1, 2) + dt.timedelta(days=rng.randint(0, 364 - 7 * sessions))
    condition = f"cond-{number}"
    writer.write({"resourceType": "Condition", "id": condition, "subject": {"reference": f"Patient/{patient}"},
                  "clinicalStatus": _concept("http://terminology.hl7.org/CodeSystem/condition-clinical", "active",
                                             "Active"),
                  "code": _concept(ICD, *diagnosis), "onsetDateTime": (first - dt.timedelta(days=200)).isoformat()})
    clinic = rng.randrange(len(STATES))
    degree = rng.choice(CLINICIANS)[0].lower()
    practitioner = f"Practitioner/prac-{clinic}-{degree}"
    for session in range(sessions):
        day = first + dt.timedelta(days=7 * session)
        claim_id = f"claim-{number}-{session}"
        encounter = f"enc-{number}-{session}"
        writer.write({"resourceType": "Encounter", "id": encounter, "status": "finished",
                      "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                      "subject": {"reference": f"Patient/{patient}"},
                      "period": {"start": day.isoformat(), "end": day.isoformat()},
                      "location": [{"location": {"reference": f"Location/loc-{clinic}"}}],
                      "serviceProvider": {"reference": f"Organization/clinic-{clinic}"}})
        dry_needling = rng.random() >= NON_DRY_NEEDLING_SHARE
        defect = _pick_defect(rng) if dry_needling else None
        muscles = rng.choice((1, 2, 2, 3, 4))
        code = "20560" if muscles <= 2 else "20561"
        if defect == "code-does-not-match-muscles":
            code = "20561" if code == "20560" else "20560"
        if not dry_needling:
            code = "97110"
        code_text = {"20560": "Dry needling, 1-2 muscles", "20561": "Dry needling, 3 or more muscles",
                     "97110": "Therapeutic exercise"}[code]
        procedure_id = f"proc-{number}-{session}"
        procedure: dict[str, Any] = {
            "resourceType": "Procedure", "id": procedure_id, "status": "completed",
            "code": {"coding": [{"system": CPT, "code": code}], "text": code_text},
            "subject": {"reference": f"Patient/{patient}"}, "encounter": {"reference": f"Encounter/{encounter}"},
            "performedDateTime": f"{day.isoformat()}T09:30:00-06:00",
            "performer": [{"actor": {"reference": practitioner}}],
            "location": {"reference": f"Location/loc-{clinic}"}}
        if dry_needling:
            procedure["bodySite"] = _body_sites(rng, muscles, defect != "no-laterality")
            procedure["note"] = [{"text": "Dry needling, no injectate; consent obtained; tolerated well."}]
            if defect != "no-diagnosis":
                procedure["reasonReference"] = [{"reference": f"Condition/{condition}"}]
        writer.write(procedure)
        claim_diagnosis = ("M54.5", "Low back pain") if defect == "deleted-icd-code" else diagnosis
        item: dict[str, Any] = {"sequence": 1, "careTeamSequence": [1], "procedureSequence": [1],
                                "productOrService": {"coding": [{"system": CPT, "code": code}], "text": code_text},
                                "servicedDate": day.isoformat(), "quantity": {"value": 2 if defect == "two-units"
                                                                              else 1},
                                "encounter": [{"reference": f"Encounter/{encounter}"}],
                                "locationReference": {"reference": f"Location/loc-{clinic}"}}
        claim: dict[str, Any] = {
            "resourceType": "Claim", "id": claim_id, "status": "active",
            "type": _concept("http://terminology.hl7.org/CodeSystem/claim-type", "professional", "Professional"),
            "use": "claim", "patient": {"reference": f"Patient/{patient}"},
            "billablePeriod": {"start": day.isoformat(), "end": day.isoformat()},
            "created": (day + dt.timedelta(days=1)).isoformat(), "enterer": {"reference": practitioner},
            "provider": {"reference": f"Organization/clinic-{clinic}"},
            "priority": _concept("http://terminology.hl7.org/CodeSystem/processpriority", "normal", "Normal"),
            "careTeam": [{"sequence": 1, "provider": {"reference": practitioner}, "responsible": True}],
            "procedure": [{"sequence": 1, "date": day.isoformat(),
                           "procedureReference": {"reference": f"Procedure/{procedure_id}"}}],
            "insurance": [{"sequence": 1, "focal": True, "coverage": {"reference": f"Coverage/cov-{number}"}}],
            "item": [item]}
        if defect != "no-diagnosis":
            claim["diagnosis"] = [{"sequence": 1, "diagnosisCodeableConcept": _concept(ICD, *claim_diagnosis)}]
            item["diagnosisSequence"] = [1]
        writer.write(claim)
        if defect:
            seeded.write(f"{claim_id},{defect},{SEEDED[defect][1]}\n")
    return sessions


def generate(folder: Path, claims: int, seed: int = 7, year: int = 2026, compress: bool = False) -> int:
    """Write an export of about ``claims`` Claims to ``folder``; returns the exact number written."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    writer = Writer(folder, compress)
    written = 0
    with (folder / "seeded.csv").open("w", encoding="utf-8") as seeded:
        seeded.write("claim_id,defect,rule_id\n")
        _shared(writer)
        number = 0
        while written < claims:
            sessions = min(rng.randint(*SESSIONS_PER_PATIENT), claims - written)
            written += _patient(writer, rng, number, sessions, year, seeded)
            number += 1
    writer.close()
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--claims", type=int, default=10_000)
    parser.add_argument("--out", type=Path, required=True, help="folder for the NDJSON files")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--year", type=int, default=2026)
    parser.add_argument("--gzip", action="store_true", help="write .ndjson.gz files")
    args = parser.parse_args()
    written = generate(args.out, args.claims, args.seed, args.year, args.gzip)
    print(f"{written} claims in {args.out}; seeded defects in {args.out / 'seeded.csv'}")


if __name__ == "__main__":
    main()
