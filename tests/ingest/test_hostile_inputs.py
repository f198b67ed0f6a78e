"""Hostile files: any column name a file can carry ingests or is refused in one line; working columns,
pseudo-columns, globs and case clashes cannot change what is stored; NaN/inf and implausible times are
quarantined with a reason; limits on columns and cell sizes give one-line errors."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import counts
from workbench.core.errors import InputError
from workbench.ingest.pipeline import ingest_file, ingest_frame
from workbench.sources.store import Store

HEADER = "trace_id,ts,model_version,prediction,score"


def valid_rows(extra_name: str, n: int = 50, value: str = "ok") -> str:
    """A predictions CSV of ``n`` valid rows with one extra column named ``extra_name``."""
    quoted = '"' + extra_name.replace('"', '""') + '"'
    lines = [f"{HEADER},{quoted}"] + [f"t{i},2026-01-0{1 + i % 9} 10:00:00,v1,{i % 2},0.5,{value}" for i in range(n)]
    return "\n".join(lines) + "\n"


def stored(store: Store, sql: str) -> list[tuple]:
    with store.connect() as con:
        return con.execute(sql).fetchall()


@pytest.mark.parametrize(
    "name", ["__status", "__reason", "__row", "__k", "__same_as_first", "__dup_reason", "__identical", "c0", "d0"]
)
def test_a_column_named_like_a_working_column_ingests_every_row(store: Store, tmp_path: Path, name: str) -> None:
    path = tmp_path / "f.csv"
    path.write_text(valid_rows(name), encoding="utf-8")
    result = ingest_file(store, path)
    assert (result.accepted, result.duplicates, result.quarantined) == (50, 0, 0)
    assert stored(store, f'SELECT count(*), min("{name}") FROM predictions') == [(50, "ok")]


def test_a_column_named_rowid_ingests(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text(valid_rows("rowid", value="7"), encoding="utf-8")
    assert ingest_file(store, path).accepted == 50
    assert stored(store, 'SELECT sum("rowid") FROM predictions') == [(350.0,)]


def test_a_text_column_whose_name_has_a_space_or_sql_ingests_and_is_analysed(store: Store, tmp_path: Path) -> None:
    for i, name in enumerate(["my feature", "x; DROP TABLE predictions; --"]):
        path = tmp_path / f"f{i}.csv"
        lines = [f'{HEADER},arm,"{name}"'] + [
            f"s{i}-{j},2026-01-02 10:00:00,v1,1,0.5,{'ab'[j % 2]},{'uv'[j % 3 % 2]}" for j in range(20)
        ]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        assert ingest_file(store, path).accepted == 20
    assert stored(store, "SELECT count(*) FROM predictions") == [(40,)]


def test_a_file_name_with_glob_characters_is_read_literally(store: Store, tmp_path: Path) -> None:
    (tmp_path / "glob*.csv").write_text(valid_rows("x", n=5), encoding="utf-8")
    (tmp_path / "globx.csv").write_text(valid_rows("x", n=5).replace("t", "u"), encoding="utf-8")
    result = ingest_file(store, tmp_path / "glob*.csv")
    assert result.accepted == 5
    assert counts(store)["predictions"] == 5


@pytest.mark.parametrize(("header", "message"), [
    ("country,Country", "columns 'country' and 'Country' differ only in case"),
    ("amount,amount", "column 'amount' appears twice"),
])  # fmt: skip
def test_columns_that_clash_are_refused_in_one_line(store: Store, tmp_path: Path, header: str, message: str) -> None:
    path = tmp_path / "clash.csv"
    path.write_text(f"{HEADER},{header}\nt1,2026-01-02,v1,1,0.5,DE,FR\n", encoding="utf-8")
    with pytest.raises(InputError, match=message):
        ingest_file(store, path)
    assert not store.exists() or counts(store)["predictions"] == 0


def test_a_parquet_case_clash_is_refused(store: Store, tmp_path: Path) -> None:
    frame = pd.DataFrame({"trace_id": ["a"], "ts": ["2026-01-02"], "model_version": ["v1"], "prediction": [1],
                          "country": ["DE"], "Country": ["FR"]})  # fmt: skip
    frame.to_parquet(tmp_path / "clash.parquet")
    with pytest.raises(InputError, match="differ only in case"):
        ingest_file(store, tmp_path / "clash.parquet")


@pytest.mark.parametrize("value", ["NaN", "nan", "inf", "-Infinity", "Infinity"])
def test_a_non_finite_feature_is_quarantined_with_a_reason_in_csv(store: Store, tmp_path: Path, value: str) -> None:
    lines = [f"{HEADER},amount"] + [f"t{i},2026-01-02,v1,1,0.5,{value if i == 0 else i}" for i in range(30)]
    (tmp_path / "f.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = ingest_file(store, tmp_path / "f.csv")
    assert (result.accepted, result.quarantined) == (29, 1)
    assert result.reasons == {"column 'amount' is not a finite number": 1}


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_a_non_finite_feature_is_quarantined_in_every_format(store: Store, tmp_path: Path, fmt: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {"trace_id": ["a", "b", "c", "d"], "ts": ["2026-01-02"] * 4, "model_version": ["v1"] * 4,
               "prediction": [1, 0, 1, 0], "amount": [1.0, float("nan"), float("inf"), -float("inf")]}  # fmt: skip
    path = tmp_path / f"f.{fmt}"
    if fmt == "parquet":  # NaN kept as NaN (pandas would write it as null: missing, which is accepted)
        pq.write_table(pa.table(columns), path)
    else:  # Python's json writes NaN, Infinity and -Infinity as bare tokens
        rows = [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]
        path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    result = ingest_file(store, path)
    assert (result.accepted, result.quarantined) == (1, 3)
    assert result.reasons == {"column 'amount' is not a finite number": 3}


def test_a_non_finite_feature_in_a_data_frame_is_quarantined(store: Store) -> None:
    frame = pd.DataFrame({"trace_id": ["a", "b"], "ts": pd.to_datetime(["2026-01-02", "2026-01-03"], utc=True),
                          "model_version": ["v1", "v1"], "prediction": [1, 0],
                          "amount": [1.0, float("inf")]})  # fmt: skip
    result = ingest_frame(store, frame, "predictions")
    assert (result.accepted, result.quarantined) == (1, 1)


@pytest.mark.parametrize(("ts", "reason"), [
    ("2026-01-02T10:00:00+25:00", "ts has a UTC offset beyond ±14:00"),
    ("epoch", "ts is not a timestamp"),
    ("infinity", "ts is not a timestamp"),
    ("today", "ts is not a timestamp"),
    ("0001-01-01 00:00:00", "ts is outside the plausible range (from 2000-01-01 to 1 days after now)"),
    ("9999-12-31 00:00:00", "ts is outside the plausible range (from 2000-01-01 to 1 days after now)"),
])  # fmt: skip
def test_an_implausible_timestamp_is_quarantined(store: Store, tmp_path: Path, ts: str, reason: str) -> None:
    (tmp_path / "f.csv").write_text(f"{HEADER}\nok,2026-01-02T10:00:00+14:00,v1,1,0.5\nbad,{ts},v1,1,0.5\n", "utf-8")
    result = ingest_file(store, tmp_path / "f.csv")
    assert (result.accepted, result.quarantined, result.reasons) == (1, 1, {reason: 1})


def test_the_plausible_range_is_a_setting(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings_file = tmp_path / "settings.toml"
    settings_file.write_text('[ingest]\nearliest_ts = "1990-01-01"\n', encoding="utf-8")
    monkeypatch.setenv("WORKBENCH_SETTINGS", str(settings_file))
    (tmp_path / "f.csv").write_text(f"{HEADER}\nold,1995-05-05,v1,1,0.5\n", "utf-8")
    assert ingest_file(store, tmp_path / "f.csv").accepted == 1


def test_a_setting_outside_its_range_is_refused_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.ingest.settings import load_settings

    settings_file = tmp_path / "settings.toml"
    settings_file.write_text("[ingest]\nmax_columns = -5\n", encoding="utf-8")
    monkeypatch.setenv("WORKBENCH_SETTINGS", str(settings_file))
    with pytest.raises(InputError, match=r"line 2: \[ingest\] max_columns = -5 is outside its range 1 to 100000"):
        load_settings()


def test_a_wide_file_ingests_with_a_few_dozen_statements(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The work per column stays in the engine: a 2,000-column file costs a few dozen SQL statements, not one
    or more per column (51.6 s before; the time itself is measured in benchmarks/bench_foundation.py)."""
    import duckdb

    names = [f"f{i}" for i in range(2000)]
    lines = [f"{HEADER}," + ",".join(names)]
    lines += [f"t{r},2026-01-02,v1,1,0.5," + ",".join(str(r * i) for i in range(2000)) for r in range(20)]
    (tmp_path / "wide.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    statements = []
    real = duckdb.DuckDBPyConnection.execute

    def counted(con, query, *args, **kwargs):  # type: ignore[no-untyped-def]
        statements.append(query)
        return real(con, query, *args, **kwargs)

    monkeypatch.setattr(duckdb.DuckDBPyConnection, "execute", counted)
    assert ingest_file(store, tmp_path / "wide.csv").accepted == 20
    assert 10 < len(statements) < 120, len(statements)
    with store.connect() as con:
        assert con.execute('SELECT sum("f1999") FROM predictions').fetchone()[0] == sum(r * 1999 for r in range(20))


def test_too_many_columns_are_refused_in_one_line(store: Store, tmp_path: Path) -> None:
    lines = [
        f"{HEADER}," + ",".join(f"f{i}" for i in range(10_000)),
        "t1,2026-01-02,v1,1,0.5," + ",".join("1" * 10_000),
    ]
    (tmp_path / "huge.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="10,005 columns, more than the 5,000 an ingest takes"):
        ingest_file(store, tmp_path / "huge.csv")


def test_a_huge_cell_is_refused_in_one_line(store: Store, tmp_path: Path) -> None:
    (tmp_path / "big.csv").write_text(f"{HEADER},note\nt1,2026-01-02,v1,1,0.5,{'x' * 10_000_000}\n", "utf-8")
    with pytest.raises(
        InputError, match=r"a line \(10,000,0\d\d bytes\) is longer than the 2,000,000 bytes a CSV line may hold"
    ):
        ingest_file(store, tmp_path / "big.csv")
    row = {"trace_id": "t", "ts": "2026-01-02", "model_version": "v1", "prediction": 1, "note": "x" * 1_500_000}
    (tmp_path / "big.jsonl").write_text(json.dumps(row) + "\n", "utf-8")
    with pytest.raises(InputError, match="a cell of column 'note' holds 1,500,000 bytes, more than the 1,000,000"):
        ingest_file(store, tmp_path / "big.jsonl")


NAMES = st.one_of(
    st.text(min_size=1, max_size=24).filter(lambda s: s.strip() and "\x00" not in s and "\n" not in s
                                            and "\r" not in s),
    st.sampled_from(["select", "from", "rowid", "__status", "__reason", "_x", "ts ", "é→中", "a\"b", "a'b", "a;b",
                     "1", "NULL", "order", "group by"]),
)  # fmt: skip


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(NAMES, min_size=1, max_size=4))
def test_any_column_name_ingests_or_is_refused_in_one_line(tmp_path: Path, names: list[str]) -> None:
    store = Store(tmp_path / f"h{uuid.uuid4().hex}.duckdb", lock_timeout_s=2)  # hypothesis replays an example
    frame = pd.DataFrame({"trace_id": ["a", "b"], "ts": ["2026-01-02", "2026-01-03"], "model_version": ["v1", "v1"],
                          "prediction": [1, 0]})  # fmt: skip
    for i, name in enumerate(names):
        if name not in frame.columns:
            frame[name] = [f"v{i}", f"w{i}"]
    path = tmp_path / "names.parquet"
    frame.to_parquet(path)
    try:
        result = ingest_file(store, path)
    except InputError as exc:
        assert "\n" not in str(exc)
        assert not store.exists() or counts(store)["predictions"] == 0
        return
    assert (result.accepted, result.quarantined) == (2, 0)
    with store.connect() as con:
        stored_names = [r[0] for r in con.execute("DESCRIBE predictions").fetchall()]
    assert {n for n in frame.columns} <= set(stored_names)
