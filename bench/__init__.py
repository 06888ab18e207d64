"""Needlecheck benchmark: in-process and HTTP cost of the two hooks, against a trivial-endpoint ceiling.

Run it from the repository root with ``.venv/bin/python -m bench.run``; see ``bench/README.md``.
"""
