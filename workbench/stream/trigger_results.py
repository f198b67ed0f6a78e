"""Result objects of the retraining triggers: a rule, a group, and the whole check (the `check --json` document)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import pandas as pd

from workbench.stats.clean import finite
from workbench.stream.buckets import bucket_label
from workbench.stream.metric import Metric
from workbench.stream.rules import Rule

_PLURAL = {"hour": "hours", "day": "days", "week": "weeks"}


def format_value(value: float | None, unit: str) -> str:
    """A metric value for people: counts with thousands separators, days to 0.1, shares to 4 decimals."""
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if unit == "count" else f"{value:.1f}" if unit == "days" else f"{value:.4f}"


def episodes(buckets: pd.Series, fired: pd.Series, window: str) -> list[dict[str, Any]]:
    """Runs of consecutive fired buckets: start, end (bucket labels) and how many buckets each lasted."""
    runs: list[dict[str, Any]] = []
    previous = False
    for bucket, now in zip(buckets, fired, strict=True):
        if now and not previous:
            runs.append({"start": bucket_label(bucket, window), "end": None, "buckets": 0})
        if now:
            runs[-1]["end"] = bucket_label(bucket, window)
            runs[-1]["buckets"] += 1
        previous = bool(now)
    return runs


@dataclass(frozen=True)
class RuleResult:
    """A rule evaluated over history: its state now (at its last evaluable bucket) and where it fired.

    ``value``/``n``/``bucket``: the metric at the current bucket; ``since``: the bucket from which the
    rule has fired without a break (None when it does not fire now); ``fired_buckets``/``episodes``:
    the backtest; ``frame``: the per-bucket verdicts (see :func:`workbench.stream.triggers.judge`).
    """

    name: str
    metric: str
    description: str
    window: str
    op: str
    threshold: float
    persistence: int
    min_n: int
    params: dict[str, Any]
    line: int
    value: float | None
    n: int | None
    bucket: str | None
    fired: bool
    since: str | None
    streak: int
    pending_buckets: int
    settle_hours: float | None
    fired_buckets: list[str]
    episodes: list[dict[str, Any]]
    reason: str | None
    unit: str
    kind: str
    detail: str | None
    frame: pd.DataFrame = field(repr=False, compare=False)

    @classmethod
    def from_frame(cls, rule: Rule, metric: Metric, frame: pd.DataFrame, settle_hours: float | None) -> RuleResult:
        """Read the rule's state from its judged per-bucket frame."""
        evaluable = frame.index[frame["evaluable"]]
        current = frame.loc[evaluable[-1]] if len(evaluable) else None
        fired_now = bool(current is not None and current["fired"])
        runs = episodes(frame["bucket"], frame["fired"], rule.window)
        params = {k: _json_param(v) for k, v in rule.params}
        return cls(
            name=rule.name,
            metric=rule.metric,
            description=rule.describe(),
            window=rule.window,
            op=rule.op,
            threshold=rule.threshold,
            persistence=rule.persistence,
            min_n=rule.min_n,
            params=params,
            line=rule.line,
            value=None if current is None else finite(current["value"]),
            n=None if current is None or finite(current["n"]) is None else int(current["n"]),
            bucket=None if current is None else bucket_label(current["bucket"], rule.window),
            fired=fired_now,
            since=runs[-1]["start"] if fired_now and runs else None,
            streak=0 if current is None else int(current["streak"]),
            pending_buckets=int(frame["pending"].sum()),
            settle_hours=finite(settle_hours),
            fired_buckets=[bucket_label(b, rule.window) for b in frame.loc[frame["fired"], "bucket"]],
            episodes=runs,
            reason=None
            if current is not None
            else frame.attrs.get("reason") or _no_value_reason(frame, rule, metric, settle_hours),
            unit=metric.unit,
            kind=metric.kind,
            detail=_detail(current),
            frame=frame,
        )

    def series_records(self) -> list[dict[str, Any]]:
        """The per-bucket backtest as JSON-ready rows."""
        return [
            {
                "bucket": bucket_label(r.bucket, self.window),
                "value": finite(r.value),
                "n": None if finite(r.n) is None else int(r.n),
                "complete": bool(r.complete),
                "settled": bool(r.settled),
                "evaluable": bool(r.evaluable),
                "pending": bool(r.pending),
                "breach": bool(r.breach),
                "streak": int(r.streak),
                "fired": bool(r.fired),
            }
            for r in self.frame.itertuples()
        ]

    def sentence(self) -> str:
        """The rule's state in words."""
        if self.value is None:
            return f"{self.name}: no verdict ({self.reason})"
        value = format_value(self.value, self.unit)
        value += f" on {self.n:,}" if self.n is not None and self.kind == "sample" else ""
        state = f"FIRED since {self.since}" if self.fired else "ok"
        newer = self.window if self.pending_buckets == 1 else _PLURAL[self.window]
        wait = f"; {self.pending_buckets} newer {newer} pending" if self.pending_buckets else ""
        rule = f"{self.op} {self.threshold:g} for {self.persistence}"
        detail = f" [{self.detail}]" if self.detail else ""
        return f"{self.name}: {self.metric} = {value}{detail} in {self.bucket} ({rule}) → {state}{wait}"

    def to_dict(self, with_series: bool = False) -> dict[str, Any]:
        """JSON-ready form; the per-bucket series only when asked (it is long)."""
        out = {
            "name": self.name,
            "metric": self.metric,
            "description": self.description,
            "window": self.window,
            "op": self.op,
            "threshold": self.threshold,
            "for": self.persistence,
            "min_n": self.min_n,
            "params": self.params,
            "line": self.line,
            "value": self.value,
            "n": self.n,
            "bucket": self.bucket,
            "fired": self.fired,
            "since": self.since,
            "streak": self.streak,
            "pending_buckets": self.pending_buckets,
            "settle_hours": self.settle_hours,
            "fired_buckets": self.fired_buckets,
            "episodes": self.episodes,
            "reason": self.reason,
            "detail": self.detail,
            "unit": self.unit,
        }
        if with_series:
            out["series"] = self.series_records()
        return out


