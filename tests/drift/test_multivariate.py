"""Multivariate drift that explains itself: PCA reconstruction error against scikit-learn, per chunk in the engine,
its exact split into features and pairs, a correlation break that only it sees, and the demo's injected drift."""

from __future__ import annotations

import datetime as dt
import html
import json
import sys

import duckdb
import ibis
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.decomposition import PCA
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from typer.testing import CliRunner

from tests.helpers.demo_stores import copy_demo
from workbench.cli import app, main
from workbench.core.errors import InputError
from workbench.core.schema import Roles, TableRoles
from workbench.core.window import Window
from workbench.demo.scenario import Scenario
from workbench.drift import reconstruction
from workbench.drift.engine import load_settings
from workbench.drift.reconstruction import (
    chunk_errors,
    density_edges,
    pair_density,
    reconstruction_caption,
    with_reconstruction,
)
from workbench.drift.request import DriftRequest
from workbench.drift.run import run
from workbench.ingest.pipeline import ingest_frames
from workbench.sources.base import StoreSource
from workbench.sources.store import Store
from workbench.stats.reconstruction import SecondMoments, contributions, fit_reconstruction, mean_squared_error

START = pd.Timestamp("2026-01-01", tz="UTC")


def _correlated(rng: np.random.Generator, n: int, rho: float, missing: float = 0.0) -> np.ndarray:
    a = rng.normal(0, 1, n)
    b = rho * a + np.sqrt(1 - rho**2) * rng.normal(0, 1, n)
    x = np.column_stack([a * 3 + 10, b, rng.lognormal(0, 0.5, n), rng.normal(0, 2, n) + 0.5 * a])
    x[rng.random(x.shape) < missing] = np.nan
    return x


def _sklearn_errors(reference: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, int]:
    """NannyML's pipeline in scikit-learn: mean imputation, StandardScaler, PCA(0.65), Euclidean distance."""
    prep = make_pipeline(SimpleImputer(strategy="mean"), StandardScaler()).fit(reference)
    pca = PCA(n_components=0.65, svd_solver="full").fit(prep.transform(reference))
    z = prep.transform(rows)
    return np.sqrt(((z - pca.inverse_transform(pca.transform(z))) ** 2).sum(axis=1)), int(pca.n_components_)


NAMES = ["a", "b", "c", "d"]


@pytest.mark.parametrize("missing", [0.0, 0.05])
def test_reconstruction_errors_equal_scikit_learns_pipeline(missing):
    rng = np.random.default_rng(3)
    reference, current = _correlated(rng, 3000, 0.8, missing), _correlated(rng, 1000, 0.0, missing)
    model = fit_reconstruction(reference, NAMES)
    for rows in (reference, current):
        expected, k = _sklearn_errors(reference, rows)
        assert model.n_components == k
        assert np.max(np.abs(model.errors(rows) - expected)) < 1e-9


@given(seed=st.integers(0, 10_000), rho=st.floats(-0.95, 0.95), share=st.floats(0.3, 0.95))
@settings(max_examples=40, deadline=None)
def test_the_parts_add_up_to_the_change_and_row_order_does_not_matter(seed, rho, share):
    rng = np.random.default_rng(seed)
    reference, current = _correlated(rng, 400, rho, 0.02), _correlated(rng, 300, 0.0, 0.02)
    model = fit_reconstruction(reference, NAMES, variance_share=share)
    ref_m, cur_m = (SecondMoments.of(model.centred(x)) for x in (reference, current))
    direct = np.mean(model.errors(current) ** 2) - np.mean(model.errors(reference) ** 2)
    assert mean_squared_error(model, cur_m) - mean_squared_error(model, ref_m) == pytest.approx(direct, abs=1e-9)
    features, pairs = contributions(model, ref_m, cur_m)
    total = sum(f["contribution"] for f in features) + sum(p["contribution"] for p in pairs)
    assert total == pytest.approx(direct, abs=1e-9)
    assert len(pairs) == 6 and 1 <= model.n_components <= 4
    shuffled = fit_reconstruction(reference[rng.permutation(len(reference))], NAMES, variance_share=share)
    assert np.allclose(shuffled.errors(current), model.errors(current), atol=1e-9)
    assert (model.errors(current) >= 0).all()


