"""The predictions of a window as an Ibis expression: every analysis's starting point (no other import, so any
query module may use it)."""

from __future__ import annotations

from typing import Any

from workbench.core.window import Window


def filtered_predictions(backend: Any, window: Window | None = None) -> Any:
    """Return the predictions table filtered by ``window`` as an Ibis expression."""
    p = backend.table("predictions")
    if window is None:
        return p
    if window.start is not None:
        p = p.filter(p.ts >= window.start)
    if window.end is not None:
        p = p.filter(p.ts < window.end)
    if window.model_versions:
        p = p.filter(p.model_version.isin(list(window.model_versions)))
    return p
