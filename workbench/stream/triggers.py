"""Retraining triggers: declarative rules (see :mod:`workbench.stream.rules`) evaluated now and over history.

A rule compares one metric per time bucket with a threshold and fires in a bucket when the
comparison held in ``for`` consecutive buckets. Metrics live in :data:`METRICS`, a registry of
name → :class:`Metric`: a function returning the per-bucket ``value`` and ``n`` on the calendar of
the rule's window, the rule keys of its own, and how its buckets are judged (see :class:`Metric`).
Adding a metric is one function and one entry.

Bucket by bucket (the same for every metric):

* *complete*: the bucket is over (it ended before ``as_of``, the newest prediction in the store), so a
  half-filled last hour or day is not judged; running metrics (days or labels since the last retrain)
  are judged up to ``as_of`` instead.
* *settled* (metrics on labels): the bucket ended at least the delay by which ``labels_settled`` of the
  labels arrive (measured on the label-delay distribution) before ``as_of``: labels arrive late, and
  a bucket judged on its first labels is biased toward the fast ones (corrections, mostly filed
  against wrong predictions).
* *enough*: the value rests on at least ``min_n`` labels or events (sample metrics only).
* evaluable = complete, settled and enough. A bucket that is not evaluable breaks a streak (we cannot
  say the metric breached there: a gap in the days, a quiet hour), unless every later bucket is not
  evaluable either: those trailing buckets are *pending* (still filling) and the rule's current state
  is its state at the last evaluable bucket.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench.core.errors import InputError, WorkbenchError
from workbench.core.window import Window
from workbench.sources.base import StoreSource
from workbench.sources.decision_log import approval_times
from workbench.sources.store import Store
from workbench.stream.buckets import BUCKET_LENGTH, bucket_label
from workbench.stream.metric import Metric, MetricContext
from workbench.stream.queries import clock_from, labels_arrived_before
from workbench.stream.request import CheckRequest
from workbench.stream.rules import Group, Param, Rule, RuleSet, choice, parse_rules, texts
from workbench.stream.trigger_metrics import (
    DRIFT_PARAMS,
    FAIRNESS_PARAMS,
    LABELS_SETTLED,
    PERFORMANCE_PARAMS,
    drift_psi,
    estimated_accuracy,
    fairness_ratio,
)
from workbench.stream.trigger_results import CheckResult, GroupResult, RuleResult, backtest_table, decide, episodes

__all__ = [
    "METRICS",
    "CheckRequest",
    "CheckResult",
    "Metric",
    "MetricContext",
    "RuleResult",
    "backtest_table",
    "check",
    "load_rules",
    "run",
]

EXAMPLE_RULES = Path(__file__).resolve().parents[2] / "rules.example.toml"
OPS: dict[str, Callable[[Any, Any], Any]] = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def _frame(buckets: pd.Series | pd.DatetimeIndex, value: Any, n: Any) -> pd.DataFrame:
    return pd.DataFrame({"bucket": np.asarray(buckets), "value": np.asarray(value, float), "n": np.asarray(n, float)})


def _ratio(successes: pd.Series, trials: pd.Series) -> np.ndarray:
    k, n = successes.to_numpy(float), trials.to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n > 0, k / n, np.nan)


def online_accuracy(ctx: MetricContext, rule: Rule) -> pd.DataFrame:
    """Share of labels equal to the prediction, per prediction bucket (labels from ``label_types``)."""
    s = ctx.stream(rule, ("labels", "correct"), rule.param("label_types"))
    return _frame(s["bucket"], _ratio(s["correct"], s["labels"]), s["labels"])


def positive_feedback_rate(ctx: MetricContext, rule: Rule) -> pd.DataFrame:
    """Thumbs-up share of thumbs (``feedback_type = "thumb"``) or clicked share of impressions ("click")."""
    trials, successes = ("clicks", "clicked") if rule.param("feedback_type") == "click" else ("thumbs", "thumbs_up")
    s = ctx.stream(rule, (trials, successes))
    return _frame(s["bucket"], _ratio(s[successes], s[trials]), s[trials])


def coverage(ctx: MetricContext, rule: Rule) -> pd.DataFrame:
    """Share of the bucket's predictions with a label (from ``label_types``)."""
    s = ctx.stream(rule, ("with_label",), rule.param("label_types"))
    return _frame(s["bucket"], _ratio(s["with_label"], s["predictions"]), s["predictions"])


