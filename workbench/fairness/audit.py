"""Fairness audit: predictions (store, file or data frame) → confusion cells per group → a :class:`FairnessAudit`.

rows (``workbench.fairness.queries``: one label per trace, one GROUP BY) → rates, comparisons with a
reference group, fairlearn's disparities, bootstrap intervals and the verdict (``workbench.stats.fairness*``)
→ sections (over time, champion vs challenger, calibration, representation) → a frozen result shared by the
page, the CLI (`workbench fairness`) and the notebook. ``workbench.fairness.run.run(source, request)`` is the
entry; :func:`store_audit`, :func:`file_audit` and :func:`frame_audit` are its modes, and :func:`audit_store`,
:func:`audit_file`, :func:`audit_frame` the keyword shorthands that build the :class:`FairnessRequest`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from workbench.core.errors import InputError
from workbench.core.window import Window, parse_window
from workbench.fairness import queries as q
from workbench.fairness import sections, tradeoffs
from workbench.fairness.request import FairnessRequest
from workbench.fairness.result import AEQUITAS_NAMES, FairnessAudit, load_settings, read_population, with_overrides
from workbench.sources.store import Store, bounded, quiet_utc, stored_roles
from workbench.sources.store_queries import filtered_predictions, store_bounds
from workbench.stats.fairness import (
    FAIRLEARN_DISPARITIES,
    GROUP_JOINER,
    GROUP_METRICS,
    METRIC_NAMES,
    MISSING_GROUP,
    RATES,
    FairnessSettings,
)
from workbench.stats.fairness_verdict import evaluate
from workbench.stats.representation import representation

Progress = Callable[[str], None]
ROLE_COLUMNS = ("trace_id", "ts", "prediction", "score", "model_version", "label", "ingest_id")
__all__ = [
    "AEQUITAS_NAMES",
    "FairnessAudit",
    "FairnessRequest",
    "Rows",
    "audit_file",
    "audit_frame",
    "audit_rows",
    "audit_store",
    "curation_target_shares",
    "file_audit",
    "frame_audit",
    "load_settings",
    "read_population",
    "store_audit",
    "with_overrides",
]


def resolve_reference(requested: str | None, groups: list[str], labels: dict[str, str], sizes: dict[str, float]) -> str:
    """The reference group: "largest" (most predictions; ties by name) or a group by name or label."""
    if not groups:
        raise InputError("no predictions in scope: widen the time window or check the filters")
    if not requested or requested == "largest":
        return max(groups, key=lambda g: (sizes[g], [-ord(c) for c in g]))
    wanted = requested.strip()
    normal = lambda s: GROUP_JOINER.join(p.strip() for p in s.replace("×", ",").split(","))  # noqa: E731
    for group in groups:
        if wanted in (group, labels[group]) or normal(wanted) == normal(group):
            return group
    raise InputError(f"reference group '{requested}' is not one of: {', '.join(groups[:20])}")


@dataclass(frozen=True)
class Rows:
    """Predictions shaped like :func:`workbench.fairness.queries.store_rows` (any mode), ready to audit.

    ``base`` is the table before the label join (the predictions in scope), for the cheap passes: counting
    groups, score deciles and model versions; in file mode it is ``rows`` itself. ``source`` describes where
    they come from (the JSON's ``source``); ``has_time`` / ``has_versions``: a ts / model-version column;
    ``signals=False``: the thumb and rating columns of ``rows`` are null (not summed).
    """

    rows: Any
    base: Any
    source: dict[str, Any]
    has_time: bool = True
    has_versions: bool = True
    signals: bool = True


def audit_rows(
    scope: Rows, request: FairnessRequest, settings: FairnessSettings | None = None, progress: Progress | None = None
) -> FairnessAudit:
    """The audit of ``scope``'s rows for ``request`` with ``settings`` (default: the request's resolved ones)."""
    started = time.perf_counter()
    settings = settings or request.resolved_settings()
    say = progress or (lambda _: None)
    sensitive = list(request.sensitive)
    rows, base, has_time = scope.rows, scope.base, scope.has_time
    population = request.population_shares()
    unknown = [m for m in settings.verdict_metrics if m not in RATES]
    if unknown:
        raise InputError(f"[fairness] verdict_metrics: unknown rate '{unknown[0]}' (known: {', '.join(RATES)})")
    say("counting groups and model versions")
    bound, spans = q.profile(base, sensitive, scope.has_versions)
    n_groups = q.count_groups(base, sensitive) if bound > settings.max_groups else bound  # exact only when close
    if n_groups > settings.max_groups:
        raise InputError(
            f"{' × '.join(sensitive)} makes {n_groups:,} groups (limit {settings.max_groups}): "
            "choose fewer or coarser attributes"
        )
    edges = q.score_edges(settings.calibration_bins)
    pair = sections.pick_versions(spans, request.champion, request.challenger) if spans is not None else None
    period = sections.overlap_period(spans, pair) if pair else None
    say("confusion cells per group (one GROUP BY)")
    chunk = settings.time_chunk if has_time else None
    by_version = pair is not None or (request.compare_versions and spans is not None)
    frame = q.cells(rows, sensitive, chunk, by_version, edges, period, scope.signals)
    frame = sections.with_group_column(frame, sensitive)
    warnings: list[str] = []
    groups = sections.group_names(frame, extra=list(population or {}))  # a named group absent: n = 0
    labels = sections.group_labels(groups, sensitive)
    cells = sections.cell_array(frame, groups)
    sizes = dict(zip(groups, cells.sum(axis=1), strict=True))
    reference = resolve_reference(request.reference_group or settings.reference_group, groups, labels, sizes)
    say(f"rates, tests and {settings.bootstrap_resamples} bootstrap resamples over {len(groups)} groups")
    ev = evaluate(groups, labels, cells, reference, settings)
    feedback = sections.feedback_rates(
        sections.by_group(frame, groups, ["thumbs", "thumbs_up", "ratings", "rating_sum", "rating_sumsq"]),
        settings.confidence,
    )
    scored = bool(frame["score_n"].sum())  # no labelled score in scope: no calibration section
    calib = sections.calibration(frame, groups, edges if scored else [], settings.confidence)
    rows_out = [_group_row(i, g, sensitive, ev, feedback[i], calib, labels) for i, g in enumerate(groups)]
    say("disparity over time, versions, representation")
    timeline = sections.over_time(frame, groups, reference, settings) if has_time else None
    versions_out = None
    if pair and period is None:
        warnings.append(f"{pair[0]} and {pair[1]} never served at the same time: no champion-vs-challenger comparison")
    elif pair:
        same = frame[frame["in_overlap"].fillna(False).astype(bool)]
        versions_out = sections.versions_section(same, groups, labels, reference, pair, settings)
        versions_out["period"] = {"from": period[0].isoformat(), "to": period[1].isoformat()}
    comparison, mitigation = _tradeoffs(scope, request, frame, spans, pair, (groups, labels), settings, warnings, say)
    rep = representation(
        groups,
        cells.sum(axis=1),
        cells[:, :4].sum(axis=1),
        population,
        settings.under_representation,
        settings.confidence,
    )
    warnings += rep.warnings
    flags = list(ev.judgement.flags) + _extra_flags(groups, labels, ev, rep, timeline)
    conflicting = float(frame["conflicting"].sum())
    label_info = {
        "predictions": int(cells.sum()),
        "labelled": int(cells[:, :4].sum()),
        "conflicting_traces": int(conflicting),
        "conflicts_dropped": int(frame["conflicts_dropped"].sum()),
        "conflict_policy": settings.conflict_policy,
        "label_types": list(settings.label_types) or "all labelled feedback",
        "selection_rate_population": settings.selection_rate_population,
    }
    if label_info["labelled"] == 0:
        warnings.append("no labelled predictions in scope: only selection rates can be audited")
    return FairnessAudit(
        source=scope.source,
        sensitive=tuple(sensitive),
        reference_group=reference,
        groups=tuple(rows_out),
        disparities={k: ev.disparities[k] for k in (*FAIRLEARN_DISPARITIES, *_metric_disparity_names())},
        disparity_intervals={k: list(v) for k, v in ev.intervals.items()},
        flags=tuple(flags),
        verdict=ev.judgement.verdict,
        verdict_text=verdict_sentence(ev, labels, settings),
        reasons=tuple(ev.judgement.reasons),
        labels=label_info,
        over_time=timeline,
        versions=versions_out,
        calibration=calib,
        representation=rep.to_dict(),
        comparison=comparison,
        mitigation=mitigation,
        warnings=tuple(warnings),
        settings=asdict(settings),
        seconds=round(time.perf_counter() - started, 3),
    )


def _tradeoffs(
    scope: Rows,
    request: FairnessRequest,
    frame: Any,
    spans: Any,
    pair: tuple[str, str] | None,
    named: tuple[list[str], dict[str, str]],
    settings: FairnessSettings,
    warnings: list[str],
    say: Progress,
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The model comparison (from the cells frame split by version) and the mitigation preview (one more GROUP BY:
    labelled rows per group, label, prediction and score bin), each when the request asks for it."""
    groups, labels = named
    comparison = mitigation = None
    if request.compare_versions and (spans is None or spans.empty):
        warnings.append("no model versions in scope: no model comparison")
    elif request.compare_versions:
        versions = list(spans["model_version"])
        comparison = tradeoffs.compare_versions(frame, groups, versions, pair, request.disparity, settings)
    if request.mitigate:
        say("score bins per group for the mitigation preview")
        edges = q.score_edges(tradeoffs.MITIGATION_BINS)
        binned = sections.with_group_column(q.cells(scope.rows, request.sensitive, edges=edges, signals=False),
                                            request.sensitive)  # fmt: skip
        counts = tradeoffs.score_counts(binned, groups, tradeoffs.MITIGATION_BINS)
        mitigation = tradeoffs.mitigation(counts, groups, labels, request.mitigate, settings)
    return comparison, mitigation


