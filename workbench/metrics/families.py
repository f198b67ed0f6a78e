"""The readings as Prometheus metric families: names, help texts, labels and units.

Names follow Prometheus's conventions (https://prometheus.io/docs/practices/naming/): the ``workbench_``
prefix, the unit last in base units (``_seconds``, ``_ratio`` for a share in [0, 1]), ``_total`` for a count
that only grows (rows quarantined at ingest; a rebuilt store resets it, which Prometheus's ``rate()``
handles; counts over the settings' window can fall, so they are gauges), 0/1
gauges for a yes/no, and labels for what varies (model_version, feature, rule, table, reason). A number
that was not measured (accuracy without labels, a rule without a value) is left out, never NaN.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from workbench.metrics.collector import SECTIONS, Readings

PREFIX = "workbench_"
HOUR_S = 3600.0


def _gauge(name: str, help_text: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(PREFIX + name, help_text, labels=labels or [])


def _counter(name: str, help_text: str, labels: list[str] | None = None) -> CounterMetricFamily:
    return CounterMetricFamily(PREFIX + name, help_text, labels=labels or [])


def _add(family: Any, labels: list[str], value: float | int | bool | None) -> None:
    if value is not None:
        family.add_metric(labels, float(value))


def stream_families(readings: Readings) -> Iterator[Metric]:
    """Per model version: rates, counts, label-delay quantiles; quarantined rows by table and reason."""
    by_version = ["model_version"]
    accuracy = _gauge("online_accuracy_ratio", "Share of labels equal to the prediction.", by_version)
    thumbs_up = _gauge("thumbs_up_ratio", "Thumbs-up share of thumb feedback.", by_version)
    feedback = _gauge("feedback_coverage_ratio", "Share of predictions with any feedback.", by_version)
    labelled = _gauge("label_coverage_ratio", "Share of predictions with a label.", by_version)
    # gauges, not counters: over a window such as last:7d ([metrics] window) these counts also fall
    predictions = _gauge("predictions", "Predictions in the window ([metrics] window).", by_version)
    labels = _gauge("labels", "Labelled feedback rows on the window's predictions.", by_version)
    thumbs = _gauge("thumbs", "Thumb feedback rows on the window's predictions.", by_version)
    delay = _gauge(
        "label_delay_seconds",
        "Delay by which this share of labels had arrived after their prediction (a quantile; mature cohort).",
        ["model_version", "share"],  # not "quantile": that label is reserved for summaries
    )
    censored = _gauge(
        "label_delay_censored", "1 when the delay had no mature cohort (recent labels missing: biased short).",
        by_version,
    )  # fmt: skip
    for v in readings.versions:
        key = [v.model_version]
        _add(accuracy, key, v.online_accuracy)
        _add(thumbs_up, key, v.thumbs_up_rate)
        _add(feedback, key, v.feedback_coverage)
        _add(labelled, key, v.label_coverage)
        _add(predictions, key, v.predictions)
        _add(labels, key, v.labels)
        _add(thumbs, key, v.thumbs)
        for share, hours in sorted(v.label_delay_hours.items()):
            _add(delay, [v.model_version, f"{share:g}"], hours * HOUR_S)
        if v.label_delay_hours:
            _add(censored, key, v.label_delay_censored)
    quarantined = _counter("quarantined_rows", "Rows rejected at ingest, by table and reason.", ["table", "reason"])
    for (table, reason), rows in sorted(readings.quarantined.items()):
        _add(quarantined, [table, reason], rows)
    newest = _gauge("newest_prediction_timestamp_seconds", "Time of the newest prediction in the store (Unix).")
    if readings.as_of is not None:
        _add(newest, [], readings.as_of.timestamp())
    yield from (accuracy, thumbs_up, feedback, labelled, predictions, labels, thumbs, delay, censored, quarantined)
    if readings.section_ok("stream"):
        yield newest


def drift_families(readings: Readings) -> Iterator[Metric]:
    """Per feature: PSI of the current window against the reference, and its drift verdict; the threshold."""
    if readings.drift is None:
        return
    psi = _gauge("drift_psi", "Population stability index of the feature, current window vs reference.", ["feature"])
    drifted = _gauge("drift_feature_drifted", "1 when the drift analysis calls the feature drifted.", ["feature"])
    for feature in readings.drift.features:
        _add(psi, [feature.name], feature.psi)
        _add(drifted, [feature.name], feature.drift if feature.status == "ok" else None)  # insufficient: no verdict
    threshold = _gauge("drift_psi_threshold", "PSI at or above which a feature drifts ([drift] psi_threshold).")
    _add(threshold, [], readings.drift.settings.get("psi_threshold"))
    dataset = _gauge("drift_dataset_drifted", "1 when the drift analysis finds dataset drift.")
    _add(dataset, [], None if readings.drift.verdict == "insufficient" else readings.drift.verdict == "drift")
    yield from (psi, drifted, threshold, dataset)


def rules_families(readings: Readings) -> Iterator[Metric]:
    """Per rule of the rules file: its value now, threshold, whether it fires or failed; whether the set fires."""
    if readings.check is None:
        return
    by_rule = ["rule", "metric"]
    value = _gauge("rule_value", "The rule's metric at its last judged bucket.", by_rule)
    threshold = _gauge("rule_threshold", "The rule's threshold (op: how the value is compared).", [*by_rule, "op"])
    fired = _gauge("rule_fired", "1 when the rule fires now.", by_rule)
    failed = _gauge("rule_error", "1 when the rule could not be evaluated on this store.", by_rule)
    for rule in readings.check.rules:
        key = [rule.name, rule.metric]
        _add(value, key, rule.value)
        _add(threshold, [*key, rule.op], rule.threshold)
        _add(fired, key, rule.fired)
        _add(failed, key, rule.error is not None)
    fires = _gauge("rules_fired", "1 when the rule set fires (workbench check would exit 1).")
    _add(fires, [], readings.check.fired)
    yield from (value, threshold, fired, failed, fires)


def exporter_families(readings: Readings, refreshes: int) -> Iterator[Metric]:
    """When the numbers were computed, how long it took, how often, which sections succeeded."""
    computed = _gauge("metrics_computed_timestamp_seconds", "When these numbers were computed (Unix time).")
    _add(computed, [], readings.computed_at)
    duration = _gauge("metrics_compute_duration_seconds", "How long computing these numbers took.")
    _add(duration, [], readings.seconds)
    count = _counter("metrics_refreshes", "Computations since the exporter started.")
    _add(count, [], refreshes)
    ok = _gauge("metrics_section_ok", "1 when the section was computed, 0 when it failed.", ["section"])
    for section in SECTIONS:
        if section != "rules" or readings.check is not None or "rules" in readings.errors:
            _add(ok, [section], readings.section_ok(section))
    yield from (computed, duration, count, ok)


def families(readings: Readings, refreshes: int = 1) -> list[Metric]:
    """Every metric family of ``readings`` (``refreshes``: how many computations the process has made)."""
    return [
        *stream_families(readings),
        *drift_families(readings),
        *rules_families(readings),
        *exporter_families(readings, refreshes),
    ]
