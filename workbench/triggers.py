"""Retraining triggers: declarative rules in TOML, evaluated now and backtested over history.

A rule compares one metric per time bucket with a threshold and fires when the comparison holds
for ``for`` consecutive complete buckets (a bucket with no data, or fewer than ``min_n`` labels or
events, breaks the streak: we cannot say it was below). The last bucket is left out while it is
still filling (the data's newest ts is before its end). Groups combine rules with all/any.
"""

from __future__ import annotations

import operator
import re
import tomllib
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench.errors import InputError
from workbench.queries import Window
from workbench.queries.stream import BUCKET_LENGTH, GRANULARITIES, stream_series
from workbench.store import Store

OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
# metric -> (what it is, needs min_n samples of)
METRICS = {
    "online_accuracy": "share of labelled feedback where prediction == label, per prediction bucket",
    "positive_feedback_rate": "share of positive feedback of `feedback_type` (thumb: thumbs-up, click: clicked)",
    "coverage": "share of predictions with a labelled feedback",
    "prediction_volume": "predictions per bucket",
    "label_volume": "labelled feedback rows per bucket",
    "new_labels_since_retrain": "labels on predictions made since the last approved retrain (cumulative)",
    "days_since_retrain": "days since the last approved retrain (or since the first prediction)",
}
RULE_KEYS = {"name", "metric", "op", "threshold", "for", "window", "min_n", "feedback_type"}


@dataclass(frozen=True)
class Rule:
    """One trigger rule as written in the rules file (``line`` is where its [[rule]] starts)."""

    name: str
    metric: str
    op: str
    threshold: float
    persistence: int = 1
    window: str = "day"
    min_n: int = 30
    feedback_type: str = "thumb"
    line: int = 0


@dataclass(frozen=True)
class Group:
    """Rules combined: fires in a bucket when all (or any) of its rules fire there."""

    name: str
    mode: str
    rules: tuple[str, ...]
    line: int = 0


@dataclass(frozen=True)
class RuleSet:
    """A parsed rules file: rules, groups, and how the whole set decides (any/all of the top level)."""

    rules: tuple[Rule, ...]
    groups: tuple[Group, ...] = ()
    mode: str = "any"


def _line_of(lines: list[str], header: str, index: int) -> int:
    """1-based line of the ``index``-th ``[[header]]`` table in the file."""
    hits = [i + 1 for i, line in enumerate(lines) if re.match(rf"\s*\[\[\s*{header}\s*\]\]", line)]
    return hits[index] if index < len(hits) else 0


def _key_line(lines: list[str], start: int, key: str) -> int:
    """Line of ``key = …`` inside the table that starts at ``start`` (or the table's line)."""
    for i in range(start, len(lines)):  # lines[start - 1] is the [[header]] itself
        if re.match(r"\s*\[", lines[i]):
            break
        if re.match(rf"\s*{re.escape(key)}\s*=", lines[i]):
            return i + 1
    return start


