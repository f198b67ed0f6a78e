"""The retrain gate page's Streamlit glue: the evidence cards, the curation form and its cached preview, the
downloads, the decision form and the decision log.

The page (``pages/gate.py``) calls these in order; the numbers come from :mod:`workbench.gate.curate` and
:mod:`workbench.gate.decisions`, the evidence from :func:`workbench.sources.evidence.latest_runs`.

A shared app must not let a visitor write anywhere the server can: a typed export folder is confined to the
store's folder and the folders in ``$WORKBENCH_EXPORT_ROOTS`` (:func:`confined_folder`), and with
``$WORKBENCH_READ_ONLY`` the page records no decision and writes no folder (downloads still work).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import streamlit as st

from workbench.app import ui
from workbench.core.errors import WorkbenchError
from workbench.core.paths import READ_ONLY_ENV, confine, listed_folders, read_only
from workbench.core.window import Window
from workbench.gate.charts import composition_figure
from workbench.gate.curate import (
    CuratedSet,
    curate,
    data_bytes,
    format_shares,
    manifest,
    parse_shares,
    representation_targets,
    run,
)
from workbench.gate.decisions import DECISIONS, anchor_note, gate_blockers, read_decisions, verify
from workbench.gate.decisions import export as export_log
from workbench.gate.request import CurationRequest, CurationSpec
from workbench.gate.tracked import DecisionForm, record
from workbench.ingest.lake import open_store
from workbench.sources.evidence import AnalysisRun
from workbench.sources.store import Store

LABELS = {"drift": "Drift", "abtest": "A/B test", "fairness": "Fairness", "triggers": "Triggers",
          "quality": "Model quality"}  # fmt: skip
DEFAULTS = CurationSpec()  # the form starts from the spec's defaults (the CLI's too)
EXPORT_ROOTS_ENV = "WORKBENCH_EXPORT_ROOTS"
READ_ONLY_NOTE = f"Read-only (${READ_ONLY_ENV}): no decision is recorded and no folder written; downloads still work."


def export_roots(store: Store) -> list[Path]:
    """The folders the page may write to: the store's folder, then those in ``$WORKBENCH_EXPORT_ROOTS``."""
    return [store.path.parent.resolve(), *listed_folders(EXPORT_ROOTS_ENV)]


def confined_folder(typed: str, roots: list[Path]) -> Path:
    """The typed folder inside one of ``roots`` (a relative one starts in the store's folder), else a one-line
    :class:`InputError`: a visitor must not write where the server can but the owner did not allow."""
    return confine(typed, roots, "write to", EXPORT_ROOTS_ENV)


def render_evidence(runs: dict[str, AnalysisRun | None]) -> tuple[dict[str, Any], list[str]]:
    """One card per analysis family (its latest verdict and a link to its page); returns the evidence the
    decision records and what blocks an approval (each shown as an error)."""
    pages = {script.split("/")[-1][:-3]: (script, title) for script, title, _, _ in ui.PAGES}
    for col, (family, label) in zip(st.columns(len(LABELS)), LABELS.items(), strict=True):
        run_ = runs[family]
        with col.container(border=True):
            if run_ is None:
                st.markdown(f"**{label}**  \nnot run")
            else:
                st.markdown(f"**{label}**: {run_.verdict}  \n{run_.summary.get('verdict_text', '')}")
                st.caption(f"run {run_.created_at}")
            page = pages.get("stream" if family == "triggers" else family)  # triggers live on the stream page
            if page is not None:
                st.page_link(page[0], label=f"Open {page[1]}", icon=":material/arrow_forward:")
    evidence = {family: (run_.to_dict() if run_ else None) for family, run_ in runs.items()}
    blockers = gate_blockers(evidence)
    for blocker in blockers:
        st.error(f"Approval is blocked: {blocker}.", icon=":material/block:")
    return evidence, blockers


def audit_targets_button(evidence: dict[str, Any]) -> None:
    """A button filling the rebalancing controls from the latest fairness audit's representation targets."""
    audit_targets = representation_targets(evidence.get("fairness"))
    if audit_targets is None:
        return
    attribute, shares, target_kind = audit_targets

    def use_audit_targets() -> None:
        st.session_state["rebalance_on"] = attribute
        st.session_state["rebalance_method"] = "oversample"
        st.session_state["target_shares"] = format_shares(shares)

    st.button(
        f"Rebalance on {attribute} to the representation audit's targets ({target_kind})",
        icon=":material/balance:",
        on_click=use_audit_targets,
        help="The target shares of the latest fairness audit: the reference population when one was given, "
        "else each group's share of predictions.",
    )


