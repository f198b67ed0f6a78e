"""Representation audit: shares of predictions vs labelled feedback vs a reference population, chi-square
goodness of fit against scipy, JS distance, under-representation flags and the oversampling factor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial.distance import jensenshannon

from workbench.core.errors import InputError
from workbench.fairness.audit import read_population
from workbench.stats.representation import goodness_of_fit, oversampling_factor, representation


def test_goodness_of_fit_equals_scipy_chisquare_and_js_distance() -> None:
    observed = np.array([120.0, 300.0, 80.0])
    expected = np.array([0.3, 0.5, 0.2])
    fit = goodness_of_fit(observed, expected)
    reference = stats.chisquare(observed, observed.sum() * expected)
    assert fit.statistic == pytest.approx(reference.statistic, rel=1e-12)
    assert fit.p_value == pytest.approx(reference.pvalue, rel=1e-9)
    assert fit.df == 2
    assert fit.js_distance == pytest.approx(jensenshannon(observed / observed.sum(), expected, base=2), abs=1e-12)


def test_a_group_under_represented_in_the_labels_is_flagged_with_the_factor_that_restores_it() -> None:
    rep = representation(["a", "b", "c"], np.array([500, 300, 200]), np.array([100, 60, 10]), threshold=0.2)
    by = {g.group: g for g in rep.groups}
    assert by["c"].under_represented and not by["a"].under_represented
    assert by["c"].share_labelled == pytest.approx(10 / 170) and by["c"].target_share == pytest.approx(0.2)
    assert by["c"].coverage == pytest.approx(10 / 200)
    factor = by["c"].oversampling_factor
    # repeating c's 10 labelled rows ×factor gives c exactly its 20% share, the others unchanged
    assert 10 * factor / (160 + 10 * factor) == pytest.approx(0.2, abs=1e-12)
    assert rep.target_shares() == pytest.approx({"a": 0.5, "b": 0.3, "c": 0.2})


def test_reference_population_sets_the_target_and_names_groups_absent_from_the_data() -> None:
    rep = representation(
        ["a", "b"], np.array([600, 400]), np.array([300, 100]), population={"a": 0.5, "b": 0.3, "z": 0.2}
    )
    by = {g.group: g for g in rep.groups}
    assert rep.target == "reference population"
    assert by["z"].predictions == 0 and by["z"].under_represented and by["z"].oversampling_factor is None
    assert by["b"].target_share == pytest.approx(0.3)
    # z expected but never observed is a valid cell of the fit (it counts against it)
    expected = stats.chisquare([300, 100, 0], 400 * np.array([0.5, 0.3, 0.2]))
    assert rep.labelled_vs_population.statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert any("not in the data" in w for w in rep.warnings)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.integers(1, 500), min_size=2, max_size=6),
    st.floats(0.01, 0.9),
)
def test_oversampling_factor_always_restores_the_target_share(counts: list[int], target: float) -> None:
    counts_arr = np.array(counts, dtype=float)
    total = counts_arr.sum()
    factor = oversampling_factor(counts_arr[0], total, target)
    others = total - counts_arr[0]
    if others == 0:
        return
    assert counts_arr[0] * factor / (others + counts_arr[0] * factor) == pytest.approx(target, rel=1e-9)


def test_population_file_csv_and_toml(tmp_path: Path) -> None:
    csv_path = tmp_path / "pop.csv"
    csv_path.write_text("group,share\nnorth,0.3\nsouth,0.7\n", encoding="utf-8")
    assert read_population(csv_path) == {"north": 0.3, "south": 0.7}
    toml_path = tmp_path / "pop.toml"
    toml_path.write_text('[population]\nnorth = 0.25\n"18-25 × south" = 0.75\n', encoding="utf-8")
    assert read_population(toml_path) == {"north": 0.25, "18-25 × south": 0.75}
    bad = tmp_path / "bad.csv"
    bad.write_text("name,value\nnorth,1\n", encoding="utf-8")
    with pytest.raises(InputError, match="header 'group,share'"):
        read_population(bad)
    bad.write_text("group,share\nnorth,lots\n", encoding="utf-8")
    with pytest.raises(InputError, match="not a number"):
        read_population(bad)
