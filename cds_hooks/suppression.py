"""Repeat suppression: a card the user overrode stays away for N days for the same patient, rule and finding.

A finding is the same when its rule, line code, date of service and muscles are (the card uuid is not: it
changes with every hook instance). Every card shown is recorded with two keyed hashes (HMAC-SHA256): one of
the patient id and one of the finding, so the database holds no patient identifier in clear and the hashes
cannot be recomputed without the secret. Feedback ``overridden`` on a recorded card then suppresses the same
finding for the same patient, whichever worker or instance answers (the records are in the shared database;
instances must share the secret, from the config file or ``NEEDLECHECK_SUPPRESSION_SECRET``).

The shown cards are written with the call's audit record, in its transaction (one commit per call); they
also tell the report which rule each card (and so each feedback item) belongs to.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from needlecheck.cds_hooks.cards import RULE_EXTENSION, card_uuid
from needlecheck.plugin.context import BillingContext
from needlecheck.plugin.findings import Finding

log = logging.getLogger("needlecheck")

SECRET_FILE = "suppression-secret"


@dataclass(frozen=True)
class IssuedCard:
    """A card as shown: its uuid and rule, and the hashed patient and finding it is about (when known)."""

    card_uuid: str
    rule_id: str
    patient_key: str
    finding_key: str | None


class SuppressionStore(Protocol):
    """The part of a store that answers which findings were overridden (shown cards come with the audit record)."""

    def overridden_findings(self, patient_key: str, finding_keys: list[str], since: dt.datetime) -> set[str]:
        """Which of ``finding_keys`` of this patient were on a card overridden at or after ``since``."""
        ...


def load_or_create_secret(configured: str | None, data_dir: Path) -> bytes:
    """The HMAC key: the configured secret, else ``data_dir/suppression-secret``, created (0600) when absent.

    Workers starting together may race to create it: the file is written aside and linked into place, so
    exactly one secret wins and every worker reads that one.
    """
    if configured:
        return configured.encode("utf-8")
    path = data_dir / SECRET_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        aside = data_dir / f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        descriptor = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="ascii") as file:
            file.write(secrets.token_hex(32))
        try:
            os.link(aside, path)
        except FileExistsError:
            pass  # another worker's secret won
        finally:
            aside.unlink()
    return path.read_text(encoding="ascii").strip().encode("ascii")


def keyed_hash(secret: bytes, kind: str, value: str) -> str:
    """HMAC-SHA256 of ``value`` (domain-separated by ``kind``), hex."""
    return hmac.new(secret, f"{kind}\x1f{value}".encode(), hashlib.sha256).hexdigest()


def finding_identity(finding: Finding, context: BillingContext) -> str | None:
    """Rule, line code, date of service and muscles of a finding; None when its line is not in the context."""
    line = next((line for line in context.lines if line.key == finding.line_key), None)
    if line is None:
        return None
    muscles = ",".join(sorted(f"{concept}:{side}" for concept, side in line.muscles.muscles))
    return "|".join((finding.rule_id, line.code, context.date_of(line).isoformat(), muscles))


@dataclass(frozen=True)
class Suppression:
    """Repeat suppression for one service, over a store; ``days`` 0 records cards but suppresses nothing."""

    store: SuppressionStore
    secret: bytes
    days: int

    def split(self, findings: list[Finding], context: BillingContext,
              now: dt.datetime) -> tuple[list[Finding], list[Finding], dict[str, str]]:
        """(shown, suppressed, finding key by (rule, line)) for ``findings``; storage failures suppress nothing."""
        keys: dict[str, str] = {}
        for finding in findings:
            identity = finding_identity(finding, context)
            if identity is not None:
                keys[_slot(finding)] = keyed_hash(self.secret, "finding", identity)
        if self.days <= 0 or not keys:
            return findings, [], keys
        try:
            overridden = self.store.overridden_findings(self.patient_key(context.patient_id),
                                                        sorted(set(keys.values())),
                                                        now - dt.timedelta(days=self.days))
        except Exception as error:  # decision support stays available when the database is not
            log.error("repeat suppression skipped: %s", type(error).__name__)
            return findings, [], keys
        shown = [f for f in findings if f.unchecked or keys.get(_slot(f)) not in overridden]
        suppressed = [f for f in findings if not f.unchecked and keys.get(_slot(f)) in overridden]
        return shown, suppressed, keys

    def patient_key(self, patient_id: str) -> str:
        """The keyed hash that stands for the patient."""
        return keyed_hash(self.secret, "patient", patient_id)

    def issued_cards(self, hook_instance: str, patient_id: str, shown: list[Finding], keys: dict[str, str],
                     cards: list[dict[str, Any]]) -> tuple[IssuedCard, ...]:
        """The rule-carrying cards returned, with their finding keys: the audit record stores them with itself."""
        by_uuid = {card_uuid(hook_instance, f.rule_id, f.line_key): keys.get(_slot(f)) for f in shown}
        patient_key = self.patient_key(patient_id)
        return tuple(IssuedCard(card["uuid"], card["extension"][RULE_EXTENSION], patient_key, by_uuid.get(card["uuid"]))
                     for card in cards if isinstance(card.get("extension"), dict)
                     and isinstance(card["extension"].get(RULE_EXTENSION), str))


def _slot(finding: Finding) -> str:
    return f"{finding.rule_id}\x1f{finding.line_key}"


def suppressed_rule_ids(suppressed: list[Finding]) -> tuple[str, ...]:
    """One rule id per suppressed card (a rule's findings about one line make one card)."""
    return tuple(slot.split("\x1f", 1)[0] for slot in dict.fromkeys(_slot(f) for f in suppressed))
