"""Reliability: what held when issue 21 attacked the store and must keep holding.

This folder holds the cases at scale or under contention: a ``kill -9`` at several moments of a 200k-row ingest,
two processes recording decisions at once ten times (keyed), and a simulator appending while analyses read.
The other cases of the attack stay beside the code they test, and run in the same ``make test``:
hostile column names, globs, NaN/inf, timestamps and wide files in ``tests/ingest/test_hostile_inputs.py``; a
kill after the insert of a small ingest in ``tests/ingest/test_ingest.py``; a reader that never sees half a
simulator batch in ``tests/demo/test_simulate.py``; the decision log's tampering, its key and kept head, and CSV
neutralisation in ``tests/gate/test_decisions.py``; confined export folders in ``tests/gate/test_confined_export.py``.
"""
