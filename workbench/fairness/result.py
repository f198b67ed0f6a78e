"""The fairness audit's result: :class:`FairnessAudit` (the result contract of ``workbench.core.result``:
verdict, reasons, the gate's evidence, a tidy group table, the CLI's JSON; and fairlearn-``MetricFrame``-like
accessors ``by_group``, ``overall``, ``difference()``, ``ratio()``), the settings loader and the reference
population file reader, shared by the page, the CLI and the notebook.
"""

from __future__ import annotations

import csv
import io
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from workbench.core.errors import InputError
from workbench.core.settings import load_section
from workbench.stats.clean import json_ready
from workbench.stats.fairness import (
    GROUP_METRICS,
    HEADLINE_DISPARITIES,
    FairnessSettings,
    between_groups,
    rates,
)
from workbench.stats.fairness_verdict import FOUR_FIFTHS_NOTE

# Aequitas' names for what we call by fairlearn's names (README: "Names").
AEQUITAS_NAMES = {
    "selection_rate": "ppr is the share of all predicted positives; pprev (predicted prevalence) is our selection rate",
    "tpr": "tpr",
    "fpr": "fpr",
    "fnr": "fnr",
    "precision": "precision",
    "ratio to the reference": "<metric>_disparity (e.g. fpr_disparity)",
    "demographic_parity_ratio": "min over groups of pprev_disparity when the reference is the max group",
}


def load_settings() -> FairnessSettings:
    """Fairness settings: defaults overridden by ``[fairness]`` of settings.toml / $WORKBENCH_SETTINGS."""
    return load_section(FairnessSettings, "fairness")


