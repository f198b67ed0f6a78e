"""Streamlit glue shared by the entrypoint and the pages: data source, global filters, errors.

Pages stay thin: they read the active store and window from here and render result objects.
Connections are never held open (other processes must be able to write the store); results are
cached by ``st.cache_data`` keyed by the store path, its modification time and the filters.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import streamlit as st

from workbench.core.errors import WorkbenchError
from workbench.core.paths import READ_ONLY_ENV, confine, listed_folders, read_only
from workbench.core.schema import parse_roles
from workbench.core.window import Window
from workbench.ingest.lake import LAKE_PREFIX, open_store
from workbench.ingest.pipeline import ingest_files
from workbench.sources.spark import ENGINE_ENV, ENGINES, REMOTE_ENV, engine_name
from workbench.sources.store import Store, database_message, default_db_path
from workbench.sources.store_queries import StoreSummary, daily_volume, store_summary

MISSING = "—"  # what a table shows where a value does not apply (the reference's ratio to itself), never "None"


def table(data: Any, **kwargs: Any) -> Any:
    """``st.dataframe`` as every page shows a table: no index, the page's width, "—" for a missing value."""
    kwargs.setdefault("hide_index", True)
    kwargs.setdefault("width", "stretch")
    kwargs.setdefault("placeholder", MISSING)
    return st.dataframe(data, **kwargs)


SOURCE_DEFAULT = "Default store"
SOURCE_FILE = "Another DuckDB file"
SOURCE_UPLOAD = "Uploaded files"
SOURCE_LAKE = "Lake folder"
SOURCES = (SOURCE_DEFAULT, SOURCE_FILE, SOURCE_LAKE, SOURCE_UPLOAD)
DATA_ROOTS_ENV = "WORKBENCH_DATA_ROOTS"

# The pages that exist, in navigation order: (script, title, icon, what it answers).
PAGES = [
    ("pages/home.py", "Home", ":material/home:", "What is in the store: volumes, versions, feedback coverage."),
    ("pages/stream.py", "Feedback stream", ":material/monitoring:", "Feedback over time, label delay, triggers."),
    ("pages/drift.py", "Drift", ":material/ssid_chart:", "What moved, since when, how much; does it hurt the model?"),
    ("pages/abtest.py", "A/B test", ":material/science:", "Is the challenger better, guardrails safe, can we stop?"),
    ("pages/fairness.py", "Fairness", ":material/balance:", "Does the model or its feedback treat a group worse?"),
    ("pages/quality.py", "Model quality", ":material/verified:", "How good is the model, with and without labels?"),
    (
        "pages/gate.py",
        "Retrain gate",
        ":material/gavel:",
        "Approve, reject or defer a retrain on the evidence; export the curated retraining set and the decision log.",
    ),
]


def page_header(title: str, caption: str) -> None:
    """Start a page: make sure it runs through the router (app.py), then its title and one-line purpose.

    Streamlit starts in its legacy ``pages/`` mode and leaves it only when ``st.navigation`` first
    runs; a deep link (``/gate``) opened first after a server start would run the page alone,
    without the shared sidebar. Leave that mode and rerun, which goes through app.py to this page.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()
    st.title(title)
    st.caption(caption)


@contextmanager
def user_errors() -> Iterator[None]:
    """Show a project error as one line (``st.error``) and stop the page, never a traceback."""
    try:
        yield
    except WorkbenchError as exc:
        st.error(str(exc), icon=":material/error:")
        st.stop()
    except duckdb.OutOfMemoryException as exc:  # beyond the analysis' memory limit: which setting to raise
        st.error(f"database: {database_message(exc)}", icon=":material/error:")
        st.stop()


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def store_mtime(store: Store) -> float:
    """The store file's modification time: part of every cache key, so a changed store is re-read."""
    return _mtime(store.path)


@st.cache_data(show_spinner="Summarising the store…", max_entries=32)
def cached_summary(path: str, mtime: float, window: Window | None) -> StoreSummary:
    """Store summary, cached per store path, modification time and window."""
    del mtime  # part of the cache key only: a changed store file is a new entry
    return store_summary(open_store(path), window)


@st.cache_data(show_spinner="Counting daily volume…", max_entries=32)
def cached_daily_volume(path: str, mtime: float, window: Window | None) -> Any:
    """Daily volume, cached like :func:`cached_summary`."""
    del mtime
    return daily_volume(open_store(path), window)


