"""The A/B result: settings, the SRM summary, :class:`ABTestResult` with its exports, and :func:`finish`,
where every input mode (store, file, typed-in summaries) turns its aggregates into comparisons and a verdict.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, ClassVar

import pandas as pd

from workbench.abtest.compare import Comparison, MetricData, PowerStatus, Timeline, build_comparisons, power_status
from workbench.abtest.compare import timeline as build_timeline
from workbench.abtest.segments import Breakdown
from workbench.abtest.verdict import decide, fmt_effect, fmt_p
from workbench.core.errors import InputError
from workbench.core.settings import load_section
from workbench.stats.abtest import Moments, ProportionStats, srm_test
from workbench.stats.clean import finite, json_ready
from workbench.stats.multiple import adjust_pvalues

CONTROL_NAMES = ("control", "champion", "baseline", "a", "v1", "old")


@dataclass(frozen=True)
class ABTestSettings:
    """A/B defaults, overridable in settings.toml ``[abtest]`` (the README says why each default)."""

    alpha: float = 0.05
    srm_p_threshold: float = 0.001
    adjustment: str = "holm"
    sequential_tuning_n: float = 5000.0
    metrics: tuple[str, ...] = ("thumbs_up_rate",)
    guardrails: tuple[str, ...] = ("dwell_time",)
    guardrail_margin: float = 0.05
    capping_percentile: float = 0.99
    capping_nonzero_only: bool = False
    cuped: bool = False
    cuped_lookback_days: int = 14
    min_units_per_arm: int = 100
    min_days: int = 7
    target_mde_relative: float = 0.05
    power: float = 0.8
    control: str = ""
    planned_split: dict[str, float] = field(default_factory=dict)
    segments: tuple[str, ...] = ()
    max_segment_values: int = 50
    seed: int = 0
    segment_min_n: int = 100
    heterogeneity_alpha: float = 0.10


def load_settings() -> ABTestSettings:
    """The ``[abtest]`` section of the settings file over the defaults."""
    settings = load_section(ABTestSettings, "abtest")
    if settings.adjustment not in ("holm", "bh", "none"):
        raise InputError(f"[abtest] adjustment must be holm, bh or none, not '{settings.adjustment}'")
    return settings


@dataclass(frozen=True)
class SRMSummary:
    """The sample-ratio check over units per arm, plus per segment (Holm-adjusted across segments)."""

    p_value: float | None
    ok: bool
    statistic: float | None
    counts: dict[str, int]
    expected_shares: dict[str, float]
    threshold: float
    message: str
    segments: list[dict[str, Any]] = field(default_factory=list)
    crossover_units: int | None = None

    @property
    def reason_suffix(self) -> str:
        """ "; in segment region=south (p=…)" for segments that fail while the whole may pass."""
        bad = [s for s in self.segments if not s["ok"]]
        return "".join(f"; in segment {s['segment']}={s['value']} ({s['p_adjusted']:.2g} Holm)" for s in bad[:3])


def srm_summary(
    counts: dict[str, int],
    planned: dict[str, float] | None,
    threshold: float,
    segments: dict[str, dict[str, dict[str, int]]] | None = None,
    crossover: int | None = None,
) -> SRMSummary:
    """Overall SRM, and per segment value (Holm across them); ``ok`` only when both pass."""
    if planned and set(planned) != set(counts):
        raise InputError(f"the planned split names arms {sorted(planned)} but the data has {sorted(counts)}")
    overall = srm_test(counts, planned or None, threshold)
    rows = []
    for column, values in (segments or {}).items():
        for value, per_arm in values.items():
            seg = srm_test({arm: per_arm.get(arm, 0) for arm in counts}, planned or None, threshold)
            rows.append({"segment": column, "value": value, "counts": dict(zip(seg.arms, seg.counts, strict=True)),
                         "p_value": seg.p_value})  # fmt: skip
    adjusted = adjust_pvalues([r["p_value"] if r["p_value"] is not None else math.nan for r in rows], "holm")
    for row, p_adj in zip(rows, adjusted, strict=True):
        row["p_adjusted"] = None if math.isnan(p_adj) else float(p_adj)
        row["ok"] = row["p_adjusted"] is None or row["p_adjusted"] >= threshold
    ok = overall.ok and all(r["ok"] for r in rows)
    return SRMSummary(overall.p_value, ok, overall.statistic, dict(zip(overall.arms, overall.counts, strict=True)),
                      dict(zip(overall.arms, overall.expected_shares, strict=True)), threshold, overall.message, rows,
                      crossover)  # fmt: skip


@dataclass(frozen=True)
class ArmResult:
    """One arm on one metric: observations, mean (a rate for proportions), units."""

    arm: str
    metric: str
    n: int
    mean: float | None
    units: int | None = None
    successes: int | None = None
    std: float | None = None


@dataclass(frozen=True)
class ABTestResult:
    """The whole analysis (the :class:`workbench.core.result.Result` contract, family ``abtest``).

    ``verdict`` is the key word (ship, keep_running, no_difference, keep_control, guardrail_fail, srm_fail,
    insufficient), ``verdict_text`` the sentence; ``to_json()`` is the `workbench abtest --json` document, where
    (as before the contract) ``verdict`` is the sentence and ``verdict_word`` the key.
    """

    family: ClassVar[str] = "abtest"

    source: str
    control: str
    variants: list[str]
    unit: str
    arms: list[ArmResult]
    srm: SRMSummary
    comparisons: list[Comparison]
    guardrails: list[Comparison]
    timelines: list[Timeline]
    power: list[PowerStatus]
    verdict_text: str
    verdict: str
    warnings: list[str]
    period: dict[str, Any]
    adjustment: str
    alpha: float
    settings: dict[str, Any]
    segments: Breakdown | None = None

    def to_dict(self) -> dict[str, Any]:
        """Returns the JSON-ready document (no NaN or inf: None): arms, srm, comparisons, verdict and the rest."""
        fields = asdict(self)
        # The document's names: "verdict" is the sentence, "verdict_word" the key (the CLI's contract).
        doc = {JSON_NAMES.get(k, k): v for k, v in fields.items()}
        doc["srm"] = {k: doc["srm"][k] for k in ("p_value", "ok", "statistic", "counts", "expected_shares",
                                                 "threshold", "message", "segments", "crossover_units")}  # fmt: skip
        # `arms` holds one row per arm (the first primary metric), so a reader keyed by arm gets that metric;
        # every metric's rows are in `arm_metrics`.
        first = self.comparisons[0].metric if self.comparisons else None
        doc["arm_metrics"] = doc["arms"]
        doc["arms"] = [a for a in doc["arms"] if a["metric"] == first] if first else doc["arms"]
        doc.update(_segments_document(doc.pop("segments")))
        return json_ready(doc)

    def to_json(self) -> dict[str, Any]:
        """Returns the CLI's ``--json`` document (:meth:`to_dict`)."""
        return self.to_dict()

    def evidence(self) -> dict[str, Any]:
        """Returns what the retrain gate keeps: verdict_text, verdict, srm {p_value, ok}, the primary comparisons."""
        keep = ("metric", "variant", "control", "diff", "diff_ci", "rel_lift", "p_adjusted", "significant")
        return json_ready({
            "verdict_text": self.verdict_text, "verdict": self.verdict, "source": self.source,
            "srm": {"p_value": self.srm.p_value, "ok": self.srm.ok}, "control": self.control,
            "variants": self.variants, "period": self.period,
            "comparisons": [{k: getattr(c, k) for k in keep} for c in self.comparisons],
        })  # fmt: skip

    @property
    def reasons(self) -> tuple[str, ...]:
        """Returns the lines behind the verdict: the SRM p against its threshold, each primary comparison's effect,
        interval and adjusted p against α, each guardrail's status against its margin, and with a breakdown each
        Cochran's Q p against its level."""
        srm = self.srm
        p = "n/a" if srm.p_value is None else f"{srm.p_value:.2g}"
        lines = [f"SRM: p={p} {'≥' if srm.ok else '<'} {srm.threshold:g} ({'ok' if srm.ok else 'mismatch'})"]
        for c in self.comparisons:
            level = f"{1 - c.ci_level:.1%} CI"
            below = c.p_adjusted is not None and c.p_adjusted < self.alpha
            held = f"{fmt_p(c.p_adjusted)} ({self.adjustment}) {'<' if below else '≥'} α={self.alpha:g}"
            lines.append(f"{c.label} ({c.variant} vs {c.control}): {fmt_effect(c)} ({level}); adjusted {held}")
        for c in self.guardrails:
            g = c.guardrail or {}
            margin = g.get("margin_rel")
            within = f" (margin {margin:.0%})" if margin is not None else ""
            lines.append(f"guardrail {c.label} ({c.variant}): {g.get('status', 'n/a')}{within}, {fmt_effect(c)}")
        for h in self.segments.heterogeneity if self.segments else []:
            if h.p_value is not None:
                held = f"{'<' if h.differs else '≥'} {h.alpha:g} ({'differs' if h.differs else 'no difference'})"
                lines.append(f"by {self.segments.by}, {h.label} ({h.variant}): Cochran's Q p={h.p_value:.2g} {held}, "
                             f"I²={h.i2:.0%}")  # fmt: skip
        return tuple(lines)

    def to_frame(self) -> pd.DataFrame:
        """Returns one row per comparison and guardrail (:meth:`rows`) as a DataFrame."""
        return pd.DataFrame(self.rows())

    def rows(self) -> list[dict[str, Any]]:
        """Returns one flat row per comparison and guardrail (the CSV export and :meth:`to_frame`)."""
        out = []
        for c in [*self.comparisons, *self.guardrails]:
            lo, hi = c.diff_ci or (None, None)
            rlo, rhi = c.rel_lift_ci or (None, None)
            out.append({
                "role": c.role, "metric": c.metric, "variant": c.variant, "control": c.control,
                "n_control": c.n_control, "n_variant": c.n_variant, "control_mean": c.control_mean,
                "variant_mean": c.variant_mean, "diff": c.diff, "diff_ci_low": lo, "diff_ci_high": hi,
                "rel_lift": c.rel_lift, "rel_lift_ci_low": rlo, "rel_lift_ci_high": rhi, "p_value": c.p_value,
                "p_adjusted": c.p_adjusted, "ci_level": 1 - c.ci_level, "significant": c.significant,
                "prob_beat_control": c.prob_beat_control, "expected_loss": c.expected_loss, "test": c.test,
                "guardrail_status": (c.guardrail or {}).get("status"), "srm_p_value": self.srm.p_value,
                "srm_ok": self.srm.ok, "verdict": self.verdict,
            })  # fmt: skip
        return json_ready(out)


