"""A/B test: the whole analysis from the store at 10M feedback events, beside pandas + statsmodels on raw rows.

The store is built directly with DuckDB SQL (seconds, not the demo generator): 5M predictions, every one in
the experiment (arms champion/challenger by unit parity, 1M units, 28 days, 3 segment columns), and 10M
feedback events (clicks, dwell, thumbs, ratings, corrections) on them. Our path is ``analyse_store`` with
the default metrics (thumbs-up rate + the dwell-time guardrail): SRM overall and per segment, daily and
per-unit sufficient statistics, capping, Mann–Whitney, timeline, power and verdict. The alternative is what
a data scientist would write: read the joined rows into pandas, group by arm, then statsmodels'
``proportions_ztest`` and scipy's ``ttest_ind`` and ``mannwhitneyu`` (fewer statistics, same data).

The SQL-built store has none of the sums the ingest keeps, so it is first analysed as a store of an older
build is (the feedback joined to the arms); then the sums are rebuilt whole, as the first ingest into such a
store does (:func:`workbench.sources.trace_feedback.rebuild`, timed), and the store is analysed as the ingest
leaves it: the whole experiment from the per-unit sums, a window from the per-trace sums on the predictions.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from benchmarks.harness import Row, measure

TITLE = "A/B test: the whole analysis from the store"

BUILD_SQL = """
CREATE TABLE predictions AS
SELECT 'tr-' || i AS trace_id,
       TIMESTAMPTZ '2026-03-01 00:00:00+00'
           + to_microseconds((hash(i + 1000000000000) % (28 * 86400000000))::BIGINT) AS ts,
       CASE WHEN (hash(i + 2000000000000) % {units}) % 2 = 1 THEN 'v2' ELSE 'v1' END AS model_version,
       (hash(i + 3000000000000) % 2)::TINYINT AS prediction,
       (hash(i + 4000000000000) % 1000) / 1000.0 AS score,
       CASE WHEN (hash(i + 2000000000000) % {units}) % 2 = 1 THEN 'challenger' ELSE 'champion' END AS arm,
       'u-' || (hash(i + 2000000000000) % {units}) AS unit_id,
       NULL::BIGINT AS ingest_id,
       ['north', 'south', 'east', 'west'][1 + (hash(i + 5000000000000) % 4)::INT] AS region,
       ['mobile', 'desktop', 'tablet'][1 + (hash(i + 6000000000000) % 3)::INT] AS device,
       ['US', 'DE', 'FR', 'GB', 'ES', 'IT', 'NL', 'PL'][1 + (hash(i + 7000000000000) % 8)::INT] AS country
FROM range({predictions}) t(i);
CREATE TABLE feedback AS
WITH e AS (SELECT j, hash(j + 11000000000000) % {predictions} AS p, (hash(j + 12000000000000) % 1000) / 1000.0 AS r,
                  (hash(j + 13000000000000) % 1000000) / 1000000.0 AS u FROM range({events}) t(j))
SELECT 'tr-' || p AS trace_id,
       TIMESTAMPTZ '2026-03-01 00:00:00+00'
           + to_microseconds((hash(j + 14000000000000) % (28 * 86400000000))::BIGINT) AS ts,
       CASE WHEN r < 0.50 THEN 'implicit' WHEN r < 0.65 THEN 'implicit' ELSE 'explicit' END AS kind,
       CASE WHEN r < 0.50 THEN 'click' WHEN r < 0.65 THEN 'dwell' WHEN r < 0.90 THEN 'thumb'
            WHEN r < 0.97 THEN 'rating' ELSE 'correction' END AS type,
       CASE WHEN r < 0.50 THEN (u < 0.3)::DOUBLE
            WHEN r < 0.65 THEN round(exp(ln(40) + 0.8 * sqrt(-2 * ln(greatest(u, 1e-9))) * cos(6.2831853 * r * 7)), 1)
            WHEN r < 0.90 THEN (u < 0.62 + 0.03 * ((hash(p + 2000000000000) % {units}) % 2))::DOUBLE
            WHEN r < 0.97 THEN 1 + floor(u * 5) ELSE (u < 0.4)::DOUBLE END AS value,
       NULL::TINYINT AS label, NULL::BIGINT AS ingest_id
