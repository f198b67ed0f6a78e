"""Multivariate drift by a domain classifier: can a model tell the reference rows from the current ones?

A histogram gradient-boosting classifier (scikit-learn) is trained to predict "current" on a
bounded, seeded sample of both windows; its cross-validated ROC AUC is 0.5 when the joint
distributions match. The CI of the out-of-fold AUC is Hanley & McNeil's (1982); drift when the
whole CI lies above 0.5 + margin. Features are ranked by permutation importance (drop in AUC when
the feature's values are shuffled, on the first held-out fold). Same idea as NannyML's domain classifier
and Evidently's "model-based" drift; the inputs are a sample, never the whole table.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class DomainClassifierResult:
    """Cross-validated AUC of reference-vs-current, its CI, the verdict and the features that separate them."""

    auc: float | None
    ci_lower: float | None
    ci_upper: float | None
    margin: float
    drift: bool
    n_reference: int
    n_current: int
    folds: int
    importance: list[dict[str, Any]] = field(default_factory=list)
    warning: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def auc_ci(auc: float, n_pos: int, n_neg: int, confidence: float = 0.95) -> tuple[float, float]:
    """Hanley–McNeil CI of a ROC AUC: SE² = (A(1−A) + (n₁−1)(Q₁−A²) + (n₂−1)(Q₂−A²)) / (n₁n₂).

    Q₁ = A/(2 − A), Q₂ = 2A²/(1 + A). Reference: Hanley & McNeil (1982), Radiology 143:29–36.
    """
    from scipy import stats  # imported where used: ~0.5 s that a check (no classifier) need not pay

    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    se = np.sqrt((auc * (1 - auc) + (n_pos - 1) * (q1 - auc**2) + (n_neg - 1) * (q2 - auc**2)) / (n_pos * n_neg))
    z = stats.norm.ppf(1 - (1 - confidence) / 2)
    return float(max(auc - z * se, 0.0)), float(min(auc + z * se, 1.0))


FIT_THREADS = 2  # the machines we aim at have 2 cores


def rank_auc(y: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """ROC AUC of each row of ``scores`` against the labels ``y`` (1 = positive), ties counted half.

    Mann–Whitney: AUC = (R₁ − n₁(n₁ + 1)/2) / (n₁·n₀), R₁ the positives' sum of mid-ranks; the same number as
    ``sklearn.metrics.roc_auc_score`` (tested), without its input checks (5 ms a call, 26 calls a run).
    """
    from scipy import stats

    positive = np.asarray(y) == 1
    n1, n0 = int(positive.sum()), int((~positive).sum())
    ranks = stats.rankdata(scores, axis=1)
    return (ranks[:, positive].sum(axis=1) - n1 * (n1 + 1) / 2) / (n1 * n0)


def _encode(frame: Any, numeric: list[str], categorical: list[str], codes: dict[str, dict]) -> np.ndarray:
    columns = [frame[c].to_numpy(dtype=float, na_value=np.nan) for c in numeric]
    for c in categorical:
        mapping = codes[c]
        values = frame[c].astype("string").to_numpy(dtype=object, na_value=None)
        columns.append(np.array([mapping.get(v, np.nan) if v is not None else np.nan for v in values], dtype=float))
    return np.column_stack(columns) if columns else np.empty((len(frame), 0))


def domain_classifier(
    reference: Any,
    current: Any,
    numeric: list[str],
    categorical: list[str],
    folds: int = 5,
    margin: float = 0.05,
    seed: int = 0,
    min_rows: int = 30,
) -> DomainClassifierResult:
    """Train reference-vs-current on the two samples (pandas frames); out-of-fold AUC, CI, permutation ranking."""
    # Import scikit-learn first: threadpool_limits only limits the OpenMP runtimes already loaded,
    # and an unlimited one spun on a busy machine (20 s instead of 0.6 s on 2 × 5,000 rows).
    import sklearn.ensemble  # noqa: F401
    from threadpoolctl import threadpool_limits

    # On a few thousand rows OpenMP threads cost more than they give (and spin on a busy machine).
    with threadpool_limits(1):
        return _domain_classifier(reference, current, numeric, categorical, folds, margin, seed, min_rows)


def _domain_classifier(
    reference: Any,
    current: Any,
    numeric: list[str],
    categorical: list[str],
    folds: int,
    margin: float,
    seed: int,
    min_rows: int,
) -> DomainClassifierResult:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold
    from threadpoolctl import ThreadpoolController

    n_ref, n_cur = len(reference), len(current)
    if min(n_ref, n_cur) < max(min_rows, folds * 2):
        return DomainClassifierResult(
            None, None, None, margin, False, n_ref, n_cur, folds, warning="too few rows for the domain classifier"
        )
    # made here, once: the fold threads only set their own OpenMP limit through it (building a controller
    # scans the loaded libraries, which threadpoolctl does not promise to be safe in two threads at once)
    controller = ThreadpoolController()
    codes = {}
    for c in categorical:
        values = sorted(set(reference[c].dropna().astype(str)) | set(current[c].dropna().astype(str)))
        codes[c] = {v: i for i, v in enumerate(values[:250])}  # HGB takes at most 255 categories per feature
    x = np.vstack([_encode(reference, numeric, categorical, codes), _encode(current, numeric, categorical, codes)])
    y = np.concatenate([np.zeros(n_ref), np.ones(n_cur)])
    is_cat = np.array([False] * len(numeric) + [True] * len(categorical))
    names = numeric + categorical
    oof = np.zeros(len(y))
    drops = np.zeros(len(names))
    rng = np.random.default_rng(seed)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    splits = list(splitter.split(x, y))

    def fit(split: tuple[np.ndarray, np.ndarray]) -> tuple[Any, np.ndarray]:  # a fold's model and its held-out scores
        train, test = split
        with controller.limit(limits=1, user_api="openmp"):  # per thread: a new one starts with all the cores
            model = HistGradientBoostingClassifier(
                max_iter=60, max_leaf_nodes=15, early_stopping=False, random_state=seed,
                categorical_features=is_cat if is_cat.any() else None,
            ).fit(x[train], y[train])  # fmt: skip
            return model, model.predict_proba(x[test])[:, 1]

    def score(model: Any, rows: np.ndarray) -> np.ndarray:
        with controller.limit(limits=1, user_api="openmp"):
            return model.predict_proba(rows)[:, 1]

    # The folds fit two at a time, one core each, and the permuted copies are scored in two halves: each
    # fit and each row's score is what it is alone (same models, same numbers in any order).
    with ThreadPoolExecutor(max_workers=FIT_THREADS) as pool:
        fitted = list(pool.map(fit, splits))
        for (_, held_out), (_, test) in zip(fitted, splits, strict=True):
            oof[test] = held_out
        # permutation importance on the first held-out fold (one model is enough to rank); the shuffled
        # copies (one per feature, drawn in the same order as before) are scored together
        test = splits[0][1]
        base = rank_auc(y[test], oof[test][None, :])[0]
        copies = []
        for j in range(len(names)):
            shuffled = x[test].copy()
            shuffled[:, j] = shuffled[rng.permutation(len(test)), j]
            copies.append(shuffled)
        if copies:
            halves = np.array_split(np.vstack(copies), FIT_THREADS)
            scores = np.concatenate(list(pool.map(lambda rows: score(fitted[0][0], rows), halves)))
            drops = base - rank_auc(y[test], scores.reshape(len(names), len(test)))
    auc = float(roc_auc_score(y, oof))
    lower, upper = auc_ci(auc, n_cur, n_ref)
    ranking = sorted(
        ({"feature": n, "auc_drop": float(d)} for n, d in zip(names, drops, strict=True)),
        key=lambda r: -r["auc_drop"],
    )
    return DomainClassifierResult(auc, lower, upper, margin, bool(lower > 0.5 + margin), n_ref, n_cur, folds, ranking)
