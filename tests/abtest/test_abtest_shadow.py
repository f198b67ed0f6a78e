"""Shadow mode from a file of scored pairs: counts in the engine, agreement and McNemar as statsmodels."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.contingency_tables import mcnemar

from tests.conftest import ROOT
from workbench.abtest.shadow import analyse_shadow_file, shadow_counts
from workbench.core.errors import InputError


@pytest.fixture()
def pairs(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 3000)
    champion = np.where(rng.random(3000) < 0.80, y, 1 - y)
    challenger = np.where(rng.random(3000) < 0.84, y, 1 - y)
    label = pd.array(np.where(rng.random(3000) < 0.7, y, -1), dtype="Int64")
    label[label == -1] = pd.NA
    frame = pd.DataFrame({"v1": champion, "v2": challenger, "label": label})
    path = tmp_path / "pairs.csv"
    frame.to_csv(path, index=False)
    return path, frame


def test_counts_and_mcnemar_match_pandas_and_statsmodels(pairs: tuple[Path, pd.DataFrame]) -> None:
    path, frame = pairs
    counts = shadow_counts(path, "v1", "v2", "label")
    lab = frame.dropna(subset=["label"])
    a_right, b_right = lab.v1 == lab.label, lab.v2 == lab.label
    assert counts.n == 3000 and counts.agree == int((frame.v1 == frame.v2).sum())
    assert counts.labelled == len(lab)
    assert counts.champion_only_right == int((a_right & ~b_right).sum())
    assert counts.challenger_only_right == int((~a_right & b_right).sum())
    table = [[counts.both_right, counts.champion_only_right], [counts.challenger_only_right, counts.both_wrong]]
    result = analyse_shadow_file(path, "v1", "v2", "label")
    assert result.mcnemar_p_value == pytest.approx(mcnemar(table, exact=True).pvalue, abs=1e-12)
    assert result.mcnemar_chi2_p_value == pytest.approx(mcnemar(table, exact=False, correction=True).pvalue, abs=1e-12)
    assert result.challenger_accuracy == pytest.approx(b_right.mean(), abs=1e-12)
    assert result.verdict == "better"


def test_a_label_read_as_float_matches_integer_predictions(tmp_path: Path) -> None:
    """Parquet with a float label (1.0, NaN) beside integer predictions: compared as numbers, not as "1.0" vs "1"."""
    frame = pd.DataFrame({"v1": [1, 0, 1, 1, 0, 1], "v2": [1, 1, 0, 1, 0, 0], "y": [1.0, 1.0, 1.0, np.nan, 0.0, 0.0]})
    path = tmp_path / "pairs.parquet"
    frame.to_parquet(path)
    counts = shadow_counts(path, "v1", "v2", "y")
    assert (counts.n, counts.agree, counts.labelled) == (6, 3, 5)
    # rows with a label: (1,1|1) both right, (0,1|1) challenger only, (1,0|1) champion only, (0,0|0) both right,
    # (1,0|0) challenger only
    assert (counts.both_right, counts.champion_only_right, counts.challenger_only_right, counts.both_wrong) == (
        2, 1, 2, 0,
    )  # fmt: skip
    text = pd.DataFrame({"a": ["spam", "ham", "spam"], "b": ["spam", "spam", "ham"], "y": ["spam", "spam", "spam"]})
    text.to_csv(tmp_path / "text.csv", index=False)
    counts = shadow_counts(tmp_path / "text.csv", "a", "b", "y")
    assert (counts.agree, counts.both_right, counts.champion_only_right, counts.challenger_only_right) == (1, 1, 1, 1)


def test_without_labels_only_agreement_and_no_verdict(pairs: tuple[Path, pd.DataFrame]) -> None:
    path, _ = pairs
    result = analyse_shadow_file(path, "v1", "v2")
    assert result.verdict == "no_labels" and result.mcnemar_p_value is None
    with pytest.raises(InputError, match="no column 'y'"):
        analyse_shadow_file(path, "v1", "v2", "y")


def test_shadow_cli_gives_json(pairs: tuple[Path, pd.DataFrame]) -> None:
    path, _ = pairs
    out = subprocess.run([sys.executable, "-m", "workbench.cli", "shadow", "--file", str(path), "--champion-col", "v1",
                          "--challenger-col", "v2", "--label-col", "label", "--json"], cwd=ROOT, capture_output=True,
                         text=True)  # fmt: skip
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["verdict"] == "better" and 0 < doc["agreement_rate"] < 1