def _detail(current: pd.Series | None) -> str | None:
    """What drives the current value, when the metric says (e.g. the drifted features, the group)."""
    if current is None or "detail" not in current.index or not isinstance(current["detail"], str):
        return None
    return current["detail"]


def _json_param(value: Any) -> Any:
    """A rule key's value in JSON: tuples as lists, dates and other objects as text."""
    if isinstance(value, tuple):
        return [_json_param(v) for v in value]
    return value if isinstance(value, str | int | float | bool | type(None)) else str(value)


def _no_value_reason(frame: pd.DataFrame, rule: Rule, metric: Metric, settle_hours: float | None) -> str:
    unit = _PLURAL[rule.window]
    if not frame["complete"].any():
        return f"no complete {rule.window} yet"
    if not (frame["complete"] & frame["settled"]).any():
        wait = (settle_hours or 0) / 24
        return f"labels have not settled in any {rule.window} yet (one is judged {wait:.1f} days after it ends)"
    what = "labels" if metric.uses_labels or rule.metric == "online_accuracy" else "events"
    return f"no complete {rule.window} with at least {max(rule.min_n, 1):,} {what} (all {unit} have fewer)"


@dataclass(frozen=True)
class GroupResult:
    """A group of rules (or groups) combined bucket by bucket and now."""

    name: str
    mode: str
    members: tuple[str, ...]
    window: str
    fired: bool
    since: str | None
    fired_buckets: list[str]
    episodes: list[dict[str, Any]]
    line: int
    frame: pd.DataFrame = field(repr=False, compare=False)

    def sentence(self) -> str:
        """The group's state in words."""
        state = f"FIRED since {self.since}" if self.fired else "ok"
        return f"{self.name}: {self.mode} of {', '.join(self.members)} → {state}"

    def to_dict(self, with_series: bool = False) -> dict[str, Any]:
        """JSON-ready form."""
        out = {
            "name": self.name,
            "mode": self.mode,
            "rules": list(self.members),
            "window": self.window,
            "line": self.line,
            "fired": self.fired,
            "since": self.since,
            "fired_buckets": self.fired_buckets,
            "episodes": self.episodes,
        }
        if with_series:
            out["series"] = [
                {"bucket": bucket_label(b, self.window), "fired": bool(f)}
                for b, f in zip(self.frame["bucket"], self.frame["fired"], strict=True)
            ]
        return out