def verdict_sentence(ev: Any, labels: dict[str, str], settings: FairnessSettings) -> str:
    """The verdict as one sentence that names every failing group.

    One failing comparison keeps the judgement's sentence ('fail: FPR for region=south is 0.35 vs 0.23 for
    region=north (ratio 1.54, p<0.001)'); several name all the failing groups with their ratios, worst first
    ('fail: 4 groups outside ×0.80–1.25 of north's rate with significance: south (FPR ratio 1.77), …'), instead of
    three comparisons and "and 1 more". Each comparison in full stays in the audit's ``reasons``.
    """
    judgement = ev.judgement
    failed = [c for c in ev.comparisons if c.decides and c.status == "fail"]
    if judgement.verdict != "fail" or len(failed) < 2:
        return judgement.verdict_text
    worst: dict[str, list[Any]] = {}
    for c in sorted(failed, key=lambda c: (-abs(math.log(c.ratio)) if c.ratio else -math.inf, c.group, c.metric)):
        worst.setdefault(c.group, []).append(c)
    parts = [
        f"{labels[group]} ({', '.join(f'{METRIC_NAMES[c.metric]} ratio {_ratio(c.ratio)}' for c in comparisons)})"
        for group, comparisons in worst.items()
    ]
    count = f"{len(worst)} group{'s' if len(worst) != 1 else ''}"
    band = f"×{1 / settings.max_ratio:.2f}–{settings.max_ratio:.2f}"
    return f"fail: {count} outside {band} of {labels[ev.reference]}'s rate with significance: {'; '.join(parts)}"


