"""PCA reconstruction-error drift of two store windows, per chunk, and what carries an alarm.

The reconstruction (:mod:`workbench.stats.reconstruction`, NannyML's data reconstruction) is fitted on a seeded
sample of the reference (the domain classifier's, ``domain_classifier_rows``); every row of both windows is then
scored in the engine: one query per window gives each chunk's mean error and the window's sums and
cross-product sums of the standardised features, from which the threshold (mean ± ``learned_sigmas``·σ of the
reference's chunk errors), the per-feature and per-pair parts of the change, and the 2-D density difference of
the pair that carries most are computed. The multivariate section's verdict joins this with the domain classifier.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from typing import Any

import duckdb
import ibis
import numpy as np
import pandas as pd

from workbench.core.errors import InputError
from workbench.drift import profile_cache
from workbench.drift.classifier import classifier_sample
from workbench.drift.request import DriftRequest
from workbench.drift.result import DriftResult, window_side
from workbench.sources.chunks import chunk_key
from workbench.sources.store import Store, database_message
from workbench.sources.store_queries import filtered_predictions
from workbench.stats.clean import json_ready
from workbench.stats.drift import DriftSettings, learned_threshold
from workbench.stats.reconstruction import (
    VARIANCE_SHARE,
    ReconstructionModel,
    SecondMoments,
    contributions,
    fit_reconstruction,
    mean_squared_error,
)

DENSITY_BINS = 8  # quantile bins per axis of the top pair's 2-D density difference
TOP_PAIRS = 10  # pairs kept in the result, by |part of the change|
ROUGH_BAND = 10  # reference chunks below which the band's σ is said to be rough


def with_reconstruction(
    store: Store, request: DriftRequest, result: DriftResult, settings: DriftSettings
) -> DriftResult:
    """``result`` with its ``reconstruction`` section: the PCA drift per chunk, its explanation and the verdict.

    The numeric features that have a verdict in ``result`` take part. A section that cannot be computed
    (too few rows or features, one chunk of reference) says why in its ``warning`` and has no alarm.
    """
    numeric = [f.name for f in result.features if f.type == "numeric" and f.status == "ok"]
    try:
        section = reconstruction_drift(store, request, numeric, settings)
    except (InputError, np.linalg.LinAlgError) as error:
        section = _insufficient(numeric, request.chunk_spec, settings, str(error))
    except duckdb.Error as error:  # this section says it; the per-feature results still show
        section = _insufficient(numeric, request.chunk_spec, settings, f"database: {database_message(error)}")
    return replace(result, reconstruction=json_ready({**section, **multivariate_verdict(section, result.multivariate)}))


def reconstruction_drift(
    store: Store, request: DriftRequest, numeric: list[str], settings: DriftSettings
) -> dict[str, Any]:
    """The PCA reconstruction error per chunk of the reference and current windows, its band, alarm and parts.

    The reference's part (the fit on its sample, each of its chunks' error and its moments) is kept in the store's
    ``drift_profiles`` (:func:`reference_part`): a new current window against the same reference scores only its own
    rows (at 20M predictions the reference's 30 days took ~0.9 s of a new window's run, sample and scan).
    """
    chunk = request.chunk_spec
    if len(numeric) < 2:
        raise InputError("the PCA reconstruction needs at least two numeric features with values in both windows")
    with store.ibis() as con:
        ref_table = filtered_predictions(con, request.reference_window)
        cur_table = filtered_predictions(con, request.current_window)
        part, key, fresh = reference_part(con, request.reference_window, ref_table, numeric, chunk, settings)
        model, ref_chunks, ref_moments = part.model, part.chunks.copy(), part.moments
        cur_chunks, cur_moments = chunk_errors(cur_table, model, chunk)
        if not ref_moments.n or not cur_moments.n:
            raise InputError("a window has no rows for the PCA reconstruction")
        features, pairs = contributions(model, ref_moments, cur_moments)
        if mean_squared_error(model, cur_moments) < mean_squared_error(model, ref_moments):
            features, pairs = features[::-1], pairs[::-1]  # the error fell: what lowered it most comes first
        top = pairs[0]["features"]
        density = pair_density(ref_table, cur_table, top, [part.edges[name] for name in top])
    if fresh:  # one short write with no connection open; a store that cannot be written (busy, a lake) skips it
        profile_cache.save_profile(store, key, part.packed())
    used, left_out = list(model.features), part.left_out
    ref_chunks["period"], cur_chunks["period"] = "reference", "current"
    lower, upper = learned_threshold(ref_chunks.loc[ref_chunks["rows"] >= settings.min_rows, "error"],
                                     settings.learned_sigmas)  # fmt: skip
    judged = ref_chunks["rows"].ge(settings.min_rows).sum()
    warning = None
    if judged < 2:
        warning = f"the reference has {judged} chunk(s) of {chunk} with {settings.min_rows}+ rows; a band needs 2"
        lower = upper = float("nan")
    chunks = pd.concat([ref_chunks, cur_chunks], ignore_index=True)
    readable = chunks["rows"].ge(settings.min_rows) & np.isfinite(upper)
    chunks["alert"] = np.where(readable, (chunks["error"] > upper) | (chunks["error"] < lower), None)
    alerts = chunks[(chunks["period"] == "current") & chunks["alert"].eq(True)]
    return {
        "method": "pca_reconstruction",
        "features": used,
        "left_out": left_out,
        "sample_rows": model.n_rows,
        "sample_limit": settings.domain_classifier_rows,
        "variance_share": VARIANCE_SHARE,
        "n_components": model.n_components,
        "explained_variance": float(model.explained.sum()),
        "chunk": str(chunk),
        "threshold": {"lower": lower, "upper": upper, "sigmas": settings.learned_sigmas},
        "chunks": chunks.assign(chunk=chunks["chunk"].astype(str)).to_dict(orient="records"),
        "alarm": bool(len(alerts)) if warning is None else None,
        "n_alerts": len(alerts),
        "n_current_chunks": int(cur_chunks["rows"].ge(settings.min_rows).sum()),
        "n_reference_chunks": int(judged),
        "fit_share": model.n_rows / ref_moments.n,  # the reference's rows the PCA was fitted on
        "first_alert": str(alerts["chunk"].iloc[0]) if len(alerts) else None,
        "mean_squared_error": {
            "reference": mean_squared_error(model, ref_moments),
            "current": mean_squared_error(model, cur_moments),
        },
        "feature_contributions": features,
        "pair_contributions": pairs[:TOP_PAIRS],  # in the direction of the change, largest first
        "top_pair": density,
        "warning": warning,
    }


RECONSTRUCTION_VERSION = 1  # of the reference part kept in drift_profiles (its key and its fields)


@dataclass(frozen=True)
class ReferencePart:
    """What the reconstruction needs of the reference alone: the fit on its sample, the features left out (constant
    or empty in the sample), each used feature's density edges, each chunk's ``chunk, rows, error`` and the
    window's :class:`SecondMoments`."""

    model: ReconstructionModel
    left_out: list[str]
    edges: dict[str, np.ndarray]
    chunks: pd.DataFrame
    moments: SecondMoments

    def packed(self) -> dict[str, Any]:
        """JSON-ready (floats by their shortest repr, so :meth:`unpacked` gives the same bits; chunks as ISO text)."""
        m, chunks, moments = self.model, self.chunks, self.moments
        model = {name: getattr(m, name).tolist() for name in _MODEL_ARRAYS}
        return {
            "kind": "pca_reconstruction",
            "model": {**model, "features": list(m.features), "n_rows": m.n_rows},
            "left_out": self.left_out,
            "edges": {f: e.tolist() for f, e in self.edges.items()},
            "chunks": {
                "chunk": [c.isoformat() for c in chunks["chunk"]],
                "dtype": str(chunks["chunk"].dtype),
                "rows": chunks["rows"].tolist(),
                "error": chunks["error"].tolist(),
            },
            "moments": {"n": moments.n, "sums": moments.sums.tolist(), "products": moments.products.tolist()},
        }

    @classmethod
    def unpacked(cls, entry: dict[str, Any]) -> ReferencePart:
        """Inverse of :meth:`packed`."""
        m, c, s = entry["model"], entry["chunks"], entry["moments"]
        arrays = (np.array(m[name], dtype=float) for name in _MODEL_ARRAYS)
        model = ReconstructionModel(tuple(m["features"]), *arrays, int(m["n_rows"]))
        labels = pd.to_datetime(pd.Series(c["chunk"], dtype=object), utc=True).astype(c["dtype"])
        chunks = pd.DataFrame({"chunk": labels, "rows": np.array(c["rows"], dtype=int),
                               "error": np.array(c["error"], dtype=float)})  # fmt: skip
        moments = SecondMoments(int(s["n"]), np.array(s["sums"], dtype=float), np.array(s["products"], dtype=float))
        edges = {f: np.array(e, dtype=float) for f, e in entry["edges"].items()}
        return cls(model, list(entry["left_out"]), edges, chunks, moments)


