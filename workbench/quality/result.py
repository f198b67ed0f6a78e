"""The model-quality report as one frozen object meeting the result contract (:mod:`workbench.core.result`):
the page, the CLI's ``--json``, the notebook and the retrain gate's evidence read the same verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import pandas as pd

from workbench.quality.request import METRIC_NAMES
from workbench.stats.clean import json_ready

VERDICTS = ("holds", "dropped", "insufficient")


@dataclass(frozen=True)
class QualityReport:
    """Model quality of a window against a reference, per model version and per chunk, realised and estimated.

    - ``window`` / ``reference``: label, rows, labelled and the whole slice's summary (confusion matrix, metrics,
      binning bounds, curves, reliability diagram, CBPE estimates; see :func:`workbench.quality.analyse.summarise`).
    - ``versions``: the same summary per model version of the window (``model_version`` added).
    - ``comparisons``: per metric the window vs the reference, the band's lower end and whether it dropped.
    - ``chunks``: per chunk realised and estimated metrics with the estimate's band (see ``chunk_rows``).
    - ``calibration``: the calibration chosen on the reference (isotonic or none, with both ECEs).
    - ``settings``: the rule (band in standard errors, fewest labels, the feedback kinds that count as labels).
    """

    verdict: str
    verdict_text: str
    reasons: tuple[str, ...]
    window: dict[str, Any]
    reference: dict[str, Any]
    versions: tuple[dict[str, Any], ...]
    comparisons: tuple[dict[str, Any], ...]
    chunks: pd.DataFrame
    chunk: str
    calibration: dict[str, Any]
    settings: dict[str, Any]
    warnings: tuple[str, ...] = field(default_factory=tuple)
    seconds: float = 0.0
    family: ClassVar[str] = "quality"

    def evidence(self) -> dict[str, Any]:
        """What the retrain gate records: the verdict, its sentence and reasons, the windows, each metric's value
        against the reference."""
        return json_ready(
            {
                "verdict": self.verdict,
                "verdict_text": self.verdict_text,
                "reasons": list(self.reasons),
                "window": self.window["label"],
                "reference": self.reference["label"],
                "labelled": self.window["labelled"],
                "metrics": {
                    c["metric"]: {"current": c["current"], "reference": c["reference"], "threshold": c["threshold"]}
                    for c in self.comparisons
                },
            }
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per metric: the window's realised value, the reference's, the band's lower end, whether it
        dropped, the CBPE estimate for the window."""
        frame = pd.DataFrame(list(self.comparisons))
        if not frame.empty:
            frame.insert(1, "name", frame["metric"].map(METRIC_NAMES))
        return frame

    def chunk_records(self) -> list[dict[str, Any]]:
        """The chunks as JSON-ready records (chunk starts as ISO text)."""
        chunks = self.chunks
        if chunks.empty:
            return []
        return json_ready(chunks.assign(chunk=chunks["chunk"].astype(str)).to_dict(orient="records"))

    def to_json(self) -> dict[str, Any]:
        """The ``workbench quality --json`` document (keys documented in README's CLI contract)."""
        return json_ready(
            {
                "verdict": self.verdict_text,
                "verdict_word": self.verdict,
                "reasons": list(self.reasons),
                "warnings": list(self.warnings),
                "window": self.window,
                "reference": self.reference,
                "comparisons": list(self.comparisons),
                "versions": list(self.versions),
                "chunk": self.chunk,
                "chunks": self.chunk_records(),
                "calibration": self.calibration,
                "settings": self.settings,
                "seconds": self.seconds,
            }
        )