def _ratio(value: float | None) -> str:
    return "∞" if value is None else f"{value:.2f}"


def _metric_disparity_names() -> list[str]:
    return [f"{m}_{kind}" for m in GROUP_METRICS for kind in ("difference", "ratio")]


def _group_row(
    i: int, group: str, sensitive: list[str], ev: Any, feedback: dict, calib: dict, labels: dict[str, str]
) -> dict[str, Any]:
    """One group's JSON row: group, n and the rates first, then intervals, comparisons, feedback and calibration."""
    cells = ev.cells[i]
    values = group.split(GROUP_JOINER)
    row: dict[str, Any] = {
        "group": group,
        "label": labels[group],
        "attributes": dict(zip(sensitive, values, strict=False)),
        "status": ev.judgement.statuses[group],
        "n": int(cells.sum()),
        **{m: ev.rates[m][i].value for m in GROUP_METRICS},
        "n_labelled": int(cells[:4].sum()),
        "positives": int(cells[0] + cells[2]),
        "negatives": int(cells[1] + cells[3]),
        "predicted_positive": int(cells[0] + cells[1] + cells[4]),
        "confusion": {"tp": int(cells[0]), "fp": int(cells[1]), "fn": int(cells[2]), "tn": int(cells[3])},
        "missing_value": MISSING_GROUP in values,
        "ci": {m: [ev.rates[m][i].ci_low, ev.rates[m][i].ci_high] for m in GROUP_METRICS},
        "sufficient": {m: ev.rates[m][i].sufficient for m in GROUP_METRICS},
        "vs_reference": {c.metric: c.to_dict() for c in ev.comparisons if c.group == group},
        **feedback,
        "calibration": {k: v for k, v in calib.get("groups", {}).get(group, {}).items() if k != "bins"} or None,
    }
    return row