_MODEL_ARRAYS = ("means", "scales", "center", "components", "explained")  # ReconstructionModel's, in its order


def reference_part(
    con: Any, reference: Any, ref_table: Any, numeric: list[str], chunk: str | int, settings: DriftSettings
) -> tuple[ReferencePart, str, bool]:
    """(the reference's :class:`ReferencePart`, its cache key, whether it was just computed).

    Kept in the store's ``drift_profiles`` under a key of the reference window, its row count and newest ingest id
    (new rows there make a new one, as for the reference profile), the features, the chunk, the sample's size and
    seed; a lake keeps none. Computed: the PCA fitted on the domain classifier's seeded sample, then one query.
    """
    fingerprint = profile_cache.reference_fingerprint(ref_table)
    key = profile_cache.profile_key({"kind": "pca_reconstruction", "version": RECONSTRUCTION_VERSION,
                                     "reference": window_side(reference, 0), "numeric": numeric, "chunk": str(chunk),
                                     "sample_rows": settings.domain_classifier_rows, "seed": settings.seed,
                                     "min_rows": settings.min_rows,
                                     "variance_share": VARIANCE_SHARE, **fingerprint})  # fmt: skip
    found = profile_cache.load_profile(con.con, key) if hasattr(con, "con") else None
    if isinstance(found, dict) and found.get("kind") == "pca_reconstruction":
        return ReferencePart.unpacked(found), key, False
    sample = classifier_sample(ref_table, numeric, settings).astype("float64")
    used = [f for f in numeric if sample[f].notna().any() and sample[f].nunique() > 1]
    if len(used) < 2:
        raise InputError("the PCA reconstruction needs at least two numeric features that vary in the reference")
    if len(sample) < settings.min_rows:
        raise InputError(f"the reference sample has {len(sample)} rows; the PCA needs at least {settings.min_rows}")
    model = fit_reconstruction(sample[used].to_numpy(), used)
    chunks, moments = chunk_errors(ref_table, model, chunk)
    edges = {f: density_edges(sample[f].to_numpy()) for f in used}
    return ReferencePart(model, [f for f in numeric if f not in used], edges, chunks, moments), key, True


