"""What a model-quality report is asked to do: :class:`QualityRequest`, built alike by the page, the CLI and the
notebook, validated once (a bad value raises :class:`workbench.core.errors.InputError` with a one-line message).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from workbench.core.errors import InputError
from workbench.core.settings import load_section
from workbench.core.window import Window, parse_window
from workbench.sources.chunks import parse_chunk
from workbench.stats.drift import DriftSettings

METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")  # realised and estimated (CBPE), with bands
METRIC_NAMES = {"accuracy": "accuracy", "precision": "precision", "recall": "recall", "f1": "F1",
                "roc_auc": "ROC AUC", "pr_auc": "PR AUC", "brier": "Brier score", "ece": "ECE"}  # fmt: skip
CONFIDENCE = 0.95  # the reliability diagram's Wilson intervals
DEFAULT_REFERENCE = "first:30d"
DEFAULT_WINDOW = "last:30d"


def load_settings() -> DriftSettings:
    """The performance settings drift's "does it hurt the model?" uses too (``[drift]`` of settings.toml): the
    feedback kinds that count as labels, the band's width in standard errors, the calibration bins and the
    fewest labels a rate is read on."""
    return load_section(DriftSettings, "drift")


@dataclass(frozen=True)
class QualityRequest:
    """The inputs of one model-quality report on the store.

    - ``window``: the analysed predictions (a :class:`Window`, or its text ``START..END`` / ``last:7d`` /
      ``all``; default the last 30 days); ``model_versions`` restricts both sides (the report is per version).
    - ``reference``: the labelled predictions the window is held to and the calibration is fitted on (default
      the first 30 days).
    - ``chunk``: the over-time chunks (``day``, ``week`` or a number of rows ≥ 100) over ``over_time`` (the
      chunks' span; default all data, so the chart shows the window in its history; a :class:`Window` keeps its
      own model versions).
    - ``settings``: default settings.toml's ``[drift]`` (see :func:`load_settings`).
    """

    window: Window | str | None = DEFAULT_WINDOW
    reference: Window | str | None = DEFAULT_REFERENCE
    model_versions: tuple[str, ...] = ()
    chunk: str | int = "week"
    over_time: Window | str | None = "all"
    settings: DriftSettings | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "model_versions", tuple(v for v in self.model_versions if v))
        object.__setattr__(self, "chunk", parse_chunk(self.chunk))
        for name in ("window", "reference", "over_time"):
            side = getattr(self, name)
            if not (side is None or isinstance(side, Window | str)):
                raise InputError(f"the {name.replace('_', ' ')} must be a window of the store, not {side!r}")
            if isinstance(side, str):
                parse_window(side, None, (dt.datetime(2000, 1, 1, tzinfo=dt.UTC),) * 2)  # the form, checked now
            if isinstance(side, Window) and self.model_versions and name != "over_time":
                raise InputError("give the model versions inside the Window, not beside it")

    def windows(self, bounds: tuple[dt.datetime, dt.datetime] | None) -> tuple[Window, Window, Window]:
        """(reference, window, over time) as windows of a store whose first and last prediction are ``bounds``."""
        resolved = []
        for side in (self.reference, self.window, self.over_time):
            if isinstance(side, Window):
                resolved.append(side)
            else:
                resolved.append(parse_window(side, list(self.model_versions), bounds))
        return resolved[0], resolved[1], resolved[2]

    def resolved_settings(self) -> DriftSettings:
        """The settings this report runs with."""
        return self.settings or load_settings()
