"""Ibis aggregates for drift: reference profiles (quantile edges, moments, counts) and window counts on them.

The engine does the counting of a current window; only small aggregates leave it: per numeric feature the
counts (and sums) per fine grid bin × decile bin — the decile bin index is the sum of ``x >= edge``
indicators —, per categorical feature its value counts, and per window row and missing counts. Raw values
leave the engine, a few columns at a time (:func:`pulled_in_order`), for the exact KS test under the size
cap and, on DuckDB, for the reference's profile (made once, then cached): its quantiles from sorted values
instead of DuckDB's single-threaded ``quantile_cont`` (see :func:`workbench.drift.engine.reference_pass`).
A reference profile is cached in the store's ``drift_profiles`` table (one short write, see
:mod:`workbench.drift.profile_cache`), so a new current window costs one scan per feature; independent
queries run side by side on cursors (:mod:`workbench.sources.cursors`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

# moved to their own modules; callers still reach them as workbench.drift.queries.<name>
from workbench.sources.cursors import concurrently, has_cursors, on_cursor
from workbench.sources.hashing import HASH_RANGE, with_hash
from workbench.sources.spark import plain_codegen
from workbench.stats.drift import DECILES, merged_edges, sorted_quantiles

NUMERIC_KINDS = ("int", "uint", "float", "decimal")
MOMENT_PARTS = 4  # quantiles in the engine: up to 4 queries, 2 at a time on DuckDB (see _aggregate_row)
GRID_TAIL = 0.001  # the grid spans the reference's 0.1% … 99.9% quantiles; outer bins are open


def is_numeric(dtype: Any) -> bool:
    """Whether an Ibis dtype is numeric (booleans and text are categorical)."""
    return dtype.is_numeric() and not dtype.is_boolean()


def _aggregate_row(table: Any, parts: list[Any]) -> dict[str, Any]:
    """The one-row result of the aggregates of ``parts`` (functions of a table → ``{name: expression}``), a dict.

    On DuckDB each part runs on its own cursor, two at a time in threads: a holistic aggregate
    (``quantile_cont``) is finalised on one thread per query, so 20 columns' quantiles took 3 s in one query
    and 1.8 s as two halves side by side (same calls, same numbers); in four quarters, two at a time, only
    half of the columns' values are held at once (2.5M doubles per column: the run's peak memory).
    Elsewhere: one aggregate of all the parts.
    """

    def run(t: Any, chosen: list[Any]) -> dict[str, Any]:
        aggs = {k: v for part in chosen for k, v in part(t).items()}
        return t.aggregate(**aggs).execute().iloc[0].to_dict() if aggs else {}

    if len(parts) < 2 or not has_cursors(table):
        return run(table, parts)
    out: dict[str, Any] = {}
    with ExitStack() as stack:  # cursors are opened here: the connection serves one call at a time
        bound = [stack.enter_context(on_cursor(table)) for _ in parts]
        for row in concurrently([lambda t=t, p=p: run(t, [p]) for t, p in zip(bound, parts, strict=True)]):
            out.update(row)
    return out


def window_sizes(table: Any, features: list[str]) -> dict[str, Any]:
    """One aggregate: rows, and per feature the non-missing count."""
    aggs = {"__rows": table.count()}
    aggs.update({f"n__{f}": table[f].count() for f in features})
    row = table.aggregate(**aggs).execute().iloc[0]
    return _sizes(row, features)


def _sizes(row: Any, features: list[str]) -> dict[str, Any]:
    return {"rows": int(row["__rows"]), "n": {f: int(row[f"n__{f}"]) for f in features}}


def numeric_moments(table: Any, features: list[str], with_quantiles: bool) -> dict[str, dict[str, Any]]:
    """Per numeric feature: mean, population std, min, max, and (optionally) the deciles and 0.1%/99.9% quantiles.

    Quantiles are ``quantile_cont`` (linear interpolation, = np.quantile). NaN values are left out, as the
    pulled values' (:func:`sorted_moments`) and the counts leave them out. See :func:`moments_and_sizes`.
    """
    return moments_and_sizes(table, features, with_quantiles, None)[0]


def moments_and_sizes(
    table: Any, features: list[str], with_quantiles: bool, counted: list[str] | None
) -> tuple[dict[str, dict[str, Any]], dict[str, Any] | None]:
    """(:func:`numeric_moments` of ``features``, :func:`window_sizes` of ``counted`` or None) in one scan.

    The features are aggregated in (up to) four parts, two at a time on DuckDB (:func:`_aggregate_row`); the
    sizes come along in the first part: no scan of their own.
    """
    if not features and counted is None:
        return {}, None
    probs = [GRID_TAIL, *DECILES, 1 - GRID_TAIL]
    # without quantiles nothing is finalised on one thread: one query, one scan
    step = max(1, -(-len(features) // (MOMENT_PARTS if with_quantiles else 1)))

    def part(t: Any, chosen: range, sizes: bool) -> dict[str, Any]:
        aggs = {}
        for i in chosen:
            x = t[features[i]].cast("float64")
            real = ~x.isnan()  # NaN is not a value here (NULL is left out by every aggregate anyway)
            aggs.update({f"m{i}": x.mean(where=real), f"s{i}": x.std(how="pop", where=real),
                         f"lo{i}": x.min(where=real), f"hi{i}": x.max(where=real)})  # fmt: skip
            if with_quantiles:
                aggs[f"q{i}"] = x.quantile(probs, where=real)
        if sizes:
            aggs.update({"__rows": t.count(), **{f"n__{f}": t[f].count() for f in counted}})
        return aggs

    starts = range(0, max(len(features), 1), step)
    parts = [lambda t, a=a: part(t, range(a, min(a + step, len(features))), a == 0 and counted is not None)
             for a in starts]  # fmt: skip
    row = _aggregate_row(table, parts)
    out: dict[str, Any] = {}
    for i, f in enumerate(features):
        entry = {k: _float(row[f"{k}{i}"]) for k in ("m", "s", "lo", "hi")}
        if with_quantiles:
            entry["q"] = None if row[f"q{i}"] is None else [float(v) for v in row[f"q{i}"]]
        out[f] = entry
    return out, (None if counted is None else _sizes(row, counted))


def sorted_moments(values: np.ndarray) -> dict[str, float | None]:
    """:func:`numeric_moments` without quantiles from a feature's pulled values (sorted, no NaN): mean, population
    std (``np.std``, ddof 0: the Wasserstein normalisation's convention), min, max; None when there are no
    values or the moment is NaN (±inf values: the mean may be ±inf, as the engine's).

    A constant column has std 0 exactly (numpy's mean of n copies of x can be off by an ulp, which would make
    a std of 1e-17 and hide the "constant" warning).
    """
    if not values.size:
        return {"m": None, "s": None, "lo": None, "hi": None}
    lo, hi = float(values[0]), float(values[-1])
    if lo == hi:
        return {"m": lo, "s": 0.0, "lo": lo, "hi": hi}
    with np.errstate(invalid="ignore", over="ignore"):  # ±inf: NaN moments, None as the engine's
        return {"m": _float(np.mean(values)), "s": _float(np.std(values)), "lo": lo, "hi": hi}


def _float(value: Any) -> float | None:
    return None if value is None or value != value else float(value)


def pull_sorted(table: Any, feature: str) -> np.ndarray:
    """The feature's non-missing values, sorted (only called under the KS exact cap)."""
    return pull_sorted_many(table, [feature])[feature]


PULL_VALUES = 4_000_000  # values per pull query (32 MB of doubles): a window's columns come this many at a time
PULL_COLUMNS = 5  # and at most this many columns per query, so that two pulls (and their sorts) share the cores


def pull_sorted_many(table: Any, features: list[str]) -> dict[str, np.ndarray]:
    """:func:`pull_sorted` of several features in ONE engine query: {feature: its non-missing values, sorted}.

    One scan of the columns (a Parquet file decodes them together) and one compile, instead of one per
    column: 20 columns of 500k rows took 0.6 s one by one and 0.06 s together on DuckDB. NULL and NaN are
    left out; numpy's sort releases the GIL, so two pulls in threads sort side by side.
    """
    frame = table.select(*(table[f].cast("float64").name(f"c{i}") for i, f in enumerate(features))).to_pyarrow()
    out = {}
    for i, f in enumerate(features):
        column = frame.column(f"c{i}")
        if column.null_count:
            column = column.drop_null()
        values = np.sort(column.to_numpy())  # NaN sorts last: cut it off
        if values.size and np.isnan(values[-1]):
            values = values[: int(np.argmax(np.isnan(values)))]
        out[f] = values
    del frame
    return out


def pull_groups(features: list[str], rows: int | None) -> list[list[str]]:
    """The features in pull order, grouped for :func:`pull_sorted_many` (``rows``: the window's; None: one by one)."""
    size = 1 if not rows else max(1, min(PULL_COLUMNS, PULL_VALUES // rows))
    return [features[a : a + size] for a in range(0, len(features), size)]


def pulled_in_order(
    table: Any, features: list[str], ahead: int = 2, rows: int | None = None
) -> Iterator[tuple[str, np.ndarray]]:
    """(feature, :func:`pull_sorted` values) for each feature in order, up to ``ahead`` pulls side by side.

    With ``rows`` (the window's row count) the columns are pulled in groups (:func:`pull_groups`), each
    group in one query. On DuckDB each of the ``ahead`` workers pulls on a cursor of its own (the query and
    numpy's sort both release the GIL); at most ``ahead`` groups are pulled before the caller takes them.
    Elsewhere one after the other.
    """
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    groups = pull_groups(features, rows)
    if len(groups) < 2 or not has_cursors(table):
        for group in groups:
            values = pull_sorted_many(table, group)
            yield from ((f, values[f]) for f in group)
        return

    def taken(pull: Any) -> Iterator[tuple[str, np.ndarray]]:  # by the names asked for (a name twice: twice)
        group, future = pull
        values = future.result()
        for f in group:
            yield f, values[f]

    with ExitStack() as stack, ThreadPoolExecutor(max_workers=ahead) as pool:
        cursors = [stack.enter_context(on_cursor(table)) for _ in range(ahead)]
        pending: deque = deque()
        for i, group in enumerate(groups):  # pull i + ahead starts once pull i (same cursor) was taken
            pending.append((group, pool.submit(pull_sorted_many, cursors[i % ahead], group)))
            if len(pending) == ahead:
                yield from taken(pending.popleft())
        while pending:
            yield from taken(pending.popleft())


def grid_spec(quantiles: list[float] | None, bins: int) -> dict[str, float]:
    """The fine grid: ``bins`` equal-width bins between the reference's 0.1% and 99.9% quantiles, open outer bins."""
    if not quantiles:
        return {"lo": 0.0, "width": 1.0, "bins": bins}
    lo, hi = quantiles[0], quantiles[-1]
    if not (np.isfinite(lo) and np.isfinite(hi)):  # over 0.1% of the reference infinite: a unit grid, no NaN keys
        finite = [q for q in (lo, hi) if np.isfinite(q)]
        return {"lo": (finite[0] if finite else 0.0) - 0.5, "width": 1.0 / bins, "bins": bins}
    if not hi > lo:  # (almost) constant reference: a unit-wide grid around its value
        return {"lo": lo - 0.5, "width": 1.0 / bins, "bins": bins}
    return {"lo": lo, "width": (hi - lo) / bins, "bins": bins}


def grid_edges(spec: dict[str, float]) -> np.ndarray:
    """The grid's inner edges lo + j·width, j = 0 … bins."""
    return spec["lo"] + spec["width"] * np.arange(int(spec["bins"]) + 1)


def _bin_keys(x: Any, edges: np.ndarray, spec: dict[str, float]) -> tuple[Any, Any]:
    """(grid key −1 … bins, decile bin = Σ 1[x ≥ e_j]) as Ibis expressions."""
    import ibis

    bins = int(spec["bins"])
    # clipped to [−1, bins] before the floor and the cast: ±inf and huge values fall in the open outer bins
    # (as numpy's clip does in counts_from_values) instead of failing the cast to BIGINT
    scaled = ibis.greatest(ibis.least((x - spec["lo"]) / spec["width"], float(bins)), -1.0)
    key = scaled.floor().cast("int64")  # x is never null or NaN here (filtered)
    return key, _edges_at_or_below(x, [float(e) for e in edges], 0)


def _edges_at_or_below(x: Any, edges: list[float], offset: int) -> Any:
    """Σ_j 1[x ≥ e_j] + offset over sorted ``edges`` as a binary search of nested CASEs (x not null, not NaN).

    The same number as the sum of indicators (edges are sorted, so the count is where x falls among them),
    but ⌈log₂(k + 1)⌉ comparisons per row instead of k comparisons, casts and additions: the decile term
    was two thirds of the projection's cost in the engine's profile of the count query.
    """
    import ibis

    if not edges:
        return ibis.literal(offset, "int64")
    mid = len(edges) // 2
    above = _edges_at_or_below(x, edges[mid + 1 :], offset + mid + 1)
    below = _edges_at_or_below(x, edges[:mid], offset)
    return ibis.ifelse(x >= edges[mid], above, below)


def numeric_counts(table: Any, feature: str, edges: np.ndarray, spec: dict[str, float]) -> dict[str, np.ndarray]:
    """Counts and sums per (grid bin, decile bin) of one feature: arrays ``bin_counts`` (len(edges) + 1),
    ``grid_counts`` and ``grid_sums`` (bins + 2, outer bins first and last). Per chunk, of several features at
    once: :func:`numeric_counts_by`."""
    t = table.filter(table[feature].notnull())
    x = t[feature].cast("float64")
    t = t.filter(~x.isnan())
    x = t[feature].cast("float64")
    key, decile = _bin_keys(x, edges, spec)
    frame = t.group_by(k=key, d=decile).aggregate(n=t.count(), s=x.sum()).execute()
    return split_counts(frame, len(edges), int(spec["bins"]))


def numeric_counts_many(
    table: Any, bins: dict[str, tuple[np.ndarray, dict[str, float]]], templates: dict[str, Any] | None = None
) -> dict[str, dict[str, np.ndarray]]:
    """:func:`numeric_counts` of several features (``{feature: (edges, grid spec)}``) in ONE engine query.

    One aggregate per feature, all in a single ``UNION ALL``: one compile and one round trip instead of
    one per feature, and each branch groups on one integer key ``(grid key + 1)·(len(edges) + 1) + decile bin``
    (a hash aggregate over one integer is faster than over two). Same filters and bin rules as
    :func:`numeric_counts`, so the arrays are the same. ``templates`` (e.g. a cached profile's) keeps the
    compiled SQL of these bins: see :func:`_counts_frame`.
    """
    if not bins:
        return {}
    frame = _counts_frame(table, bins, templates)
    f_all = frame.column("f").to_numpy()
    joint_all = frame.column("j").to_numpy().astype(np.int64)
    n_all = frame.column("n").to_numpy().astype(float)
    s_all = frame.column("s").to_numpy(zero_copy_only=False).astype(float)
    out = {}
    for i, (f, (edges, spec)) in enumerate(bins.items()):
        mine = f_all == i
        width, n_bins = len(edges) + 1, int(spec["bins"])
        k, d = np.divmod(joint_all[mine], width)  # k = grid key + 1 (0 … bins + 1)
        out[f] = {
            "bin_counts": np.bincount(d, weights=n_all[mine], minlength=width),
            "grid_counts": np.bincount(k, weights=n_all[mine], minlength=n_bins + 2),
            "grid_sums": np.bincount(k, weights=s_all[mine], minlength=n_bins + 2),
        }
    return out


def numeric_counts_by(
    table: Any, bins: dict[str, tuple[np.ndarray, dict[str, float]]], by: Any, grid: bool = True
) -> dict[str, Any]:
    """:func:`numeric_counts` with ``by`` of several features in ONE engine query: ``{feature: frame group, k, d,
    n, s}``, the frames of one call per feature (held equal by a test). Without ``grid`` the rows are grouped by
    decile bin alone (k = −1 everywhere: the grid's counts hold only each group's total).

    Drift over time counts every feature per chunk: at 20M predictions (8 features, 2 cores) one query per feature
    took 4.1 s, the stacked branches (one integer key each, as :func:`numeric_counts_many`) ~3 s.
    """
    import pandas as pd

    if not bins:
        return {}
    frame = _counts_union(table, bins, by, grid).execute()
    out = {}
    for i, (f, (edges, _spec)) in enumerate(bins.items()):
        mine = frame[frame["f"] == i]
        k, d = np.divmod(mine["j"].to_numpy(dtype=np.int64), len(edges) + 1)  # k = grid key + 1
        out[f] = pd.DataFrame({"group": mine["group"].to_numpy(), "k": k - 1, "d": d,
                               "n": mine["n"].to_numpy(), "s": mine["s"].to_numpy()})  # fmt: skip
    return out


def _counts_union(
    table: Any, bins: dict[str, tuple[np.ndarray, dict[str, float]]], by: Any = None, grid: bool = True
) -> Any:
    """The Ibis expression of :func:`numeric_counts_many` (and, with ``by``, of :func:`numeric_counts_by`): one
    ``GROUP BY`` per feature under ``UNION ALL`` (without ``grid``: by decile bin alone, grid key −1)."""
    import ibis

    parts = []
    for i, (f, (edges, spec)) in enumerate(bins.items()):
        t = table.filter(table[f].notnull())
        t = t.filter(~t[f].cast("float64").isnan())
        x = t[f].cast("float64")
        key, decile = _bin_keys(x, edges, spec)
        joint = (key + 1) * (len(edges) + 1) + decile if grid else decile
        groups = {"j": joint} if by is None else {"group": by(t), "j": joint}
        part = t.group_by(**groups).aggregate(n=t.count(), s=x.sum())
        parts.append(part.mutate(f=ibis.literal(i, "int32")))
    return ibis.union(*parts, distinct=False)


PERFECT_HT_MAX_BITS = 20  # a perfect hash table of at most 2²⁰ slots per thread and branch (a few MB)
COUNT_SQL_VERSION = 2  # 2: the grid key is clipped before its cast (±inf no longer fails the query)
_SOURCE = "__drift_counts_source__"
_TEMPLATES: dict[str, str] = {}  # this process's compiled count queries, by template key


def _counts_frame(table: Any, bins: dict[str, tuple[np.ndarray, dict[str, float]]], templates: dict | None) -> Any:
    """Run the count query of ``bins`` on ``table`` (a pyarrow table ``j, n, s, f``).

    Building and compiling the Ibis expression (21 features, each a binary search of CASEs) cost more
    than DuckDB's run of it on a new current window. The SQL depends only on the bins and the columns'
    types, so it is compiled once against a placeholder table and kept (in this process and in
    ``templates``, which the reference profile carries into the store's cache); a named DuckDB table or
    view then runs it with its own name in place of the placeholder. Other tables: the Ibis expression.
    SQL from ``templates`` runs only when it carries this machine's signature (:func:`_signature`): a store
    file comes from anywhere (an upload), and text in it must never run as a query unless we wrote it.
    """
    import sqlglot as sg

    sql = count_sql(table, bins, templates)
    if sql is None:
        return _counts_union(table, bins).to_pyarrow()
    op = table.op()  # the table's own (catalog, database,) name, quoted as Ibis' compiler quotes it
    name = sg.table(op.name, db=op.namespace.database, catalog=op.namespace.catalog, quoted=True).sql("duckdb")
    con = table._find_backend().con
    # Each branch's key spans (grid bins + 2) × (deciles + 1) ≈ 10⁵ values, which DuckDB knows from the
    # expression's statistics: a perfect hash table (an array indexed by the key) then groups it, ~10% less
    # CPU than its hash table; DuckDB's default allows that only up to 2¹² keys. Set for this query only.
    keys = max((int(spec["bins"]) + 2) * (len(edges) + 1) for edges, spec in bins.values())
    con.execute(f"SET perfect_ht_threshold = {min(max(keys.bit_length(), 12), PERFECT_HT_MAX_BITS)}")
    try:
        return con.sql(sql.replace(f'"{_SOURCE}"', name)).to_arrow_table()
    finally:
        con.execute("RESET perfect_ht_threshold")


def count_sql(table: Any, bins: dict[str, tuple[np.ndarray, dict[str, float]]], templates: dict | None) -> str | None:
    """The count query's SQL template for ``bins`` (compiled once per process, see :func:`_counts_frame`), or
    None when ``table`` is not a named DuckDB relation. Calling it early lets another thread's count
    query of the same bins find the template compiled."""
    import ibis

    if not has_cursors(table):  # the source's word: a named DuckDB relation (engine checks live in sources)
        return None
    schema = table.select(*bins).schema()
    key = _template_key(schema, bins)
    sql = _TEMPLATES.get(key) or _verified((templates or {}).get(key), key)
    if sql is None:
        sql = ibis.to_sql(_counts_union(ibis.table(schema, name=_SOURCE), bins), dialect="duckdb")
    _TEMPLATES[key] = sql
    if templates is not None:
        templates.clear()  # one entry: the profile keeps only the query of its own bins
        signature = _signature(key, sql)
        if signature is not None:
            templates[key] = {"sql": sql, "signature": signature}
    return sql


def _signing_key() -> bytes | None:
    """This machine's secret for signing cached count queries (32 random bytes in the user's cache directory,
    made on first use), or None when it cannot be read or written (queries are then not cached in the store)."""
    folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "workbench"
    path = folder / "count-query.key"
    try:
        if not path.is_file():  # written whole under a private name, then linked: a reader never sees half a key
            folder.mkdir(parents=True, exist_ok=True)
            draft = folder / f".count-query.key.{secrets.token_hex(8)}"
            with open(os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
                out.write(secrets.token_bytes(32))
            try:
                os.link(draft, path)
            except FileExistsError:  # another process made it first: use theirs
                pass
            finally:
                draft.unlink()
        key = path.read_bytes()
    except OSError:
        return None
    return key if len(key) == 32 else None


def _signature(key: str, sql: str) -> str | None:
    """HMAC-SHA256 of a count query's template key and text under :func:`_signing_key` (None: no key)."""
    secret = _signing_key()
    return None if secret is None else hmac.new(secret, f"{key}\n{sql}".encode(), hashlib.sha256).hexdigest()


def _verified(entry: Any, key: str) -> str | None:
    """The SQL of a cached ``{"sql", "signature"}`` entry when its signature is this machine's, else None."""
    if not isinstance(entry, dict) or not isinstance(entry.get("sql"), str):
        return None
    expected = _signature(key, entry["sql"])
    given = entry.get("signature")
    return (
        entry["sql"]
        if expected is not None and isinstance(given, str) and hmac.compare_digest(expected, given)
        else None
    )


def _template_key(schema: Any, bins: dict[str, tuple[np.ndarray, dict[str, float]]]) -> str:
    """SHA-256 of what the count query's text depends on: columns, their types, edges and grids, Ibis' version and
    :data:`COUNT_SQL_VERSION` (so a profile cached by an older build never runs that build's SQL)."""
    import ibis

    parts = [[f, str(schema[f]), [float(e) for e in edges], spec] for f, (edges, spec) in bins.items()]
    text = json.dumps({"ibis": ibis.__version__, "sql": COUNT_SQL_VERSION, "bins": parts}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def categorical_counts_by(table: Any, features: list[str], by: Any) -> dict[str, Any]:
    """:func:`categorical_counts` with ``by`` of several features in ONE ``UNION ALL`` query: {feature: frame
    ``group, value, n``}, the frames of one call per feature (drift over time: at 20M predictions three categorical
    features by day took 0.79 s in three queries)."""
    if not features:
        return {}
    frame = _categorical_union(table, features, by).execute()
    return {f: frame.loc[frame["f"] == i, ["group", "value", "n"]].reset_index(drop=True)
            for i, f in enumerate(features)}  # fmt: skip


def categorical_counts_many(table: Any, features: list[str]) -> dict[str, dict[str, int]]:
    """Value counts as text of several features (missing left out) in ONE ``UNION ALL`` query: {feature: {value: n}}."""
    if not features:
        return {}
    frame = _categorical_union(table, features).to_pyarrow()
    out: dict[str, dict[str, int]] = {f: {} for f in features}
    for i, value, n in zip(
        frame.column("f").to_pylist(), frame.column("value").to_pylist(), frame.column("n").to_pylist(), strict=True
    ):
        out[features[i]][str(value)] = int(n)
    return out


def _categorical_union(table: Any, features: list[str], by: Any = None) -> Any:
    """One ``GROUP BY [group,] value`` per feature (its text, missing left out) under ``UNION ALL``, numbered ``f``."""
    import ibis

    parts = []
    for i, f in enumerate(features):
        t = table.filter(table[f].notnull())
        groups = {"value": t[f].cast("string")} if by is None else {"group": by(t), "value": t[f].cast("string")}
        parts.append(t.group_by(**groups).aggregate(n=t.count()).mutate(f=ibis.literal(i, "int32")))
    return ibis.union(*parts, distinct=False)


def counts_from_values(
    values: np.ndarray, edges: np.ndarray, spec: dict[str, float], is_sorted: bool = False
) -> dict[str, np.ndarray]:
    """The arrays of :func:`numeric_counts` from values already pulled (exact KS mode, a reference profile on
    DuckDB), with the same bin rules.

    Decile bin = Σ 1[x ≥ e_j]; grid key = floor((x − lo)/width) clipped to −1 … bins. Saves a second
    scan of a column that is in memory anyway. ``is_sorted`` values (as pulled): the decile counts are
    where the edges fall among them, a binary search per edge instead of one per value.
    """
    bins = int(spec["bins"])
    x = np.asarray(values, dtype=float)
    edges = np.asarray(edges, dtype=float)
    if is_sorted:  # x ≥ e_j for the values from searchsorted(x, e_j, "left") on
        bin_counts = np.diff(np.concatenate([[0], np.searchsorted(x, edges, side="left"), [x.size]])).astype(float)
    else:
        bin_counts = np.bincount(np.searchsorted(edges, x, side="right"), minlength=len(edges) + 1).astype(float)
    key = np.clip(np.floor((x - spec["lo"]) / spec["width"]), -1, bins).astype(np.int64) + 1
    return {
        "bin_counts": bin_counts,
        "grid_counts": np.bincount(key, minlength=bins + 2).astype(float),
        "grid_sums": np.bincount(key, weights=x, minlength=bins + 2),
    }


def split_counts(frame: Any, n_edges: int, bins: int) -> dict[str, np.ndarray]:
    """Decile and grid arrays from a ``k, d, n, s`` frame (k = −1 … bins → index 0 … bins + 1)."""
    k = frame["k"].to_numpy(dtype=np.int64) + 1
    d = frame["d"].to_numpy(dtype=np.int64)
    n = frame["n"].to_numpy(dtype=float)
    s = frame["s"].to_numpy(dtype=float)
    return {
        "bin_counts": np.bincount(d, weights=n, minlength=n_edges + 1),
        "grid_counts": np.bincount(k, weights=n, minlength=bins + 2),
        "grid_sums": np.bincount(k, weights=s, minlength=bins + 2),
    }


def categorical_counts(table: Any, feature: str, by: Any = None) -> Any:
    """Value counts of one feature as text (missing values left out), optionally per group: ``[group,] value, n``."""
    t = table.filter(table[feature].notnull())
    groups = {"value": t[feature].cast("string")}
    if by is not None:
        groups = {"group": by(t), **groups}
    return t.group_by(**groups).aggregate(n=t.count()).execute()


def reference_edges(moments: dict[str, Any], values: np.ndarray | None) -> np.ndarray:
    """Decile edges of the reference: from its pulled values (sorted) when we have them, else the engine's quantiles."""
    if values is not None:
        return merged_edges(sorted_quantiles(values, DECILES)) if values.size else np.array([])
    q = moments.get("q")
    return merged_edges(q[1:-1]) if q else np.array([])


def grid_quantiles(moments: dict[str, Any], values: np.ndarray | None) -> list[float] | None:
    """The reference's 0.1% and 99.9% quantiles (the grid's span): of its pulled values (sorted) or the engine's."""
    if values is not None:
        return [float(v) for v in sorted_quantiles(values, [GRID_TAIL, 1 - GRID_TAIL])] if values.size else None
    q = moments.get("q")
    return [q[0], q[-1]] if q else None


def sample_rows(table: Any, columns: list[str], rows: int, total: int, seed: int) -> Any:
    """A seeded sample of about ``rows`` rows of ``columns`` (Bernoulli in the engine, then capped) as pandas.

    DuckDB draws its seeded ``TABLESAMPLE`` (the same rows at any thread count; no per-row hash to pay). An engine
    without one (Spark through Ibis) keeps the rows of :func:`hashed_sample`: the same rows on every such engine.
    """
    from ibis.common.exceptions import UnsupportedOperationError

    t = table.select(*columns)
    if total <= rows:
        frame = t.execute()
    else:
        fraction = min(1.0, 1.2 * rows / total)
        try:
            frame = t.sample(fraction, seed=seed).execute()
        except UnsupportedOperationError:
            if "trace_id" not in table.columns:
                raise
            with plain_codegen(table):
                frame = hashed_sample(table, columns, fraction, seed).execute()
    return frame.head(rows) if len(frame) > rows else frame


def hashed_sample(table: Any, columns: list[str], fraction: float, seed: int) -> Any:
    """The rows of ``table`` whose portable hash of ``trace_id:seed`` falls below ``fraction`` of its range, in the
    hash's order (then by trace id and ``columns``), as an Ibis table of ``columns``.

    The hash is MD5's first 32 bits (:func:`workbench.sources.hashing.with_hash`), so every engine keeps the
    same rows in the same order, whatever order it reads them in; each row is kept with probability ``fraction``
    (to 2⁻³²), independently of the others but for repeated trace ids.
    """
    hashed = with_hash(table, table.trace_id.cast("string") + f":{seed}", "_sample_hash")
    kept = hashed.filter(hashed["_sample_hash"] < int(fraction * HASH_RANGE))
    return kept.order_by(["_sample_hash", "trace_id", *(c for c in columns if c != "trace_id")]).select(*columns)
