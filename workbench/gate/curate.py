"""Curated retraining sets: predictions joined with their feedback labels, cleaned, rebalanced, exported.

Every step reports what it removed or added, and the export writes a ``manifest.json`` (rows,
columns, sha256 of the data file, every parameter, the source store, composition before and after)
so a retrain can be traced to the exact rows it learned from. Same store and parameters give a
byte-identical data file: rows are sorted by trace_id and no wall-clock time goes into the data.
"""

from __future__ import annotations

import getpass
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from workbench.core.errors import InputError
from workbench.core.window import Window
from workbench.gate.decisions import neutralise
from workbench.gate.request import CurationRequest, CurationSpec
from workbench.sources.store import Store, stored_roles
from workbench.sources.store_queries import filtered_predictions

# Modified z-score of Iglewicz & Hoaglin (1993): 0.6745·(x − median)/MAD. They flag |z| > 3.5;
# we exclude only at |z| > 5 by default, because skewed features (amounts, latencies) are real.
ROBUST_Z_FACTOR = 0.6745


@dataclass(frozen=True)
class CuratedSet:
    """The curated rows (Arrow) and the report of what each step did."""

    table: pa.Table
    report: dict[str, Any] = field(default_factory=dict)


def _window(spec: CurationSpec) -> Window:
    parse = lambda s: None if not s else datetime.fromisoformat(s).replace(tzinfo=UTC)  # noqa: E731
    return Window(start=parse(spec.start), end=parse(spec.end), model_versions=spec.model_versions)


# Implicit signals become a label per trace only through patterns whose agreement with the ground
# truth was measured on traces that carry both: (clicked, dwell band) → label 1, not clicked → label 0.
DWELL_BANDS_S = (10.0, 30.0, 120.0)  # <10 s is a bounce; ≥120 s a long read
MIN_PATTERN_OVERLAP = 30  # labelled traces a pattern needs before its agreement is trusted


def _left_join(left: Any, right: Any) -> Any:
    """``left`` LEFT JOIN ``right`` on trace_id, keeping one trace_id column."""
    return left.left_join(right, "trace_id").drop("trace_id_right")


def _implicit_patterns(f: Any) -> Any:
    """Per trace with a click: its implicit label (clicked) and pattern name (dwell band), as an Ibis table."""
    import ibis

    clicks = f.filter(f.type == "click").group_by("trace_id").aggregate(clicked=(f.value > 0).max())
    dwell = f.filter(f.type == "dwell").group_by("trace_id").aggregate(dwell_s=f.value.max())
    j = _left_join(clicks, dwell)
    low, mid, high = DWELL_BANDS_S
    pattern = ibis.cases(
        (~j.clicked, "not clicked"),
        (j.dwell_s.isnull(), "clicked, no dwell"),
        (j.dwell_s < low, f"clicked, dwell < {low:g} s"),
        (j.dwell_s < mid, f"clicked, dwell {low:g}–{mid:g} s"),
        (j.dwell_s < high, f"clicked, dwell {mid:g}–{high:g} s"),
        else_=f"clicked, dwell ≥ {high:g} s",
    )
    return j.select("trace_id", implicit_label=j.clicked.cast("int8"), pattern=pattern)


def implicit_label_confidence(con: Any, f: Any, ground_truth: Any) -> pd.DataFrame:
    """Agreement of each implicit pattern with the ground truth, on traces that carry both.

    Columns: pattern, implicit_label, overlap (labelled traces), agreement (share whose label equals the
    implicit label; None under ``MIN_PATTERN_OVERLAP``). It is the implicit label's confidence: the
    empirical P(label = implicit label | pattern), so clicks count as labels only where they were right.
    """
    patterns = _implicit_patterns(f)
    truth = ground_truth.filter(ground_truth.label.notnull()).select("trace_id", "label")
    both = patterns.inner_join(truth, "trace_id")
    table = (
        both.group_by(["pattern", "implicit_label"])
        .aggregate(overlap=both.count(), agree=(both.label == both.implicit_label).cast("int64").sum())
        .order_by("pattern")
        .execute()
    )
    table["agreement"] = (table["agree"] / table["overlap"]).where(table["overlap"] >= MIN_PATTERN_OVERLAP)
    return table.drop(columns="agree")


