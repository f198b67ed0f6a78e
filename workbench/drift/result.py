"""The drift result (:class:`DriftResult`, a :class:`workbench.core.result.Result`) and how one is assembled.

Every drift mode (store windows, two files, a file against a window) ends in :func:`build_result`: the
per-feature verdicts, the summary and the extras become one frozen object whose ``verdict`` and
``verdict_text`` come from :func:`verdict_sentence`. The page, the CLI, the notebook, the charts and the
HTML report read the features in one order, :attr:`DriftResult.ordered` (drifted first, largest PSI first).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, ClassVar

import pandas as pd

from workbench.core.window import Window, describe_window
from workbench.stats.clean import json_ready
from workbench.stats.drift import DriftSettings
from workbench.stats.drift_verdict import FeatureDrift


@dataclass(frozen=True)
class DriftResult:
    """Drift between a reference and a current window: per-feature results, summary, verdict and extras.

    ``over_time`` and ``performance`` (a :class:`~workbench.drift.over_time.DriftOverTime` and a
    :class:`~workbench.drift.performance.PerformanceOverTime`) are set by ``run()`` when the request asks for them.
    """

    family: ClassVar[str] = "drift"

    reference: dict[str, Any]
    current: dict[str, Any]
    features: tuple[FeatureDrift, ...]
    summary: dict[str, Any]
    verdict: str  # the dataset verdict: drift | no drift | insufficient (see verdict_sentence)
    verdict_text: str
    prediction_drift: dict[str, Any] | None = None
    label_drift: dict[str, Any] | None = None
    multivariate: dict[str, Any] | None = None
    reconstruction: dict[str, Any] | None = None  # the PCA reconstruction drift and the multivariate verdict
    warnings: tuple[str, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)
    seconds: float | None = None
    over_time: Any = field(default=None, compare=False)
    performance: Any = field(default=None, compare=False)

    @property
    def ordered(self) -> list[FeatureDrift]:
        """The features in the order every view shows them: drifted first, then by PSI, largest first."""
        return sorted(self.features, key=lambda f: (not f.drift, -(f.psi or 0.0)))

    @property
    def drifted(self) -> list[str]:
        """Names of the drifted features, largest PSI first."""
        return [f.name for f in self.ordered if f.drift]

    def feature(self, name: str) -> FeatureDrift:
        """The result of one feature by name."""
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def reasons(self) -> tuple[str, ...]:
        """One line per drifted feature (its number and the rule it was held to), then the dataset rule.

        E.g. ``tenure_days: PSI 4.26 ≥ 0.1`` and ``4 of 11 features drifted; dataset drift needs ≥ 50%``.
        """
        s, settings = self.summary, self.settings
        lines = [feature_reason(f, settings) for f in self.ordered if f.drift]
        share = settings.get("dataset_drift_share", 0.5)
        if s.get("n_features"):
            lines.append(f"{s['n_drifted']} of {s['n_features']} features drifted; dataset drift needs ≥ {share:.0%}")
        else:
            lines.append(f"no feature has at least {settings.get('min_rows', 30)} values in both windows")
        return tuple(lines)

    def evidence(self) -> dict[str, Any]:
        """What the retrain gate records (``sources.evidence.record_once``): the sentence, counts, names, windows."""
        return json_ready(
            {
                "verdict_text": self.verdict_text,
                "n_features": self.summary["n_features"],
                "n_drifted": self.summary["n_drifted"],
                "share_drifted": self.summary["share_drifted"],
                "dataset_drift": self.summary["dataset_drift"],
                "drifted": self.drifted,
                "reference": self.reference.get("label"),
                "current": self.current.get("label"),
            }
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per feature (in :attr:`ordered`), every statistic of :class:`FeatureDrift` but the chart data."""
        rows = [f.to_dict(with_distribution=False) for f in self.ordered]
        columns = [c for c in FeatureDrift.__dataclass_fields__ if c != "distribution"]
        return pd.DataFrame(rows, columns=columns)

    def to_dict(self, with_distribution: bool = True) -> dict[str, Any]:
        """JSON-ready form (``features[]``, ``summary`` and more; no NaN); over time and performance when run."""
        document = json_ready(
            {
                "verdict": self.verdict,
                "verdict_text": self.verdict_text,
                "summary": {**self.summary, "drifted": self.drifted},
                "reference": self.reference,
                "current": self.current,
                "features": [f.to_dict(with_distribution) for f in self.features],
                "prediction_drift": self.prediction_drift,
                "label_drift": self.label_drift,
                "multivariate": self.multivariate,
                "reconstruction": self.reconstruction,
                "warnings": list(self.warnings),
                "settings": self.settings,
                "seconds": self.seconds,
            }
        )
        if self.over_time is not None:
            document["over_time"] = self.over_time.to_dict()
            document["performance"] = self.performance.to_dict() if self.performance is not None else None
        return document

    def to_json(self) -> dict[str, Any]:
        """The ``workbench drift --json`` document: :meth:`to_dict` without the chart data."""
        return self.to_dict(with_distribution=False)


