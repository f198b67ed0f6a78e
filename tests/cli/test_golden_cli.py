"""The CLI's JSON documents on a demo store equal the golden files saved before the restructure.

Floats are compared to 1e-9 relative: DuckDB sums in parallel, so the last digits of a mean move
from run to run (seen: 54.4540703517588 vs 54.454070351758794).
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from tests.golden.cases import GOLDEN, run_all

REL = 1e-9


def differences(expected: Any, actual: Any, where: str = "$") -> list[str]:
    """Paths at which ``actual`` differs from ``expected`` (floats within REL, all else exactly)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        found = [f"{where}: keys {sorted(set(expected) ^ set(actual))}"] if set(expected) != set(actual) else []
        return found + [
            d for k in expected.keys() & actual.keys() for d in differences(expected[k], actual[k], f"{where}.{k}")
        ]
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return [f"{where}: {len(expected)} items, now {len(actual)}"]
        return [
            d for i, (e, a) in enumerate(zip(expected, actual, strict=True)) for d in differences(e, a, f"{where}[{i}]")
        ]
    if isinstance(expected, float) and isinstance(actual, (int, float)) and not isinstance(actual, bool):
        return [] if math.isclose(expected, actual, rel_tol=REL, abs_tol=1e-12) else [f"{where}: {expected} → {actual}"]
    return [] if expected == actual and type(expected) is type(actual) else [f"{where}: {expected!r} → {actual!r}"]


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run_all(tmp_path_factory.mktemp("golden"))


@pytest.mark.parametrize("name", sorted(p.stem for p in GOLDEN.glob("*.json")))
def test_cli_document_equals_its_golden_file(documents: dict[str, Any], name: str) -> None:
    golden = json.loads((GOLDEN / f"{name}.json").read_text(encoding="utf-8"))
    assert differences(golden, documents[name]) == []


def test_every_case_has_a_golden_file(documents: dict[str, Any]) -> None:
    assert sorted(documents) == sorted(p.stem for p in GOLDEN.glob("*.json"))


def test_differences_sees_a_changed_value() -> None:
    assert differences({"a": [1.0, "x"]}, {"a": [1.0 + 1e-6, "x"]}) == ["$.a[0]: 1.0 → 1.000001"]
    assert differences({"a": 1.0}, {"a": 1.0 + 1e-13}) == []
