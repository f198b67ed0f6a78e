"""The trigger metric's interface: :class:`Metric` (what a metric computes and how its buckets are judged) and
:class:`MetricContext` (what a metric function may read during one check).

Imported by the metric functions (:mod:`workbench.stream.trigger_metrics`), the results
(:mod:`workbench.stream.trigger_results`) and the evaluation (:mod:`workbench.stream.triggers`): the one-way
order is rules → metric → trigger_metrics / trigger_results → triggers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from workbench.core.window import Window
from workbench.sources.store import Store
from workbench.stream.quality import label_delays_many
from workbench.stream.queries import calendar, feedback_arrivals, on_calendar, series_from
from workbench.stream.rules import Param, Rule

NO_VERSION = "\x00no model version"  # a model-version filter that matches no prediction


@dataclass
class MetricContext:
    """What a metric function may read: one open Ibis backend (one snapshot of the store), the store itself
    (for analyses that open their own short read-only connection), the global window, the stream's clock
    and the approved retrains, with per-check caches of shared aggregates."""

    con: Any
    store: Store
    window: Window | None
    as_of: pd.Timestamp
    first: pd.Timestamp
    last: pd.Timestamp
    approvals: tuple[pd.Timestamp, ...] = ()
    cache: dict[Any, Any] = field(default_factory=dict, repr=False)

    def calendar(self, granularity: str) -> pd.DatetimeIndex:
        """Every bucket of ``granularity`` from the window's first to its last prediction."""
        floor = {"hour": "h", "day": "D"}.get(granularity)
        if floor:
            return calendar(self.first.floor(floor), self.last.floor(floor), granularity)
        monday = lambda t: (t - pd.Timedelta(days=t.weekday())).floor("D")  # noqa: E731  ISO weeks, as the engine
        return calendar(monday(self.first), monday(self.last), granularity)

    def window_for(self, rule: Rule) -> Window:
        """The global window narrowed to the rule's model versions."""
        window = self.window or Window()
        if not rule.model_versions:
            return window
        versions = rule.model_versions
        if window.model_versions:
            versions = tuple(v for v in window.model_versions if v in rule.model_versions) or (NO_VERSION,)
        return Window(window.start, window.end, versions)

    def stream(self, rule: Rule, counts: tuple[str, ...], label_types: tuple[str, ...] | None = None) -> pd.DataFrame:
        """Per prediction bucket of the rule's window: ``predictions`` and ``counts`` of ``series_from``,
        zero-filled on the calendar (a rule's own few counts: see ``series_from``'s ``counts``)."""
        window = self.window_for(rule)
        key = ("stream", rule.window, window, label_types, counts)
        if key not in self.cache:
            frame = series_from(self.con, window, rule.window, None, label_types, counts)
            self.cache[key] = on_calendar(frame, self.calendar(rule.window))
        return self.cache[key]

    def arrivals(self, rule: Rule, label_types: tuple[str, ...] | None) -> pd.DataFrame:
        """Labels on the rule's predictions by arrival bucket (:func:`feedback_arrivals` of the label rows only),
        once per check for every rule that reads them (label volume, new labels since the retrain)."""
        window = self.window_for(rule)
        key = ("arrivals", rule.window, window, label_types)
        if key not in self.cache:
            self.cache[key] = feedback_arrivals(self.con, window, rule.window, label_types, labels_only=True)
        return self.cache[key]

    def settle_delays(self, asks: Sequence[tuple[Rule, float, tuple[str, ...] | None]]) -> None:
        """Every (rule, share, label types) delay of :meth:`label_delay_hours` at once, on this snapshot: one join
        per window of the label rows of all their label types (a check's accuracy and fairness rules each joined
        their own, ~1.3 s apiece at 20M predictions), kept for the rules to read."""
        by_window: dict[Window, list[tuple[tuple[str, ...] | None, float]]] = {}
        for rule, share, label_types in asks:
            if ("delay", self.window_for(rule), label_types, share) not in self.cache:
                by_window.setdefault(self.window_for(rule), []).append((label_types, share))
        for window, asked in by_window.items():
            sets = list(dict.fromkeys(label_types for label_types, _share in asked))
            shares = tuple(sorted({share for _label_types, share in asked}))
            if self.con is None:  # an analysis metric, evaluated after the snapshot's connection closed
                with self.store.ibis() as con:
                    delays = label_delays_many(con, window, self.as_of, sets, shares)
            else:
                delays = label_delays_many(self.con, window, self.as_of, sets, shares)
            for label_types, share in asked:
                self.cache[("delay", window, label_types, share)] = delays[sets.index(label_types)].quantile_hours(
                    share
                )

    def label_delay_hours(self, rule: Rule, share: float, label_types: tuple[str, ...] | None) -> float | None:
        """The delay (hours) by which ``share`` of labels arrived (mature cohort, see stream_quality)."""
        self.settle_delays([(rule, share, label_types)])
        return self.cache[("delay", self.window_for(rule), label_types, share)]


@dataclass(frozen=True)
class Metric:
    """A trigger metric. ``series(ctx, rule)`` returns columns bucket (``ctx.calendar(rule.window)``),
    value (NaN where undefined) and n (the sample behind the value).

    ``kind``: "sample" (a rate: ``min_n`` applies to n), "count" (a volume: judged whatever n),
    "running" (a level since an event, judged up to ``as_of`` including the current bucket).
    ``uses_labels``: buckets wait for their labels to settle (key ``labels_settled``).
    ``windows``: the granularities it supports; ``own_connection``: it runs a whole analysis that reads
    the store itself (see :mod:`workbench.stream.trigger_metrics`).
    """

    description: str
    series: Callable[[MetricContext, Rule], pd.DataFrame]
    params: Mapping[str, Param] = field(default_factory=dict)
    kind: str = "sample"
    uses_labels: bool = False
    unit: str = "share"
    windows: tuple[str, ...] = ("hour", "day", "week")  # the granularities the metric can be computed on
    own_connection: bool = False  # an analysis that opens its own connection: evaluated after the snapshot's