@dataclass(frozen=True)
class CheckResult:
    """Every rule and group, now and over history, and whether the set as a whole fires.

    Conforms to :class:`workbench.core.result.Result` (family ``triggers``, verdict ``fired`` / ``quiet``).
    """

    family: ClassVar[str] = "triggers"

    rules: list[RuleResult]
    groups: list[GroupResult]
    mode: str
    top_level: list[str]
    fired: bool
    as_of: str
    evaluated_at: str
    source: str

    @property
    def verdict(self) -> str:
        """The key the gate compares: "fired" when the set fires now, else "quiet"."""
        return "fired" if self.fired else "quiet"

    @property
    def verdict_text(self) -> str:
        """The decision in a sentence."""
        everything = {r.name: r for r in [*self.rules, *self.groups]}
        fired = self.fired_names()
        if self.fired:
            reasons = ", ".join(f"{n} (since {everything[n].since})" for n in fired)
            return f"Retrain trigger fired ({self.mode} of the top level): {reasons}."
        quiet = f"{len(fired)} of {len(self.top_level)} top-level items fire, all must" if fired else "none fires"
        checked = f"{len(self.rules)} rules, {len(self.groups)} groups, as of {self.as_of[:16]} UTC"
        return f"No retrain trigger: {quiet} ({checked})."

    @property
    def reasons(self) -> tuple[str, ...]:
        """One line per rule and group that fires now: its value, the threshold it was held to, and since when."""
        lines = []
        for r in self.rules:
            if r.fired:
                value = format_value(r.value, r.unit)
                unit = r.window if r.persistence == 1 else _PLURAL[r.window]
                held = f"{r.op} {r.threshold:g} for {r.persistence} {unit}"
                lines.append(f"{r.name}: {r.metric} = {value} ({held}), fired since {r.since}")
        for g in self.groups:
            if g.fired:
                lines.append(f"{g.name}: {g.mode} of {', '.join(g.members)}, fired since {g.since}")
        return tuple(lines)

    def table(self) -> list[dict[str, Any]]:
        """One row per rule and group: its state now, for the page."""
        rows = []
        for r in self.rules:
            rows.append(
                {
                    "rule": r.name,
                    "what": r.description,
                    "value now": format_value(r.value, r.unit) if r.value is not None else f"— ({r.reason})",
                    "n": r.n,
                    "driven by": r.detail,
                    "bucket": r.bucket,
                    "fires": r.fired,
                    "since": r.since,
                    "pending": r.pending_buckets,
                }
            )
        for g in self.groups:
            rows.append(
                {
                    "rule": g.name,
                    "what": f"{g.mode} of {', '.join(g.members)}",
                    "value now": "",
                    "n": None,
                    "driven by": None,
                    "bucket": None,
                    "fires": g.fired,
                    "since": g.since,
                    "pending": None,
                }
            )
        return rows

    def to_frame(self) -> pd.DataFrame:
        """The :meth:`table` rows as one DataFrame (a row per rule, then per group)."""
        return pd.DataFrame(self.table(), columns=list(_TABLE_COLUMNS))

    def evidence(self) -> dict[str, Any]:
        """The summary the retrain gate records (``record_run(store, result.family, result.verdict, ...)``)."""
        return {
            "verdict_text": self.verdict_text,
            "fired": self.fired_names(),
            "rules_file": self.source,
            "as_of": self.as_of,
            "rules": {r.name: {"fired": r.fired, "since": r.since, "value": r.value} for r in self.rules},
        }

    def fired_names(self) -> list[str]:
        """Top-level rules and groups that fire now (those that decide the set)."""
        everything = {r.name: r for r in [*self.rules, *self.groups]}
        return [name for name in self.top_level if everything[name].fired]

    def to_json(self, with_series: bool = False) -> dict[str, Any]:
        """JSON-ready form (the `workbench check --json` document); each rule's per-bucket series when asked."""
        return {
            "fired": self.fired,
            "mode": self.mode,
            "verdict": self.verdict_text,
            "as_of": self.as_of,
            "evaluated_at": self.evaluated_at,
            "source": self.source,
            "top_level": self.top_level,
            "fired_top_level": self.fired_names(),
            "rules": [r.to_dict(with_series) for r in self.rules],
            "groups": [g.to_dict(with_series) for g in self.groups],
        }


_TABLE_COLUMNS = ("rule", "what", "value now", "n", "driven by", "bucket", "fires", "since", "pending")


def backtest_table(result: CheckResult) -> list[dict[str, Any]]:
    """One row per episode of every rule and group: the first and last bucket it fired in, how many
    buckets, and whether it still fires now (the backtest table of the page)."""
    rows = []
    for item in [*result.rules, *result.groups]:
        metric = item.metric if isinstance(item, RuleResult) else f"group ({item.mode})"
        for i, run in enumerate(item.episodes):
            current = item.fired and i == len(item.episodes) - 1 and run["start"] == item.since
            rows.append(
                {
                    "rule": item.name,
                    "metric": metric,
                    "first": run["start"],
                    "last": run["end"],
                    "buckets": run["buckets"],
                    "fires now": bool(current),
                }
            )
    return rows
