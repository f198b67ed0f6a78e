"""What the A/B page asks for: cached analyses, the arms in the store, the calculator, evidence.

The page renders these; the statistics stay in :mod:`workbench.abtest.analyse` and :mod:`workbench.stats`.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pandas as pd
import streamlit as st

from workbench.abtest.analyse import analyse_store, analyse_summary, load_settings
from workbench.abtest.result import ABTestResult
from workbench.core.window import Window
from workbench.sources.store import Store
from workbench.sources.store_queries import filtered_predictions

CALCULATOR_PROPORTIONS = pd.DataFrame({"arm": ["control", "variant"], "n": [10_000, 10_000],
                                       "successes": [3_000, 3_150]})  # fmt: skip
CALCULATOR_MEANS = pd.DataFrame({"arm": ["control", "variant"], "n": [5_000, 5_000], "mean": [52.0, 53.1],
                                 "std": [30.0, 31.0]})  # fmt: skip


def settings_with(alpha: float, adjustment: str, tuning_n: float, margin: float) -> Any:
    """The [abtest] settings with the page's overrides."""
    return replace(load_settings(), alpha=alpha, adjustment=adjustment, sequential_tuning_n=tuning_n,
                   guardrail_margin=margin)  # fmt: skip


@st.cache_data(show_spinner=False, max_entries=16)
def experiment_arms(path: str, version: tuple, window: Window | None, arm_source: str) -> list[str]:
    """Distinct arms (the ``arm`` role, or model versions) among predictions in the window, sorted."""
    del version
    with Store(path).ibis() as con:
        p = filtered_predictions(con, window)
        if arm_source == "auto":
            arm_source = "arm" if int(p.arm.count().execute()) > 0 else "model_version"
        frame = p.filter(p[arm_source].notnull()).select(arm=p[arm_source].cast("string")).distinct().execute()
    return sorted(frame["arm"].tolist())


@st.cache_data(show_spinner=False, max_entries=16)
def cached_store_result(
    path: str,
    version: tuple,
    window: Window | None,
    metrics: tuple[str, ...],
    guardrails: tuple[str, ...],
    control: str | None,
    arm_source: str,
    cuped: bool,
    settings: Any,
    _progress: Any = None,
) -> ABTestResult:
    """:func:`workbench.abtest.analyse.analyse_store`, cached per store path, data version and inputs."""
    del version
    say = (lambda message: _progress(label=f"A/B analysis: {message}…")) if _progress else None
    return analyse_store(Store(path), window, list(metrics), list(guardrails), control, arm_source, cuped, settings,
                         progress=say)  # fmt: skip


def summary_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The calculator table's rows as typed-in summaries (blank rows dropped)."""
    rows = []
    for record in frame.to_dict("records"):
        if not str(record.get("arm") or "").strip() or record.get("arm") != record.get("arm"):
            continue
        rows.append(
            {k: ("" if v is None or (isinstance(v, float) and math.isnan(v)) else v) for k, v in record.items()}
        )
    return rows


def calculator_result(frame: pd.DataFrame, settings: Any, control: str | None = None) -> ABTestResult:
    """:func:`workbench.abtest.analyse.analyse_summary` over the calculator table."""
    return analyse_summary(summary_rows(frame), control or None, settings)


def record_once(store: Store, result: ABTestResult, key: tuple) -> None:
    """Record the run (``record_run(store, "abtest", …)``) once per result shown in this session."""
    from workbench.sources.evidence import record_run

    done = st.session_state.setdefault("abtest_recorded", set())
    key = repr((str(store.path), *key, result.verdict))
    if key not in done:
        record_run(store, "abtest", result.verdict_word, result.summary())
        done.add(key)


def saved_upload(upload: Any) -> str:
    """Write an uploaded file into this session's upload folder; return its path."""
    from pathlib import Path

    from workbench.app.ui import upload_folder

    target = upload_folder() / f"abtest-{Path(upload.name).name}"
    target.write_bytes(upload.getvalue())
    return str(target)


def uploaded_file(label: str, key: str, help_text: str, empty: str) -> tuple[str, list[str], int]:
    """A file uploader (CSV, Parquet, JSON Lines): the saved file's path, its columns and size; stops the page
    with ``empty`` as a hint until a file is there."""
    from workbench.app.ui import user_errors

    upload = st.file_uploader(label, type=["csv", "tsv", "parquet", "jsonl", "json"], key=key, help=help_text)
    if upload is None:
        st.info(empty, icon=":material/upload_file:")
        st.stop()
    with user_errors():
        path = saved_upload(upload)
        return path, file_columns(path, upload.size), upload.size


@st.cache_data(show_spinner=False, max_entries=8)
def file_columns(path: str, size: int) -> list[str]:
    """The columns of a CSV/Parquet/JSON Lines file (types inferred by DuckDB)."""
    from workbench.sources.files import file_table

    del size  # part of the cache key only
    with file_table(path) as table:
        return list(table.columns)


@st.cache_data(show_spinner=False, max_entries=8)
def cached_shadow_result(path: str, size: int, champion_col: str, challenger_col: str, label_col: str | None,
                         alpha: float) -> Any:  # fmt: skip
    """:func:`workbench.abtest.shadow.analyse_shadow_file`, cached per file and inputs."""
    from workbench.abtest.shadow import analyse_shadow_file

    del size
    return analyse_shadow_file(path, champion_col, challenger_col, label_col, alpha)


@st.cache_data(show_spinner=False, max_entries=8)
def cached_file_result(path: str, size: int, arm_col: str, metric_col: str, kind: str | None,
                       denominator_col: str | None, pre_col: str | None, settings: Any) -> ABTestResult:  # fmt: skip
    """:func:`workbench.abtest.analyse.analyse_file`, cached per file and inputs."""
    from workbench.abtest.analyse import analyse_file

    del size
    return analyse_file(path, arm_col, metric_col, kind, denominator_col, pre_col, None, settings)
