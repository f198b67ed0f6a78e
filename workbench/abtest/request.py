"""The A/B request: :class:`ABTestRequest`, the one description of an analysis the page, CLI and notebook build.

Three modes, one request: ``store`` (the experiment in the store: metrics, guardrails, window, arms source,
CUPED), ``file`` (one row per unit: the arm, metric, denominator and pre-period columns) and ``summary``
(typed-in per-arm results: rows given here, or read from a summary file). Options shared by every mode:
control, planned split, α, the multiple-comparison adjustment and the rest of the ``[abtest]`` settings.
Validated once, in ``__post_init__``: a bad option is a one-line :class:`~workbench.core.errors.InputError`
before anything is read. :func:`workbench.abtest.run.run` takes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from workbench.abtest.result import ABTestSettings, load_settings
from workbench.core.command import split_names
from workbench.core.errors import InputError
from workbench.core.window import Window
from workbench.sources.experiment import metric

MODES = ("store", "file", "summary")
ARM_SOURCES = ("auto", "arm", "model_version")
KINDS = ("proportion", "mean", "ratio")
ADJUSTMENTS = ("holm", "bh", "none")
RATIO_NEEDS_DENOMINATOR = "--type ratio needs --denominator-col (the metric is Σ metric / Σ denominator per arm)"


@dataclass(frozen=True)
class ABTestRequest:
    """An A/B analysis to run: what to analyse and how (the module docstring names the three modes).

    Store mode: ``metrics`` (empty: the settings' metrics), ``guardrails`` (None: the settings'; ``none`` or an
    empty list: no guardrail), ``window`` (None: the whole experiment), ``arm_source`` (``auto``, ``arm``,
    ``model_version``), ``cuped`` (None: the settings'). File mode: ``arm_col``, ``metric_col``, ``kind``
    (proportion, mean, ratio; inferred when None), ``denominator_col`` (ratio), ``pre_col`` (CUPED). Summary
    mode: ``rows`` (typed-in ``arm,n,successes`` or ``arm,n,mean,std`` rows; empty: read the source's file),
    ``metric_name``. Every mode: ``control`` (None: the settings', else a control-like name, else the first),
    ``planned_split`` (``{arm: share}`` or ``"a=0.5,b=0.5"``; empty: the settings'), ``by`` (store and file: a
    column to break every metric's result down by, e.g. ``device``; None: no breakdown; ``segment_min_n``: the
    observations per arm below which a value is too small to read, None: the settings'), ``lower_is_better``
    (file and summary), and overrides of the settings (``alpha``, ``adjustment``, ``sequential_tuning_n``,
    ``guardrail_margin``) over ``settings`` (None: the ``[abtest]`` section of the settings file).
    """

    mode: str = "store"
    metrics: tuple[str, ...] = ()
    guardrails: tuple[str, ...] | None = None
    window: Window | None = None
    arm_source: str = "auto"
    cuped: bool | None = None
    arm_col: str | None = None
    metric_col: str | None = None
    kind: str | None = None
    denominator_col: str | None = None
    pre_col: str | None = None
    rows: tuple[Mapping[str, Any], ...] = ()
    metric_name: str = "conversion"
    control: str | None = None
    planned_split: tuple[tuple[str, float], ...] = ()
    by: str | None = None
    segment_min_n: int | None = None
    lower_is_better: bool = False
    alpha: float | None = None
    adjustment: str | None = None
    sequential_tuning_n: float | None = None
    guardrail_margin: float | None = None
    settings: ABTestSettings | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InputError(f"A/B mode must be store, file or summary, not '{self.mode}'")
        if self.alpha is not None and not 0 < self.alpha < 1:
            raise InputError(f"--alpha must be between 0 and 1, not {self.alpha}")
        if self.adjustment is not None and self.adjustment not in ADJUSTMENTS:
            raise InputError(f"--adjustment must be holm, bh or none, not '{self.adjustment}'")
        if self.sequential_tuning_n is not None and not self.sequential_tuning_n > 0:
            raise InputError(f"the sequential tuning N* must be positive, not {self.sequential_tuning_n}")
        if self.guardrail_margin is not None and not 0 <= self.guardrail_margin < 1:
            raise InputError(f"the guardrail margin must be between 0 and 1, not {self.guardrail_margin}")
        if self.arm_source not in ARM_SOURCES:
            raise InputError(f"--arm-source must be auto, arm or model_version, not '{self.arm_source}'")
        file_options = (self.arm_col, self.metric_col, self.kind, self.denominator_col, self.pre_col)
        if self.mode != "file" and any(file_options):
            raise InputError("--arm-col/--metric-col/--type/--denominator-col/--pre-col apply to --file")
        if self.mode == "file":
            if not self.arm_col or not self.metric_col:
                raise InputError("--file needs --arm-col and --metric-col")
            if self.kind not in (None, *KINDS):
                raise InputError(f"--type must be proportion, mean or ratio, not '{self.kind}'")
            if self.kind == "ratio" and not self.denominator_col:
                raise InputError(RATIO_NEEDS_DENOMINATOR)
        _set(self, "metrics", tuple(split_names(self.metrics)))
        if self.guardrails is not None:
            _set(self, "guardrails", tuple(g for g in split_names(self.guardrails) if g.lower() != "none"))
        if self.mode == "store":
            for name in (*self.metrics, *(self.guardrails or ())):
                metric(name)  # an unknown name is a one-line error here, before the store is read
        if self.window == Window():
            _set(self, "window", None)  # no bound: the whole experiment
        _set(self, "rows", tuple(dict(row) for row in self.rows))
        _set(self, "planned_split", _split_pairs(self.planned_split))
        _set(self, "control", self.control or None)
        _set(self, "by", (self.by or "").strip() or None)
        if self.segment_min_n is not None and not self.segment_min_n >= 1:
            raise InputError(f"--segment-min-n must be at least 1, not {self.segment_min_n}")
        if self.by and self.mode == "summary":
            raise InputError("--by breaks down the experiment in the store or a units file, not typed-in summaries")

    @property
    def split(self) -> dict[str, float] | None:
        """Returns the planned split as ``{arm: share}``, or None when the request names none."""
        return dict(self.planned_split) or None

    def resolved_settings(self) -> ABTestSettings:
        """Returns the settings to run with: ``settings`` (else the file's) under this request's overrides."""
        base = self.settings or load_settings()
        overrides = {
            "alpha": self.alpha,
            "adjustment": self.adjustment,
            "sequential_tuning_n": self.sequential_tuning_n,
            "guardrail_margin": self.guardrail_margin,
            "segment_min_n": self.segment_min_n,
        }
        return replace(base, **{k: v for k, v in overrides.items() if v is not None})


def parse_split(text: str | None) -> dict[str, float] | None:
    """Returns ``{arm: share}`` from 'control=0.5,variant=0.5' (or 50,50 style weights); None when empty."""
    if not text:
        return None
    out = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise InputError(f"planned split '{text}': write it as arm=share,arm=share (e.g. a=0.5,b=0.5)") from None
        if out[name.strip()] <= 0:
            raise InputError(f"planned split '{text}': every share must be positive")
    return out


def _split_pairs(value: Any) -> tuple[tuple[str, float], ...]:
    if not value:
        return ()
    if isinstance(value, str):
        value = parse_split(value) or {}
    pairs = value.items() if isinstance(value, Mapping) else value
    out = tuple((str(arm), float(share)) for arm, share in pairs)
    if any(not share > 0 for _arm, share in out):
        raise InputError(f"planned split {dict(out)}: every share must be positive")
    return out


def _set(request: ABTestRequest, name: str, value: Any) -> None:
    object.__setattr__(request, name, value)  # normalising a frozen dataclass in __post_init__