def curation_form(sensitive: list[str], feedback_types: list[str], window: Window | None) -> CurationSpec:
    """The curation controls (one form, applied by Preview) as the :class:`CurationSpec` they describe."""
    with st.form("curation"):
        left, mid, right = st.columns(3)
        kinds = left.multiselect(
            "Label sources (feedback kinds)", ["explicit", "implicit", "automated"], placeholder="All kinds"
        )
        types = left.multiselect("Feedback types", sorted(feedback_types), placeholder="All types")
        conflicts = left.radio("Conflicting labels for one prediction", ["drop", "majority"], horizontal=True)
        labelled_only = left.checkbox("Only labelled rows", value=DEFAULTS.labelled_only)
        implicit = left.checkbox(
            "Add implicit labels (clicks, dwell)",
            help="Only for click/dwell patterns whose measured agreement with the ground truth reaches the minimum.",
        )
        min_confidence = left.slider(
            "Minimum implicit-signal confidence", 0.5, 1.0, DEFAULTS.min_implicit_confidence, 0.01
        )
        outlier_z = mid.number_input(
            "Exclude outliers above |modified z|", 0.0, 50.0, DEFAULTS.outlier_z, 0.5,
            help="Modified z = 0.6745·(x − median) / MAD per numeric feature (Iglewicz & Hoaglin 1993): robust to the "
            "outliers it looks for; 3.5 is their usual cut. 0 keeps all.",
        )  # fmt: skip
        dedupe = mid.checkbox("Drop rows with identical features and label", value=DEFAULTS.dedupe_features)
        merge_upload = mid.file_uploader("Merge with an existing training set", type=["parquet", "csv"])
        max_share = mid.slider(
            "Cap on feedback-derived rows when merging", 0.05, 1.0, 0.3, 0.05, help="Guards against a model training "
            "mostly on its own outputs."
        )  # fmt: skip
        attribute = right.selectbox("Rebalance on", ["(none)", *sensitive], key="rebalance_on")
        method = right.radio(
            "Method",
            ["oversample", "reweigh"],
            key="rebalance_method",
            horizontal=True,
            help="Oversample to target shares (seeded) or add sample_weight (AIF360 reweighing).",
        )
        example = "north=0.25,south=0.25,… (empty: equal shares)"
        targets = right.text_input("Target shares (oversample)", key="target_shares", placeholder=example)
        seed = right.number_input("Seed", 0, 2**31 - 1, DEFAULTS.seed)
        st.form_submit_button("Preview", icon=":material/preview:")
    merge_file = str(ui.save_upload(merge_upload, "merge")) if merge_upload is not None else None
    rebalance = attribute != "(none)"
    return CurationSpec(
        start=window.start.isoformat() if window and window.start else None,
        end=window.end.isoformat() if window and window.end else None,
        model_versions=window.model_versions if window else (),
        feedback_kinds=tuple(kinds),
        feedback_types=tuple(types),
        labelled_only=labelled_only,
        implicit_labels=implicit,
        min_implicit_confidence=float(min_confidence),
        conflict_policy=conflicts,
        dedupe_features=dedupe,
        outlier_z=outlier_z or None,
        rebalance_attribute=attribute if rebalance else None,
        rebalance_method=method if rebalance else None,
        target_shares=parse_shares(targets) if rebalance and method == "oversample" else None,
        seed=int(seed),
        merge_file=merge_file,
        max_feedback_share=float(max_share) if merge_file else None,
    )


@st.cache_data(show_spinner="Curating…", max_entries=8)
def cached_preview(path: str, mtime: float, spec: CurationSpec) -> CuratedSet:
    """The curated set for this spec, cached per store version."""
    del mtime
    return curate(open_store(path), spec)


def failed_attribute(runs: dict[str, AnalysisRun | None], sensitive: list[str]) -> str | None:
    """The sensitive attribute of the latest fairness audit when it failed (the one to look at first), else None."""
    run = runs.get("fairness")
    if run is None or run.verdict != "fail":
        return None
    audited = [a for a in run.summary.get("sensitive", []) if a in sensitive]
    return audited[0] if audited else None


def render_preview(curated: CuratedSet, spec: CurationSpec, sensitive: list[str], failed: str | None = None) -> None:
    """What the curation kept and removed, its coverage, and the composition before and after (by the attribute
    chosen for rebalancing, else the one whose fairness audit failed, else the first sensitive attribute)."""
    report = curated.report
    before, after = report["composition_before"], report["composition_after"]
    rows = curated.table.num_rows
    metrics = st.columns(5)
    metrics[0].metric("Rows", f"{rows:,}", f"{rows - before['rows']:+,} vs labelled")
    metrics[1].metric("Positive labels", f"{after['label_share_positive']:.1%}" if after["rows"] else "n/a")
    metrics[2].metric("Conflicts dropped", f"{report['conflicts_dropped']:,}")
    metrics[3].metric("Identical rows removed", f"{report.get('identical_feature_rows_removed', 0):,}")
    metrics[4].metric("Outliers removed", f"{report.get('outliers_removed', {}).get('rows', 0):,}")
    coverage = report["time_coverage"]
    st.caption(
        f"From {report['labelled_traces']:,} labelled predictions, {str(coverage['first'])[:10]} to "
        f"{str(coverage['last'])[:10]}, model versions {', '.join(report['model_versions']) or '—'}."
    )
    shown = spec.rebalance_attribute or failed or (sensitive[0] if sensitive else None)
    if shown and shown in before:
        st.plotly_chart(composition_figure(before, after, shown), width="stretch")