@dataclass(frozen=True)
class FairnessAudit:
    """A fairness audit: groups with rates, CIs and comparisons; disparities; flags; the verdict; the sections.

    Conforms to :class:`workbench.core.result.Result` (family ``fairness``; ``verdict`` is pass | fail |
    insufficient). Read it like fairlearn's ``MetricFrame``: ``by_group`` (a rate per group), ``overall``,
    ``difference(metric)`` and ``ratio(metric)`` (``method="between_groups"``).
    """

    family: ClassVar[str] = "fairness"

    source: dict[str, Any]
    sensitive: tuple[str, ...]
    reference_group: str
    groups: tuple[dict[str, Any], ...]
    disparities: dict[str, float | None]
    disparity_intervals: dict[str, list[float | None]]
    flags: tuple[dict[str, Any], ...]
    verdict: str  # pass | fail | insufficient
    verdict_text: str
    reasons: tuple[str, ...]
    labels: dict[str, Any]
    over_time: dict[str, Any] | None = None
    versions: dict[str, Any] | None = None
    calibration: dict[str, Any] | None = None
    representation: dict[str, Any] | None = None
    comparison: dict[str, Any] | None = None  # every model version on accuracy vs disparity (tradeoffs.py)
    mitigation: dict[str, Any] | None = None  # the ThresholdOptimizer preview (tradeoffs.py)
    warnings: tuple[str, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)
    seconds: float | None = None

    def group(self, name: str) -> dict[str, Any]:
        """One group's row by its name (values joined by " × ")."""
        for row in self.groups:
            if row["group"] == name:
                return row
        raise KeyError(name)

    # --- fairlearn's MetricFrame, read from the audit ------------------------------------------------------

    @property
    def by_group(self) -> pd.DataFrame:
        """A DataFrame indexed by group with a column per rate (``GROUP_METRICS``); NaN where a rate is undefined
        (its denominator is 0: fairlearn reports 0 there), like ``MetricFrame(...).by_group``."""
        frame = pd.DataFrame(
            [[np.nan if g[m] is None else float(g[m]) for m in GROUP_METRICS] for g in self.groups],
            index=pd.Index([g["group"] for g in self.groups], name="group"),
            columns=list(GROUP_METRICS),
            dtype="float64",
        )
        return frame

    @property
    def overall(self) -> pd.Series:
        """Each rate over every group's rows at once, like ``MetricFrame(...).overall`` (from the summed cells)."""
        cells = self._cells().sum(axis=0, keepdims=True)
        population = self.settings.get("selection_rate_population", "all")
        values = [float(rates(cells, metric, population)[0]) for metric in GROUP_METRICS]
        return pd.Series(values, index=list(GROUP_METRICS), dtype="float64")

    def difference(self, metric: str) -> float:
        """max − min of ``metric`` over the groups whose rate is defined (fairlearn's ``method="between_groups"``)."""
        return float(between_groups(self._rate(metric))[0])

    def ratio(self, metric: str) -> float:
        """min / max of ``metric`` over the groups whose rate is defined (fairlearn's ``method="between_groups"``)."""
        return float(between_groups(self._rate(metric))[1])

    def _rate(self, metric: str) -> np.ndarray:
        if metric not in GROUP_METRICS:
            raise InputError(f"unknown rate '{metric}' (known: {', '.join(GROUP_METRICS)})")
        return self.by_group[metric].to_numpy()

    def _cells(self) -> np.ndarray:
        """The six cells per group (TP, FP, FN, TN, unlabelled selected, unlabelled rejected), shape (groups, 6)."""
        out = np.zeros((len(self.groups), 6))
        for i, g in enumerate(self.groups):
            c = g["confusion"]
            selected = g["predicted_positive"] - c["tp"] - c["fp"]
            out[i] = [c["tp"], c["fp"], c["fn"], c["tn"], selected, g["n"] - g["n_labelled"] - selected]
        return out

    # --- the result contract ------------------------------------------------------------------------------

    def evidence(self) -> dict[str, Any]:
        """What the retrain gate records (``sources.evidence.record_once``): :meth:`run_summary`, with the model
        comparison's verdict and the mitigation preview's thresholds when they were asked for."""
        summary = self.run_summary()
        if self.comparison:
            summary["model_comparison"] = json_ready(
                {k: self.comparison.get(k) for k in ("verdict", "verdict_text", "disparity", "front", "change")}
            )
        if self.mitigation:
            keys = ("constraint", "verdict", "verdict_text", "thresholds", "accuracy_before", "accuracy_after",
                    "disparity", "disparity_before", "disparity_after")  # fmt: skip
            summary["mitigation"] = json_ready({k: self.mitigation.get(k) for k in keys})
        return summary

    def to_json(self) -> dict[str, Any]:
        """The CLI's ``--json`` document: :meth:`to_dict`."""
        return self.to_dict()

    def to_frame(self) -> pd.DataFrame:
        """One row per group: attributes, status, sizes, each rate with its interval, ratio to the reference and
        adjusted p, feedback rates and ECE (the columns of :meth:`groups_csv`)."""
        columns, rows = self._flat_groups()
        return pd.DataFrame(rows, columns=columns)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: the keys ``groups[]``, ``disparities``, ``flags[]``, ``verdict`` and more (README)."""
        return json_ready(
            {
                "verdict": self.verdict,
                "verdict_text": self.verdict_text,
                "reasons": list(self.reasons),
                "sensitive": list(self.sensitive),
                "reference_group": self.reference_group,
                "groups": list(self.groups),
                "disparities": self.disparities,
                "disparity_intervals": self.disparity_intervals,
                "flags": list(self.flags),
                "labels": self.labels,
                "over_time": self.over_time,
                "versions": self.versions,
                "calibration": self.calibration,
                "representation": self.representation,
                "model_comparison": self.comparison,
                "mitigation": self.mitigation,
                "source": self.source,
                "warnings": list(self.warnings),
                "notes": {"four_fifths": FOUR_FIFTHS_NOTE, "aequitas_names": AEQUITAS_NAMES},
                "settings": self.settings,
                "seconds": self.seconds,
            }
        )

    def run_summary(self) -> dict[str, Any]:
        """What ``record_run(store, "fairness", …)`` keeps: the sentence, flags, reference group, attributes."""
        return json_ready(
            {
                "verdict_text": self.verdict_text,
                "flags": [f["message"] for f in self.flags],
                "reference_group": self.reference_group,
                "sensitive": list(self.sensitive),
                "groups": len(self.groups),
                "failed_groups": [g["group"] for g in self.groups if g["status"] == "fail"],
                "disparities": {k: self.disparities.get(k) for k in HEADLINE_DISPARITIES},
                "source": self.source.get("label"),
                # The representation audit's target composition, which the retrain gate can rebalance to
                # (curation rebalances on one column, so only for an audit of one attribute).
                "target_shares": (self.representation or {}).get("target_shares") if len(self.sensitive) == 1 else None,
                "target": (self.representation or {}).get("target") if len(self.sensitive) == 1 else None,
            }
        )

    def thresholds_csv(self) -> str:
        """The mitigation preview's group thresholds as CSV (empty when none was asked for or it could not fit)."""
        rows = (self.mitigation or {}).get("thresholds") or []
        columns = ["group", "threshold_0", "p_0", "threshold_1", "p_1", "p_ignore", "constant", "operator", "rule"]
        return _csv_text(columns, rows) if rows else ""

    def groups_csv(self) -> str:
        """The group table as CSV: one row per group, each rate with its interval and its comparison."""
        return _csv_text(*self._flat_groups())

    def _flat_groups(self) -> tuple[list[str], list[dict[str, Any]]]:
        """The group table's columns and its rows as flat dicts (one per group)."""
        columns = ["group", *self.sensitive, "status", "n", "n_labelled", "positives", "negatives"]
        for metric in GROUP_METRICS:
            columns += [metric, f"{metric}_ci_low", f"{metric}_ci_high", f"{metric}_ratio", f"{metric}_p_adjusted"]
        columns += ["positive_feedback_rate", "mean_rating", "ece"]
        rows = []
        for row in self.groups:
            flat = {k: row.get(k) for k in columns}
            flat.update(row["attributes"])
            for metric in GROUP_METRICS:
                flat[f"{metric}_ci_low"], flat[f"{metric}_ci_high"] = row["ci"][metric]
                comparison = row["vs_reference"].get(metric, {})
                flat[f"{metric}_ratio"] = comparison.get("ratio")
                flat[f"{metric}_p_adjusted"] = comparison.get("p_adjusted")
            flat["ece"] = (row.get("calibration") or {}).get("ece")
            rows.append({k: flat.get(k) for k in columns})
        return columns, rows


