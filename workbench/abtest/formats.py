"""One number format per kind of A/B number, shared by the page, the CLI's text report and the tables.

- a rate (a proportion metric's value): ``31.50%`` (2 decimals);
- a difference of rates: percentage points, ``+0.86 pts`` (2 decimals);
- a relative lift: ``+4.8% relative`` in sentences, ``+4.8%`` under a header that says "relative";
- a mean metric's value or difference: 2 decimals and its unit from ``sources.experiment``'s catalogue
  (``52.31 s``, ``+0.05 stars``; no unit for a file's column);
- a p-value: 2 significant digits, ``< 0.0001`` below 10⁻⁴ (not ``7.4e-135``);
- a chance to beat control: ``97.3%`` (``> 99.9%`` and ``< 0.1%`` at the ends, never a rounded 100%);
- a risk (expected loss): unsigned, in the difference's unit, ``0.42 pts``, ``< 0.01 pts`` when negligible.
"""

from __future__ import annotations

from typing import Any

from workbench.sources.experiment import METRICS

P_FLOOR = 0.0001


def unit_of(metric: str) -> str:
    """The metric's unit in the catalogue (``s`` for dwell time, ``stars`` for the rating; "" when it has none)."""
    known = METRICS.get(metric)
    return known.unit if known else ""


def with_unit(text: str, unit: str) -> str:
    """``text`` followed by its unit, if any."""
    return f"{text} {unit}" if unit else text


def rate(value: float | None) -> str:
    """A proportion metric's value in %: ``31.50%``."""
    return "n/a" if value is None else f"{value:.2%}"


def points(value: float | None, unit: bool = True) -> str:
    """A difference of rates in percentage points: ``+0.86 pts`` (``+0.86`` inside an interval)."""
    return "n/a" if value is None else f"{value * 100:+.2f}{' pts' if unit else ''}"


def relative(value: float | None, word: bool = False) -> str:
    """A relative lift: ``+4.8%`` (``+4.8% relative`` with ``word``, where nothing else says it is relative)."""
    return "n/a" if value is None else f"{value:+.1%}{' relative' if word else ''}"


def amount(value: float | None, unit: str = "", signed: bool = False) -> str:
    """A mean metric's value or difference, 2 decimals and its unit: ``52.31 s``, ``+0.05 stars``."""
    if value is None:
        return "n/a"
    return with_unit(f"{value:+,.2f}" if signed else f"{value:,.2f}", unit)


def p_value(p: float | None) -> str:
    """A p-value: ``0.012``, ``< 0.0001`` below 10⁻⁴, ``n/a`` when undefined."""
    if p is None or p != p:
        return "n/a"
    return f"< {P_FLOOR:g}" if p < P_FLOOR else f"{p:.2g}"


def metric_value(c: Any, value: float | None) -> str:
    """A value of comparison ``c``'s metric in its kind's format (a rate in %, a mean with its unit)."""
    return rate(value) if c.kind == "proportion" else amount(value, unit_of(c.metric))


def difference(c: Any, value: float | None, unit: bool = True) -> str:
    """A difference on comparison ``c``'s metric: points for a rate, the metric's unit for a mean."""
    if c.kind == "proportion":
        return points(value, unit)
    return amount(value, unit_of(c.metric) if unit else "", signed=True)


def chance(value: float | None) -> str:
    """A posterior probability to beat control: ``97.3%``; ``> 99.9%`` / ``< 0.1%`` rather than a rounded 100%/0%."""
    if value is None:
        return "n/a"
    return "> 99.9%" if value > 0.999 else "< 0.1%" if value < 0.001 else f"{value:.1%}"


def risk(c: Any, value: float | None) -> str:
    """A risk (expected loss of choosing the variant) on ``c``'s metric: ``0.42 pts``, ``1.30 s``; ``< 0.01 pts``
    below what two decimals show."""
    if value is None:
        return "n/a"
    scaled = value * 100 if c.kind == "proportion" else value
    unit = "pts" if c.kind == "proportion" else unit_of(c.metric)
    return with_unit("< 0.01" if scaled < 0.005 else f"{scaled:,.2f}", unit)
