"""Feedback stream: the page's snapshot and `workbench check`, beside the pandas a user would write."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from benchmarks.harness import Row, measure

TITLE = "Feedback stream: per-day aggregates and retraining triggers"
ACCURACY_RULE = """
[[rule]]
name = "accuracy_drop"
metric = "online_accuracy"
label_types = ["outcome"]
op = "<"
threshold = 0.70
for = 3
min_n = 300
"""


def build(db: str, rows: int) -> int:
    """The demo store at ``rows`` predictions."""
    from workbench.demo.scenario import Scenario, build_demo
    from workbench.sources.store import Store

    return build_demo(Store(db), Scenario(rows=rows))["predictions"]


def snapshot(db: str) -> dict:
    """Our path: the page's whole snapshot (series by day, arrivals, versions, label delay, signal quality)."""
    from workbench.sources.store import Store
    from workbench.stream.snapshot import stream_snapshot

    snap = stream_snapshot(Store(db), None, "day", None, ("outcome",))
    overall = snap.overall()
    return {
        "predictions": overall.set_index(overall["bucket"].dt.strftime("%Y-%m-%d"))["predictions"].to_dict(),
        "accuracy": overall.set_index(overall["bucket"].dt.strftime("%Y-%m-%d"))["accuracy"].round(12).to_dict(),
    }


def pandas_daily(db: str) -> dict:
    """The alternative: load both tables into pandas, join the outcome labels, group by prediction day."""
    import duckdb

    con = duckdb.connect(db, read_only=True)
    predictions = con.execute("SELECT * FROM predictions").df()
    feedback = con.execute("SELECT * FROM feedback").df()
    con.close()
    predictions["day"] = predictions["ts"].dt.tz_convert("UTC").dt.strftime("%Y-%m-%d")
    labels = feedback[feedback["label"].notna() & (feedback["type"] == "outcome")]
    joined = labels.merge(predictions[["trace_id", "prediction", "day"]], on="trace_id")
    joined["correct"] = joined["label"] == joined["prediction"]
    return {
        "predictions": predictions.groupby("day").size().to_dict(),
        "accuracy": joined.groupby("day")["correct"].mean().round(12).to_dict(),
    }


def check_rules(db: str, text: str) -> dict:
    """Our path: `workbench check` on a rules text (evaluation and backtest of every rule)."""
    from workbench.sources.store import Store
    from workbench.stream.triggers import check, parse

    result = check(Store(db), parse(text))
    return {r.name: r.fired_buckets[:1] for r in result.rules}


def _imports() -> None:
    import duckdb  # noqa: F401
    import ibis  # noqa: F401
    import pandas  # noqa: F401

    import workbench.stream.snapshot
    import workbench.stream.triggers  # noqa: F401


def cases(quick: bool, workdir: Path) -> Iterator[Row]:
    """The page snapshot vs pandas, the accuracy rule, and the whole example rules file (drift, CBPE, fairness)."""
    rows = 20_000 if quick else 2_000_000
    db = str(workdir / "stream-demo.duckdb")
    build(db, rows)
    ours = measure(snapshot, db, setup=_imports)
    alt = measure(pandas_daily, db, setup=_imports)
    days = ours.result["predictions"]
    assert days == alt.result["predictions"], "daily prediction counts differ from pandas"
    accuracy = {d: a for d, a in ours.result["accuracy"].items() if a == a}
    assert accuracy == alt.result["accuracy"], "daily accuracy differs from pandas"
    yield Row(
        "stream", "page snapshot, per day", rows, ours.seconds, ours.peak_mb,
        "pandas: load both tables, join labels, group by day", alt.seconds, alt.peak_mb,
        goal="a page refresh in a few seconds", goal_met=ours.seconds < 5,
        notes="ours also computes arrivals, versions, label delay and signal quality; same daily counts and "
        "accuracy as pandas (checked)",
    )  # fmt: skip
    accuracy_rule = measure(check_rules, db, ACCURACY_RULE, setup=_imports)
    yield Row("stream", "check: online accuracy rule + backtest", rows, accuracy_rule.seconds, accuracy_rule.peak_mb,
              goal="seconds (cron, Airflow)", goal_met=accuracy_rule.seconds < 10)  # fmt: skip
    example = (Path(__file__).resolve().parents[1] / "rules.example.toml").read_text(encoding="utf-8")
    everything = measure(check_rules, db, example, setup=_imports)
    yield Row(
        "stream", "check: rules.example.toml (9 rules incl. drift, CBPE, fairness)", rows, everything.seconds,
        everything.peak_mb, goal="under a minute", goal_met=everything.seconds < 60,
        notes=f"first fired buckets: {everything.result}",
    )  # fmt: skip