def test_a_constant_feature_or_too_few_rows_is_a_one_line_error():
    x = np.column_stack([np.arange(10.0), np.ones(10)])
    with pytest.raises(InputError, match="'b' is constant"):
        fit_reconstruction(x, ["a", "b"])
    with pytest.raises(InputError, match="at least 2"):
        fit_reconstruction(x[:1], ["a", "b"])


def _frame(x: np.ndarray, days: int, start_day: int = 0) -> pd.DataFrame:
    n = len(x)
    offsets = pd.to_timedelta(np.sort(np.random.default_rng(n).integers(0, days * 86_400, n)), unit="s")
    return pd.DataFrame(
        {"trace_id": [f"t{start_day}-{i}" for i in range(n)], "ts": START + pd.Timedelta(days=start_day) + offsets,
         **{name: x[:, j] for j, name in enumerate(NAMES)}}
    )  # fmt: skip


def _naive(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with UTC wall-clock times (an in-memory table from tz-aware pandas warns in pandas 3)."""
    return frame.assign(ts=frame["ts"].dt.tz_localize(None))


def test_the_engine_computes_each_chunk_as_scikit_learn_on_the_rows():
    rng = np.random.default_rng(5)
    reference, current = _correlated(rng, 2000, 0.9, 0.03), _correlated(rng, 1500, 0.2, 0.03)
    model = fit_reconstruction(reference, NAMES)
    frame = _frame(current, 6)
    table = ibis.duckdb.connect().create_table("rows", _naive(frame))
    for chunk in ("day", 400):
        chunks, moments = chunk_errors(table, model, chunk)
        errors, _ = _sklearn_errors(reference, current)
        key = frame["ts"].dt.strftime("%Y-%m-%d") if chunk == "day" else pd.Series(np.arange(len(frame)) // 400)
        expected = pd.Series(errors).groupby(key.to_numpy()).mean().to_numpy()
        assert np.max(np.abs(chunks["error"].to_numpy() - expected)) < 1e-9
        assert chunks["rows"].sum() == len(frame)
    direct = SecondMoments.of(model.centred(current))
    assert moments.n == direct.n and np.allclose(moments.products, direct.products, atol=1e-8)


def test_the_pair_density_counts_the_rows_in_the_reference_quantile_bins():
    rng = np.random.default_rng(9)
    reference, current = _correlated(rng, 1000, 0.9, 0.05), _correlated(rng, 800, 0.0, 0.05)
    con = ibis.duckdb.connect()
    ref_t, cur_t = (con.create_table(name, _naive(_frame(x, 3))) for name, x in (("r", reference), ("c", current)))
    sample = pd.DataFrame(reference, columns=NAMES)
    density = pair_density(ref_t, cur_t, ["a", "b"], [density_edges(sample[name].to_numpy()) for name in ("a", "b")])
    both = current[~np.isnan(current[:, :2]).any(axis=1)]
    grid = np.zeros((len(density["edges_y"]) + 1, len(density["edges_x"]) + 1))
    ix = np.searchsorted(density["edges_x"], both[:, 0], side="right")
    iy = np.searchsorted(density["edges_y"], both[:, 1], side="right")
    np.add.at(grid, (iy, ix), 1)
    assert np.allclose(density["current"], grid / len(both), atol=1e-12)
    assert np.sum(density["reference"]) == pytest.approx(1) and np.sum(density["difference"]) == pytest.approx(0)
    # the broken correlation empties the diagonal: the corners where a and b agree lose the most
    assert density["difference"][0][0] < -0.05 and density["difference"][-1][-1] < -0.05


@pytest.fixture(scope="module")
def correlation_break(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """30 days where a and b move together (ρ = 0.9), then 10 days where they do not: every marginal is N(0, 1)."""
    rng = np.random.default_rng(11)
    parts = []
    for rho, days, start, n in ((0.9, 30, 0, 6000), (0.0, 10, 30, 2500)):
        a = rng.normal(0, 1, n)
        b = rho * a + np.sqrt(1 - rho**2) * rng.normal(0, 1, n)
        frame = _frame(np.column_stack([a, b, rng.normal(0, 1, n), rng.normal(0, 1, n)]), days, start)
        parts.append(frame.assign(model_version="v1", prediction=(a > 0).astype("int8"), score=1 / (1 + np.exp(-a))))
    store = Store(tmp_path_factory.mktemp("pca") / "break.duckdb")
    ingest_frames(store, [(pd.concat(parts, ignore_index=True), "predictions")],
                  Roles(predictions=TableRoles(features=NAMES)), source="test")  # fmt: skip
    return store


def test_a_correlation_break_is_caught_by_pca_and_missed_by_every_univariate_test(correlation_break):
    cut = (START + pd.Timedelta(days=30)).to_pydatetime()
    request = DriftRequest(Window(end=cut), Window(start=cut))
    result = run(StoreSource(correlation_break), request)
    assert result.drifted == [] and result.verdict == "no drift"  # PSI, KS: nothing moved feature by feature
    rc = result.reconstruction
    assert rc["alarm"] is True and rc["n_alerts"] == rc["n_current_chunks"] == 10
    assert rc["verdict"] == "drift" and result.reconstruction["verdict_text"].startswith("multivariate drift: yes")
    top = rc["pair_contributions"][0]
    assert top["features"] == ["a", "b"] and top["correlation_reference"] == pytest.approx(0.9, abs=0.02)
    assert abs(top["correlation_current"]) < 0.05
    assert "most comes from the pair a × b" in rc["explanation"] and "correlation went from 0.90" in rc["explanation"]
    assert rc["top_pair"]["features"] == ["a", "b"] and rc["sample_rows"] == 5000 == rc["sample_limit"]
    reference_chunks = [c for c in rc["chunks"] if c["period"] == "reference"]
    assert len(reference_chunks) == 30 and not any(c["alert"] for c in reference_chunks)


def test_one_numeric_feature_gives_a_warning_and_no_alarm(correlation_break):
    cut = (START + pd.Timedelta(days=30)).to_pydatetime()
    result = run(StoreSource(correlation_break), DriftRequest(Window(end=cut), Window(start=cut), features=("a",)))
    rc = result.reconstruction
    assert rc["alarm"] is None and "at least two numeric features" in rc["warning"]
    assert rc["verdict"] in ("no drift", "drift") and rc["chunks"] == []  # the classifier still judges
    assert any("PCA reconstruction: " in r for r in rc["reasons"])


def test_a_bad_chunk_is_refused_when_the_request_is_made():
    with pytest.raises(InputError, match="at least 100 rows"):
        DriftRequest(Window(), Window(), chunk="50")
    assert DriftRequest(Window(), Window(), over_time="week").chunk_spec == "week"
    assert DriftRequest(Window(), Window(), chunk="500").chunk_spec == 500


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, dict]:
    target = tmp_path_factory.mktemp("pca_demo") / "workbench.duckdb"
    return copy_demo(tmp_path_factory, Scenario(rows=20_000, days=90), target)


def test_the_demo_alarms_from_the_sudden_drift_and_never_before(demo_store):
    store, truth = demo_store
    start = dt.datetime.fromisoformat(truth["start"]).replace(tzinfo=dt.UTC)
    sudden = start + dt.timedelta(days=truth["sudden_drift"]["day"])
    cut = start + dt.timedelta(days=30)
    request = DriftRequest(Window(end=cut), Window(start=cut), multivariate=False)  # the PCA alone decides below
    rc = with_reconstruction(store, request, run(StoreSource(store), request), load_settings()).reconstruction
    chunks = pd.DataFrame(rc["chunks"]).assign(chunk=lambda c: pd.to_datetime(c["chunk"], utc=True))
    before, after = chunks[chunks["chunk"] < sudden], chunks[chunks["chunk"] >= sudden]
    assert len(before) == 60 and not before["alert"].any()  # the reference's 30 days and the gradual drift's 30
    assert after["alert"].mean() >= 0.9  # the sudden drift (amount ×1.6, latency ×1.5) leaves the band
    assert pd.Timestamp(rc["first_alert"]) - sudden <= pd.Timedelta(days=2)
    assert rc["n_components"] == 6 and rc["explained_variance"] > 0.65
    drifted = {f["feature"] for f in rc["feature_contributions"][:2]}
    assert drifted == {"latency_ms", "amount"}  # the injected sudden drift carries the rise
    assert rc["pair_contributions"][0]["features"] == ["amount", "latency_ms"]
    assert rc["verdict"] == "drift" and rc["verdict_text"].startswith(
        "multivariate drift: yes — the PCA reconstruction"
    )


def test_the_cli_text_json_and_html_report_say_the_same_multivariate_verdict(
    correlation_break, tmp_path, monkeypatch, capsys
):
    report = tmp_path / "drift.html"
    args = ["drift", "--db", str(correlation_break.path), "--reference", "2026-01-01..2026-01-30",
            "--current", "2026-01-31..", "--chunk", "week"]  # fmt: skip
    as_json = CliRunner().invoke(app, [*args, "--json", "--html", str(report), "--html-cdn"])
    assert as_json.exit_code == 0, as_json.output
    rc = json.loads(as_json.stdout)["reconstruction"]
    assert rc["chunk"] == "week" and rc["verdict"] == "drift" and rc["alarm"] is True
    assert {"threshold", "chunks", "pair_contributions", "feature_contributions", "top_pair", "sample_rows",
            "n_components", "explanation", "reasons"} <= set(rc)  # fmt: skip
    assert rc["verdict_text"] in html.unescape(report.read_text(encoding="utf-8"))
    text = CliRunner().invoke(app, args)
    assert rc["verdict_text"] in text.stdout and "PCA reconstruction error outside" in text.stdout
    assert "the band rests on 5 reference chunks: rough below 10" in text.stdout  # 30 days: 5 weeks, 2 partial
    monkeypatch.setattr(sys, "argv", ["workbench", *args[:-1], "day-ish"])
    with pytest.raises(SystemExit) as bad:
        main()  # the console entry: a bad chunk is one line on stderr and exit code 2
    assert (
        bad.value.code == 2
        and capsys.readouterr().err == "error: chunk must be day, week or a number of rows, not 'day-ish'\n"
    )


def test_a_constant_feature_is_left_out_and_named(tmp_path):
    rng = np.random.default_rng(2)
    x = np.column_stack([_correlated(rng, 4000, 0.8)[:, :3], np.full(4000, 4.0)])
    frame = _frame(x, 40).assign(model_version="v1", prediction=1, score=0.7)
    store = Store(tmp_path / "constant.duckdb")
    ingest_frames(store, [(frame, "predictions")], Roles(predictions=TableRoles(features=NAMES)), source="test")
    cut = (START + pd.Timedelta(days=30)).to_pydatetime()
    rc = run(StoreSource(store), DriftRequest(Window(end=cut), Window(start=cut))).reconstruction
    assert rc["left_out"] == ["d"] and rc["features"] == ["a", "b", "c"] and isinstance(rc["alarm"], bool)
    assert rc["n_reference_chunks"] == 30 and rc["fit_share"] == 1.0  # 3,000 reference rows: all in the sample
    caption = reconstruction_caption(rc)
    assert "Left out (constant or empty): d." in caption and "The fit used 100% of the reference's rows" in caption


def test_a_reference_of_one_chunk_draws_no_band_and_says_so(correlation_break):
    day, cut = (START + pd.Timedelta(days=n) for n in (1, 30))
    result = run(StoreSource(correlation_break), DriftRequest(Window(end=day), Window(start=cut)))
    rc = result.reconstruction
    assert rc["alarm"] is None and rc["threshold"]["upper"] is None and not any(c["alert"] for c in rc["chunks"])
    assert rc["warning"] == "the reference has 1 chunk(s) of day with 30+ rows; a band needs 2"
    assert rc["verdict"] == ("drift" if result.multivariate["drift"] else "no drift")  # the classifier still judges


def test_a_database_error_in_the_reconstruction_stays_in_its_section(correlation_break, monkeypatch):
    def broken(*_: object) -> None:
        raise duckdb.ConversionException("Conversion Error: could not convert 'x' to DOUBLE\nLINE 1: ...")

    monkeypatch.setattr(reconstruction, "chunk_errors", broken)
    cut = (START + pd.Timedelta(days=30)).to_pydatetime()
    result = run(StoreSource(correlation_break), DriftRequest(Window(end=cut), Window(start=cut)))
    assert result.reconstruction["warning"] == "database: Conversion Error: could not convert 'x' to DOUBLE"
    assert result.reconstruction["alarm"] is None and len(result.features) == 4  # the rest of the run shows


def test_a_new_window_reuses_the_reference_part_and_new_reference_rows_make_a_new_one(
    correlation_break, tmp_path, monkeypatch
):
    """The reference's fit, chunk errors and moments are kept in the store: a new current window scores only its own
    rows and gives the section a run without the kept part gives, to the bit; rows added to the reference window
    (a new ingest there) make the part computed again."""
    import shutil

    store = Store(tmp_path / "copy.duckdb")
    shutil.copy(correlation_break.path, store.path)
    forget = "DELETE FROM drift_profiles WHERE profile LIKE '%pca_reconstruction%'"
    with store.connect(read_only=False) as con:
        con.execute(forget)  # kept by the module's earlier runs on the same reference
    scored: list[int] = []
    real = reconstruction.chunk_errors

    def counted(table, model, chunk):  # how many rows each chunk_errors call scores
        scored.append(int(table.count().execute()))
        return real(table, model, chunk)

    def rows(start: pd.Timestamp | None, end: pd.Timestamp | None) -> int:
        with store.connect() as con:
            return con.execute(
                "SELECT count(*) FROM predictions WHERE ts >= coalesce(?, '-infinity'::TIMESTAMPTZ) "
                "AND ts < coalesce(?, 'infinity'::TIMESTAMPTZ)",
                [start, end],
            ).fetchone()[0]

    monkeypatch.setattr(reconstruction, "chunk_errors", counted)
    cut = START + pd.Timedelta(days=30)
    two, five = cut + pd.Timedelta(days=2), cut + pd.Timedelta(days=5)
    request = DriftRequest(Window(end=cut.to_pydatetime()), Window(start=two.to_pydatetime()))
    first = run(StoreSource(store), request).reconstruction
    assert scored == [6000, rows(two, None)] == [rows(None, cut), rows(two, None)]
    other = DriftRequest(Window(end=cut.to_pydatetime()), Window(start=five.to_pydatetime()))
    kept = run(StoreSource(store), other).reconstruction
    assert scored[2:] == [rows(five, None)]  # only the new current window: the reference's part came from the store
    with store.connect(read_only=False) as con:  # the same run with nothing kept
        con.execute(forget)
    fresh = run(StoreSource(store), other).reconstruction
    assert scored[3:] == [6000, rows(five, None)]
    assert json.dumps(kept, sort_keys=True) == json.dumps(fresh, sort_keys=True)
    assert kept["chunks"][:30] == first["chunks"][:30]  # the reference's chunks, whatever the current window
    extra = _frame(np.random.default_rng(3).normal(0, 1, (60, 4)), 1, 3)  # 60 more rows on reference day 3
    extra = extra.assign(model_version="v1", prediction=np.int8(1), score=0.5)
    ingest_frames(store, [(extra, "predictions")], Roles(predictions=TableRoles(features=NAMES)), source="more")
    run(StoreSource(store), other)
    assert scored[5:] == [6060, rows(five, None)]
