"""Result objects of the retraining triggers: a rule, a group, and the whole check (the `check --json` document)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np
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


def decide(mode: str, states: Iterable[bool | None]) -> bool | None:
    """Combine members' states in three-valued (Kleene) logic: True fired, False quiet, None unknown (in error).

    ``all``: quiet as soon as one member is quiet (the others cannot change that), else unknown while a member
    is unknown, else fired. ``any``: fired as soon as one member fires, else unknown while a member is
    unknown, else quiet. So an unknown member never makes a set fire, and never lets it pass as quiet when
    it could have decided otherwise.
    """
    states = list(states)
    decisive = mode != "all"  # the state one member alone decides: fired for any, quiet for all
    if any(s is not None and bool(s) == decisive for s in states):
        return decisive
    return None if any(s is None for s in states) else not decisive


@dataclass(frozen=True)
class RuleResult:
    """A rule evaluated over history: its state now (at its last evaluable bucket) and where it fired.

    ``value``/``n``/``bucket``: the metric at the current bucket; ``since``: the bucket from which the
    rule has fired without a break (None when it does not fire now); ``fired_buckets``/``episodes``:
    the backtest; ``frame``: the per-bucket verdicts (see :func:`workbench.stream.triggers.judge`).
    ``error``: why the rule could not be evaluated on this data (e.g. a column the store does not have), or
    None; a rule in error has no value, never fires and makes a group that depends on it undecided.
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
    error: str | None = None

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

    @classmethod
    def failed(cls, rule: Rule, metric: Metric, buckets: pd.DatetimeIndex, error: str) -> RuleResult:
        """A rule that could not be evaluated: no value in any bucket, never fired, and the reason in ``error``
        (the frame keeps the calendar, so groups and the backtest still line up with the other rules)."""
        frame = pd.DataFrame({"bucket": np.asarray(buckets), "value": np.nan, "n": 0.0})
        for flag in ("complete", "settled", "evaluable", "pending", "breach", "fired"):
            frame[flag] = False
        frame["streak"] = 0
        result = cls.from_frame(rule, metric, frame, None)
        return replace(result, reason=error, error=error)

    @property
    def state(self) -> bool | None:
        """True fired, False quiet, None in error (see :func:`decide`)."""
        return None if self.error is not None else self.fired

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
        if self.error is not None:
            return f"{self.name}: ERROR, could not be evaluated (line {self.line}): {self.error}"
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
            "error": self.error,
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
    error: str | None = None  # why the group is undecided (a member in error that could change it), or None

    @property
    def state(self) -> bool | None:
        """True fired, False quiet, None undecided (see :func:`decide`)."""
        return None if self.error is not None else self.fired

    def sentence(self) -> str:
        """The group's state in words."""
        state = f"UNDECIDED ({self.error})" if self.error else f"FIRED since {self.since}" if self.fired else "ok"
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
            "error": self.error,
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

    Conforms to :class:`workbench.core.result.Result` (family ``triggers``, verdict ``fired`` / ``quiet`` /
    ``unknown``). ``undecided``: the top level cannot be decided because a rule it depends on is in error
    (see :func:`decide`); every rule in error is listed by :attr:`errors` whatever the verdict.
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
    undecided: bool = False

    @property
    def verdict(self) -> str:
        """The key the gate compares: "fired" when the set fires now, "unknown" when rules in error leave it
        undecided, else "quiet"."""
        return "fired" if self.fired else "unknown" if self.undecided else "quiet"

    @property
    def errors(self) -> list[dict[str, Any]]:
        """Every rule that could not be evaluated: its name, line and reason (the others were evaluated)."""
        return [{"rule": r.name, "line": r.line, "error": r.error} for r in self.rules if r.error is not None]

    def errors_sentence(self) -> str:
        """The rules in error in one line ("" when there are none): what a scheduler prints on stderr."""
        if not self.errors:
            return ""
        listed = "; ".join(f"{e['rule']} (line {e['line']}): {e['error']}" for e in self.errors)
        count = "1 rule" if len(self.errors) == 1 else f"{len(self.errors)} rules"
        return f"{count} could not be evaluated: {listed}"

    @property
    def verdict_text(self) -> str:
        """The decision in a sentence."""
        everything = {r.name: r for r in [*self.rules, *self.groups]}
        fired = self.fired_names()
        errors = f" {self.errors_sentence()}." if self.errors else ""
        if self.fired:
            reasons = ", ".join(f"{n} (since {everything[n].since})" for n in fired)
            return f"Retrain trigger fired ({self.mode} of the top level): {reasons}.{errors}"
        checked = f"{len(self.rules)} rules, {len(self.groups)} groups, as of {self.as_of[:16]} UTC"
        if self.undecided:
            unknown = [n for n in self.top_level if everything[n].state is None]
            return (
                f"Retrain trigger undecided: {', '.join(unknown)} could not be evaluated, and the rest does not "
                f"decide the set ({self.mode} of the top level; {checked}).{errors}"
            )
        quiet = f"{len(fired)} of {len(self.top_level)} top-level items fire, all must" if fired else "none fires"
        return f"No retrain trigger: {quiet} ({checked}).{errors}"

    @property
    def reasons(self) -> tuple[str, ...]:
        """One line per rule and group that fires now (its value, the threshold it was held to, since when), and
        one per rule in error (its reason) and per group it leaves undecided."""
        lines = []
        for r in self.rules:
            if r.error is not None:
                lines.append(f"{r.name}: could not be evaluated (line {r.line}): {r.error}")
            elif r.fired:
                value = format_value(r.value, r.unit)
                unit = r.window if r.persistence == 1 else _PLURAL[r.window]
                held = f"{r.op} {r.threshold:g} for {r.persistence} {unit}"
                lines.append(f"{r.name}: {r.metric} = {value} ({held}), fired since {r.since}")
        for g in self.groups:
            if g.error is not None:
                lines.append(f"{g.name}: {g.mode} of {', '.join(g.members)}, undecided: {g.error}")
            elif g.fired:
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
                    "value now": _value_now(r),
                    "n": r.n,
                    "driven by": r.detail,
                    "bucket": r.bucket,
                    "fires": r.state,
                    "since": r.since,
                    "pending": None if r.error else r.pending_buckets,
                    "error": r.error,
                }
            )
        for g in self.groups:
            rows.append(
                {
                    "rule": g.name,
                    "what": f"{g.mode} of {', '.join(g.members)}",
                    "value now": "undecided" if g.error else "",
                    "n": None,
                    "driven by": None,
                    "bucket": None,
                    "fires": g.state,
                    "since": g.since,
                    "pending": None,
                    "error": g.error,
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
            "rules": {
                r.name: {"fired": r.fired, "since": r.since, "value": r.value, "error": r.error} for r in self.rules
            },
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
            "verdict_word": self.verdict,
            "as_of": self.as_of,
            "evaluated_at": self.evaluated_at,
            "source": self.source,
            "top_level": self.top_level,
            "fired_top_level": self.fired_names(),
            "rules": [r.to_dict(with_series) for r in self.rules],
            "groups": [g.to_dict(with_series) for g in self.groups],
            "errors": self.errors,
        }


_TABLE_COLUMNS = ("rule", "what", "value now", "n", "driven by", "bucket", "fires", "since", "pending", "error")


def _value_now(rule: RuleResult) -> str:
    """The table's "value now": the value, or why there is none (in error: the reason is in its own column)."""
    if rule.error is not None:
        return "error"
    return format_value(rule.value, rule.unit) if rule.value is not None else f"— ({rule.reason})"


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