def prediction_volume(ctx: MetricContext, rule: Rule) -> pd.DataFrame:
    """Predictions per bucket (a bucket without any is 0: an outage shows)."""
    s = ctx.stream(rule, ("predictions",))
    return _frame(s["bucket"], s["predictions"], s["predictions"])


def label_volume(ctx: MetricContext, rule: Rule) -> pd.DataFrame:
    """Labelled feedback rows that *arrived* in the bucket (by feedback ts): a stalled label pipeline shows."""
    arrivals = ctx.arrivals(rule, rule.param("label_types"))
    per_bucket = arrivals.groupby("bucket")["labels"].sum().reindex(ctx.calendar(rule.window), fill_value=0)
    return _frame(per_bucket.index, per_bucket.to_numpy(), per_bucket.to_numpy())


def _last_approval(moments: pd.DatetimeIndex, approvals: tuple[pd.Timestamp, ...]) -> list[pd.Timestamp | None]:
    return [max((a for a in approvals if a <= m), default=None) for m in moments]


def _moments(ctx: MetricContext, rule: Rule) -> pd.DatetimeIndex:
    """When a running metric is read in each bucket: the bucket's end, or ``as_of`` in the current bucket."""
    ends = ctx.calendar(rule.window) + BUCKET_LENGTH[rule.window]
    return ends.where(ends <= ctx.as_of, ctx.as_of)


def new_labels_since_retrain(ctx: MetricContext, rule: Rule) -> pd.DataFrame:
    """Labels that arrived (feedback ts) since the last approved retrain, read at each bucket's end.

    Before any approval: every label since the stream began. The current bucket counts every label
    in the store. Approvals come from the decision log (``workbench decide``).
    """
    buckets = ctx.calendar(rule.window)
    label_types = rule.param("label_types")
    arrivals = ctx.arrivals(rule, label_types)
    per_bucket = arrivals.groupby("bucket")["labels"].sum()
    ends = buckets + BUCKET_LENGTH[rule.window]
    before_end = np.array([per_bucket[per_bucket.index < e].sum() for e in ends], float)
    before_end[-1] = per_bucket.sum()  # the current bucket: everything that has arrived
    since = _last_approval(_moments(ctx, rule), ctx.approvals)
    marks = sorted({a for a in since if a is not None})
    counted = dict(zip(marks, labels_arrived_before(ctx.con, marks, ctx.window_for(rule), label_types), strict=True))
    value = before_end - np.array([0 if a is None else counted[a] for a in since], float)
    return _frame(buckets, value, np.full(len(buckets), np.inf))


def days_since_retrain(ctx: MetricContext, rule: Rule) -> pd.DataFrame:
    """Days from the last approved retrain (or, before any, from the first prediction) to each bucket's end."""
    moments = _moments(ctx, rule)
    since = [a if a is not None else ctx.first for a in _last_approval(moments, ctx.approvals)]
    days = [(m - a).total_seconds() / 86_400 for m, a in zip(moments, since, strict=True)]
    return _frame(ctx.calendar(rule.window), days, np.full(len(moments), np.inf))


_LABEL_TYPES = Param(texts, None, help='feedback types whose labels count, e.g. ["outcome"]; default: every type')
_SETTLED = LABELS_SETTLED

