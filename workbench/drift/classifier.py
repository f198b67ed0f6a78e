"""The domain classifier of a drift run: a seeded sample of both windows, started beside the statistics.

Whether a model can tell the windows apart (cross-validated AUC of scikit-learn's HistGradientBoosting,
:func:`workbench.stats.domain.domain_classifier`) is the multivariate drift signal; here are the engine's
side of it (the samples) and its scheduling on DuckDB cursors.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any

from workbench.drift import queries as q
from workbench.sources import cursors
from workbench.stats.domain import domain_classifier
from workbench.stats.drift import DriftSettings
from workbench.stats.drift_verdict import FeatureDrift


def domain_classifier_result(
    ref_table: Any,
    cur_table: Any,
    numeric: list[str],
    categorical: list[str],
    found: list[FeatureDrift],
    settings: DriftSettings,
    early: Future | None = None,
) -> dict[str, Any] | None:
    """The domain classifier on a seeded sample of both windows, over the features that have a verdict.

    ``early``: the classifier started on every feature by :func:`start_domain_classifier`; its result
    is used when every feature has a verdict (the usual case), else the classifier runs again here.
    """
    usable = {f.name for f in found if f.status == "ok"}
    chosen = [f for f in numeric if f in usable], [f for f in categorical if f in usable]
    if early is not None and chosen == (list(numeric), list(categorical)):
        return early.result()
    return _classify(ref_table, cur_table, *chosen, settings)


def start_domain_classifier(
    stack: ExitStack, pool: ThreadPoolExecutor, ref_table: Any, cur_table: Any,
    numeric: list[str], categorical: list[str], settings: DriftSettings, ref_sample: Any = None,
) -> Future | None:  # fmt: skip
    """The domain classifier on every feature, started in ``pool`` beside the per-feature statistics.

    Its sample queries run on cursors of their own (closed with ``stack``); scikit-learn fits the folds two at
    a time, one OpenMP thread each (:func:`workbench.stats.domain.domain_classifier`), sharing the cores with
    the statistics. ``ref_sample``: the reference's sample when already drawn (:func:`classifier_sample`, e.g. kept
    in the cached profile). None when the engine has no cursors (the classifier then runs after the statistics).
    """
    if not (cursors.has_cursors(ref_table) and cursors.has_cursors(cur_table)):
        return None
    ref, cur = (stack.enter_context(cursors.on_cursor(t)) for t in (ref_table, cur_table))
    return pool.submit(_classify, ref, cur, numeric, categorical, settings, ref_sample)


def classifier_sample(table: Any, columns: list[str], settings: DriftSettings) -> Any:
    """The domain classifier's seeded sample of a window (pandas; see :func:`workbench.drift.queries.sample_rows`)."""
    total = table.count().execute()
    return q.sample_rows(table, columns, settings.domain_classifier_rows, int(total), settings.seed)


def _classify(
    ref_table: Any, cur_table: Any, numeric: list[str], categorical: list[str], settings: DriftSettings,
    ref_sample: Any = None,
) -> dict[str, Any] | None:  # fmt: skip
    columns = numeric + categorical
    if not columns:
        return None
    frames = [ref_sample if ref_sample is not None else classifier_sample(ref_table, columns, settings)]
    frames.append(classifier_sample(cur_table, columns, settings))
    result = domain_classifier(
        frames[0], frames[1], numeric, categorical, settings.domain_classifier_folds,
        settings.domain_classifier_margin, settings.seed, settings.min_rows,
    )  # fmt: skip
    return result.to_dict()