def active_store() -> Store:
    """The store the user picked in the sidebar (the default store until they pick another)."""
    return open_store(st.session_state.get("db_path") or default_db_path())


def require_store() -> Store:
    """The active store; when it does not exist yet, say how to make one and stop the page."""
    store = active_store()
    if not store.exists():
        st.info("No store yet: build the demo with `workbench demo` or ingest files first.", icon=":material/database:")
        st.stop()
    return store


def active_window() -> Window | None:
    """The global filters from the sidebar as a :class:`Window` (None: everything)."""
    return st.session_state.get("window")


def summary() -> StoreSummary:
    """Summary of the active store under the active window."""
    store = active_store()
    return cached_summary(str(store.path), _mtime(store.path), active_window())


def volume() -> Any:
    """Daily volume of the active store under the active window."""
    store = active_store()
    return cached_daily_volume(str(store.path), _mtime(store.path), active_window())


def upload_folder() -> Path:
    """This session's temporary folder for uploaded files (created once per session)."""
    return Path(st.session_state.setdefault("upload_dir", tempfile.mkdtemp(prefix="workbench-upload-")))


def save_upload(upload: Any, purpose: str) -> Path:
    """Write an uploaded file into this session's upload folder and return its path.

    The name carries the purpose and Streamlit's file id, so two uploads of one name (or one name used by two
    pages) never overwrite each other: ``abtest-<file_id>-units.csv``.
    """
    file_id = getattr(upload, "file_id", None) or "upload"
    target = upload_folder() / f"{purpose}-{file_id}-{Path(upload.name).name}"
    target.write_bytes(upload.getvalue())
    return target


def _ingest_uploads(files: list[Any], roles_file: Any) -> None:
    folder = upload_folder() / f"ingest-{len(list(upload_folder().glob('ingest-*')))}"
    folder.mkdir()
    paths = []
    for upload in files:
        target = folder / Path(upload.name).name
        target.write_bytes(upload.getvalue())
        paths.append(target)
    roles = parse_roles(roles_file.getvalue().decode("utf-8"), roles_file.name) if roles_file else None
    store = Store(folder / "uploaded.duckdb")
    results = ingest_files(store, paths, roles=roles)  # all or nothing: a failed upload leaves no store
    st.session_state["upload_results"] = [r.to_dict() for r in results]
    st.session_state["upload_db"] = str(store.path)


def data_roots() -> list[Path]:
    """The folders whose DuckDB files a visitor may open: the default store's, then ``$WORKBENCH_DATA_ROOTS``."""
    return [default_db_path().parent.resolve(), *listed_folders(DATA_ROOTS_ENV)]


def _upload_source() -> str | None:
    """The uploader (disabled read-only); the store of the last successful upload, or None before one."""
    if read_only():
        st.sidebar.caption("Uploads are off: this app runs read-only.")
        return None
    with st.sidebar.form("upload", border=False):
        files = st.file_uploader(
            "Predictions and feedback files",
            type=["csv", "tsv", "parquet", "pq", "jsonl", "ndjson", "json", "gz"],
            accept_multiple_files=True,
            help="CSV, Parquet or JSON Lines, optionally gzip-compressed. Ingested into a temporary store.",
        )
        roles_file = st.file_uploader("Roles file (optional)", type=["toml"])
        submitted = st.form_submit_button("Ingest", icon=":material/upload:")
    if submitted and files:
        try:
            with st.spinner("Validating and ingesting…"):
                _ingest_uploads(files, roles_file)
        except WorkbenchError as exc:  # beside the uploader; the data shown so far stays
            st.sidebar.error(f"Upload not ingested: {exc}", icon=":material/error:")
    for result in st.session_state.get("upload_results", []):
        st.sidebar.caption(
            f"{result['source']} → {result['table']}: {result['accepted']:,} accepted, "
            f"{result['duplicates']:,} duplicates, {result['quarantined']:,} quarantined"
        )
    return st.session_state.get("upload_db")