def _extra_flags(groups: list[str], labels: dict[str, str], ev: Any, rep: Any, timeline: dict | None) -> list[dict]:
    """Flags beyond the verdict's: single-class labels, missing values, widening gaps, under-represented groups."""
    flags = []
    for i, group in enumerate(groups):
        positives, negatives = ev.cells[i, 0] + ev.cells[i, 2], ev.cells[i, 1] + ev.cells[i, 3]
        if (positives == 0) != (negatives == 0):
            only = "positive" if negatives == 0 else "negative"
            message = f"every label of {labels[group]} is {only}: its TPR/FPR cannot be measured"
            flags.append({"kind": "single_class", "group": group, "metric": None, "message": message})
        if MISSING_GROUP in group.split(GROUP_JOINER):
            flags.append({"kind": "missing_value", "group": group, "metric": None,
                          "message": f"{labels[group]}: {int(ev.cells[i].sum()):,} predictions without a value "
                          "of the attribute, audited as their own group"})  # fmt: skip
    for trend in (timeline or {}).get("trends", []):
        if trend["widening"]:
            flags.append({"kind": "widening_gap", "group": trend["group"], "metric": trend["metric"],
                          "message": f"the {trend['metric']} gap of {labels[trend['group']]} to the reference widens "
                          f"by {trend['slope']:+.3f} per chunk (p_adj={trend['p_adjusted']:.3g})"})  # fmt: skip
    for g in rep.groups:
        if g.under_represented:
            factor = f"; oversample ×{g.oversampling_factor:.2f} to restore it" if g.oversampling_factor else ""
            message = (
                f"{labels.get(g.group, g.group)} is {g.share_labelled:.1%} of the labelled feedback "
                f"vs {g.target_share:.1%} of the {rep.target}{factor}"
            )
            flags.append({"kind": "under_represented", "group": g.group, "metric": None, "message": message})
    return flags


def curation_target_shares(audit: FairnessAudit) -> dict[str, float]:
    """``{group: target share}`` for ``CurationSpec(rebalance_attribute=…, target_shares=…)``.

    The reference population's shares when one was given, else each group's share of predictions;
    only for an audit of one attribute (curation rebalances on one column).
    """
    if len(audit.sensitive) != 1:
        raise InputError("target shares for curation need an audit of exactly one sensitive attribute")
    return dict(audit.representation["target_shares"]) if audit.representation else {}


def store_audit(store: Store, request: FairnessRequest, progress: Progress | None = None) -> FairnessAudit:
    """Audit the store's predictions in the request's window with labels from their feedback."""
    if request.names_columns:
        raise InputError("--label/--prediction/--score/--ts/--version-col need --file (the store has its roles)")
    if not store.exists():
        raise InputError(f"{store.path}: no store here (run `workbench demo` or `workbench ingest` first)")
    settings = request.resolved_settings()
    window = request.window
    if not isinstance(window, Window) and (window is not None or request.model_versions):
        window = parse_window(window, list(request.model_versions), store_bounds(store))
    with store.ibis() as con:
        bad = [c for c in request.sensitive if c in ROLE_COLUMNS]
        if bad:
            declared = ", ".join(stored_roles(con.con).predictions.sensitive) or "none"
            raise InputError(f"'{bad[0]}' is a role column, not a sensitive attribute (declared: {declared})")
        signals = q.has_signals(con, settings)
        rows = q.store_rows(con, window, list(request.sensitive), settings, signals)
        base = filtered_predictions(con, window)
        source = {"mode": "store", "store": str(store.path), "window": _window_text(window), "label": str(store.path)}
        return audit_rows(Rows(rows, base, source, signals=signals), request, settings, progress)


