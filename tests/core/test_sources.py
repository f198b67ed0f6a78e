"""The source interface: a store and a file both give an Ibis backend with `predictions`, and the roles."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import GOOD, write
from workbench.core.result import FAMILIES
from workbench.ingest.pipeline import ingest_file
from workbench.sources.base import FileSource, Source, StoreSource
from workbench.sources.evidence import latest_runs, record_once
from workbench.sources.store import Store


def test_a_store_source_reads_the_stored_predictions_and_roles(store: Store, tmp_path: Path) -> None:
    ingest_file(store, write(tmp_path / "p.csv", GOOD))
    source = StoreSource(store)
    assert isinstance(source, Source)
    with source.tables() as con:
        assert con.table("predictions").count().execute() == 3
    assert source.roles().predictions.features == ["amount", "country", "age_band"]
    assert source.label == f"store {store.path}"


def test_a_file_source_reads_the_file_in_place_as_predictions(tmp_path: Path) -> None:
    path = write(tmp_path / "rows.csv", GOOD)
    source = FileSource(path)
    assert isinstance(source, Source)
    with source.tables() as con:
        table = con.table("predictions")
        assert table.count().execute() == 3
        assert set(table.columns) >= {"trace_id", "score", "country"}
    assert source.roles().predictions.sensitive == []


class _Result:
    family = "drift"
    verdict = "drift"
    verdict_text = "2 of 3 features drifted."
    reasons = ("x: PSI 0.3 ≥ 0.1",)

    def evidence(self) -> dict:
        return {"verdict_text": self.verdict_text, "n_drifted": 2}


def test_record_once_records_a_result_once_per_verdict_and_context(store: Store, tmp_path: Path) -> None:
    ingest_file(store, write(tmp_path / "p.csv", GOOD))
    seen: set[str] = set()
    assert record_once(store, _Result(), seen, ("window A",)) is True  # type: ignore[arg-type]
    assert record_once(store, _Result(), seen, ("window A",)) is False  # type: ignore[arg-type]
    assert record_once(store, _Result(), seen, ("window B",)) is True  # type: ignore[arg-type]
    later = _Result()
    later.verdict_text = "2 of 3 features drifted (as of a minute later)."  # type: ignore[misc]
    assert record_once(store, later, seen, ("window A",)) is False  # type: ignore[arg-type]
    run = latest_runs(store)["drift"]
    assert run is not None and run.verdict == "drift" and run.summary == {"verdict_text": "2 of 3 features drifted.",
                                                                          "n_drifted": 2}  # fmt: skip
    with store.connect() as con:
        assert con.execute("SELECT count(*) FROM analysis_runs").fetchone()[0] == 2


def test_the_gate_knows_every_family() -> None:
    assert FAMILIES == ("drift", "abtest", "fairness", "triggers", "quality")


def test_an_unknown_family_is_refused(store: Store, tmp_path: Path) -> None:
    ingest_file(store, write(tmp_path / "p.csv", GOOD))
    odd = _Result()
    odd.family = "weather"  # type: ignore[misc]
    with pytest.raises(ValueError, match="weather"):
        record_once(store, odd, set())  # type: ignore[arg-type]
