"""The exporter's settings (``[metrics]`` in settings.toml): how often the numbers are recomputed, over what."""

from __future__ import annotations

from dataclasses import dataclass

from workbench.core.settings import load_section


@dataclass(frozen=True)
class MetricsSettings:
    """Defaults of ``workbench metrics`` ([metrics] in settings.toml)."""

    # Seconds between two computations of the numbers (a scrape reads the last ones, never recomputes).
    refresh_seconds: float = 300.0
    # Predictions the per-version numbers are taken over: all, last:7d, first:30d or START..END.
    window: str = "all"
    # Feedback types whose labels count for accuracy, coverage and delay (empty: as the stream page,
    # the automated outcome types when there are any, else every labelled type).
    label_types: tuple[str, ...] = ()
    # The drift section: PSI of each feature in the current window against the reference window.
    drift_reference: str = "first:30d"
    drift_current: str = "last:7d"


def metrics_settings() -> MetricsSettings:
    """The [metrics] settings (defaults overridden by settings.toml / $WORKBENCH_SETTINGS)."""
    return load_section(MetricsSettings, "metrics")
