"""A/B results by dimension (GrowthBook's dimension breakdown): each metric's effect per value of one column.

First Cochran's Q (with I²) across the values says whether the effect differs at all; then each value's
difference, interval, lift, p-value adjusted over every per-segment test, chance to beat control and risk.
A value with fewer than ``segment_min_n`` observations (units for a ratio) in an arm is too small to read: a
warning and no per-segment verdict, and it stays out of the adjustment and the Q test. Per segment, each
metric gets its plain test (pooled z, Welch, delta method: no CUPED, no capping), from per-(arm, value)
aggregates in the engine (:func:`workbench.abtest.queries.segment_metric_stats`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from workbench.abtest import formats
from workbench.abtest.compare import Comparison, MetricData, compare_metric, comparison
from workbench.abtest.queries import segment_metric_stats, segment_stats, segment_value_count
from workbench.abtest.verdict import ADJUSTMENT_LABEL
from workbench.core.errors import InputError
from workbench.core.window import Window
from workbench.sources.experiment import HIDDEN_PREFIX, Metric, experiment_predictions
from workbench.sources.store import table_columns
from workbench.stats.abtest import Effect, Moments, ProportionStats
from workbench.stats.heterogeneity import Heterogeneity, adjust_segments, cochran_q

NOT_SEGMENTS = ("trace_id", "ts", "ingest_id", "arm", "unit_id")


@dataclass(frozen=True, kw_only=True)
class SegmentRow(Comparison):
    """One metric × variant in one value of the breakdown column: the :class:`Comparison` there, and ``verdict``:
    better, worse, not_significant, too_small (below ``min_n`` in an arm: no interval, p adjusted, chance, risk
    or verdict) or untestable (the test is undefined: ``message`` says why)."""

    value: str
    verdict: str


@dataclass(frozen=True, kw_only=True)
class HeterogeneityRow(Heterogeneity):
    """Cochran's Q across the readable values for one metric × variant (the test's fields, ``pooled`` the
    inverse-variance weighted difference), the level it is read at and its sentence."""

    metric: str
    label: str
    variant: str
    alpha: float
    differs: bool | None
    text: str


@dataclass(frozen=True)
class Breakdown:
    """The whole breakdown by ``by``: heterogeneity first, then the per-value rows, the adjustment in words."""

    by: str
    values: list[str]
    min_n: int
    adjustment: str
    family_size: int
    adjustment_text: str
    heterogeneity: list[HeterogeneityRow]
    rows: list[SegmentRow]
    warnings: list[str] = field(default_factory=list)


def check_column(columns: list[str], by: str, known: list[str]) -> None:
    """A one-line error unless ``by`` is a column of the predictions one can break results down by."""
    usable = [c for c in columns if not c.startswith(HIDDEN_PREFIX) and c not in NOT_SEGMENTS]
    if by not in usable:
        hint = ", ".join(known or usable[:8])
        raise InputError(f"--by '{by}': no such column to break the results down by; try one of {hint}")


def store_segments(
    con: Any, by: str, window: Window | None, arm_source: str, chosen: list[tuple[str, Metric]], max_values: int
) -> dict[str, list[MetricData]]:
    """Returns ``{value: [MetricData per metric, in chosen order]}`` from per-(arm, value) aggregates in the engine;
    a one-line error when ``by`` is no column or has more than ``max_values`` values (the ``[abtest]`` setting)."""
    exp, _source = experiment_predictions(con, window, arm_source, (by,))
    _check_count(exp, by, max_values)
    return _per_value([(role, m, segment_metric_stats(con, exp, m)) for role, m in chosen])


def file_segments(obs: Any, m: Metric, by: str, max_values: int) -> dict[str, list[MetricData]]:
    """Returns ``{value: [MetricData]}`` of a units file's metric per value of ``by`` (``obs``: the file's rows with
    ``seg_0``, :func:`workbench.abtest.queries.file_observations`); one row is one unit."""
    _check_count(obs, by, max_values)
    return _per_value([("primary", m, segment_stats(obs, m.kind))])


def _check_count(rows: Any, by: str, max_values: int) -> None:
    n_values = segment_value_count(rows)
    if n_values > max_values:
        raise InputError(f"--by '{by}' has {n_values:,} distinct values, more than max_segment_values "
                         f"({max_values}): break the results down by a categorical column")  # fmt: skip


def _per_value(metrics: list[tuple[str, Metric, dict[str, dict[str, Any]]]]) -> dict[str, list[MetricData]]:
    """``{value: [MetricData per metric, in order]}`` from each metric's ``{value: {arm: stats}}``."""
    values = sorted({value for _role, _m, stats in metrics for value in stats})
    return {value: [MetricData(m, role, units=stats.get(value, {})) if m.kind == "ratio"
                    else MetricData(m, role, events=stats.get(value, {})) for role, m, stats in metrics]
            for value in values}  # fmt: skip


