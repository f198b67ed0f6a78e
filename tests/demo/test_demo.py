"""The demo scenario: deterministic, and its injected truth is really in the data."""

from __future__ import annotations

import json

import numpy as np
import pytest

from workbench.core.errors import InputError
from workbench.demo.scenario import Scenario, build_demo, content_hash, generate
from workbench.sources.store import Store


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A 60k-row demo store and its ground truth."""
    store = Store(tmp_path_factory.mktemp("demo") / "demo.duckdb")
    truth = build_demo(store, Scenario(rows=60_000))
    return store, truth


def test_same_seed_gives_the_same_rows():
    first = generate(Scenario(rows=5_000, seed=3))
    second = generate(Scenario(rows=5_000, seed=3))
    assert content_hash(first[0], first[1]) == content_hash(second[0], second[1]) == first[2]["content_hash"]


def test_another_seed_gives_other_rows():
    assert (
        generate(Scenario(rows=5_000, seed=3))[2]["content_hash"]
        != generate(Scenario(rows=5_000, seed=4))[2]["content_hash"]
    )


def test_ground_truth_file_is_written_beside_the_store(demo):
    store, truth = demo
    on_disk = json.loads((store.path.parent / "demo" / "ground_truth.json").read_text())
    assert on_disk == json.loads(json.dumps(truth))
    assert on_disk["sudden_drift"] == {"features": ["amount", "latency_ms"], "day": 60, "date": "2026-03-02"}
    assert on_disk["ab_test"]["true_lift_abs"] == 0.03
    assert len(on_disk["features"]["numeric"]) >= 8 and len(on_disk["features"]["categorical"]) >= 3
    assert len(on_disk["features"]["sensitive"]) == 2


def test_every_generated_row_lands_in_the_store(demo):
    store, truth = demo
    with store.connect() as con:
        n_pred = con.execute("SELECT count(*) FROM predictions").fetchone()[0]
        n_fb = con.execute("SELECT count(*) FROM feedback").fetchone()[0]
        n_q = con.execute("SELECT count(*) FROM quarantine").fetchone()[0]
    assert (n_pred, n_fb, n_q) == (60_000, truth["feedback_rows"], 0)


def _scalar(store, sql):
    with store.connect() as con:
        return con.execute(sql).fetchone()


def test_sudden_drift_moves_amount_from_its_day(demo):
    store, truth = demo
    day = truth["sudden_drift"]["date"]
    before, after = _scalar(
        store,
        f"SELECT median(amount) FILTER (ts < '{day}'), median(amount) FILTER (ts >= '{day}') FROM predictions",
    )
    assert after / before == pytest.approx(1.6, rel=0.05)


def test_new_category_appears_only_after_its_day(demo):
    store, truth = demo
    day = truth["new_category"]["day"]
    first = _scalar(store, "SELECT min(ts) FROM predictions WHERE device = 'smartwatch'")[0]
    assert (first.date() - np.datetime64("2026-01-01").astype(object)).days == day


def test_biased_group_has_a_higher_false_positive_rate(demo):
    store, _ = demo
    with store.connect() as con:
        rows = con.execute(
            """
            SELECT p.region, avg(p.prediction) AS fpr
            FROM predictions p JOIN feedback f USING (trace_id)
            WHERE f.type = 'outcome' AND f.label = 0 GROUP BY 1 ORDER BY 2 DESC
            """
        ).fetchall()
    fpr = dict(rows)
    assert rows[0][0] == "south"
    assert fpr["south"] - max(v for k, v in fpr.items() if k != "south") > 0.08


def test_concept_drift_lowers_accuracy_after_its_day(demo):
    _, truth = demo
    assert truth["concept_drift"]["accuracy_before"] - truth["concept_drift"]["accuracy_after"] > 0.15


def test_challenger_thumbs_up_rate_is_higher_by_about_the_true_lift(demo):
    store, truth = demo
    champion, challenger = _scalar(
        store,
        """
        SELECT avg(value) FILTER (arm = 'champion'), avg(value) FILTER (arm = 'challenger')
        FROM feedback JOIN predictions USING (trace_id) WHERE type = 'thumb'
        """,
    )
    assert champion == pytest.approx(truth["ab_test"]["control_rate"], abs=0.05)
    assert challenger - champion == pytest.approx(truth["ab_test"]["true_lift_abs"], abs=0.06)


def test_label_delay_means_recent_predictions_are_less_labelled(demo):
    store, _ = demo
    early, late = _scalar(
        store,
        """
        WITH labelled AS (SELECT DISTINCT trace_id FROM feedback WHERE label IS NOT NULL)
        SELECT avg((l.trace_id IS NOT NULL)::INT) FILTER (p.ts < '2026-03-01'),
               avg((l.trace_id IS NOT NULL)::INT) FILTER (p.ts >= '2026-03-30')
        FROM predictions p LEFT JOIN labelled l USING (trace_id)
        """,
    )
    assert early > 0.3 and late < early - 0.1


def test_demo_refuses_to_overwrite_a_store_that_is_not_a_demo(store, tmp_path):
    from tests.conftest import PREDICTIONS_HEADER, write
    from workbench.ingest.pipeline import ingest_file

    ingest_file(store, write(tmp_path / "p.csv", f"{PREDICTIONS_HEADER}\na,2026-01-01,v1,1,0.5,1,DE,x\n"))
    with pytest.raises(InputError, match="is not a demo store"):
        build_demo(store, Scenario(rows=1_000))


def expected_stars(mu: float) -> float:
    """E[clip(round(N(mu, 1)), 1, 5)] by hand: P(k) = Φ(k + ½ − mu) − Φ(k − ½ − mu), the ends open."""
    from scipy.stats import norm

    edges = np.array([-np.inf, 1.5, 2.5, 3.5, 4.5, np.inf])
    return float(np.sum(np.arange(1, 6) * np.diff(norm.cdf(edges - mu))))


def test_star_ratings_are_better_when_the_prediction_was_right(demo):
    store, _ = demo
    with store.connect() as con:
        rows = con.execute(
            """
            SELECT p.prediction = o.label AS right, avg(f.value), var_samp(f.value) / count(*), min(f.value),
                   max(f.value)
            FROM feedback f JOIN predictions p USING (trace_id)
            JOIN (SELECT trace_id, any_value(label) AS label FROM feedback WHERE type = 'outcome' GROUP BY 1) o
              USING (trace_id)
            WHERE f.type = 'rating' GROUP BY 1 ORDER BY 1
            """
        ).fetchall()
        share = con.execute(
            "SELECT count(*) FILTER (type = 'rating') / (SELECT count(*) FROM predictions) FROM feedback"
        ).fetchone()[0]
    (_, wrong, var_wrong, low, _), (_, right, var_right, _, high) = rows
    gap, se = right - wrong, (var_right + var_wrong) ** 0.5
    assert (low, high) == (1, 5)
    assert abs(gap - (expected_stars(4.0) - expected_stars(3.0))) < 4 * se
    assert share == pytest.approx(0.03, abs=0.003)


def test_a_build_of_several_chunks_made_ahead_by_a_thread_lands_every_chunk_in_order(tmp_path, monkeypatch):
    """Chunks are generated one ahead of the ingest (a thread) and each chunk's two tables are one transaction:
    the store holds generate()'s rows, the truth its content hash, and the ingests name the chunks in order."""
    import workbench.demo.scenario as scenario

    monkeypatch.setattr(scenario, "CHUNK_ROWS", 4_000)
    sc = Scenario(rows=10_000)
    chunks = [(p.column("trace_id").to_pylist(), f.num_rows) for p, f, _ in scenario.generate_chunks(sc)]
    store = Store(tmp_path / "demo.duckdb")
    truth = build_demo(store, sc)
    assert truth["content_hash"] == generate(sc)[2]["content_hash"]
    with store.connect() as con:
        sources = [r[0] for r in con.execute("SELECT source FROM ingests ORDER BY ingest_id").fetchall()]
        by_ingest = con.execute(
            "SELECT i.source, list(p.trace_id ORDER BY p.trace_id), "
            "(SELECT count(*) FROM feedback f WHERE f.ingest_id = i.ingest_id + 1) "
            "FROM predictions p JOIN ingests i USING (ingest_id) GROUP BY ALL ORDER BY i.source"
        ).fetchall()
    assert sources == [f"demo:{c}:{t}" for c in range(3) for t in ("predictions", "feedback")]
    assert [(traces, n) for _, traces, n in by_ingest] == [(sorted(t), n) for t, n in chunks]
    assert len(chunks) == 3 and sum(n for _, n in chunks) == truth["feedback_rows"]


def test_the_chunk_made_ahead_keeps_the_order_and_raises_the_makers_error_in_the_caller():
    from workbench.demo.scenario import _ahead

    def made():
        yield from range(3)
        raise RuntimeError("generation failed")

    seen = []
    with pytest.raises(RuntimeError, match="generation failed"):
        for item in _ahead(made()):
            seen.append(item)
    assert seen == [0, 1, 2]
    assert list(_ahead(iter(range(50)))) == list(range(50))