# The registry: metric name → Metric. Adding a metric is one function above and one entry here.
METRICS: dict[str, Metric] = {
    "online_accuracy": Metric(
        "share of labels equal to the prediction, per prediction bucket",
        online_accuracy,
        {"label_types": _LABEL_TYPES, "labels_settled": _SETTLED},
        uses_labels=True,
    ),
    "positive_feedback_rate": Metric(
        "thumbs-up share of thumbs, or click-through share of impressions, per prediction bucket",
        positive_feedback_rate,
        {"feedback_type": Param(choice("thumb", "click"), "thumb", help="thumb or click")},
    ),
    "coverage": Metric(
        "share of predictions with a label, per prediction bucket",
        coverage,
        {"label_types": _LABEL_TYPES, "labels_settled": _SETTLED},
        uses_labels=True,
    ),
    "prediction_volume": Metric("predictions per bucket", prediction_volume, kind="count", unit="count"),
    "label_volume": Metric(
        "labelled feedback rows arriving per bucket",
        label_volume,
        {"label_types": _LABEL_TYPES},
        kind="count",
        unit="count",
    ),
    "new_labels_since_retrain": Metric(
        "labels arrived since the last approved retrain (decision log), or since the stream began",
        new_labels_since_retrain,
        {"label_types": _LABEL_TYPES},
        kind="running",
        unit="count",
    ),
    "days_since_retrain": Metric(
        "days since the last approved retrain (decision log), or since the first prediction",
        days_since_retrain,
        kind="running",
        unit="days",
    ),
    "drift_psi": Metric(
        "the min_features-th largest PSI of the features against the reference days, per prediction bucket",
        drift_psi,
        DRIFT_PARAMS,
        unit="psi",
        windows=("day", "week"),
        own_connection=True,
    ),
    "fairness_ratio": Metric(
        "largest (op > >=) or smallest (op < <=) ratio of a group's rate (default FPR) to the reference group's",
        fairness_ratio,
        FAIRNESS_PARAMS,
        uses_labels=True,
        unit="ratio",
        windows=("day", "week"),
        own_connection=True,
    ),
    "estimated_accuracy": Metric(
        "label-free CBPE estimate of accuracy (calibrated on the reference days), per prediction bucket",
        estimated_accuracy,
        PERFORMANCE_PARAMS,
        windows=("day", "week"),
        own_connection=True,
    ),
}


def parse(text: str, source: str = "rules file") -> RuleSet:
    """Parse a rules TOML document against :data:`METRICS` (errors name the line)."""
    return parse_rules(text, METRICS, source)


