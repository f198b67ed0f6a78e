"""Issue 18, drift: one verdict (the dataset's) on the page, in the JSON, the HTML report and the gate's evidence,
with its rule in words; the bar chart draws the rule that decided; the report is self-contained by default; the
table's headers explain themselves; the CLI does not import plotly unless a report is asked for."""

from __future__ import annotations

import re
import subprocess
import sys
import time

from tests.conftest import ROOT
from workbench.drift import charts
from workbench.drift.report import html_report
from workbench.drift.result import Outcome, build_result, window_side
from workbench.drift.view import column_help, feature_column_config
from workbench.stats.drift import DriftSettings
from workbench.stats.drift_verdict import FeatureDrift, decide


def _feature(name: str, psi: float, p: float) -> FeatureDrift:
    return FeatureDrift(name, "numeric", "ks", 0.1, p, None, 0.0, False, "psi", psi, 0.1, 0.1, 0.1, p, 500, 500)


def _result(features: list[FeatureDrift], reference_rows: int, settings: DriftSettings | None = None):
    settings = settings or DriftSettings()
    decided, summary = decide(features, reference_rows, settings)
    outcome = Outcome(decided, summary, [], {}, None)
    return build_result(
        outcome, window_side(None, reference_rows, "ref"), window_side(None, 500, "cur"), settings, time.perf_counter()
    )


def _demo_like():
    """4 of 11 features drifted by PSI (36%): below the dataset rule of 50%."""
    features = [_feature(f"d{i}", 0.5 + i, 1e-9) for i in range(4)] + [_feature(f"s{i}", 0.01, 0.5) for i in range(7)]
    return _result(features, 50_000)


def test_the_verdict_is_the_datasets_with_its_rule_in_words():
    result = _demo_like()
    assert result.summary["n_drifted"] == 4 and result.summary["dataset_drift"] is False
    assert result.verdict == "no drift"
    assert result.verdict_text.startswith("dataset drift: no — 4 of 11 features drifted in cur (36%; the rule is ≥ 50%")
    assert "largest: d3, PSI 3.50" in result.verdict_text
    document = result.to_json()
    assert document["verdict"] == "no drift" and document["verdict_text"] == result.verdict_text
    assert document["summary"]["dataset_drift"] is False
    assert result.evidence()["verdict_text"] == result.verdict_text
    page = html_report(result)
    assert f"<p class='verdict '>{result.verdict_text}</p>" in page  # not styled as drift


def test_dataset_drift_says_yes_and_is_the_drift_verdict():
    features = [_feature(f"d{i}", 0.5, 1e-9) for i in range(6)] + [_feature(f"s{i}", 0.01, 0.5) for i in range(5)]
    result = _result(features, 50_000)
    assert result.verdict == "drift" and result.summary["dataset_drift"] is True
    assert result.verdict_text.startswith("dataset drift: yes — 6 of 11 features drifted in cur (55%; the rule is")
    assert "<p class='verdict drift'>" in html_report(result, embed_plotlyjs=False)


def test_no_feature_judged_is_insufficient():
    result = _result([], 50_000)
    assert result.verdict == "insufficient" and result.verdict_text.startswith("dataset drift: insufficient")


def test_psi_rule_draws_the_psi_line():
    fig = charts.psi_bars_figure(_demo_like())
    (line,) = fig.layout.shapes
    assert line.x0 == 0.1 and fig.layout.annotations[0].text == "PSI 0.1"
    assert fig.layout.xaxis.title.text == "PSI"


def test_small_reference_draws_the_p_value_rule_not_the_psi_line():
    """The page's upload case: a small reference is judged by BH-adjusted p, so income at PSI 0.28 (p 0.2) is not
    drifted; the chart must draw p < 0.05 (not a PSI 0.1 line it seems to cross) and colour bars by it."""
    income, age = _feature("income", 0.28, 0.2), _feature("age", 0.05, 1e-6)
    result = _result([income, age], 400)
    assert result.summary["rule"] == "p_value"
    assert not result.feature("income").drift and result.feature("age").drift
    fig = charts.psi_bars_figure(result)
    (line,) = fig.layout.shapes
    assert abs(line.x0 - 1.3010) < 1e-3  # −log10(0.05)
    texts = [a.text for a in fig.layout.annotations]
    assert texts == ["p = 0.05"] and not any("PSI" in t for t in texts)
    bars = fig.data[0]
    colour = dict(zip(bars.y, bars.marker.color, strict=True))
    assert colour["income"] == charts.OK_COLOR and colour["age"] == charts.DRIFT_COLOR
    x = dict(zip(bars.y, bars.x, strict=True))
    assert x["income"] < line.x0 < x["age"]  # each bar is on the side of the line its colour says
    assert "BH-adjusted p" in fig.layout.title.text


def test_the_html_report_is_self_contained_by_default():
    page = html_report(_demo_like())
    assert not re.findall(r"<script[^>]*\bsrc=", page)  # no script fetched from anywhere (no cdn.plot.ly, no https)
    assert len(page) > 3_000_000  # plotly.js inline
    cdn = html_report(_demo_like(), embed_plotlyjs=False)
    assert re.findall(r"<script[^>]*\bsrc=\"https://cdn\.plot\.ly/", cdn) and len(cdn) < 1_000_000


def test_every_opaque_header_has_help_with_the_settings_thresholds():
    helps = column_help({"psi_threshold": 0.2, "p_value": 0.01, "small_reference_rows": 1000})
    assert "Wasserstein" in helps["Wasserstein / σ"] and "standard deviation" in helps["Wasserstein / σ"]
    assert "Benjamini–Hochberg" in helps["p (BH)"] and "< 0.01" in helps["p (BH)"]
    assert "exact" in helps["KS"] and "grid" in helps["KS"]
    assert "≥ 0.2" in helps["PSI"]
    config = feature_column_config({"psi_threshold": 0.2})
    assert all(column["help"] for column in config.values())
    assert config["p (BH)"]["label"] == "p (BH)" and config["p (BH)"]["type_config"]["format"] == "%.1e"


def _imports(*args: str) -> str:
    out = subprocess.run([sys.executable, "-X", "importtime", *args], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stderr


def test_the_cli_does_not_import_plotly_or_sklearn_unless_needed(tmp_path):
    heavy = re.compile(r"\|\s+(plotly|sklearn|statsmodels|fairlearn)(\.|$)", re.M)
    assert not heavy.findall(_imports("-m", "workbench.cli", "drift", "--help"))
    for name, shift in (("r", 0), ("c", 1)):
        (tmp_path / f"{name}.csv").write_text("x\n" + "".join(f"{(i * 37 % 101) + shift * 20}\n" for i in range(400)))
    files = ("--reference-file", str(tmp_path / "r.csv"), "--current-file", str(tmp_path / "c.csv"))
    assert not heavy.findall(_imports("-m", "workbench.cli", "drift", *files, "--no-multivariate", "--json"))
    report = _imports("-m", "workbench.cli", "drift", *files, "--no-multivariate", "--html", str(tmp_path / "r.html"))
    assert re.search(r"\|\s+plotly$", report, re.M)  # the report still draws its charts
