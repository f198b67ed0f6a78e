"""The predictions of a window as an Ibis expression: every analysis's starting point (no other import, so any
query module may use it)."""

from __future__ import annotations

from typing import Any

from workbench.core.window import Window


def window_condition(ts: Any, model_version: Any, window: Window | None) -> Any | None:
    """The Ibis condition that a prediction with ``ts`` and ``model_version`` (columns; None when the window has no
    versions) is in ``window``, or None when the window keeps everything. One rule for the predictions and for the
    feedback's copy of its prediction's ts (:func:`workbench.sources.trace_feedback.on_predictions`)."""
    if window is None:
        return None
    conditions = []
    if window.start is not None:
        conditions.append(ts >= window.start)
    if window.end is not None:
        conditions.append(ts < window.end)
    if window.model_versions:
        if model_version is None:
            raise ValueError("a window of model versions needs the rows' model_version column")
        conditions.append(model_version.isin(list(window.model_versions)))
    if not conditions:
        return None
    condition = conditions[0]
    for c in conditions[1:]:
        condition = condition & c
    return condition


def filtered_predictions(backend: Any, window: Window | None = None) -> Any:
    """Return the predictions table filtered by ``window`` as an Ibis expression."""
    p = backend.table("predictions")
    condition = (
        None if window is None else window_condition(p.ts, p.model_version if window.model_versions else None, window)
    )
    return p if condition is None else p.filter(condition)