def load_rules(path: str | Path) -> RuleSet:
    """Read and parse a rules file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read rules file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(f"rules file {path} is not UTF-8 text") from None
    return parse(text, str(path))


def judge(
    series: pd.DataFrame, rule: Rule, metric: Metric, as_of: pd.Timestamp, settle_hours: float | None
) -> pd.DataFrame:
    """Per bucket: complete, evaluable, pending, breach, streak and fired (the consecutive-bucket logic)."""
    out = series.copy()
    ends = out["bucket"] + BUCKET_LENGTH[rule.window]
    out["complete"] = True if metric.kind == "running" else ends <= as_of
    out["settled"] = True if settle_hours is None else ends <= as_of - pd.Timedelta(hours=settle_hours)
    enough = out["n"] >= max(rule.min_n, 1) if metric.kind == "sample" else True
    out["evaluable"] = out["complete"] & out["settled"] & enough & out["value"].notna()
    evaluable = out["evaluable"].to_numpy()
    last = int(np.flatnonzero(evaluable)[-1]) if evaluable.any() else -1
    out["pending"] = np.arange(len(out)) > last
    with np.errstate(invalid="ignore"):
        out["breach"] = evaluable & OPS[rule.op](out["value"].to_numpy(float), rule.threshold)
    streak, streaks = 0, []
    for breach, pending in zip(out["breach"], out["pending"], strict=True):
        streak = 0 if pending else (streak + 1 if breach else 0)
        streaks.append(streak)
    out["streak"] = streaks
    out["fired"] = out["streak"] >= rule.persistence
    return out


def evaluate_rule(ctx: MetricContext, rule: Rule) -> RuleResult:
    """Evaluate one rule over the whole calendar: its per-bucket verdicts and its state now.

    A rule that cannot be evaluated on this data (e.g. ``fpr_gap`` naming a column the store does not have)
    comes back in error with its one-line reason, so one broken rule never hides the others.
    """
    metric = METRICS[rule.metric]
    settle = None
    try:
        if metric.uses_labels and rule.param("labels_settled", 0.0) > 0:
            settle = ctx.label_delay_hours(rule, rule.param("labels_settled"), rule.param("label_types"))
        series = metric.series(ctx, rule)
    except WorkbenchError as exc:  # a missing attribute, the store busy past the retry: this rule only
        return RuleResult.failed(rule, metric, ctx.calendar(rule.window), str(exc))
    frame = judge(series, rule, metric, ctx.as_of, settle)
    return RuleResult.from_frame(rule, metric, frame, settle)


def evaluate_group(group: Group, members: dict[str, RuleResult | GroupResult]) -> GroupResult:
    """Combine members bucket by bucket (all: every member fired there; any: one did) and now.

    Now, in three-valued logic (:func:`workbench.stream.trigger_results.decide`): an ``all`` group cannot fire
    while a member is in error (it is quiet if another member is quiet, else undecided); an ``any`` group
    fires when another member fires (else undecided). Over history a member in error never fired.
    """
    parts = [members[m] for m in group.members]
    combine = np.logical_and.reduce if group.mode == "all" else np.logical_or.reduce
    fired = combine([p.frame["fired"].to_numpy(bool) for p in parts])
    frame = parts[0].frame[["bucket"]].assign(fired=fired)
    state = decide(group.mode, [p.state for p in parts])
    now = state is True
    unknown = [p.name for p in parts if p.state is None]
    error = None if state is not None else f"{', '.join(unknown)} could not be evaluated"
    window = parts[0].window
    runs = episodes(frame["bucket"], frame["fired"], window)
    since = runs[-1]["start"] if now and runs else None
    if now and since is None:
        since = max((p.since for p in parts if p.since), default=None)
    fired_buckets = [bucket_label(b, window) for b in frame.loc[frame["fired"], "bucket"]]
    return GroupResult(
        group.name, group.mode, group.members, window, now, since, fired_buckets, runs, group.line, frame, error
    )


def approved_retrains(store: Store) -> list[pd.Timestamp]:
    """When each approved retrain was decided (UTC), from the decision log (``workbench decide``)."""
    stamps = [pd.Timestamp(at) for at in approval_times(store)]
    return sorted(s.tz_convert("UTC") if s.tzinfo else s.tz_localize("UTC") for s in stamps)


def on_stream_clock(stamps: list[pd.Timestamp], as_of: pd.Timestamp) -> tuple[pd.Timestamp, ...]:
    """Approvals placed on the stream's clock: one recorded after the newest prediction (a store replayed
    from the past, like the demo, or a stalled stream) counts as made at ``as_of``, i.e. just now."""
    return tuple(min(s, as_of) for s in stamps)


def check(store: Store, rules: RuleSet, window: Window | None = None) -> CheckResult:
    """Evaluate every rule and group on the store (one read-only snapshot) and decide the set."""
    stamps = approved_retrains(store)
    with store.ibis() as con:
        clock = clock_from(con, window)
        if clock["as_of"] is None or clock["first"] is None:
            raise InputError("no predictions in the store (or in the selected window): nothing to check")
        as_of = clock["as_of"]
        ctx = MetricContext(con, store, window, as_of, clock["first"], clock["last"], on_stream_clock(stamps, as_of))
        settling = [(r, r.param("labels_settled"), r.param("label_types")) for r in rules.rules
                    if METRICS[r.metric].uses_labels and r.param("labels_settled", 0.0) > 0]  # fmt: skip
        with suppress(WorkbenchError):  # the store busy, say: each rule then meets its own error alone
            ctx.settle_delays(settling)
        done = {r.name: evaluate_rule(ctx, r) for r in rules.rules if not METRICS[r.metric].own_connection}
    # Analyses open their own connection (and may cache a profile in the store): only once ours is closed.
    ctx.con = None
    done |= {r.name: evaluate_rule(ctx, r) for r in rules.rules if METRICS[r.metric].own_connection}
    results = [done[r.name] for r in rules.rules]
    members: dict[str, RuleResult | GroupResult] = {r.name: r for r in results}
    groups = []
    for group in rules.groups:
        members[group.name] = evaluate_group(group, members)
        groups.append(members[group.name])
    top = rules.top_level()
    state = decide(rules.mode, [members[name].state for name in top])
    return CheckResult(
        rules=results,
        groups=groups,
        mode=rules.mode,
        top_level=top,
        fired=state is True,
        undecided=state is None,
        as_of=as_of.isoformat(),
        evaluated_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        source=rules.source,
    )


def run(source: Store | StoreSource, request: CheckRequest) -> CheckResult:
    """The rule set of ``request`` (its text, or its file) evaluated on the store over the request's window."""
    store = source.store if isinstance(source, StoreSource) else source
    if request.rules_path is not None:
        rules = load_rules(request.rules_path)
    else:
        rules = parse(request.rules_text or "", request.source)
    return check(store, rules, request.window)