def render_exports(store: Store, curated: CuratedSet, spec: CurationSpec) -> dict[str, Any]:
    """Download buttons for the data file and its manifest, and a write-to-folder form; returns the manifest."""
    fmt = st.radio("Export format", ["parquet", "csv"], horizontal=True)
    data = data_bytes(curated, fmt) if curated.table.num_rows else b""
    doc = manifest(curated, spec, data, fmt)
    down = st.columns(2)
    down[0].download_button("Download retraining set", data, file_name=f"retraining_set.{fmt}",
                            icon=":material/download:", disabled=not data, on_click="ignore")  # fmt: skip
    down[1].download_button("Download manifest.json", json.dumps(doc, indent=2, sort_keys=True, default=str),
                            file_name="manifest.json", mime="application/json", icon=":material/description:",
                            on_click="ignore")  # fmt: skip
    st.caption(f"sha256 of the data file: `{doc['sha256']}`")
    if read_only():
        return doc
    with st.form("write_folder", border=False):
        folder_col, button_col = st.columns([3, 1], vertical_alignment="bottom")
        folder = folder_col.text_input(
            "Or write both files to a folder", value="exports", key="export_folder",
            help=f"Inside the store's folder (a relative path starts there) or one of ${EXPORT_ROOTS_ENV}.",
        )  # fmt: skip
        write_clicked = button_col.form_submit_button("Write to folder", icon=":material/save:")
    if write_clicked:
        try:  # a refused folder is one line, and the rest of the page (the decision) still renders
            target = confined_folder(folder, export_roots(store))
            written = run(store, CurationRequest(spec, target, fmt)).manifest
        except WorkbenchError as exc:
            st.error(str(exc), icon=":material/error:")
        else:
            st.success(
                f"Wrote {written['rows']:,} rows to `{target}/retraining_set.{fmt}` and `{target}/manifest.json` "
                f"(sha256 {written['sha256'][:16]}…)."
            )
    return doc


def decision_form(store: Store, versions: list[str], doc: dict[str, Any], blockers: list[str]) -> None:
    """The decision form; on submit, the decision is recorded with the evidence (and the manifest if attached).
    Read-only: one line instead of the form."""
    if read_only():
        st.info(READ_ONLY_NOTE, icon=":material/lock:")
        return
    with st.form("decision", clear_on_submit=True):
        decision = st.radio("Decision", DECISIONS, horizontal=True)
        reviewer = st.text_input("Reviewer")
        rationale = st.text_area("Rationale", placeholder="What you decided and why, in a sentence or two.")
        candidate = st.selectbox("Candidate model version", ["(none)", *versions], key="gate_candidate")
        attach = st.checkbox("Attach the previewed retraining set's manifest", value=True)
        override = st.text_input("Override reason (only to approve despite a blocked gate)") if blockers else ""
        submitted = st.form_submit_button("Record decision", type="primary", icon=":material/gavel:")
    if not submitted:
        return
    form = DecisionForm(decision, reviewer, rationale, None if candidate == "(none)" else candidate,
                        doc if attach else None, override or None)  # fmt: skip
    with ui.user_errors():
        outcome = record(store, form)
    entry = outcome.entry
    st.success(f"Decision {entry.seq} recorded: {entry.decision} by {entry.reviewer} (hash {entry.hash[:12]}…).")
    if outcome.failure:  # the decision is kept: the MLflow step is retried by `workbench decisions sync`
        st.warning(outcome.mlflow_line(), icon=":material/cloud_off:")
    elif outcome.tracked:
        st.info(f"MLflow: {outcome.mlflow_line()}.", icon=":material/cloud_done:")


def render_log(store: Store) -> None:
    """The decision log: whether its hash chain holds, the decisions (filtered by kind) and their exports."""
    entries = read_decisions(store)
    check = verify(store)
    if not entries:
        st.caption("No decisions yet.")
        return
    if check.ok:
        st.success(f"Hash chain intact: {check.entries} decisions verified.", icon=":material/verified:")
        note = anchor_note(check)
        st.caption(note[:1].upper() + note[1:] + ".")
    else:
        st.error(f"Hash chain broken at entry {check.first_bad_seq}: {check.problem}.", icon=":material/gpp_bad:")
    chosen = st.multiselect("Show decisions", DECISIONS, default=list(DECISIONS))
    ui.table(
        [
            {
                "seq": d.seq,
                "when": d.decided_at[:19],
                "decision": d.decision,
                "reviewer": d.reviewer,
                "candidate": d.candidate,
                "rationale": d.rationale,
                "override": d.override_reason,
                "hash": d.hash[:12],
                **({"MLflow run": d.mlflow_run_id or ui.MISSING} if any(e.mlflow_run_id for e in entries) else {}),
            }
            for d in entries
            if d.decision in chosen
        ],
    )
    kinds = (("md", "text/markdown"), ("jsonl", "application/x-ndjson"), ("csv", "text/csv"))
    for col, (fmt_name, mime) in zip(st.columns(3), kinds, strict=True):
        col.download_button(f"Export log as {fmt_name}", export_log(store, fmt_name), file_name=f"decisions.{fmt_name}",
                            mime=mime, key=f"log-{fmt_name}", on_click="ignore")  # fmt: skip