def file_audit(path: str | Path, request: FairnessRequest, progress: Progress | None = None) -> FairnessAudit:
    """Audit a CSV/Parquet/JSON Lines file of predictions with a label column (a row without one is unlabelled)."""
    if not (request.label and request.prediction):
        raise InputError("file mode needs --label and --prediction (and optionally --score)")
    columns = request.file_columns
    with q.file_rows(path, columns["label"], columns["prediction"], list(request.sensitive), columns["score"],
                     columns["ts"], columns["model_version"]) as rows:  # fmt: skip
        source = {"mode": "file", "file": str(path), "label": Path(path).name, "columns": columns}
        scope = Rows(rows, rows, source, columns["ts"] is not None, columns["model_version"] is not None, False)
        return audit_rows(scope, request, None, progress)


def frame_audit(frame: Any, request: FairnessRequest) -> FairnessAudit:
    """Audit an in-memory pandas/Arrow table (notebooks, tests) through the same engine path as a file."""
    import ibis

    if not (request.label and request.prediction):
        raise InputError("a data frame needs the label and prediction columns")
    sensitive = list(request.sensitive)
    con = bounded(quiet_utc(ibis.duckdb.connect()))
    try:
        if hasattr(frame, "isna"):  # pandas: an all-missing attribute has no type; it is text (the "(missing)" group)
            frame = frame.astype({c: "string" for c in sensitive if c in frame and frame[c].isna().all()})
        table = con.create_table("rows", frame)
        columns = request.file_columns
        rows = q.frame_rows(table, columns["label"], columns["prediction"], sensitive, score=columns["score"],
                            ts=columns["ts"], model_version=columns["model_version"],
                            source="the data frame")  # fmt: skip
        scope = Rows(rows, rows, {"mode": "frame", "label": "data frame"}, columns["ts"] is not None,
                     columns["model_version"] is not None, False)  # fmt: skip
        return audit_rows(scope, request)
    finally:
        con.disconnect()


# Shorthands for notebooks, tests and benchmarks: the request's fields as keywords (``model_version`` names a
# file's version column, as ``--version-col``), e.g. ``audit_store(store, ["region"], settings=QUICK)``.


def audit_store(store: Store, sensitive: Sequence[str], **options: Any) -> FairnessAudit:
    """``store_audit(store, FairnessRequest(sensitive, **options))`` (``progress=`` passed on)."""
    progress = options.pop("progress", None)
    return store_audit(store, FairnessRequest(tuple(sensitive), **options), progress)


def audit_file(
    path: str | Path, label: str, prediction: str, sensitive: Sequence[str], **options: Any
) -> FairnessAudit:
    """``file_audit(path, FairnessRequest(sensitive, path=path, label=…, prediction=…, **options))``."""
    progress = options.pop("progress", None)
    if "model_version" in options:
        options["version_col"] = options.pop("model_version")
    request = FairnessRequest(tuple(sensitive), path=Path(path), label=label, prediction=prediction, **options)
    return file_audit(path, request, progress)


def audit_frame(frame: Any, label: str, prediction: str, sensitive: Sequence[str], **options: Any) -> FairnessAudit:
    """``frame_audit(frame, FairnessRequest(sensitive, label=…, prediction=…, **options))``."""
    if "model_version" in options:
        options["version_col"] = options.pop("model_version")
    return frame_audit(frame, FairnessRequest(tuple(sensitive), label=label, prediction=prediction, **options))


def _window_text(window: Window | None) -> str:
    if window is None:
        return "everything"
    parts = []
    if window.start:
        parts.append(f"from {window.start:%Y-%m-%d}")
    if window.end:
        parts.append(f"before {window.end:%Y-%m-%d}")
    if window.model_versions:
        parts.append("versions " + ", ".join(window.model_versions))
    return " ".join(parts) or "everything"
