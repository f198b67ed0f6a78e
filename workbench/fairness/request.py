"""What a fairness audit is asked to do: :class:`FairnessRequest`, built alike by the page, the CLI and the notebook.

One frozen object, validated once (a bad value raises :class:`workbench.core.errors.InputError` with a
one-line message), then handed to :func:`workbench.fairness.run.run` with the source to audit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.core.command import split_names
from workbench.core.errors import InputError
from workbench.core.window import Window
from workbench.fairness.result import load_settings, read_population, with_overrides
from workbench.stats.fairness import RANGE_DISPARITIES, RATES, FairnessSettings
from workbench.stats.threshold_optimizer import CONSTRAINTS

CHUNKS = ("day", "week")


@dataclass(frozen=True)
class FairnessRequest:
    """The inputs of one fairness audit (store mode, file mode, or an in-memory frame).

    - ``sensitive``: the attribute(s) (``"a,b"`` or a sequence); several = their intersections.
    - Store mode: ``window`` (a :class:`Window`, or its text ``START..END`` / ``last:7d`` / ``all`` with
      ``model_versions``, read against the store's first and last day), ``champion`` / ``challenger``.
    - File mode: ``path`` and its columns ``label``, ``prediction`` (required), ``score``, ``ts``,
      ``version_col``; an in-memory frame needs the columns without the path.
    - Both: ``reference_group`` (default: the settings', "largest"), ``population`` (a reference
      population: ``{group: share}`` or a CSV/TOML file, kept as sorted pairs), and the settings:
      ``settings`` (default: settings.toml's ``[fairness]``) with the overrides ``metrics`` (the rates that
      decide the verdict), ``resamples`` (bootstrap) and ``chunk`` (day or week).
    - Trade-offs: ``compare_versions`` (every model version on accuracy vs ``disparity``, a between-groups
      difference, default equalized odds) and ``mitigate`` (``demographic_parity`` or ``equalized_odds``: the
      ThresholdOptimizer preview on the labelled, scored predictions).
    """

    sensitive: tuple[str, ...]
    window: Window | str | None = None
    model_versions: tuple[str, ...] = ()
    champion: str | None = None
    challenger: str | None = None
    reference_group: str | None = None
    population: tuple[tuple[str, float], ...] | None = None
    metrics: tuple[str, ...] = ()
    resamples: int | None = None
    chunk: str | None = None
    settings: FairnessSettings | None = None
    path: Path | None = None
    label: str | None = None
    prediction: str | None = None
    score: str | None = None
    ts: str | None = None
    version_col: str | None = None
    compare_versions: bool = False
    disparity: str = "equalized_odds_difference"
    mitigate: str | None = None

    def __post_init__(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731  (frozen: normalise once)
        set_("sensitive", tuple(split_names(self.sensitive)))
        set_("model_versions", tuple(split_names(list(self.model_versions))))
        set_("metrics", tuple(split_names(self.metrics if isinstance(self.metrics, str) else list(self.metrics))))
        set_("reference_group", (self.reference_group or "").strip() or None)
        if self.path is not None:
            set_("path", Path(self.path))
        set_("population", _population(self.population))
        set_("mitigate", (self.mitigate or "").strip().replace("-", "_") or None)
        if self.mitigate is not None and self.mitigate not in CONSTRAINTS:
            raise InputError(f"--mitigate must be {' or '.join(CONSTRAINTS)}, not '{self.mitigate}'")
        if self.disparity not in RANGE_DISPARITIES:
            raise InputError(
                f"--disparity: unknown disparity '{self.disparity}' (known: {', '.join(RANGE_DISPARITIES)})"
            )
        if not self.sensitive:
            raise InputError("--sensitive needs at least one column name")
        if self.chunk is not None and self.chunk not in CHUNKS:
            raise InputError(f"--chunk must be day or week, not '{self.chunk}'")
        if self.resamples is not None and self.resamples < 0:
            raise InputError("--resamples must be 0 or more")
        unknown = [m for m in self.metrics if m not in RATES]
        if unknown:
            raise InputError(f"--metrics: unknown rate '{unknown[0]}' (known: {', '.join(RATES)})")
        if isinstance(self.window, Window) and self.model_versions:
            raise InputError("give the model versions inside the Window, not beside it")
        if self.path is not None:
            if not (self.label and self.prediction):
                raise InputError("file mode needs --label and --prediction (and optionally --score)")
            if self.window not in (None, "", "all") or self.model_versions:
                raise InputError("--window and --model-version apply to the store; filter the file before auditing it")

    @property
    def file_columns(self) -> dict[str, str | None]:
        """The columns of a file or frame (``model_version`` is the version column); all None in store mode."""
        return {"label": self.label, "prediction": self.prediction, "score": self.score, "ts": self.ts,
                "model_version": self.version_col}  # fmt: skip

    @property
    def names_columns(self) -> bool:
        """Whether any file column is named (a store has its roles, so a store audit must name none)."""
        return any(self.file_columns.values())

    def resolved_settings(self) -> FairnessSettings:
        """The settings this audit runs with: ``settings`` (or settings.toml's) with the request's overrides."""
        return with_overrides(
            self.settings or load_settings(),
            verdict_metrics=self.metrics or None,
            bootstrap_resamples=self.resamples,
            time_chunk=self.chunk,
        )

    def population_shares(self) -> dict[str, float] | None:
        """The reference population as ``{group: share}`` (None when none was given)."""
        return dict(self.population) if self.population else None


def _population(value: Any) -> tuple[tuple[str, float], ...] | None:
    """A population given as a mapping, pairs or a CSV/TOML file, as sorted ``(group, share)`` pairs."""
    if value is None:
        return None
    if isinstance(value, str | Path):
        value = read_population(value)
    pairs = value.items() if isinstance(value, Mapping) else value
    out = []
    for group, share in pairs:
        try:
            number = float(share)
        except (TypeError, ValueError):
            raise InputError(f"population: share of '{group}' is not a number ('{share}')") from None
        if not number >= 0:
            raise InputError(f"population: share of '{group}' must be 0 or more")
        out.append((str(group), number))
    return tuple(sorted(out))