FROM e;
CREATE TABLE quarantine (ingest_id BIGINT, table_name VARCHAR, source VARCHAR, row_number BIGINT, raw VARCHAR,
                         reason VARCHAR, quarantined_at TIMESTAMPTZ);
CREATE TABLE ingests (ingest_id BIGINT, table_name VARCHAR, source VARCHAR, ingested_at TIMESTAMPTZ,
                      accepted BIGINT, duplicates BIGINT, quarantined BIGINT);
CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR);
INSERT INTO meta VALUES ('roles', '{{"predictions": {{"sensitive": ["region"], "categorical": ["device", "country"],
                                     "features": ["device", "country"]}}}}');
"""


def build_store(db: str, events: int) -> dict:
    """Write the benchmark store with DuckDB SQL: ``events`` feedback rows on events/2 predictions."""
    import duckdb

    predictions = events // 2
    Path(db).unlink(missing_ok=True)  # a rerun in the same workdir starts from an empty file
    con = duckdb.connect(db)
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    con.execute(BUILD_SQL.format(predictions=predictions, events=events, units=max(predictions // 5, 10)))
    counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("predictions", "feedback")}
    con.close()
    return counts


def ours(db: str, window: bool = False) -> dict:
    """The whole analysis, as `workbench abtest --json` runs it (default metrics and guardrail); ``window``: of
    the last 14 of the 28 days, as `--current` or the page's window gives it."""
    import datetime as dt

    from workbench.abtest.request import ABTestRequest
    from workbench.abtest.run import run
    from workbench.core.window import Window
    from workbench.sources.base import StoreSource
    from workbench.sources.store import Store

    span = Window(dt.datetime(2026, 3, 15, tzinfo=dt.UTC), dt.datetime(2026, 3, 29, tzinfo=dt.UTC)) if window else None
    result = run(StoreSource(Store(db)), ABTestRequest(window=span))
    c = result.comparisons[0]
    return {"verdict": result.verdict, "diff": c.diff, "p": c.p_value, "srm_ok": result.srm.ok,
            "path": result.period["aggregated_from"]}  # fmt: skip


def keep_sums(db: str) -> dict:
    """Write the per-trace and per-unit sums the ingest keeps, as the first ingest into a store of an older
    build would."""
    import duckdb

    from workbench.sources import trace_feedback, unit_sums

    con = duckdb.connect(db)
    trace_feedback.rebuild(con)
    units = con.execute(f"SELECT count(*) FROM {unit_sums.TABLE}").fetchall()[0][0]
    con.close()
    return {"units": units}


def alternative(db: str) -> dict:
    """pandas + statsmodels/scipy on the raw joined rows: thumbs-up z-test, dwell Welch and Mann–Whitney, SRM."""
    import duckdb
    from scipy import stats
    from statsmodels.stats.proportion import proportions_ztest

    con = duckdb.connect(db, read_only=True)
    predictions = con.execute("SELECT trace_id, arm, unit_id FROM predictions").df()
    feedback = con.execute("SELECT trace_id, type, value FROM feedback WHERE type IN ('thumb', 'dwell')").df()
    con.close()
    rows = feedback.merge(predictions, on="trace_id")
    units = predictions.groupby("arm")["unit_id"].nunique()
    srm_p = stats.chisquare(units.to_numpy()).pvalue
    thumbs = rows[rows["type"] == "thumb"].groupby("arm")["value"].agg(["sum", "count"])
    _z, p = proportions_ztest(thumbs["sum"][["challenger", "champion"]], thumbs["count"][["challenger", "champion"]])
    dwell = rows[rows["type"] == "dwell"]
    a, b = dwell[dwell["arm"] == "champion"]["value"], dwell[dwell["arm"] == "challenger"]["value"]
    welch = stats.ttest_ind(b, a, equal_var=False)
    mw = stats.mannwhitneyu(b, a)
    diff = (
        thumbs["sum"]["challenger"] / thumbs["count"]["challenger"]
        - thumbs["sum"]["champion"] / thumbs["count"]["champion"]
    )
    return {"diff": float(diff), "p": float(p), "srm_p": float(srm_p), "welch": float(welch.pvalue),
            "mw": float(mw.pvalue)}  # fmt: skip


