"""The requests of the retrain gate: a curation (:class:`CurationSpec`, every parameter the manifest records)
and its export (:class:`CurationRequest`: the spec, the folder, the format), built alike by the CLI
(``workbench curate``), the gate page and a notebook, validated once here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from workbench.core.errors import InputError

CONFLICT_POLICIES = ("drop", "majority")
REBALANCE_METHODS = ("oversample", "reweigh")
FORMATS = ("parquet", "csv")


@dataclass(frozen=True)
class CurationSpec:
    """Every parameter of a curation; recorded whole in the manifest."""

    start: str | None = None  # ISO date/time, prediction ts >= start (UTC)
    end: str | None = None  # prediction ts < end
    model_versions: tuple[str, ...] = ()
    feedback_kinds: tuple[str, ...] = ()  # empty: every kind
    feedback_types: tuple[str, ...] = ()  # empty: every type
    labelled_only: bool = True  # False: keep unlabelled predictions too, with an empty label
    implicit_labels: bool = False  # derive labels from clicks/dwell where no explicit/automated label exists
    min_implicit_confidence: float = 0.8  # keep an implicit label only when its measured agreement is at least this
    conflict_policy: Literal["drop", "majority"] = "drop"
    dedupe_features: bool = True
    outlier_z: float | None = 5.0  # None: keep outliers
    rebalance_attribute: str | None = None
    rebalance_method: Literal["oversample", "reweigh"] | None = None
    target_shares: dict[str, float] | None = None  # for oversample; default: equal shares
    seed: int = 0
    merge_file: str | None = None
    max_feedback_share: float | None = None  # cap on feedback-derived rows when merging

    def __post_init__(self) -> None:
        if self.conflict_policy not in CONFLICT_POLICIES:
            raise InputError(f"conflict policy must be drop or majority, not '{self.conflict_policy}'")
        if self.rebalance_method not in (None, *REBALANCE_METHODS):
            raise InputError(f"rebalance method must be oversample or reweigh, not '{self.rebalance_method}'")
        for name in ("start", "end"):
            value = getattr(self, name)
            try:
                if value:
                    datetime.fromisoformat(value)
            except ValueError:
                raise InputError(f"{name} must be an ISO date or date-time, e.g. 2026-03-01, not '{value}'") from None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass(frozen=True)
class CurationRequest:
    """Export the curation ``spec`` as ``retraining_set.<fmt>`` and ``manifest.json`` into ``out_dir``;
    ``created_by`` is recorded in the manifest (default: the OS user)."""

    spec: CurationSpec
    out_dir: Path
    fmt: str = "parquet"
    created_by: str | None = None

    def __post_init__(self) -> None:
        if self.fmt not in FORMATS:
            raise InputError(f"unknown export format '{self.fmt}': use parquet or csv")
        object.__setattr__(self, "out_dir", Path(self.out_dir))
