"""Needlecheck benchmark: the aims of issue 10 (in-process ``run_hook``, HTTP against a trivial-endpoint ceiling,
start-up, worker memory, ``needlecheck check``, FHIR fallback), every figure from one run.

Run it from the repository root with ``.venv/bin/python -m bench.run``; see ``bench/README.md``.
"""