def parse_rules(text: str, source: str = "rules file") -> RuleSet:
    """Parse a rules TOML document; a bad rule is refused with a message naming its line."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{source}: not valid TOML ({exc})") from None
    lines = text.splitlines()
    rules: list[Rule] = []
    for i, item in enumerate(raw.get("rule", [])):
        start = _line_of(lines, "rule", i)

        def bad(key: str, message: str, start: int = start) -> InputError:
            return InputError(f"{source} line {_key_line(lines, start, key)}: {message}")

        unknown = set(item) - RULE_KEYS
        if unknown:
            key = sorted(unknown)[0]
            raise bad(key, f"unknown key '{key}' (known: {', '.join(sorted(RULE_KEYS))})")
        for required in ("name", "metric", "op", "threshold"):
            if required not in item:
                raise InputError(f"{source} line {start}: rule {i + 1} needs '{required}'")
        name = item["name"]
        if not isinstance(name, str) or not name:
            raise bad("name", "name must be a non-empty string")
        if item["metric"] not in METRICS:
            raise bad("metric", f"rule '{name}': unknown metric '{item['metric']}' (known: {', '.join(METRICS)})")
        if item["op"] not in OPS:
            raise bad("op", f"rule '{name}': op must be one of {' '.join(OPS)}")
        if not isinstance(item["threshold"], int | float) or isinstance(item["threshold"], bool):
            raise bad("threshold", f"rule '{name}': threshold must be a number")
        persistence = item.get("for", 1)
        if not isinstance(persistence, int) or persistence < 1:
            raise bad("for", f"rule '{name}': 'for' must be a whole number of buckets ≥ 1")
        window = item.get("window", "day")
        if window not in GRANULARITIES:
            raise bad("window", f"rule '{name}': window must be one of {', '.join(GRANULARITIES)}")
        min_n = item.get("min_n", 30)
        if not isinstance(min_n, int) or min_n < 0:
            raise bad("min_n", f"rule '{name}': min_n must be a whole number ≥ 0")
        if name in {r.name for r in rules}:
            raise bad("name", f"rule name '{name}' is used twice")
        rules.append(
            Rule(
                name,
                item["metric"],
                item["op"],
                float(item["threshold"]),
                persistence,
                window,
                min_n,
                item.get("feedback_type", "thumb"),
                start,
            )
        )
    if not rules:
        raise InputError(f"{source}: no [[rule]] tables")
    groups = []
    known = {r.name for r in rules}
    for i, item in enumerate(raw.get("group", [])):
        start = _line_of(lines, "group", i)
        mode = item.get("mode", "all")
        members = item.get("rules", [])
        if mode not in ("all", "any"):
            raise InputError(f"{source} line {_key_line(lines, start, 'mode')}: group mode must be all or any")
        missing = [m for m in members if m not in known]
        if not members or missing:
            what = f"unknown rule '{missing[0]}'" if missing else "no rules"
            raise InputError(f"{source} line {_key_line(lines, start, 'rules')}: group '{item.get('name')}' has {what}")
        groups.append(Group(str(item.get("name", f"group {i + 1}")), mode, tuple(members), start))
    mode = raw.get("mode", "any")
    if mode not in ("all", "any"):
        raise InputError(f"{source}: top-level mode must be all or any")
    return RuleSet(tuple(rules), tuple(groups), mode)


def load_rules(path: str | Path) -> RuleSet:
    """Read and parse a rules file."""
    path = Path(path)
    try:
        return parse_rules(path.read_text(encoding="utf-8"), str(path))
    except OSError as exc:
        raise InputError(f"cannot read rules file {path}: {exc.strerror}") from None


@dataclass(frozen=True)
class RuleResult:
    """A rule evaluated over history: per-bucket values, where it fired, and its state now."""

    name: str
    metric: str
    op: str
    threshold: float
    persistence: int
    value: float | None
    fired: bool
    since: str | None
    fired_buckets: list[str]
    series: list[dict[str, Any]] = field(repr=False)

    def to_dict(self, with_series: bool = False) -> dict[str, Any]:
        """JSON-ready form (the series only when asked: it is long)."""
        out = asdict(self)
        if not with_series:
            out.pop("series")
        return out


def _approvals(store: Store) -> list[pd.Timestamp]:
    from workbench.decisions import read_decisions

    return [pd.Timestamp(d.decided_at) for d in read_decisions(store) if d.decision == "approve"]


def metric_series(frame: pd.DataFrame, rule: Rule, approvals: list[pd.Timestamp]) -> pd.DataFrame:
    """Per bucket: value and n (the sample the value rests on) of the rule's metric."""
    out = pd.DataFrame({"bucket": frame["bucket"]})
    if rule.metric == "online_accuracy":
        out["n"] = frame["labels"]
        out["value"] = frame["correct"] / frame["labels"].where(frame["labels"] > 0)
    elif rule.metric == "positive_feedback_rate":
        n_col, pos_col = ("clicks", "clicked") if rule.feedback_type == "click" else ("thumbs", "thumbs_up")
        out["n"] = frame[n_col]
        out["value"] = frame[pos_col] / frame[n_col].where(frame[n_col] > 0)
    elif rule.metric == "coverage":
        out["n"] = frame["predictions"]
        out["value"] = frame["with_label"] / frame["predictions"].where(frame["predictions"] > 0)
    elif rule.metric in ("prediction_volume", "label_volume"):
        col = "predictions" if rule.metric == "prediction_volume" else "labels"
        out["n"] = frame[col]
        out["value"] = frame[col].astype(float)
    else:  # since the last approval before each bucket's end
        ends = frame["bucket"] + BUCKET_LENGTH[rule.window]
        first = frame["bucket"].min()
        last_approval = [max([a for a in approvals if a < end], default=first) for end in ends]
        if rule.metric == "days_since_retrain":
            out["value"] = [(end - a).total_seconds() / 86400 for end, a in zip(ends, last_approval, strict=True)]
        else:
            labels = frame["labels"].to_numpy()
            out["value"] = [
                float(labels[(frame["bucket"] >= a).to_numpy() & (frame["bucket"] < end).to_numpy()].sum())
                for end, a in zip(ends, last_approval, strict=True)
            ]
        out["n"] = np.iinfo(np.int64).max  # not a sample: never too small
    return out


