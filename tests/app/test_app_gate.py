"""AppTest of the Retrain gate page: evidence, preview, downloads, a recorded decision, the log; the export folder
confined to the store's folder, and the read-only mode."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.helpers.app_pages import routed_page
from tests.helpers.demo_stores import copy_demo
from workbench.demo.scenario import Scenario
from workbench.gate.decisions import read_decisions, verify
from workbench.sources.evidence import record_run


def decision_form(app: AppTest):
    """The form whose submit button records the decision."""
    (form,) = [f for f in app.get("form") if [b.label for b in f.get("form_submit_button")] == ["Record decision"]]
    return form


@pytest.fixture(autouse=True)
def plain_environment(monkeypatch):
    """No read-only switch, export roots or decision key from the developer's shell."""
    for name in (
        "WORKBENCH_READ_ONLY",
        "WORKBENCH_EXPORT_ROOTS",
        "WORKBENCH_DECISION_KEY",
        "WORKBENCH_DECISION_KEY_FILE",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture()
def gate(tmp_path, tmp_path_factory, monkeypatch, navigation_app):
    store, _ = copy_demo(tmp_path_factory, Scenario(rows=8_000, days=30), tmp_path / "workbench.duckdb")
    app = routed_page(store.path, "pages/gate.py", monkeypatch, timeout=60)
    return app, store


def test_gate_page_previews_the_curated_set(gate):
    app, _ = gate
    assert not app.exception
    metrics = {m.label: m.value for m in app.metric}
    assert int(metrics["Rows"].replace(",", "")) > 1000
    assert "not run" in " ".join(m.value for m in app.markdown)
    labels = [b.label for b in app.get("download_button")]
    assert labels[:2] == ["Download retraining set", "Download manifest.json"]


def test_recording_a_decision_appends_to_a_verified_log(gate):
    app, store = gate
    form = decision_form(app)
    form.text_input[0].input("ana")
    form.text_area[0].input("labels look clean; challenger wins")
    form.radio[0].set_value("approve")
    form.get("form_submit_button")[0].click().run()
    assert not app.exception
    assert any("Decision 1 recorded: approve by ana" in s.value for s in app.success)
    assert any("Hash chain intact: 1 decisions verified" in s.value for s in app.success)
    (entry,) = read_decisions(store)
    assert entry.dataset_sha256 is not None and verify(store).ok


def test_a_failing_fairness_audit_blocks_approval_on_the_page(tmp_path, tmp_path_factory, monkeypatch, navigation_app):
    store, _ = copy_demo(tmp_path_factory, Scenario(rows=5_000, days=30), tmp_path / "workbench.duckdb")
    record_run(store, "fairness", "fail", {"verdict_text": "fail: FPR for region=south is 0.27 vs 0.11"})
    app = routed_page(store.path, "pages/gate.py", monkeypatch, timeout=60)
    assert any("Approval is blocked: the latest fairness audit failed" in e.value for e in app.error)
    form = decision_form(app)
    form.text_input[0].input("ana")
    form.text_area[0].input("ship")
    form.radio[0].set_value("approve")
    form.get("form_submit_button")[0].click().run()
    assert any("approval refused" in e.value for e in app.error)
    assert read_decisions(store) == []


def form_with_button(app: AppTest, label: str):
    (form,) = [f for f in app.get("form") if label in [b.label for b in f.get("form_submit_button")]]
    return form


def test_typed_in_target_shares_and_a_merge_reach_the_written_manifest(gate, tmp_path):
    import io
    import json

    import pandas as pd

    app, _ = gate
    training = io.BytesIO()
    pd.DataFrame({"amount": [1.0] * 4000, "label": [0, 1] * 2000}).to_parquet(training)
    curation = form_with_button(app, "Preview")
    [rebalance] = [s for s in curation.selectbox if s.label == "Rebalance on"]
    rebalance.set_value("region")
    curation.text_input(key="target_shares").input("north=0.4,south=0.2,east=0.2,west=0.2")
    [merge] = [u for u in app.file_uploader if u.label == "Merge with an existing training set"]
    merge.set_value(("train.parquet", training.getvalue(), "application/octet-stream"))
    curation.get("form_submit_button")[0].click().run()
    assert not app.exception
    folder = tmp_path / "out"
    writer = form_with_button(app, "Write to folder")
    writer.text_input(key="export_folder").input(str(folder))
    writer.get("form_submit_button")[0].click().run()
    assert not app.exception
    assert any("manifest.json" in s.value for s in app.success)
    manifest = json.loads((folder / "manifest.json").read_text())
    rebalance_report = manifest["report"]["rebalance"]
    sizes = rebalance_report["target_sizes"]
    total = sum(sizes.values())
    assert {g: round(n / total, 2) for g, n in sizes.items()} == {"north": 0.4, "south": 0.2, "east": 0.2, "west": 0.2}
    merge = manifest["report"]["merge"]
    assert merge["training_set_rows"] == 4000 and merge["feedback_share"] <= 0.3 + 1e-9
    assert manifest["filters"]["target_shares"] == {"north": 0.4, "south": 0.2, "east": 0.2, "west": 0.2}


def test_the_representation_audit_fills_the_rebalancing_targets(gate, tmp_path):
    import json

    from workbench.fairness.audit import audit_store

    app, store = gate
    audit = audit_store(store, ["region"])
    record_run(store, "fairness", audit.verdict, audit.run_summary())
    expected = audit.representation["target_shares"]
    app.run()
    [use] = [b for b in app.button if b.label.startswith("Rebalance on region to the representation audit")]
    assert "(share of predictions)" in use.label
    use.click().run()
    assert not app.exception
    curation = form_with_button(app, "Preview")
    assert curation.selectbox(key="rebalance_on").value == "region"
    typed = curation.text_input(key="target_shares").value
    assert {g: float(q) for g, q in (p.split("=") for p in typed.split(","))} == pytest.approx(expected, abs=1e-4)
    curation.get("form_submit_button")[0].click().run()
    folder = tmp_path / "out"
    writer = form_with_button(app, "Write to folder")
    writer.text_input(key="export_folder").input(str(folder))
    writer.get("form_submit_button")[0].click().run()
    assert not app.exception
    manifest = json.loads((folder / "manifest.json").read_text())
    sizes = manifest["report"]["rebalance"]["target_sizes"]
    total = sum(sizes.values())
    for group, share in expected.items():  # reached within rounding of one row per group
        assert abs(sizes[group] / total - share) <= 1 / total + 1e-4


def test_a_folder_outside_the_stores_folder_is_refused_in_one_line_and_nothing_is_written(gate, tmp_path):
    app, store = gate
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    for typed in (str(outside), "../" + outside.name):
        writer = form_with_button(app, "Write to folder")
        writer.text_input(key="export_folder").input(typed)
        writer.get("form_submit_button")[0].click().run()
        assert not app.exception
        (error,) = [e.value for e in app.error]
        assert error.startswith(f"refused: {typed} is outside the folders this app may write to")
        assert "\n" not in error and not outside.exists()
        assert decision_form(app) is not None  # the rest of the page still renders
    writer = form_with_button(app, "Write to folder")
    writer.text_input(key="export_folder").input("exports")  # relative: inside the store's folder
    writer.get("form_submit_button")[0].click().run()
    assert not app.error and (store.path.parent / "exports" / "manifest.json").is_file()


def test_read_only_records_no_decision_and_writes_no_folder_but_downloads_work(
    tmp_path, tmp_path_factory, monkeypatch, navigation_app
):
    store, _ = copy_demo(tmp_path_factory, Scenario(rows=5_000, days=30), tmp_path / "workbench.duckdb")
    monkeypatch.setenv("WORKBENCH_READ_ONLY", "true")
    app = routed_page(store.path, "pages/gate.py", monkeypatch, timeout=60)
    assert not app.exception and not app.error
    submit_labels = [b.label for f in app.get("form") for b in f.get("form_submit_button")]
    assert "Record decision" not in submit_labels and "Write to folder" not in submit_labels
    assert [i.value for i in app.info if "Read-only" in i.value] == [
        "Read-only ($WORKBENCH_READ_ONLY): no decision is recorded and no folder written; downloads still work."
    ]
    labels = [b.label for b in app.get("download_button")]
    assert labels[:2] == ["Download retraining set", "Download manifest.json"]
    assert read_decisions(store) == [] and not (tmp_path / "exports").exists()