def _insufficient(numeric: list[str], chunk: str | int, settings: DriftSettings, why: str) -> dict[str, Any]:
    return {"method": "pca_reconstruction", "features": numeric, "left_out": [], "sample_rows": 0,
            "sample_limit": settings.domain_classifier_rows, "variance_share": VARIANCE_SHARE, "n_components": None,
            "explained_variance": None, "chunk": str(chunk), "threshold": None, "chunks": [], "alarm": None,
            "n_alerts": 0, "n_current_chunks": 0, "n_reference_chunks": 0, "fit_share": None,
            "first_alert": None, "mean_squared_error": None,
            "feature_contributions": [], "pair_contributions": [], "top_pair": None, "warning": why}  # fmt: skip


def _centred(table: Any, model: ReconstructionModel) -> dict[str, Any]:
    """The centred standardised features as Ibis columns ``_z0…``: missing values take the mean (z = 0)."""
    return {
        f"_z{i}": ((table[name].cast("float64") - float(mean)) / float(scale)).fill_null(0.0) - float(centre)
        for i, (name, mean, scale, centre) in enumerate(
            zip(model.features, model.means, model.scales, model.center, strict=True)
        )
    }


def chunk_errors(table: Any, model: ReconstructionModel, chunk: str | int) -> tuple[pd.DataFrame, SecondMoments]:
    """(per chunk: ``chunk, rows, error`` (mean ‖z − ẑ‖), the window's :class:`SecondMoments`), in one query.

    The squared error is the quadratic form ``zᵀMz`` (``M``: :attr:`ReconstructionModel.residual_matrix`),
    computed by the engine on every row; chunks as :func:`workbench.sources.chunks.chunk_key` makes them.
    """
    keyed = chunk_key(table, chunk)
    z = keyed.mutate(**_centred(keyed, model))
    d, m = len(model.features), model.residual_matrix
    col = lambda i: z[f"_z{i}"]  # noqa: E731
    pairs = list(itertools.combinations_with_replacement(range(d), 2))
    square = sum((m[i, j] * (1 if i == j else 2)) * col(i) * col(j) for i, j in pairs)
    error = ibis.greatest(square, 0.0).sqrt()
    sums = {f"_s{i}": col(i).sum() for i in range(d)}
    products = {f"_q{i}_{j}": (col(i) * col(j)).sum() for i, j in pairs}
    frame = z.group_by("chunk").aggregate(rows=z.count(), error=error.mean(), start=z.ts.min(), **sums, **products)
    frame = frame.execute().sort_values("start" if isinstance(chunk, int) else "chunk", ignore_index=True)
    n = int(frame["rows"].sum())
    products_matrix = np.zeros((d, d))
    for i, j in pairs:
        products_matrix[i, j] = products_matrix[j, i] = float(frame[f"_q{i}_{j}"].sum())
    moments = SecondMoments(n, np.array([float(frame[f"_s{i}"].sum()) for i in range(d)]), products_matrix)
    labels = frame["start"] if isinstance(chunk, int) else frame["chunk"]  # row blocks: by their first timestamp
    chunks = pd.DataFrame({"chunk": pd.to_datetime(labels, utc=True), "rows": frame["rows"].astype(int),
                           "error": frame["error"].astype(float)})  # fmt: skip
    return chunks, moments


