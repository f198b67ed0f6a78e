"""One small demo store for every metrics test (20,000 predictions over 90 days, seed 7, three quarantined rows),
a rules file, and the exporter's readings of it computed once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.demo_stores import copy_demo
from workbench.metrics.collector import Readings, collect
from workbench.metrics.settings import MetricsSettings
from workbench.sources.store import Store

# Three rules that evaluate quickly: one fires on the demo (its concept drift), one stays quiet, one names a
# column the store does not have (it cannot be evaluated; the others still are).
RULES = """
mode = "any"
[[rule]]
name = "accuracy_drop"
metric = "online_accuracy"
label_types = ["outcome"]
op = "<"
threshold = 0.70
for = 3
min_n = 30
[[rule]]
name = "label_pipeline_stalled"
metric = "label_volume"
op = "<"
threshold = 10
for = 2
[[rule]]
name = "fpr_gap"
metric = "fairness_ratio"
attribute = "no_such_column"
window = "week"
op = ">"
threshold = 1.25
"""

BAD_ROWS = """trace_id,ts,model_version,prediction,score
q1,yesterday,v1,1,0.5
q2,2026-03-31 10:00:00,v1,1,abc
q3,2026-03-31 10:00:00,v1,1,0.4
,2026-03-31 10:00:00,v1,0,0.3
"""


@pytest.fixture(scope="session")
def metrics_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, dict, Path]:
    """The store, its ground truth and the rules file."""
    from workbench.demo.scenario import Scenario
    from workbench.ingest.pipeline import ingest_files

    folder = tmp_path_factory.mktemp("metrics")
    store, truth = copy_demo(tmp_path_factory, Scenario(rows=20_000), folder / "workbench.duckdb")
    bad = folder / "bad.csv"
    bad.write_text(BAD_ROWS, encoding="utf-8")
    ingest_files(store, [bad], "predictions")
    rules = folder / "rules.toml"
    rules.write_text(RULES, encoding="utf-8")
    return store, truth, rules


@pytest.fixture(scope="session")
def readings(metrics_store: tuple[Store, dict, Path]) -> Readings:
    store, _, rules = metrics_store
    return collect(store, rules, MetricsSettings())