JSON_NAMES = {"verdict_text": "verdict", "verdict": "verdict_word"}  # field → key in the CLI's document


def _segments_document(breakdown: dict[str, Any] | None) -> dict[str, Any]:
    """The breakdown's keys in the CLI's document: ``segment_by``, ``heterogeneity[]``, ``segments[]`` (one row per
    value × metric × variant) and ``segment_adjustment`` (method, family size, min_n, the sentence); empty without
    ``--by``."""
    if breakdown is None:
        return {"segment_by": None, "heterogeneity": [], "segments": [], "segment_adjustment": None}
    adjustment = {"method": breakdown["adjustment"], "family_size": breakdown["family_size"],
                  "min_n": breakdown["min_n"], "text": breakdown["adjustment_text"]}  # fmt: skip
    return {"segment_by": breakdown["by"], "heterogeneity": breakdown["heterogeneity"], "segments": breakdown["rows"],
            "segment_adjustment": adjustment}  # fmt: skip


def export(result: ABTestResult, fmt: str) -> str:
    """The analysis as JSON (the CLI's document) or CSV (one row per comparison): page and CLI use this."""
    if fmt == "json":
        return json.dumps(result.to_dict(), indent=2, sort_keys=False)
    if fmt == "csv":
        rows = result.rows()
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["verdict"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue()
    raise InputError(f"export format must be json or csv, not '{fmt}'")


def choose_control(arms: list[str], explicit: str | None) -> str:
    """The control arm: the one asked for, else an arm named like a control (champion, control, v1…), else the first."""
    if explicit:
        if explicit not in arms:
            raise InputError(f"control arm '{explicit}' not found; the arms are {', '.join(arms)}")
        return explicit
    for name in CONTROL_NAMES:
        for arm in arms:
            if arm.lower() == name:
                return arm
    return sorted(arms)[0]


def finish(
    datas: list[MetricData],
    srm: SRMSummary,
    control: str,
    settings: ABTestSettings,
    source: str,
    unit: str,
    period: dict[str, Any] | None = None,
    warnings: list[str] | None = None,
    segments: Breakdown | None = None,
) -> ABTestResult:
    """Comparisons, timelines, power and the verdict from aggregated metric data (every input mode ends here);
    ``segments``: the breakdown by a column (:mod:`workbench.abtest.segments`), its warnings added to the result's."""
    arms = list(srm.counts)
    variants = [a for a in arms if a != control]
    if not variants:
        raise InputError(f"only one arm ('{control}'): an A/B test needs a control and at least one variant")
    warnings = list(warnings or [])
    comparisons = build_comparisons(datas, control, variants, settings.alpha, settings.adjustment,
                                    settings.guardrail_margin, settings.seed)  # fmt: skip
    primary = [c for c in comparisons if c.role == "primary"]
    guards = [c for c in comparisons if c.role == "guardrail"]
    by_metric = {d.metric.name: d for d in datas}
    timelines = [t for c in primary + guards
                 if (t := build_timeline(by_metric[c.metric], control, c.variant, c.ci_level,
                                         settings.sequential_tuning_n)) is not None]  # fmt: skip
    primary = [_with_sequential(c, timelines) for c in primary]
    days = (period or {}).get("days")
    power = [power_status(by_metric[c.metric], c, len(primary), settings.target_mde_relative, settings.alpha,
                          settings.power, days) for c in primary]  # fmt: skip
    blockers = [f"arm '{arm}' has {n:,} unit{'' if n == 1 else 's'}; at least {settings.min_units_per_arm:,} are "
                "needed for a verdict" for arm, n in srm.counts.items() if n < settings.min_units_per_arm]  # fmt: skip
    warnings += _warnings(srm, comparisons, days, settings)
    warnings += _segment_warnings(segments)
    verdict = decide(primary, guards, power, srm, control, variants, settings.adjustment, blockers, days,
                     settings.min_days)  # fmt: skip
    return ABTestResult(
        source=source, control=control, variants=variants, unit=unit, arms=_arms(datas, arms),
        srm=srm, comparisons=primary, guardrails=guards, timelines=timelines, power=power,
        verdict_text=verdict.text if verdict.text.endswith(".") else verdict.text + ".", verdict=verdict.word,
        warnings=warnings, period=period or {}, adjustment=settings.adjustment, alpha=settings.alpha,
        settings=asdict(settings), segments=segments,
    )  # fmt: skip


def _segment_warnings(segments: Breakdown | None) -> list[str]:
    """The breakdown's warnings (values too small to read) and each primary effect that differs across values."""
    if segments is None:
        return []
    differ = [f"{h.text}." for h in segments.heterogeneity if h.differs]
    return [*differ, *(f"{w}." for w in segments.warnings)]


def _with_sequential(c: Comparison, timelines: list[Timeline]) -> Comparison:
    t = next((t for t in timelines if t.metric == c.metric and t.variant == c.variant), None)
    if t is None or not t.days:
        return c
    seq = {"cs": [t.cs_low[-1], t.cs_high[-1]], "p_always_valid": t.p_always_valid[-1], "tuning_n": t.tuning_n,
           "days": len(t.days)}  # fmt: skip
    return replace(c, sequential=seq)


def _warnings(srm: SRMSummary, comparisons: list[Comparison], days: float | None, s: ABTestSettings) -> list[str]:
    out = []
    if not srm.ok and srm.p_value is not None:
        out.append(f"Sample ratio mismatch: {srm.message}{srm.reason_suffix}. Every result below is untrustworthy.")
    if days is not None and days < s.min_days:
        out.append(f"The test has run {days:.1f} days, less than a full week: day-of-week effects may bias it.")
    if srm.crossover_units:
        out.append(f"{srm.crossover_units:,} units were seen in more than one arm (their data counts in each).")
    for c in comparisons:
        deff = (c.clustered or {}).get("design_effect")
        if deff and deff > 1.2:
            out.append(f"{c.label} ({c.variant}): events cluster within units (design effect {deff:.2f}); the "
                       f"unit-level interval is {_fmt_ci(c.clustered['diff_ci'])}.")  # fmt: skip
        if (
            c.mann_whitney_p is not None
            and c.p_value is not None
            and (c.mann_whitney_p <= s.alpha) != (c.p_value <= s.alpha)
        ):
            out.append(f"{c.label} ({c.variant}): Welch p={c.p_value:.2g} and Mann–Whitney p={c.mann_whitney_p:.2g} "
                       "disagree — a skewed metric; compare the capped result.")  # fmt: skip
        if c.message:
            out.append(f"{c.label} ({c.variant}): {c.message}.")
    return out


def _fmt_ci(ci: Any) -> str:
    return "n/a" if not ci else f"[{ci[0]:.4g}, {ci[1]:.4g}]"


def _arms(datas: list[MetricData], arms: list[str]) -> list[ArmResult]:
    out = []
    for data in datas:
        for arm in arms:
            units = data.units.get(arm) if data.units else None
            stats = (data.events or {}).get(arm)
            if isinstance(stats, ProportionStats):
                out.append(ArmResult(arm, data.metric.name, stats.n, finite(stats.rate), units.n if units else None,
                                     stats.successes))  # fmt: skip
            elif isinstance(stats, Moments):
                out.append(ArmResult(arm, data.metric.name, stats.n, stats.mean[0] if stats.n else None,
                                     units.n if units else None, std=finite(math.sqrt(stats.variance()))
                                     if stats.n > 1 else None))  # fmt: skip
            elif units is not None:  # ratio: Σy/Σn over units
                mean = units.mean[0] / units.mean[1] if units.n and units.mean[1] else None
                out.append(ArmResult(arm, data.metric.name, units.n, mean, units.n))
            else:
                out.append(ArmResult(arm, data.metric.name, 0, None, 0))
    return out
