"""JSON-ready results: no NaN or infinity ever reaches a JSON document."""

from __future__ import annotations

import json
import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from workbench.stats.clean import finite, json_ready


def test_finite_keeps_numbers_and_drops_what_json_cannot_say():
    assert finite(np.float32(0.5)) == 0.5 and isinstance(finite(np.int64(3)), float)
    assert [finite(v) for v in (None, math.nan, math.inf, -np.inf)] == [None, None, None, None]


def test_json_ready_converts_nested_numpy_and_tuples():
    value = {"a": (np.float64(1.5), np.nan), 2: {"b": np.array([1, 2]), "c": np.bool_(True)}, "d": [np.inf, "x"]}
    assert json_ready(value) == {"a": [1.5, None], "2": {"b": [1, 2], "c": True}, "d": [None, "x"]}


leaves = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True), st.text())
trees = st.recursive(leaves, lambda kids: st.lists(kids) | st.dictionaries(st.text(), kids), max_leaves=30)


@given(trees)
def test_json_ready_output_is_always_strict_json(value):
    text = json.dumps(json_ready(value), allow_nan=False)
    assert json.loads(text) == json_ready(value)
