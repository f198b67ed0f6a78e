"""Analysis settings (thresholds, minimum sizes, defaults) from one TOML file, with defaults in code.

Each analysis declares its settings as a frozen dataclass with defaults; a section of the file
(``[drift]``, ``[abtest]``, ``[fairness]`` …) overrides some of them. The file is the one named by
``--settings`` or ``$WORKBENCH_SETTINGS``, else ``settings.toml`` in the working directory when it
exists. Unknown keys and wrong types are refused with a message that names the line.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from workbench.core.errors import InputError

SETTINGS_ENV = "WORKBENCH_SETTINGS"
DEFAULT_SETTINGS = Path("settings.toml")
T = TypeVar("T")

INF = float("inf")
# The valid range of every numeric setting, inclusive: a value outside is refused at load with the key, its
# line and the range (a negative PSI threshold or bin count would turn every feature into "drifted").
RANGES: dict[str, dict[str, tuple[float, float]]] = {
    "drift": {
        "bins": (2, 1000), "psi_threshold": (0.0, INF), "wasserstein_threshold": (0.0, INF), "js_threshold": (0.0, 1.0),
        "p_value": (0.0, 1.0), "small_reference_rows": (0, INF), "dataset_drift_share": (0.0, 1.0),
        "missing_share_change": (0.0, 1.0), "min_rows": (1, INF), "ks_exact_max_rows": (0, INF),
        "ks_grid_bins": (10, 10_000_000), "max_categories": (1, 100_000), "domain_classifier_rows": (10, 10_000_000),
        "domain_classifier_folds": (2, 20), "domain_classifier_margin": (0.0, 0.5), "learned_sigmas": (0.0, 100.0),
        "over_time_grid_bins": (10, 1_000_000), "band_sigmas": (0.0, 100.0), "score_bins": (2, 100_000),
        "seed": (0, 2**32 - 1),
    },
    "abtest": {
        "alpha": (1e-12, 0.5), "srm_p_threshold": (0.0, 1.0), "sequential_tuning_n": (1.0, INF),
        "guardrail_margin": (0.0, INF), "capping_percentile": (0.5, 1.0), "cuped_lookback_days": (1, 3650),
        "min_units_per_arm": (1, INF), "min_days": (0, 3650), "target_mde_relative": (1e-9, INF),
        "power": (0.01, 0.9999), "max_segment_values": (1, 100_000), "seed": (0, 2**32 - 1),
        "segment_min_n": (1, INF), "heterogeneity_alpha": (1e-12, 0.5),
    },
    "fairness": {
        "max_ratio": (1.0, INF), "four_fifths": (0.0, 1.0), "alpha": (1e-12, 0.5), "min_positives": (0, INF),
        "min_negatives": (0, INF), "min_group_size": (0, INF), "confidence": (0.5, 0.9999),
        "bootstrap_resamples": (0, 1_000_000), "seed": (0, 2**32 - 1), "calibration_bins": (2, 1000),
        "under_representation": (0.0, 1.0), "max_groups": (1, 1_000_000),
    },
    "stream": {
        "labels_complete_share": (0.0, 1.0), "delay_bin_hours": (0.01, 24 * 365), "delay_horizon_days": (0.01, 3650),
        "min_delay_labels": (0, INF), "confidence": (0.5, 0.9999), "live_refresh_seconds": (0.5, 86_400),
        "live_rules_seconds": (1.0, 86_400),
    },
    "ingest": {"max_columns": (1, 100_000), "max_cell_bytes": (1, 1_000_000_000), "latest_ts_ahead_days": (0.0, 3650)},
    "metrics": {"refresh_seconds": (1.0, 86_400)},
    "mlflow": {"timeout_seconds": (1.0, 600.0), "retries": (0, 10)},
}  # fmt: skip


def settings_path(explicit: str | Path | None = None) -> Path | None:
    """The settings file in use: ``explicit``, else $WORKBENCH_SETTINGS, else ./settings.toml if present."""
    if explicit:
        return Path(explicit)
    if os.environ.get(SETTINGS_ENV):
        return Path(os.environ[SETTINGS_ENV])
    return DEFAULT_SETTINGS if DEFAULT_SETTINGS.is_file() else None


def _key_line(text: str, section: str, key: str) -> int:
    in_section = False
    for number, line in enumerate(text.splitlines(), start=1):
        header = re.match(r"\s*\[([^\]]+)\]", line)
        if header:
            in_section = header.group(1).strip() == section
        elif in_section and re.match(rf"\s*{re.escape(key)}\s*=", line):
            return number
    return 0


def _accepts(annotation: Any, value: Any) -> bool:
    """Whether a TOML value fits a dataclass field's annotation (int is accepted for float)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(arg, value) for arg in typing.get_args(annotation))
    if origin is typing.Literal:
        return value in typing.get_args(annotation)
    if origin in (list, tuple):
        (inner, *_) = typing.get_args(annotation) or (Any,)
        return isinstance(value, list) and all(_accepts(inner, v) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    if annotation is type(None):
        return value is None
    if annotation is Any:
        return True
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, annotation)


def load_section(cls: type[T], section: str, path: str | Path | None = None) -> T:
    """Return ``cls`` with its defaults overridden by the ``[section]`` of the settings file (if any)."""
    file = settings_path(path)
    if file is None:
        return cls()
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read settings file {file}: {exc.strerror}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{file}: not valid TOML ({exc})") from None
    values = raw.get(section, {})
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    for key, value in values.items():
        line = _key_line(text, section, key)
        if key not in fields:
            known = ", ".join(fields)
            raise InputError(f"{file} line {line}: [{section}] has no setting '{key}' (known: {known})")
        if not _accepts(hints[key], value):
            raise InputError(f"{file} line {line}: [{section}] {key} = {value!r} is not a valid {hints[key]}")
        if isinstance(value, list) and typing.get_origin(hints[key]) is tuple:
            values[key] = tuple(value)
        bounds = RANGES.get(section, {}).get(key)
        if bounds is not None and isinstance(value, int | float) and not bounds[0] <= value <= bounds[1]:
            low, high = (f"{b:g}" if b != INF else "∞" for b in bounds)
            raise InputError(f"{file} line {line}: [{section}] {key} = {value!r} is outside its range {low} to {high}")
    return cls(**values)