def feature_reason(feature: FeatureDrift, settings: dict[str, Any]) -> str:
    """Why one feature drifted, e.g. ``amount: PSI 0.41 ≥ 0.1`` or ``zip: missing share 2% → 9% (≥ 5 points)``."""
    if feature.decided_by == "psi" and feature.psi is not None:
        return f"{feature.name}: PSI {feature.psi:.2f} ≥ {settings.get('psi_threshold', 0.1):g}"
    if feature.decided_by == "p_value" and feature.p_adjusted is not None:
        return f"{feature.name}: BH-adjusted p {feature.p_adjusted:.2g} < {settings.get('p_value', 0.05):g}"
    before, after = feature.missing_share_reference or 0, feature.missing_share_current or 0
    points = settings.get("missing_share_change", 0.05) * 100
    return f"{feature.name}: missing share {before:.0%} → {after:.0%} (≥ {points:g} points)"


def rate_lines(result: DriftResult) -> list[str]:
    """The prediction and label drift in words: 'predicted-positive rate 12.0% → 15.3%', 'label rate (feedback) …'."""
    pct = lambda v: "—" if v is None else f"{v:.1%}"  # noqa: E731
    lines = []
    if result.prediction_drift and "positive_rate" in result.prediction_drift:
        pr = result.prediction_drift["positive_rate"]
        lines.append(f"predicted-positive rate {pct(pr['reference'])} → {pct(pr['current'])}")
    if result.label_drift:
        ld = result.label_drift
        lines.append(f"label rate (feedback) {pct(ld['reference'])} → {pct(ld['current'])}")
    return lines


def window_side(window: Window | None, rows: int, label: str | None = None) -> dict[str, Any]:
    """One side of a comparison as the result keeps it: its label, rows, time range and model versions."""
    w = window or Window()
    return {
        "label": label or describe_window(w),
        "rows": rows,
        "start": w.start.isoformat() if w.start else None,
        "end": w.end.isoformat() if w.end else None,
        "model_versions": list(w.model_versions),
    }


@dataclass(frozen=True)
class Outcome:
    """What a comparison pass found: features with verdicts, summary, warnings, prediction/label drift, classifier."""

    features: list[FeatureDrift]
    summary: dict[str, Any]
    warnings: list[str]
    extras: dict[str, Any]
    multivariate: dict[str, Any] | None


def build_result(
    outcome: Outcome, reference: dict[str, Any], current: dict[str, Any], settings: DriftSettings, started: float
) -> DriftResult:
    """The :class:`DriftResult` of a comparison pass; ``started``: its ``time.perf_counter()`` at the start."""
    result = DriftResult(
        reference=reference,
        current=current,
        features=tuple(outcome.features),
        summary=outcome.summary,
        verdict="",
        verdict_text="",
        prediction_drift=outcome.extras.get("prediction_drift"),
        label_drift=outcome.extras.get("label_drift"),
        multivariate=outcome.multivariate,
        warnings=tuple(dict.fromkeys(outcome.warnings)),
        settings=asdict(settings),
        seconds=round(time.perf_counter() - started, 3),
    )
    verdict, text = verdict_sentence(result)
    return replace(result, verdict=verdict, verdict_text=text)


def verdict_sentence(result: DriftResult) -> tuple[str, str]:
    """('drift' | 'no drift' | 'insufficient', the sentence): the *dataset* verdict, with its rule in words.

    The verdict answers one question, "did the dataset drift?", by the rule ``dataset_drift_share`` (a share
    of the features); the page's box, the ``--json`` document, the HTML report, ``--exit-code`` and the retrain
    gate all show this word. E.g. 'dataset drift: no — 4 of 11 features drifted since Mar 3 (36%; the rule is
    ≥ 50%); largest: amount, PSI 0.41'.
    """
    s = result.summary
    since = result.current.get("label") or "the current window"
    since = since if since.startswith(("since", "until")) else f"in {since}"
    if s["n_features"] == 0:
        return "insufficient", f"dataset drift: insufficient — no feature has enough values to judge drift {since}"
    share = result.settings.get("dataset_drift_share", 0.5)
    word = "yes" if s["dataset_drift"] else "no"
    text = (
        f"dataset drift: {word} — {s['n_drifted']} of {s['n_features']} features drifted {since} "
        f"({s['share_drifted']:.0%}; the rule is ≥ {share:.0%})"
    )
    if s["n_drifted"]:
        top = result.feature(result.drifted[0])
        if top.psi is not None:
            text += f"; largest: {top.name}, PSI {top.psi:.2f}"
        else:
            before, after = top.missing_share_reference or 0, top.missing_share_current or 0
            text += f"; {top.name}: missing share {before:.0%} → {after:.0%}"
    return ("drift" if s["dataset_drift"] else "no drift"), text
