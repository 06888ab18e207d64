"""``needlecheck scan``: the claim-create rules over a year of past claims, with a work list and a report.

The input is a FHIR Bulk Data export (NDJSON) or a FHIR server; each Claim is checked with the hook's own
context builder, rules and cards, in parallel processes, and the results go to ``findings.csv``,
``findings.ndjson``, ``summary.json`` and ``report.html``.
"""