def _bin(column: Any, edges: np.ndarray) -> Any:
    """0 … len(edges): how many of the inner ``edges`` a value is at or above (an Ibis integer column)."""
    return sum((column >= float(e)).cast("int32") for e in edges) if len(edges) else ibis.literal(0)


def density_edges(values: np.ndarray) -> np.ndarray:
    """The inner edges of a feature's :data:`DENSITY_BINS` quantile bins in the reference sample (ties merged)."""
    levels = np.linspace(0, 1, DENSITY_BINS + 1)[1:-1]
    return np.unique(np.nanquantile(np.asarray(values, dtype=float), levels))


def pair_density(ref_table: Any, cur_table: Any, pair: list[str], edges: list[np.ndarray]) -> dict[str, Any]:
    """The 2-D histogram of ``pair`` in both windows on the reference sample's quantile bins, and the difference.

    ``edges``: each feature's :func:`density_edges`. Shares of each window's rows with both values present (rows ×
    columns: ``pair[1]`` bins × ``pair[0]`` bins); ``difference`` = current − reference, in share points.
    ``edges_x``/``edges_y``: the inner bin edges.
    """
    edges = [np.asarray(e, dtype=float) for e in edges]
    shares = []
    for table in (ref_table, cur_table):
        both = table.filter(table[pair[0]].notnull() & table[pair[1]].notnull())
        keyed = both.mutate(_bx=_bin(both[pair[0]], edges[0]), _by=_bin(both[pair[1]], edges[1]))
        counts = keyed.group_by(["_bx", "_by"]).aggregate(n=keyed.count()).execute()
        grid = np.zeros((len(edges[1]) + 1, len(edges[0]) + 1))
        grid[counts["_by"].to_numpy(dtype=int), counts["_bx"].to_numpy(dtype=int)] = counts["n"].to_numpy(dtype=float)
        shares.append(grid / grid.sum() if grid.sum() else grid)
    return {"features": list(pair), "edges_x": edges[0].tolist(), "edges_y": edges[1].tolist(),
            "reference": shares[0].tolist(), "current": shares[1].tolist(),
            "difference": (shares[1] - shares[0]).tolist()}  # fmt: skip