def _csv_text(columns: list[str], rows: list[dict[str, Any]]) -> str:
    """``rows`` as CSV text with a header of ``columns`` (other keys ignored)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def read_population(path: str | Path) -> dict[str, float]:
    """Reference population shares from CSV (``group,share`` header) or TOML (``[population]`` group = share)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such reference population file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path.name}: cannot read the reference population ({type(exc).__name__})") from None
    if path.suffix.lower() == ".toml":
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"{path.name}: not valid TOML ({exc})") from None
        items = list((raw.get("population", raw)).items())
    else:
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames or {"group", "share"} - {f.strip() for f in reader.fieldnames}:
            raise InputError(f"{path.name}: a reference population CSV needs the header 'group,share'")
        items = [((r.get("group") or "").strip(), (r.get("share") or "").strip()) for r in reader]
    shares: dict[str, float] = {}
    for number, (group, share) in enumerate(items, start=1):
        try:
            value = float(share)
        except (TypeError, ValueError):
            raise InputError(f"{path.name}: share of '{group}' is not a number ('{share}')") from None
        if not group or value < 0 or value != value:
            raise InputError(f"{path.name}: entry {number} needs a group name and a share ≥ 0")
        if group in shares:
            raise InputError(f"{path.name}: group '{group}' appears twice")
        shares[group] = value
    if not shares or sum(shares.values()) <= 0:
        raise InputError(f"{path.name}: no positive shares")
    return shares


def with_overrides(settings: FairnessSettings, **overrides: Any) -> FairnessSettings:
    """``settings`` with the non-None ``overrides`` applied (CLI options and page inputs)."""
    return replace(settings, **{k: v for k, v in overrides.items() if v is not None})