def store_columns(con: Any) -> list[str]:
    """The predictions' columns (the breakdown's candidates are checked against them)."""
    return table_columns(con.con, "predictions")


def breakdown(
    by: str, per_value: dict[str, list[MetricData]], control: str, variants: list[str], settings: Any
) -> Breakdown:
    """Returns the breakdown: every value × metric × variant tested, adjusted together, Q per metric × variant.

    ``settings``: the ``[abtest]`` settings (alpha, adjustment, segment_min_n, heterogeneity_alpha, seed).
    """
    alpha, min_n = settings.alpha, settings.segment_min_n
    tested: list[tuple[str, MetricData, str, Effect, dict[str, Any], bool]] = []
    for value, datas in per_value.items():
        for data in datas:
            filled = _with_arms(data, control, variants)
            for variant, (effect, extras) in zip(variants, compare_metric(filled, control, variants, alpha,
                                                                          settings.seed), strict=True):  # fmt: skip
                readable = effect.defined and min(effect.n_control, effect.n_variant) >= min_n
                tested.append((value, data, variant, effect, extras, readable))
    family = adjust_segments([e.p_value if ok else math.nan for *_r, e, _x, ok in tested], alpha,
                             settings.adjustment)  # fmt: skip
    rows = [_row(value, data, variant, control, effect, extras, ok, family.p_adjusted[i], family.levels[i], settings)
            for i, (value, data, variant, effect, extras, ok) in enumerate(tested)]  # fmt: skip
    q_rows = []
    for data in next(iter(per_value.values()), []):
        for variant in variants:
            mine = [(e.diff, e.se) for _v, d, var, e, _x, ok in tested
                    if ok and d.metric.name == data.metric.name and var == variant]  # fmt: skip
            q_rows.append(_heterogeneity(by, data.metric, variant, mine, settings.heterogeneity_alpha))
    values = list(per_value)
    text = _adjustment_text(settings.adjustment, family.size, by, values, rows)
    warnings = _warnings(by, rows, min_n)
    return Breakdown(by, values, min_n, settings.adjustment, family.size, text, q_rows, rows, warnings)


def _with_arms(data: MetricData, control: str, variants: list[str]) -> MetricData:
    """``data`` with an empty entry for an arm the value never saw (its test is then undefined, not an error)."""
    stats = data.units if data.metric.kind == "ratio" else data.events
    empty: Any = Moments.empty(2) if data.metric.kind == "ratio" else (
        ProportionStats(0, 0) if data.metric.kind == "proportion" else Moments.empty())  # fmt: skip
    full = {arm: (stats or {}).get(arm, empty) for arm in (control, *variants)}
    if data.metric.kind == "ratio":
        return MetricData(data.metric, data.role, units=full)
    return MetricData(data.metric, data.role, events=full)


