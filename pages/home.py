"""Home: what is in the store, how complete its feedback is, and what each page answers."""

import streamlit as st

from workbench.app import registry, ui
from workbench.core import plotting as charts

ui.page_header(
    "Feedback Workbench",
    "Explore drift, run A/B significance analysis and audit fairness before you approve a retrain "
    "of a production model.",
)

store = ui.active_store()
if not store.exists():
    st.info(
        f"No store at `{store.path}` yet. Build the demo with `workbench demo`, ingest your own files with "
        "`workbench ingest FILE…`, or pick *Uploaded files* in the sidebar.",
        icon=":material/database:",
    )
    st.stop()

with ui.user_errors():
    summary = ui.summary()
    volume = ui.volume()

window = ui.active_window()
scope = "the selected window" if window else "the whole store"
coverage = "n/a" if summary.coverage_any is None else f"{summary.coverage_any:.1%}"
labelled = "n/a" if summary.coverage_labelled is None else f"{summary.coverage_labelled:.1%}"
if summary.predictions:
    st.markdown(
        f"**{summary.predictions:,} predictions** from {summary.first_ts[:10]} to {summary.last_ts[:10]} "
        f"({scope}); {coverage} have feedback and {labelled} a label (of any type) so far."
    )

# Each number says what it counts: the Feedback stream page counts feedback on predictions only (no orphans)
# and labels from its "Labels from" choice (default: automated outcomes), so its numbers can be lower.
joined = summary.feedback - summary.orphan_feedback
cols = st.columns(5)
cols[0].metric("Predictions", f"{summary.predictions:,}")
cols[1].metric(
    "Feedback rows",
    f"{summary.feedback:,}",
    help=f"Every feedback row in the store, any kind (the sidebar's window does not apply): {joined:,} on "
    f"predictions in the store + {summary.orphan_feedback:,} orphans, whose prediction is not in the store yet. "
    "The Feedback stream page counts the first part only.",
)
cols[2].metric("With any feedback", coverage, help="Share of predictions with at least one feedback row.")
cols[3].metric(
    "Labelled (any type)",
    labelled,
    help="Share of predictions with a ground-truth label from feedback of any type (outcomes, corrections, …). "
    "The Feedback stream page counts only the types chosen under 'Labels from', so its share can be lower.",
)
cols[4].metric("Quarantined rows", f"{summary.quarantined:,}", help="Rejected at ingest, kept with a reason.")

if summary.predictions:
    st.plotly_chart(charts.daily_volume_figure(volume), width="stretch")

left, right = st.columns(2)
with left:
    st.subheader("Model versions")
    ui.table(
        [
            {
                "version": v["model_version"],
                "predictions": v["n"],
                "first": v["first_ts"][:16],
                "last": v["last_ts"][:16],
            }
            for v in summary.model_versions
        ],
    )
    registry.render_facts(registry.store_versions())  # the registered versions' facts (MLflow on)
    if summary.orphan_feedback:
        st.caption(
            f"{summary.orphan_feedback:,} feedback rows refer to predictions not in the store yet (orphans); "
            "they join when their predictions arrive."
        )
with right:
    if summary.feedback_by_type:
        st.plotly_chart(charts.feedback_mix_figure(summary.feedback_by_type, summary.feedback_by_kind), width="stretch")

if summary.quarantine_by_reason:
    st.subheader("Quarantine")
    ui.table(
        [{"reason": r, "rows": n} for r, n in summary.quarantine_by_reason.items()],
    )

st.subheader("Columns and their roles")
st.markdown(
    f"- **Features** ({len(summary.features)}): {', '.join(summary.features) or 'none'}\n"
    f"- **Categorical**: {', '.join(summary.categorical) or 'none'}\n"
    f"- **Sensitive attributes**: {', '.join(summary.sensitive) or 'none'}"
)

st.subheader("Pages")
for _, title, _, purpose in ui.PAGES:
    st.markdown(f"- **{title}**: {purpose}")