def multivariate_verdict(section: dict[str, Any], classifier: dict[str, Any] | None) -> dict[str, Any]:
    """The multivariate section's word (drift | no drift | insufficient), its sentence, reasons and explanation.

    Drift when the PCA reconstruction error leaves its band in a chunk of the current window or the domain
    classifier's AUC CI lies above 0.5 + margin; insufficient when neither could judge.
    """
    reasons = []
    pca, clf = section.get("alarm"), None
    if section.get("threshold") and pca is not None:
        t = section["threshold"]
        reasons.append(
            f"PCA reconstruction error outside {t['lower']:.3f}–{t['upper']:.3f} (reference mean ± "
            f"{t['sigmas']:g}σ) in {section['n_alerts']} of {section['n_current_chunks']} current chunks"
            + (f", first {section['first_alert'][:10]}" if section["first_alert"] else "")
            + (f" (the band rests on {section['n_reference_chunks']} reference chunks: rough below {ROUGH_BAND})"
               if section["n_reference_chunks"] < ROUGH_BAND else "")
        )  # fmt: skip
    elif section.get("warning"):
        reasons.append(f"PCA reconstruction: {section['warning']}")
    if classifier and classifier.get("auc") is not None:
        clf = bool(classifier["drift"])
        reasons.append(
            f"domain classifier AUC {classifier['auc']:.3f} (95% CI {classifier['ci_lower']:.3f}–"
            f"{classifier['ci_upper']:.3f}; drift when above {0.5 + classifier['margin']:g})"
        )
    if pca is None and clf is None:
        word = "insufficient"
        text = "multivariate drift: insufficient — neither the PCA reconstruction nor the domain classifier could judge"
    else:
        word = "drift" if (pca or clf) else "no drift"
        said = [s for s, on in (("the PCA reconstruction error left its band", pca),
                                ("the domain classifier tells the windows apart", clf)) if on]  # fmt: skip
        text = (
            f"multivariate drift: yes — {' and '.join(said)}"
            if said
            else "multivariate drift: no — the joint distribution of the features looks like the reference's"
        )
    explanation = explain(section, classifier)
    if word == "drift" and explanation:
        text += f"; {explanation}"
    return {"verdict": word, "verdict_text": text, "reasons": reasons, "explanation": explanation}


def explain(section: dict[str, Any], classifier: dict[str, Any] | None) -> str | None:
    """Which feature and which pair carry the change in reconstruction error, and why, in words.

    The parts are :func:`workbench.stats.reconstruction.contributions`' (in the direction of the change); a pair's
    why is its correlation when it moved by 0.1 or more, else the two features' mean shifts. None when nothing
    was computed.
    """
    pairs, mse = section.get("pair_contributions") or [], section.get("mean_squared_error")
    if not pairs or not mse:
        return None
    change = mse["current"] - mse["reference"]
    part = lambda v: f"{v:+.3f}" + (f", {v / change:.0%}" if abs(change) > 1e-12 else "")  # noqa: E731
    feature, top = section["feature_contributions"][0], pairs[0]
    shifts = {f["feature"]: f["mean_shift"] for f in section["feature_contributions"]}
    spread = f", spread ×{feature['spread_ratio']:.2f}" if feature["spread_ratio"] is not None else ""
    single = f"{feature['feature']} ({part(feature['contribution'])}; mean {feature['mean_shift']:+.2f}σ{spread})"
    a, b = top["features"]
    before, after = top["correlation_reference"], top["correlation_current"]
    if before is not None and after is not None and abs(after - before) >= 0.1:
        why = f"their correlation went from {before:.2f} to {after:.2f}"
    else:
        why = f"they moved together (means {shifts[a]:+.2f}σ and {shifts[b]:+.2f}σ; correlation unchanged)"
    pair = f"the pair {a} × {b} ({part(top['contribution'])}): {why}"
    first, second = (pair, single) if abs(top["contribution"]) > abs(feature["contribution"]) else (single, pair)
    word = "rise" if change >= 0 else "fall"
    text = f"of the {change:+.3f} {word} in mean squared reconstruction error, most comes from {first}, then {second}"
    if classifier and classifier.get("importance"):
        text += f"; the domain classifier separates by {', '.join(r['feature'] for r in classifier['importance'][:2])}"
    return text


def reconstruction_caption(section: dict[str, Any]) -> str:
    """How the PCA was fitted, in words: the sample, the features, the components and the variance they keep."""
    left_out = section.get("left_out") or []
    return (
        f"PCA fitted on a seeded sample of {section['sample_rows']:,} reference rows (at most "
        f"{section['sample_limit']:,}) over {len(section['features'])} numeric features, standardised on the "
        f"reference, missing values at the mean; {section['n_components']} components keep "
        f"{section['explained_variance']:.0%} of the variance (≥ {section['variance_share']:.0%}, NannyML's default). "
        f"Every row of both windows is scored in the engine, per {section['chunk']}."
        + (
            f" The fit used {section['fit_share']:.0%} of the reference's rows: on nearly uncorrelated features "
            "its own rows read a little lower than new ones."
            if (section.get("fit_share") or 0) > 0.5
            else ""
        )
        + (f" Left out (constant or empty): {', '.join(left_out)}." if left_out else "")
    )