def _row(
    value: str, data: MetricData, variant: str, control: str, effect: Effect, extras: dict[str, Any], readable: bool,
    p_adj: float, level: float, settings: Any,
) -> SegmentRow:  # fmt: skip
    level = settings.alpha if math.isnan(level) else level  # an untested row has no level of its own
    c = comparison(data, control, variant, effect, extras, p_adj, level, settings.alpha, settings.guardrail_margin)
    shared = {f.name: getattr(c, f.name) for f in fields(c)}
    if readable:
        return SegmentRow(**shared, value=value, verdict=c.direction or "not_significant")
    small = min(c.n_control, c.n_variant) < settings.segment_min_n
    message = (
        f"{min(c.n_control, c.n_variant):,} observations in the smaller arm, fewer than "
        f"{settings.segment_min_n:,}: too small to read"
        if small
        else effect.message or "the test is undefined"
    )
    unread = {"diff_ci": None, "rel_lift_ci": None, "p_adjusted": None, "ci_level": None, "significant": False,
              "direction": None, "prob_beat_control": None, "expected_loss": None, "expected_loss_control": None,
              "guardrail": None, "message": message}  # fmt: skip
    return SegmentRow(**{**shared, **unread}, value=value, verdict="too_small" if small else "untestable")


def _heterogeneity(
    by: str, m: Metric, variant: str, estimates: list[tuple[float, float]], alpha: float
) -> HeterogeneityRow:
    h = cochran_q([d for d, _se in estimates], [se for _d, se in estimates])
    where = f"{m.label} ({variant})"
    if not h.defined:
        text = (f"{where}: fewer than two {by} values are big enough to read, so whether the effect differs "
                "across them cannot be tested")  # fmt: skip
        return HeterogeneityRow(**asdict(h), metric=m.name, label=m.label, variant=variant, alpha=alpha, differs=None,
                                text=text)  # fmt: skip
    differs = bool(h.p_value < alpha)
    held = f"{'<' if differs else '≥'} {alpha:g}"
    stat = f"Cochran's Q = {h.q:.2f}, df {h.df}, p = {formats.p_value(h.p_value)} {held}; I² = {h.i2:.0%}"
    if differs:
        text = f"{where}: the effect differs across {by} ({stat}); read the per-value lifts, not only the overall one"
    else:
        text = (f"{where}: no evidence that the effect differs across {by} ({stat}); the per-value lifts differ by "
                "chance, so the overall result is the best estimate for each value")  # fmt: skip
    return HeterogeneityRow(**asdict(h), metric=m.name, label=m.label, variant=variant, alpha=alpha, differs=differs,
                            text=text)  # fmt: skip


def _adjustment_text(method: str, size: int, by: str, values: list[str], rows: list[SegmentRow]) -> str:
    metrics = len({r.metric for r in rows})
    variants = len({r.variant for r in rows})
    what = (f"{size} per-segment test{'s' if size != 1 else ''} ({len(values)} {by} values × {metrics} "
            f"metric{'s' if metrics != 1 else ''} × {variants} variant{'s' if variants != 1 else ''}, less those too "
            "small to read)")  # fmt: skip
    if method == "none":
        return f"p-values are not adjusted across the {what}: expect about α × {size} false positives"
    kind = "family-wise error" if method == "holm" else "false discovery rate"
    return (f"p adjusted by {ADJUSTMENT_LABEL[method]} ({kind}) over the {what}; each interval is at the matching "
            "per-test level, so it excludes 0 exactly when the adjusted p is below α")  # fmt: skip


def _warnings(by: str, rows: list[SegmentRow], min_n: int) -> list[str]:
    out = []
    small: dict[str, int] = {}
    for r in rows:
        if r.verdict == "too_small":
            small[r.value] = min(small.get(r.value, r.n_control), r.n_control, r.n_variant)
    for value, n in small.items():
        out.append(f"{by}={value}: {n:,} observations in an arm, fewer than {min_n:,}: too small to read, no "
                   "per-segment verdict")  # fmt: skip
    return out


__all__ = ["Breakdown", "HeterogeneityRow", "SegmentRow", "breakdown", "check_column", "file_segments",
           "store_segments"]  # fmt: skip
