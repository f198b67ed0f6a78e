"""`workbench drift`: the JSON contract (keys, exit codes, one-line errors), files and store windows, HTML."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from tests.conftest import ROOT
from tests.helpers.demo_stores import copy_demo
from workbench.core.errors import InputError
from workbench.core.window import parse_window
from workbench.demo.scenario import Scenario
from workbench.sources.evidence import latest_runs

FEATURE_KEYS = {"name", "type", "test", "statistic", "p_value", "p_adjusted", "threshold", "drift", "psi",
                "js_distance", "wasserstein", "ks_statistic", "ks_p_value", "n_reference", "n_current"}  # fmt: skip


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "workbench.cli", "drift", *args], cwd=ROOT, capture_output=True, text=True
    )


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    target = tmp_path_factory.mktemp("drift-cli") / "workbench.duckdb"
    return copy_demo(tmp_path_factory, Scenario(rows=20_000, days=30), target)[0]


def test_two_files_give_the_contract_json_and_an_html_report(tmp_path):
    rng = np.random.default_rng(0)
    pd.DataFrame({"x": rng.normal(0, 1, 3000), "c": rng.choice(["a", "b"], 3000)}).to_csv(
        tmp_path / "r.csv", index=False
    )
    pd.DataFrame({"x": rng.normal(1, 1, 3000), "c": rng.choice(["a", "b", "z"], 3000)}).to_parquet(
        tmp_path / "c.parquet"
    )
    html = tmp_path / "report.html"
    out = run("--reference-file", str(tmp_path / "r.csv"), "--current-file", str(tmp_path / "c.parquet"),
              "--html", str(html), "--json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    document = json.loads(out.stdout)
    assert all(set(f) >= FEATURE_KEYS for f in document["features"])
    assert {"n_features", "n_drifted", "share_drifted", "dataset_drift"} <= set(document["summary"])
    assert document["summary"]["n_drifted"] == 2 and document["summary"]["dataset_drift"] is True
    (cat,) = [f for f in document["features"] if f["name"] == "c"]
    assert cat["unseen_categories"] == ["z"] and cat["test"] == "chi2"
    text = html.read_text()
    assert "Drift report" in text and document["verdict_text"] in text
    # self-contained by default (issue 18): plotly.js inline, no script fetched from a CDN
    assert not re.findall(r"<script[^>]*\bsrc=", text) and len(text) > 3_000_000
    small = tmp_path / "small.html"
    cdn = run("--reference-file", str(tmp_path / "r.csv"), "--current-file", str(tmp_path / "c.parquet"),
              "--html", str(small), "--html-cdn", "--no-multivariate")  # fmt: skip
    assert cdn.returncode == 0, cdn.stderr
    assert re.findall(r"<script[^>]*\bsrc=\"https://cdn\.plot\.ly/", small.read_text())  # --html-cdn: the CDN
    assert len(small.read_text()) < 1_500_000


def test_html_offline_is_kept_for_old_scripts_and_embeds_plotly(tmp_path):
    rng = np.random.default_rng(1)
    for name, shift in (("r", 0.0), ("c", 0.5)):
        pd.DataFrame({"x": rng.normal(shift, 1, 2000)}).to_csv(tmp_path / f"{name}.csv", index=False)
    html = tmp_path / "report.html"
    out = run("--reference-file", str(tmp_path / "r.csv"), "--current-file", str(tmp_path / "c.csv"),
              "--html", str(html), "--html-offline", "--no-multivariate")  # fmt: skip
    assert out.returncode == 0, out.stderr
    text = html.read_text()
    assert not re.findall(r"<script[^>]*\bsrc=", text)  # no script fetched from anywhere
    assert text.count("Plotly.newPlot") >= 2 and len(text) > 3_000_000  # plotly.js itself is inline
    files = ("--reference-file", str(tmp_path / "r.csv"), "--current-file", str(tmp_path / "c.csv"))
    alone = run(*files, "--html-offline")
    assert alone.returncode == 2 and "--html-offline needs --html" in alone.stderr
    assert "Traceback" not in alone.stderr


def test_store_windows_record_the_run_and_print_the_verdict(small_store):
    out = run("--db", str(small_store.path), "--reference", "first:10d", "--current", "last:7d", "--no-multivariate")
    assert out.returncode == 0, out.stderr
    assert "features drifted since Jan 24" in out.stdout and out.stdout.startswith("dataset drift: ")
    run_ = latest_runs(small_store)["drift"]
    # the recorded verdict is the dataset's (issue 18), the word the page and the JSON show
    assert run_ is not None and run_.verdict == ("drift" if run_.summary["dataset_drift"] else "no drift")
    assert out.stdout.startswith(f"dataset drift: {'yes' if run_.summary['dataset_drift'] else 'no'} — ")
    assert {"verdict_text", "n_features", "n_drifted", "share_drifted", "dataset_drift", "drifted", "reference",
            "current"} <= set(run_.summary)  # fmt: skip


def test_exit_code_flag_turns_dataset_drift_into_exit_1(small_store):
    out = run("--db", str(small_store.path), "--reference", "..2026-01-10", "--current", "2026-01-24..",
              "--features", "amount,tenure_days", "--no-multivariate", "--exit-code")  # fmt: skip
    assert out.returncode == 1, out.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--reference", "yesterday..", "--current", "last:7d"], "not a date"),
        (["--reference", "first:30d"], None),
        (["--reference-file", "nope.csv"], "give both"),
        (["--reference", "first:10d", "--current", "last:7d", "--features", "nope"], "unknown feature"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(small_store, args, message):
    out = run("--db", str(small_store.path), *args)
    if message is None:  # a reference alone is fine: the current window is then all data
        assert out.returncode == 0, out.stderr
        return
    assert out.returncode == 2
    assert message in out.stderr and len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_window_text_forms():
    import datetime as dt

    bounds = (dt.datetime(2026, 1, 1, 8, tzinfo=dt.UTC), dt.datetime(2026, 3, 31, 20, tzinfo=dt.UTC))
    w = parse_window("2026-01-01..2026-01-31")
    assert w.start == dt.datetime(2026, 1, 1, tzinfo=dt.UTC) and w.end == dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
    assert parse_window("first:30d", None, bounds).end == dt.datetime(2026, 1, 31, tzinfo=dt.UTC)
    assert parse_window("last:7d", ["v2"], bounds).start == dt.datetime(2026, 3, 25, tzinfo=dt.UTC)
    assert parse_window("all").start is None
    with pytest.raises(InputError):
        parse_window("2026-02-01..2026-01-01")


def test_a_reference_file_against_a_store_window_matches_the_same_rows_as_a_store_window(small_store, tmp_path):
    import duckdb

    training = tmp_path / "training.parquet"
    with duckdb.connect(str(small_store.path), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(
            f"COPY (SELECT * EXCLUDE (ingest_id) FROM predictions WHERE ts < TIMESTAMPTZ '2026-01-11 00:00:00+00') "
            f"TO '{training}' (FORMAT parquet)"
        )
    common = ("--current", "2026-01-24..", "--no-multivariate", "--json")
    from_file = run("--db", str(small_store.path), "--reference-file", str(training), *common)
    assert latest_runs(small_store)["drift"].summary["reference"] == "training.parquet"
    from_store = run("--db", str(small_store.path), "--reference", "..2026-01-10", *common)
    assert from_file.returncode == 0, from_file.stderr
    file_doc, store_doc = json.loads(from_file.stdout), json.loads(from_store.stdout)
    assert file_doc["reference"]["label"] == "training.parquet"
    assert file_doc["reference"]["rows"] == store_doc["reference"]["rows"]
    by_name = {f["name"]: f for f in store_doc["features"]}
    assert {f["name"] for f in file_doc["features"]} == set(by_name)  # the store's features, not its roles
    for f in file_doc["features"]:
        g = by_name[f["name"]]
        assert f["type"] == g["type"] and f["drift"] == g["drift"]
        for key in ("psi", "js_distance", "statistic", "p_value", "n_reference", "n_current"):
            assert f[key] == pytest.approx(g[key], rel=1e-9, abs=1e-12), (f["name"], key)


def test_a_reference_file_without_store_features_is_one_line(small_store, tmp_path):
    pd.DataFrame({"other": [1.0, 2.0, 3.0]}).to_csv(tmp_path / "t.csv", index=False)
    out = run("--db", str(small_store.path), "--reference-file", str(tmp_path / "t.csv"), "--current", "last:7d")
    assert out.returncode == 2 and "none of the store's features" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_a_store_feature_missing_from_the_reference_file_is_named(small_store, tmp_path):
    import datetime as dt

    import duckdb

    from workbench.core.window import Window
    from workbench.drift.files import compare_file_to_window
    from workbench.drift.request import DriftRequest
    from workbench.drift.store import store_features

    with small_store.ibis() as con:
        numeric, _ = store_features(con)
    dropped = numeric[0]
    training = tmp_path / "training.parquet"
    with duckdb.connect(str(small_store.path), read_only=True) as con:
        con.execute(f"COPY (SELECT * EXCLUDE (ingest_id, {dropped}) FROM predictions LIMIT 5000) TO '{training}'")
    current = Window(start=dt.datetime(2026, 1, 24, tzinfo=dt.UTC))
    result = compare_file_to_window(small_store, DriftRequest(training, current, multivariate=False))
    assert dropped not in [f.name for f in result.features]
    assert f"store features not in training.parquet, not compared: {dropped}" in result.warnings
