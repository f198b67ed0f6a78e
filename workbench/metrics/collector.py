"""The numbers the exporter publishes, computed by the analyses' own public functions (no statistic of its own).

Three sections, each computed on its own so one that fails (a rules file with a typo, a store busy past the
retry) reports its error and leaves the others standing:

* ``stream``: per model version the online accuracy, thumbs-up rate, feedback and label coverage (the stream
  page's :func:`workbench.stream.snapshot.snapshot_from` split by model version, rates by its ``add_rates``),
  the label-delay quantiles (:func:`workbench.stream.quality.label_delays_from`, the page's mature cohort)
  and the quarantined rows by table and reason (:func:`workbench.stream.quality.signal_quality_from`), all
  over one read-only connection: one consistent snapshot of a store another process may be appending to.
* ``drift``: per feature the PSI of the current window against the reference (the drift analysis's ``run``,
  without the domain classifier), the PSI threshold and each feature's verdict.
* ``rules``: per rule of a rules file its current value, threshold and whether it fires, and whether the set
  fires (the retraining triggers' ``run``, as ``workbench check``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.core.errors import InputError, WorkbenchError
from workbench.core.window import Window, parse_window
from workbench.drift.request import DriftRequest
from workbench.drift.result import DriftResult
from workbench.drift.run import run as run_drift
from workbench.metrics.settings import MetricsSettings
from workbench.sources.base import StoreSource
from workbench.sources.store import Store
from workbench.sources.store_queries import store_bounds
from workbench.stream.buckets import MISSING
from workbench.stream.quality import label_delays_from
from workbench.stream.queries import SERIES_COUNTS, default_label_types, label_sources_from
from workbench.stream.request import CheckRequest
from workbench.stream.snapshot import StreamSettings, add_rates, snapshot_from, stream_settings
from workbench.stream.trigger_results import CheckResult, RuleResult
from workbench.stream.triggers import load_rules
from workbench.stream.triggers import run as run_check

SECTIONS = ("stream", "drift", "rules")
DELAY_SHARES = (0.5, 0.9, 0.95)  # the label-delay quantiles published (the stream page's)


@dataclass(frozen=True)
class VersionReadings:
    """One model version's stream numbers over the window: counts, rates (None without trials) and delays.

    ``label_delay_hours``: share → hours by which that share of its labels had arrived (empty: no labels).
    """

    model_version: str
    predictions: int
    labels: int
    thumbs: int
    online_accuracy: float | None
    thumbs_up_rate: float | None
    feedback_coverage: float | None
    label_coverage: float | None
    label_delay_hours: dict[float, float] = field(default_factory=dict)
    label_delay_censored: bool = True


@dataclass(frozen=True)
class Readings:
    """Everything one computation found: the three sections' numbers, when, how long it took, what failed.

    ``computed_at``: Unix seconds (UTC) when the computation finished; ``as_of``: the newest prediction;
    ``errors``: section → its one-line error (that section's numbers are absent).
    """

    computed_at: float
    seconds: float
    as_of: pd.Timestamp | None = None
    label_types: tuple[str, ...] = ()
    versions: tuple[VersionReadings, ...] = ()
    quarantined: dict[tuple[str, str], int] = field(default_factory=dict)
    drift: DriftResult | None = None
    check: CheckResult | None = None
    errors: dict[str, str] = field(default_factory=dict)

    def section_ok(self, section: str) -> bool:
        """True when ``section`` was computed (a rules section without a rules file is not computed, not failed)."""
        return section not in self.errors

    def summary(self) -> str:
        """One line for the terminal: versions, features, rules firing, errors."""
        parts = [f"{len(self.versions)} model versions"]
        if self.drift is not None:
            parts.append(f"{len(self.drift.features)} features' PSI ({len(self.drift.drifted)} drifted)")
        if self.check is not None:
            firing = sum(r.fired for r in self.check.rules)
            failed = [r.name for r in self.check.rules if r.error is not None]
            state = "fires" if self.check.fired else "is undecided" if self.check.undecided else "is quiet"
            parts.append(
                f"{len(self.check.rules)} rules ({firing} firing; the set {state}"
                + (f"; not evaluable: {', '.join(failed)}" if failed else "")
                + ")"
            )
        parts += [f"{section} failed: {message}" for section, message in self.errors.items()]
        return f"computed in {self.seconds:.1f} s: " + "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the CLI's ``--json``)."""
        return {
            "computed_at": pd.Timestamp(self.computed_at, unit="s", tz="UTC").isoformat(),
            "seconds": round(self.seconds, 3),
            "as_of": None if self.as_of is None else self.as_of.isoformat(),
            "label_types": list(self.label_types),
            "versions": [version_dict(r) for r in self.versions],
            "quarantined": [{"table": t, "reason": r, "rows": n} for (t, r), n in self.quarantined.items()],
            "drift": None
            if self.drift is None
            else [{"feature": f.name, "psi": f.psi, "drift": f.drift} for f in self.drift.features],
            "rules": None if self.check is None else [rule_dict(r) for r in self.check.rules],
            "rules_fired": None if self.check is None else self.check.fired,
            "errors": self.errors,
        }


def version_dict(readings: VersionReadings) -> dict[str, Any]:
    """One version's readings, JSON-ready (the delay quantiles keyed by their share as text)."""
    out = asdict(readings)
    out["label_delay_hours"] = {f"{s:g}": h for s, h in readings.label_delay_hours.items()}
    return out


def rule_dict(rule: RuleResult) -> dict[str, Any]:
    """What the exporter publishes of one rule, JSON-ready."""
    return {"rule": rule.name, "metric": rule.metric, "value": rule.value, "op": rule.op,
            "threshold": rule.threshold, "fired": rule.fired, "error": rule.error}  # fmt: skip


def store_window(store: Store, text: str) -> Window:
    """A window of the store from text (``all``, ``last:7d``, ``first:30d``, ``START..END``), as the drift CLI
    reads it: days counted from the store's first and last prediction."""
    bounds = store_bounds(store) if text.strip().startswith(("first:", "last:")) else None
    return parse_window(text, None, bounds)


def check_settings(settings: MetricsSettings) -> None:
    """Refuse a window text of the settings that can never be read, before anything is computed."""
    now = pd.Timestamp.now(tz="UTC").to_pydatetime()
    for key in ("window", "drift_reference", "drift_current"):
        try:
            parse_window(getattr(settings, key), None, (now, now))
        except InputError as exc:
            raise InputError(f"[metrics] {key}: {exc}") from None


def version_readings(series: pd.DataFrame, confidence: float) -> list[VersionReadings]:
    """Per model version (the series' ``segment``): its counts summed over buckets and their rates."""
    if series.empty:
        return []
    totals = add_rates(series.groupby("segment", as_index=False)[list(SERIES_COUNTS)].sum(), confidence)
    number = lambda v: None if pd.isna(v) else float(v)  # noqa: E731
    return [
        VersionReadings(
            model_version=str(row.segment),
            predictions=int(row.predictions),
            labels=int(row.labels),
            thumbs=int(row.thumbs),
            online_accuracy=number(row.accuracy),
            thumbs_up_rate=number(row.thumbs_up_rate),
            feedback_coverage=number(row.coverage_any),
            label_coverage=number(row.coverage_labelled),
        )
        for row in totals.itertuples()
    ]


def stream_readings(store: Store, settings: MetricsSettings, stream: StreamSettings) -> dict[str, Any]:
    """The stream section over one read-only connection: per version numbers, delays, quarantine."""
    window = store_window(store, settings.window)
    with store.ibis() as con:
        label_types = tuple(settings.label_types) or default_label_types(label_sources_from(con))
        snapshot = snapshot_from(con, window, "day", "model_version", label_types, stream)
        versions = []
        for readings in version_readings(snapshot.series, stream.confidence):
            if readings.model_version == MISSING:
                versions.append(readings)
                continue
            own = Window(window.start, window.end, (readings.model_version,))
            delays = label_delays_from(
                con, own, snapshot.as_of, label_types, DELAY_SHARES, stream.delay_bin_hours,
                stream.delay_horizon_days, stream.min_delay_labels,
            )  # fmt: skip
            versions.append(
                replace(readings, label_delay_hours=dict(delays.quantiles), label_delay_censored=delays.censored)
            )
    quarantine = snapshot.quality.quarantine
    by_reason = quarantine.groupby(["table", "reason"])["rows"].sum() if len(quarantine) else pd.Series()
    return {
        "as_of": snapshot.as_of,
        "label_types": label_types,
        "versions": tuple(versions),
        "quarantined": {(str(t), str(r)): int(n) for (t, r), n in by_reason.items()},
    }


def drift_readings(store: Store, settings: MetricsSettings) -> DriftResult:
    """PSI per feature of ``drift_current`` against ``drift_reference`` (the drift analysis, univariate only)."""
    request = DriftRequest(
        store_window(store, settings.drift_reference), store_window(store, settings.drift_current), multivariate=False
    )
    return run_drift(StoreSource(store), request)


def rules_readings(store: Store, rules: Path) -> CheckResult:
    """The rule set of ``rules`` evaluated now (``workbench check``'s run; the file is read at every refresh)."""
    return run_check(store, CheckRequest(rules_path=rules))


def check_rules(rules: Path | None) -> None:
    """Read and parse the rules file once, so a bad one is refused before the exporter starts."""
    if rules is not None:
        load_rules(rules)


def section_error(exc: Exception) -> str:
    """A section's failure in one line (a project error's own message, else the exception's type and text)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if isinstance(exc, WorkbenchError) else f"{type(exc).__name__}: {text}"


def collect(
    store: Store,
    rules: Path | None = None,
    settings: MetricsSettings | None = None,
    clock: Callable[[], float] = time.time,
) -> Readings:
    """Compute every section once; a section that fails is named in ``errors`` and the others still count."""
    settings = settings or MetricsSettings()
    started = time.perf_counter()
    found: dict[str, Any] = {}
    errors: dict[str, str] = {}
    steps: dict[str, Callable[[], Any]] = {
        "stream": lambda: found.update(stream_readings(store, settings, stream_settings())),
        "drift": lambda: found.update(drift=drift_readings(store, settings)),
    }
    if rules is not None:
        steps["rules"] = lambda: found.update(check=rules_readings(store, rules))
    for section, step in steps.items():
        try:
            step()
        # An exporter keeps publishing what it could compute: any failure of one section is that section's
        # error (reported in workbench_metrics_section_ok and on stderr), never the end of the others.
        except Exception as exc:
            errors[section] = section_error(exc)
    return Readings(computed_at=clock(), seconds=time.perf_counter() - started, errors=errors, **found)
