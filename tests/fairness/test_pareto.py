"""The Pareto front on accuracy (higher) vs disparity (lower): by hand, and against a brute-force definition."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.stats.pareto import dominates, pareto_front


def test_a_hand_example() -> None:
    accuracy = [0.80, 0.85, 0.83, 0.78, np.nan]
    disparity = [0.05, 0.10, 0.12, 0.04, 0.01]
    # 0.83/0.12 is dominated by 0.85/0.10; the others trade accuracy for fairness; NaN is on no front
    assert pareto_front(accuracy, disparity).tolist() == [True, True, False, True, False]
    assert dominates(0.85, 0.10, 0.83, 0.12) and not dominates(0.80, 0.05, 0.85, 0.10)


def test_ties_stay_on_the_front_together() -> None:
    assert pareto_front([0.8, 0.8], [0.1, 0.1]).tolist() == [True, True]
    assert not dominates(0.8, 0.1, 0.8, 0.1)


values = st.floats(0, 1, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(values, values), min_size=1, max_size=8))
def test_front_equals_the_brute_force_definition_and_is_order_free(points) -> None:
    accuracy = np.array([a for a, _ in points])
    disparity = np.array([d for _, d in points])
    front = pareto_front(accuracy, disparity)
    brute = [
        not any(dominates(accuracy[j], disparity[j], accuracy[i], disparity[i]) for j in range(len(points)))
        for i in range(len(points))
    ]
    assert front.tolist() == brute and front.any()
    order = np.argsort(-accuracy, kind="stable")[::-1]
    assert pareto_front(accuracy[order], disparity[order]).tolist() == front[order].tolist()