def evaluate_rule(frame: pd.DataFrame, rule: Rule, approvals: list[pd.Timestamp], newest: pd.Timestamp) -> RuleResult:
    """Run the consecutive-bucket logic over one metric series (``frame`` from stream_series)."""
    calendar = pd.date_range(frame["bucket"].min(), frame["bucket"].max(), freq=BUCKET_LENGTH[rule.window])
    full = pd.DataFrame({"bucket": calendar}).merge(frame, on="bucket", how="left")
    counts = [c for c in full.columns if c not in ("bucket", "segment")]
    full[counts] = full[counts].fillna(0)
    series = metric_series(full, rule, approvals)
    complete = (series["bucket"] + BUCKET_LENGTH[rule.window]) <= newest
    has_value = series["value"].notna() & (series["n"] >= max(rule.min_n, 1)) & complete
    breach = has_value & OPS[rule.op](series["value"].fillna(np.nan), rule.threshold)
    streak, fired, since = 0, [], None
    for b in breach:
        streak = streak + 1 if b else 0
        fired.append(streak >= rule.persistence)
    fired_buckets = [str(series["bucket"].iloc[i].date()) for i, f in enumerate(fired) if f]
    last = int(np.flatnonzero(complete.to_numpy())[-1]) if complete.any() else None
    fired_now = bool(last is not None and fired[last])
    if fired_now:
        i = last
        while i > 0 and fired[i - 1]:
            i -= 1
        since = str(series["bucket"].iloc[i].date())
    value = None if last is None or pd.isna(series["value"].iloc[last]) else float(series["value"].iloc[last])
    rows = [
        {
            "bucket": str(b.date()) if rule.window != "hour" else b.isoformat(),
            "value": None if pd.isna(v) else float(v),
            "n": int(min(n, 2**53)),
            "complete": bool(c),
            "breach": bool(br),
            "fired": f,
        }
        for b, v, n, c, br, f in zip(
            series["bucket"], series["value"], series["n"], complete, breach, fired, strict=True
        )
    ]
    return RuleResult(
        rule.name, rule.metric, rule.op, rule.threshold, rule.persistence, value, fired_now, since, fired_buckets, rows
    )


@dataclass(frozen=True)
class CheckResult:
    """Every rule and group, now and over history, and whether the set as a whole fires."""

    rules: list[RuleResult]
    groups: list[dict[str, Any]]
    fired: bool
    evaluated_at: str

    def to_dict(self, with_series: bool = False) -> dict[str, Any]:
        """JSON-ready form (the `workbench check --json` document)."""
        return {
            "fired": self.fired,
            "evaluated_at": self.evaluated_at,
            "rules": [r.to_dict(with_series) for r in self.rules],
            "groups": self.groups,
        }


def check(store: Store, rules: RuleSet, window: Window | None = None) -> CheckResult:
    """Evaluate every rule on the store (one aggregate query per bucket size) and combine them."""
    approvals = _approvals(store)
    frames = {w: stream_series(store, window, w) for w in {r.window for r in rules.rules}}
    with store.connect() as con:
        newest = con.execute("SELECT max(ts) FROM predictions").fetchall()[0][0]
    if newest is None or all(f.empty for f in frames.values()):
        raise InputError("no predictions in the store (or the window): nothing to check")
    newest = pd.Timestamp(newest)
    for name, frame in frames.items():
        frames[name] = frame.assign(bucket=pd.to_datetime(frame["bucket"], utc=True))
    results = [evaluate_rule(frames[r.window], r, approvals, newest) for r in rules.rules]
    by_name = {r.name: r for r in results}
    groups = []
    for g in rules.groups:
        combine = all if g.mode == "all" else any
        members = [by_name[m] for m in g.rules]
        common = (
            set.intersection(*(set(m.fired_buckets) for m in members))
            if g.mode == "all"
            else set().union(*(m.fired_buckets for m in members))
        )
        groups.append(
            {
                "name": g.name,
                "mode": g.mode,
                "rules": list(g.rules),
                "fired": combine(m.fired for m in members),
                "fired_buckets": sorted(common),
            }
        )
    grouped = {m for g in rules.groups for m in g.rules}
    top = [r.fired for r in results if r.name not in grouped] + [g["fired"] for g in groups]
    fired = (all if rules.mode == "all" else any)(top)
    return CheckResult(results, groups, fired, datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
