"""The one entry of the A/B analysis: :func:`run` (source, request) → :class:`ABTestResult`.

The page (through :mod:`workbench.abtest.view`), the CLI (`workbench abtest`) and the notebook build an
:class:`ABTestRequest` and call :func:`run`; the mode dispatch lives here. The store mode reads a
:class:`~workbench.sources.base.StoreSource`; the file mode a :class:`~workbench.sources.base.FileSource` (one
row per unit); the summary mode the request's typed-in rows, or the summary file a ``FileSource`` names.
"""

from __future__ import annotations

from collections.abc import Callable

from workbench.abtest.analyse import analyse_file, analyse_store, analyse_summary, parse_summary_file
from workbench.abtest.request import ABTestRequest
from workbench.abtest.result import ABTestResult
from workbench.core.errors import InputError
from workbench.sources.base import FileSource, Source, StoreSource

__all__ = ["ABTestRequest", "ABTestResult", "run"]


def run(source: Source | None, request: ABTestRequest, progress: Callable[[str], None] | None = None) -> ABTestResult:
    """Returns the A/B analysis ``request`` asks for over ``source`` (None: typed-in rows in the request).

    ``progress`` hears a short line per step of the store mode (the CLI prints them on stderr, the page in its
    status box).
    """
    if request.mode == "store":
        if not isinstance(source, StoreSource):
            raise InputError("the A/B store mode reads a store, not a file: give --file or --summary-file for a file")
        if not source.store.exists():
            raise InputError(
                f"no store at {source.store.path}: run `workbench demo` or `workbench ingest`, or give --file"
            )
        return analyse_store(source.store, request, progress)
    if request.mode == "file":
        if not isinstance(source, FileSource):
            raise InputError("the A/B file mode reads a file with one row per unit (--file)")
        return analyse_file(source.path, request)
    if request.rows:
        return analyse_summary([dict(row) for row in request.rows], request)
    if not isinstance(source, FileSource):
        raise InputError("the A/B summary mode needs typed-in rows or a summary file (--summary-file)")
    return analyse_summary(parse_summary_file(source.path), request)