def _data_source() -> None:
    source = st.sidebar.radio("Data source", SOURCES, key="source", help="Where the analyses read from.")
    previous = st.session_state.get("db_path") or str(default_db_path())
    if source == SOURCE_DEFAULT:
        st.session_state["db_path"] = str(default_db_path())
    elif source == SOURCE_FILE:
        typed = st.sidebar.text_input(
            "DuckDB file", key="db_file", placeholder="path/to/store.duckdb",
            help=f"A store inside {', '.join(str(r) for r in data_roots())} (set ${DATA_ROOTS_ENV} to allow more).",
        )  # fmt: skip
        try:
            chosen = confine(typed, data_roots(), "read", DATA_ROOTS_ENV) if typed.strip() else previous
            st.session_state["db_path"] = str(chosen)
        except WorkbenchError as exc:
            st.sidebar.error(str(exc), icon=":material/block:")
            st.session_state["db_path"] = previous
    elif source == SOURCE_LAKE:
        typed = st.sidebar.text_input(
            "Lake folder", key="lake_dir", placeholder="path/to/lake",
            help="predictions/ and feedback/ Parquet folders (hive partitions allowed) and roles.toml, read in place "
            f"through the ingest's rules; inside {', '.join(str(r) for r in data_roots())}.",
        )  # fmt: skip
        try:
            folder = confine(typed, data_roots(), "read", DATA_ROOTS_ENV) if typed.strip() else None
            st.session_state["db_path"] = f"{LAKE_PREFIX}{folder}" if folder else previous
        except WorkbenchError as exc:
            st.sidebar.error(str(exc), icon=":material/block:")
            st.session_state["db_path"] = previous
        _engine_choice()
    else:
        uploaded = _upload_source()
        st.session_state["db_path"] = uploaded or previous
        if not uploaded:
            st.sidebar.caption(f"Showing {Path(previous).name} until an upload is ingested.")
    if source != SOURCE_LAKE and engine_name() != "duckdb":  # a store file always runs on DuckDB
        os.environ[ENGINE_ENV] = "duckdb"
    if read_only():
        st.sidebar.caption(f"Read-only (${READ_ONLY_ENV}): no page writes to a store or a folder.")


def _engine_choice() -> None:
    """The engine of the lake folder's queries: DuckDB in this process, or Apache Spark (local mode, or the
    cluster at $WORKBENCH_SPARK_REMOTE). The pages open their store through ``open_store``, which reads the
    choice from $WORKBENCH_ENGINE (this app serves one user on 127.0.0.1 by default, see Security)."""
    current = engine_name()
    chosen = st.sidebar.radio(
        "Engine", ENGINES, index=ENGINES.index(current), key="engine", horizontal=True,
        help="Spark: the same queries through Ibis' PySpark backend (the first one starts Spark, 5-10 s); "
        f"a cluster through Spark Connect when ${REMOTE_ENV} is set. The numbers are the same.",
    )  # fmt: skip
    os.environ[ENGINE_ENV] = chosen


def _filters(summary: StoreSummary) -> None:
    first = dt.date.fromisoformat(summary.first_ts[:10]) if summary.first_ts else None
    last = dt.date.fromisoformat(summary.last_ts[:10]) if summary.last_ts else None
    window = None
    if first and last:
        # A range that ends on the newest day follows new days as they arrive (live mode, a new ingest);
        # a range the user ended earlier stays where they put it.
        newest, current = st.session_state.get("range_newest"), st.session_state.get("range")
        if newest and last > newest and isinstance(current, tuple) and len(current) == 2 and current[1] == newest:
            st.session_state["range"] = (current[0], last)
        st.session_state["range_newest"] = last
        picked = st.sidebar.date_input(
            "Time range (prediction day, UTC)",
            value=(first, last),
            min_value=first,
            max_value=last,
            key="range",
            bind="query-params",
        )
        versions = [v["model_version"] for v in summary.model_versions]
        chosen = st.sidebar.multiselect(
            "Model versions", versions, key="versions", bind="query-params", placeholder="All versions"
        )
        start, end = (picked[0], picked[1]) if isinstance(picked, tuple) and len(picked) == 2 else (first, last)
        utc = dt.UTC
        window = Window(
            start=dt.datetime.combine(start, dt.time(), utc) if start > first else None,
            end=dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), utc) if end < last else None,
            model_versions=tuple(chosen),
        )
        if window == Window():
            window = None
    st.session_state["window"] = window


def sidebar() -> StoreSummary | None:
    """Render the shared sidebar (data source and global filters); return the unfiltered summary."""
    st.sidebar.title("Feedback Workbench")
    _data_source()
    path = st.session_state.get("db_path")
    if not path:
        st.session_state["window"] = None
        return None
    store = open_store(path)
    if not store.exists():
        st.session_state["window"] = None
        return None
    try:
        full = cached_summary(str(store.path), _mtime(store.path), None)
    except WorkbenchError as exc:
        st.sidebar.error(str(exc))
        st.session_state["window"] = None
        return None
    _filters(full)
    return full