def _labelled_rows(store: Store, spec: CurationSpec) -> tuple[pd.DataFrame, dict[str, Any], list[str], list[str]]:
    """Predictions joined with one label per trace (conflicts resolved by the policy), via Ibis."""
    with store.ibis() as con:
        roles = stored_roles(con.con).predictions
        features, sensitive = list(roles.features or []), list(roles.sensitive)
        p = filtered_predictions(con, _window(spec))
        all_feedback = con.table("feedback")
        f = all_feedback.filter(all_feedback.label.notnull())
        if spec.feedback_kinds:
            f = f.filter(f.kind.isin(list(spec.feedback_kinds)))
        if spec.feedback_types:
            f = f.filter(f.type.isin(list(spec.feedback_types)))
        per_trace = f.group_by("trace_id").aggregate(n_labels=f.count(), n_positive=f.label.cast("int64").sum())
        columns = ["trace_id", "ts", "model_version", "prediction", "score", *features, *sensitive]
        predictions = p.select(*columns)
        keep_unlabelled = not spec.labelled_only or spec.implicit_labels
        joined = (
            _left_join(predictions, per_trace) if keep_unlabelled else predictions.inner_join(per_trace, "trace_id")
        )
        confidence = None
        if spec.implicit_labels:
            majority = per_trace.filter(2 * per_trace.n_positive != per_trace.n_labels)
            truth = majority.select("trace_id", label=(2 * majority.n_positive > majority.n_labels).cast("int8"))
            confidence = implicit_label_confidence(con, all_feedback, truth)
            joined = _left_join(joined, _implicit_patterns(all_feedback))
        frame = joined.order_by("trace_id").to_pyarrow().to_pandas()
        source = {
            "store": str(store.path),
            "predictions": int(con.table("predictions").count().execute()),
            "feedback": int(con.table("feedback").count().execute()),
            "max_ts": str(con.table("predictions").ts.max().execute()),
        }
    has_label = frame["n_labels"].fillna(0) > 0
    conflict = has_label & (frame["n_positive"] > 0) & (frame["n_positive"] < frame["n_labels"])
    tie = 2 * frame["n_positive"] == frame["n_labels"]
    if spec.conflict_policy == "drop":
        keep = ~conflict
    elif spec.conflict_policy == "majority":
        keep = ~(conflict & tie)
    else:
        raise InputError(f"conflict policy must be drop or majority, not '{spec.conflict_policy}'")
    label = pd.Series(pd.NA, index=frame.index, dtype="Int8")
    label[has_label] = (2 * frame.loc[has_label, "n_positive"] > frame.loc[has_label, "n_labels"]).astype("int8")
    source_of_label = pd.Series(pd.NA, index=frame.index, dtype="string")
    source_of_label[has_label] = "feedback"
    report: dict[str, Any] = {}
    if confidence is not None:
        trusted = confidence[confidence["agreement"] >= spec.min_implicit_confidence]
        use = ~has_label & frame["pattern"].isin(set(trusted["pattern"]))
        label[use] = frame.loc[use, "implicit_label"].astype("int8")
        source_of_label[use] = "implicit"
        report["implicit_labels"] = {
            "min_confidence": spec.min_implicit_confidence,
            "patterns": [
                {k: (None if pd.isna(v) else v) for k, v in row.items()} for row in confidence.to_dict(orient="records")
            ],
            "rows_labelled": int(use.sum()),
        }
        frame = frame.drop(columns=["pattern", "implicit_label"])
    if spec.labelled_only:
        keep &= label.notna()
    frame = frame.assign(label=label, label_source=source_of_label)[keep.to_numpy()].copy()
    report = {
        "source": source,
        "labelled_traces": int(has_label.sum()),
        "conflicting_traces": int(conflict.sum()),
        "conflicts_dropped": int((conflict & ~keep).sum()),
        "conflicts_resolved_by_majority": int((conflict & keep).sum()),
        "unlabelled_rows": int(frame["label"].isna().sum()),
        **report,
    }
    return frame.drop(columns=["n_labels", "n_positive"]).reset_index(drop=True), report, features, sensitive


def _drop_identical_feature_rows(frame: pd.DataFrame, columns: list[str]) -> tuple[pd.DataFrame, int]:
    """Keep the earliest of rows with the same features, sensitive attributes and label."""
    ordered = frame.sort_values(["ts", "trace_id"], kind="stable")
    kept = ordered[~ordered.duplicated(subset=columns, keep="first")]
    return kept.sort_values("trace_id", kind="stable").reset_index(drop=True), len(frame) - len(kept)