def _imports() -> None:
    import duckdb  # noqa: F401
    import ibis  # noqa: F401
    import pandas  # noqa: F401
    import scipy.stats  # noqa: F401
    import statsmodels.api  # noqa: F401

    import workbench.abtest  # noqa: F401


def cases(quick: bool, workdir: Path) -> Iterator[Row]:
    """The whole analysis at 10M feedback events (quick: 200k), ours beside pandas + statsmodels."""
    events = 200_000 if quick else 10_000_000
    db = str(workdir / "abtest-bench.duckdb")
    counts = build_store(db, events)
    theirs = measure(alternative, db, setup=_imports, repeat=1)
    joined = measure(ours, db, setup=_imports, repeat=3)  # the store as SQL wrote it: no kept sums yet
    joined_window = measure(ours, db, True, setup=_imports, repeat=3)
    kept = measure(keep_sums, db, setup=_imports, repeat=1)
    mine = measure(ours, db, setup=_imports, repeat=3)
    window = measure(ours, db, True, setup=_imports, repeat=3)
    paths = [r.result["path"] for r in (joined, joined_window, mine, window)]
    assert paths == ["feedback join", "feedback join", "unit sums", "trace sums"], paths
    for result in (joined.result, mine.result):
        assert abs(result["diff"] - theirs.result["diff"]) < 1e-12, (result, theirs.result)
        assert abs(result["p"] - theirs.result["p"]) < 1e-9, (result, theirs.result)
    assert abs(window.result["diff"] - joined_window.result["diff"]) < 1e-12, (window.result, joined_window.result)
    yield Row(
        "abtest", "analyse_store (SRM + segments, thumbs-up, dwell guardrail, timeline, power, verdict)",
        counts["feedback"], mine.seconds, mine.peak_mb, "pandas merge/groupby + statsmodels/scipy on raw rows",
        theirs.seconds, theirs.peak_mb, goal="≤ 1 s at 10M events", goal_met=None if quick else mine.seconds <= 1.0,
        notes=f"{counts['predictions']:,} predictions, all in the experiment, {kept.result['units']:,} units; "
        "the whole experiment from the per-unit sums the ingest keeps; same thumbs-up diff and p-value (1e-9) "
        "from both paths; ours also gives per-segment SRM, CIs, sequential, Bayes, power, capping",
    )  # fmt: skip
    yield Row(
        "abtest", "the same, the store without the kept sums (feedback joined to the arms)", counts["feedback"],
        joined.seconds, joined.peak_mb, notes="a store of an older build, before its first ingest",
    )  # fmt: skip
    yield Row(
        "abtest", "the same over a window (14 of the 28 days: per-trace sums on the predictions)",
        counts["feedback"], window.seconds, window.peak_mb, "the same window, feedback joined to the arms",
        joined_window.seconds, joined_window.peak_mb,
        notes="a window groups its predictions by unit (the per-unit sums are the whole experiment's); same "
        "result both ways",
    )  # fmt: skip
    yield Row(
        "abtest", "per-trace and per-unit sums rebuilt whole (at ingest)", counts["predictions"], kept.seconds,
        kept.peak_mb, notes="what the first ingest into a store of an older build pays (also the fairness "
        "audit's label counts); later ingests recompute only the traces and units they touch",
    )  # fmt: skip
