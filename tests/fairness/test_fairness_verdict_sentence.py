"""Issue 18: a failing audit's sentence names every failing group (worst ratio first), not three and "and 1 more";
the comparisons in full stay in ``reasons``."""

from __future__ import annotations

from types import SimpleNamespace

from workbench.fairness.audit import verdict_sentence
from workbench.stats.fairness import Comparison, FairnessSettings


def _comparison(group: str, metric: str, ratio: float | None, status: str = "fail") -> Comparison:
    return Comparison(group, metric, 0.3, 0.2, 0.1, (0.05, 0.15), ratio, (1.1, 1.9), 3.0, 0.001, 0.004, True, True,
                      True, True, status)  # fmt: skip


def _ev(comparisons: list[Comparison], text: str = "fail: three reasons; and 1 more") -> SimpleNamespace:
    judgement = SimpleNamespace(verdict="fail", verdict_text=text, reasons=["r"] * len(comparisons))
    return SimpleNamespace(judgement=judgement, comparisons=comparisons, reference="n")


LABELS = {"n": "region=north", "s": "region=south", "e": "region=east", "w": "region=west", "x": "region=x"}


def test_every_failing_group_is_named_worst_first():
    comparisons = [
        _comparison("e", "fpr", 1.4),
        _comparison("s", "fpr", 1.77),
        _comparison("w", "fpr", 1.3),
        _comparison("x", "fpr", 1.5),
        _comparison("s", "fnr", 0.5),
        _comparison("w", "tpr", 1.1, "pass"),
    ]
    text = verdict_sentence(_ev(comparisons), LABELS, FairnessSettings())
    assert text == (
        "fail: 4 groups outside ×0.80–1.25 of region=north's rate with significance: region=south (FNR ratio 0.50, "
        "FPR ratio 1.77); region=x (FPR ratio 1.50); region=east (FPR ratio 1.40); region=west (FPR ratio 1.30)"
    )
    assert "more" not in text


def test_one_failing_comparison_keeps_the_full_sentence():
    ev = _ev([_comparison("s", "fpr", 1.5)], "fail: FPR for region=south is 0.35 vs 0.23 for region=north (…)")
    assert verdict_sentence(ev, LABELS, FairnessSettings()) == ev.judgement.verdict_text
    ev.judgement.verdict = "pass"
    assert verdict_sentence(ev, LABELS, FairnessSettings()) == ev.judgement.verdict_text


def test_an_infinite_ratio_reads_as_such():
    text = verdict_sentence(_ev([_comparison("s", "fpr", None), _comparison("e", "fpr", 1.3)]), LABELS,
                            FairnessSettings())  # fmt: skip
    assert "region=south (FPR ratio ∞)" in text