def robust_z(values: np.ndarray) -> np.ndarray:
    """Modified z-score 0.6745·(x − median)/MAD (Iglewicz & Hoaglin 1993); 0 where MAD is 0 or x is missing."""
    if not np.isfinite(values).any():
        return np.zeros_like(values, dtype=float)
    median = np.nanmedian(values)
    mad = np.nanmedian(np.abs(values - median))
    if not np.isfinite(mad) or mad == 0:
        return np.zeros_like(values, dtype=float)
    return np.nan_to_num(ROBUST_Z_FACTOR * (values - median) / mad, nan=0.0)


def _drop_outliers(frame: pd.DataFrame, numeric: list[str], threshold: float) -> tuple[pd.DataFrame, dict[str, int]]:
    outlying = np.zeros(len(frame), dtype=bool)
    by_feature = {}
    for col in numeric:
        hit = np.abs(robust_z(frame[col].to_numpy(dtype=float, na_value=np.nan))) > threshold
        by_feature[col] = int(hit.sum())
        outlying |= hit
    return frame[~outlying].reset_index(drop=True), {"rows": int(outlying.sum()), "by_feature": by_feature}


def parse_shares(text: str | None) -> dict[str, float] | None:
    """Parse 'north=0.25,south=0.25' into {'north': 0.25, 'south': 0.25} (None when empty)."""
    if not text or not text.strip():
        return None
    shares = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        try:
            shares[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise InputError(
                f"target shares are group=share pairs separated by commas, e.g. north=0.5,south=0.5; got '{part}'"
            )
    return shares


def format_shares(shares: dict[str, float]) -> str:
    """The text form parse_shares reads: 'north=0.25,south=0.25' (shares rounded to 4 decimals)."""
    return ",".join(f"{group}={round(float(share), 4):g}" for group, share in shares.items())


def representation_targets(fairness_run: dict[str, Any] | None) -> tuple[str, dict[str, float], str] | None:
    """(attribute, {group: target share}, what the target is) from a recorded fairness run, or None.

    The fairness audit's representation section sets each group's target share to its share of a
    reference population when one was given, else its share of predictions; a run over several
    attributes (an intersection) has none, since curation rebalances on one column.
    """
    summary = (fairness_run or {}).get("summary") or {}
    shares, sensitive = summary.get("target_shares"), summary.get("sensitive") or []
    if not shares or len(sensitive) != 1:
        return None
    kind = {"reference population": "the reference population"}.get(summary.get("target"), "share of predictions")
    return sensitive[0], {str(g): float(q) for g, q in shares.items()}, kind


def oversample_targets(counts: dict[str, int], shares: dict[str, float]) -> dict[str, int]:
    """Group sizes after oversampling to target shares q_g: N' = max n_g/q_g, size_g = round(q_g·N')."""
    total_share = sum(shares.values())
    if not shares or total_share <= 0 or any(q <= 0 for q in shares.values()):
        raise InputError("target shares must be positive")
    q = {g: shares[g] / total_share for g in shares}
    missing = [g for g in q if counts.get(g, 0) == 0]
    if missing:
        raise InputError(f"cannot oversample group '{missing[0]}': it has no rows")
    n_prime = max(counts[g] / q[g] for g in q)
    return {g: max(round(q[g] * n_prime), counts[g]) for g in q}


def reweighing_weights(groups: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-row weight w(g, y) = n_g·n_y / (n·n_gy) (Kamiran & Calders 2012; AIF360 Reweighing); Σw = n."""
    frame = pd.DataFrame({"g": groups, "y": labels})
    n = len(frame)
    n_g = frame.groupby("g", dropna=False)["y"].transform("size")
    n_y = frame.groupby("y")["y"].transform("size")
    n_gy = frame.groupby(["g", "y"], dropna=False)["y"].transform("size")
    return (n_g * n_y / (n * n_gy)).to_numpy(dtype=float)


def _composition(frame: pd.DataFrame, attributes: list[str], weight: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"rows": len(frame)}
    w = frame[weight] if weight else pd.Series(1.0, index=frame.index)
    total = float(w.sum()) or 1.0
    labelled = frame["label"].notna()
    labelled_weight = float(w[labelled].sum())
    positive = float((w[labelled] * frame.loc[labelled, "label"].astype(float)).sum())
    out["label_share_positive"] = round(positive / labelled_weight, 6) if labelled_weight else None
    out["labelled_rows"] = int(labelled.sum())
    for attr in attributes:
        shares = w.groupby(frame[attr].fillna("(missing)")).sum() / total
        out[attr] = {str(k): round(float(v), 6) for k, v in shares.sort_index().items()}
    return out


def _rebalance(frame: pd.DataFrame, spec: CurationSpec) -> tuple[pd.DataFrame, dict[str, Any]]:
    attr = spec.rebalance_attribute
    if attr not in frame.columns:
        raise InputError(f"cannot rebalance on '{attr}': not a column of the curated set")
    groups = frame[attr].fillna("(missing)")
    if spec.rebalance_method == "reweigh":
        if frame["label"].isna().any():
            raise InputError("reweighing needs a label on every row: keep only labelled rows, or oversample instead")
        frame = frame.assign(sample_weight=reweighing_weights(groups.to_numpy(), frame["label"].to_numpy()))
        return frame, {
            "method": "reweigh",
            "attribute": attr,
            "total_weight": round(float(frame.sample_weight.sum()), 6),
        }
    counts = groups.value_counts().to_dict()
    shares = spec.target_shares or dict.fromkeys(counts, 1.0)
    targets = oversample_targets(counts, shares)
    rng = np.random.default_rng(spec.seed)
    extra = []
    for group in sorted(targets):
        members = np.flatnonzero(groups.to_numpy() == group)
        add = targets[group] - len(members)
        if add > 0:
            extra.append(frame.iloc[rng.choice(members, size=add, replace=True)])
    frame = pd.concat([frame, *extra], ignore_index=True).sort_values("trace_id", kind="stable")
    added = {g: targets[g] - counts.get(g, 0) for g in sorted(targets)}
    return frame.reset_index(drop=True), {
        "method": "oversample",
        "attribute": attr,
        "target_sizes": targets,
        "added": added,
    }


def _read_training_file(path: str) -> pd.DataFrame:
    file = Path(path)
    if not file.is_file():
        raise InputError(f"{path}: no such training set file")
    try:
        return pd.read_parquet(file) if file.suffix in (".parquet", ".pq") else pd.read_csv(file)
    except Exception as exc:  # any reader failure is bad input here
        raise InputError(f"{file.name}: cannot read the training set ({type(exc).__name__})") from None


def _merge(frame: pd.DataFrame, spec: CurationSpec) -> tuple[pd.DataFrame, dict[str, Any]]:
    existing = _read_training_file(spec.merge_file).assign(source="training_set")
    feedback = frame.assign(source="feedback")
    capped = 0
    cap = spec.max_feedback_share
    if cap is not None and 0 <= cap < 1 and len(existing):
        allowed = int(np.floor(cap * len(existing) / (1 - cap)))
        if len(feedback) > allowed:
            rng = np.random.default_rng(spec.seed)
            keep = np.sort(rng.choice(len(feedback), size=allowed, replace=False))
            capped = len(feedback) - allowed
            feedback = feedback.iloc[keep]
    merged = pd.concat([existing, feedback], ignore_index=True)
    share = len(feedback) / len(merged) if len(merged) else 0.0
    return merged, {"training_set_rows": len(existing), "feedback_rows": len(feedback), "feedback_rows_capped": capped,
                    "feedback_share": round(share, 6)}  # fmt: skip


def curate(store: Store, spec: CurationSpec) -> CuratedSet:
    """Build the curated retraining set in memory (the preview) with a report of every step."""
    frame, report, features, sensitive = _labelled_rows(store, spec)
    composition_attrs = [spec.rebalance_attribute] if spec.rebalance_attribute else sensitive
    report["composition_before"] = _composition(frame, composition_attrs)
    if spec.dedupe_features:
        frame, removed = _drop_identical_feature_rows(frame, [*features, *sensitive, "label"])
        report["identical_feature_rows_removed"] = removed
    numeric = [c for c in features if pd.api.types.is_numeric_dtype(frame[c])]
    if spec.outlier_z is not None:
        frame, outliers = _drop_outliers(frame, numeric, spec.outlier_z)
        report["outliers_removed"] = {**outliers, "rule": f"|modified z| > {spec.outlier_z} (Iglewicz & Hoaglin)"}
    if spec.rebalance_method:
        frame, report["rebalance"] = _rebalance(frame, spec)
    if spec.merge_file:
        frame, report["merge"] = _merge(frame, spec)
    weight = "sample_weight" if "sample_weight" in frame.columns else None
    report["composition_after"] = _composition(frame, composition_attrs, weight)
    report["model_versions"] = sorted(str(v) for v in frame["model_version"].dropna().unique())
    ts = frame["ts"].dropna()
    report["time_coverage"] = {"first": str(ts.min()) if len(ts) else None, "last": str(ts.max()) if len(ts) else None}
    report["features"] = features
    report["sensitive"] = sensitive
    return CuratedSet(pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None), report)


def data_bytes(curated: CuratedSet, fmt: str = "parquet") -> bytes:
    """The data file's bytes: Parquet (default) or CSV with formula-like text cells neutralised."""
    sink = pa.BufferOutputStream()
    if fmt == "parquet":
        pq.write_table(curated.table, sink, compression="zstd", write_statistics=True)
    elif fmt == "csv":
        table = curated.table
        for i, name in enumerate(table.column_names):
            if pa.types.is_string(table.schema.field(i).type) or pa.types.is_large_string(table.schema.field(i).type):
                values = [neutralise(v) for v in table.column(i).to_pylist()]
                table = table.set_column(i, name, pa.array(values, type=pa.string()))
        pacsv.write_csv(table, sink)
    else:
        raise InputError(f"unknown export format '{fmt}': use parquet or csv")
    return sink.getvalue().to_pybytes()


def manifest(curated: CuratedSet, spec: CurationSpec, data: bytes, fmt: str, created_by: str | None = None) -> dict:
    """The manifest of an export: rows, typed columns, sha256 of the data file, parameters, lineage."""
    return {
        "rows": curated.table.num_rows,
        "columns": [{"name": f.name, "type": str(f.type)} for f in curated.table.schema],
        "format": fmt,
        "sha256": hashlib.sha256(data).hexdigest(),
        "filters": spec.to_dict(),
        "source": curated.report["source"],
        "model_versions": curated.report["model_versions"],
        "composition_before": curated.report["composition_before"],
        "composition_after": curated.report["composition_after"],
        "report": {
            k: v for k, v in curated.report.items() if k not in ("source", "composition_before", "composition_after")
        },
        "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "created_by": created_by or getpass.getuser(),
    }


@dataclass(frozen=True)
class CurationResult:
    """An exported retraining set: its manifest and where it was written (the result contract, family
    ``curation``; it is not recorded as gate evidence, the decision attaches the manifest instead)."""

    family: ClassVar[str] = "curation"

    manifest: dict[str, Any]
    data_path: Path

    @property
    def verdict(self) -> str:
        """Always "exported": an empty set is refused before anything is written."""
        return "exported"

    @property
    def verdict_text(self) -> str:
        """Rows, the data file and its hash, in a line."""
        return f"{self.manifest['rows']:,} rows → {self.data_path} (sha256 {self.manifest['sha256'][:16]}…)"

    @property
    def reasons(self) -> tuple[str, ...]:
        """What the cleaning steps removed, each with its count."""
        report = self.manifest["report"]
        return (
            f"conflicts dropped {report['conflicts_dropped']:,}",
            f"identical rows removed {report.get('identical_feature_rows_removed', 0):,}",
            f"outliers removed {report.get('outliers_removed', {}).get('rows', 0):,}",
        )

    def evidence(self) -> dict[str, Any]:
        """The manifest (what a decision attaches)."""
        return self.manifest

    def to_frame(self) -> pd.DataFrame:
        """One row per column of the data file: name and type (the manifest's ``columns``)."""
        return pd.DataFrame(self.manifest["columns"], columns=["name", "type"])

    def to_json(self) -> dict[str, Any]:
        """The manifest, as written to manifest.json (the `workbench curate --json` document)."""
        return self.manifest


def run(store: Store, request: CurationRequest) -> CurationResult:
    """Curate and write ``retraining_set.<fmt>`` and ``manifest.json`` into the request's folder."""
    curated = curate(store, request.spec)
    if curated.table.num_rows == 0:
        raise InputError("the curated set is empty: widen the filters (are there labelled predictions in the window?)")
    data = data_bytes(curated, request.fmt)
    out = Path(request.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data_path = out / f"retraining_set.{request.fmt}"
    data_path.write_bytes(data)
    document = manifest(curated, request.spec, data, request.fmt, request.created_by)
    (out / "manifest.json").write_text(json.dumps(document, indent=2, sort_keys=True, default=str) + "\n")
    return CurationResult(document, data_path)


def export(
    store: Store, spec: CurationSpec, out_dir: str | Path, fmt: str = "parquet", created_by: str | None = None
) -> dict:
    """The manifest of :func:`run` for ``spec`` written into ``out_dir`` (a shorthand for scripts and notebooks)."""
    return run(store, CurationRequest(spec, Path(out_dir), fmt, created_by)).to_json()
