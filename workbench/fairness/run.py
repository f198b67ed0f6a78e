"""The one entry of the fairness audit: ``run(source, request) -> FairnessAudit``, for the page, CLI and notebook.

The mode follows the source: the store (:class:`StoreSource`: labels from the feedback, one per trace, in the
request's window) or a file read in place (:class:`FileSource`: the request names its label and prediction
columns). An in-memory frame goes through :func:`workbench.fairness.audit.frame_audit`.
"""

from __future__ import annotations

from workbench.core.errors import InputError
from workbench.fairness.audit import FairnessAudit, Progress, file_audit, store_audit
from workbench.fairness.request import FairnessRequest
from workbench.sources.base import FileSource, Source, StoreSource

__all__ = ["FairnessRequest", "run"]


def run(source: Source, request: FairnessRequest, *, progress: Progress | None = None) -> FairnessAudit:
    """The fairness audit of ``source`` for ``request`` (``progress`` hears each step in a few words)."""
    if isinstance(source, FileSource):
        return file_audit(source.path, request, progress)
    if isinstance(source, StoreSource):
        return store_audit(source.store, request, progress)
    raise InputError(f"the fairness audit reads a store or a file, not {source.label}")
