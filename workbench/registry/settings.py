"""The ``[mlflow]`` settings: where the tracking server is, which registered model the predictions name, and how a
prediction's ``model_version`` text is matched to a registered version.

MLflow is optional: with no ``tracking_uri`` in the settings and no ``$MLFLOW_TRACKING_URI`` nothing of it runs
(and ``mlflow`` is never imported).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from workbench.core.settings import load_section

TRACKING_ENV = "MLFLOW_TRACKING_URI"
MATCH_RULES = ("number", "tag", "alias")


@dataclass(frozen=True)
class MlflowSettings:
    """How the workbench talks to MLflow (README: MLflow: model registry and tracking).

    ``match`` says which registered version a prediction's ``model_version`` text is:
    ``number`` (default): the digits of the text are the version number, so ``v2`` and ``2`` are version 2;
    ``tag``: the version whose tag ``match_tag`` holds the text; ``alias``: the version the text is an alias of
    (predictions that say ``champion``/``challenger``)."""

    tracking_uri: str = ""  # empty: $MLFLOW_TRACKING_URI, else MLflow is off
    registered_model: str = ""  # empty: no registry facts (decisions are still tracked)
    match: Literal["number", "tag", "alias"] = "number"
    match_tag: str = "model_version"
    champion_alias: str = "champion"
    challenger_alias: str = "challenger"
    move_champion: bool = False  # an approval moves the champion alias to the candidate version
    experiment: str = "workbench-decisions"
    artifact_location: str = ""  # empty: the tracking server's default for a new experiment
    timeout_seconds: float = 5.0  # per HTTP request to a tracking server
    retries: int = 0  # HTTP retries per request (MLflow's default, 7 with back-off, waits minutes when it is down)

    @property
    def has_model(self) -> bool:
        """Whether a registered model is named (the pages show registry facts only then)."""
        return bool(self.registered_model)


def mlflow_settings(path: str | Path | None = None) -> MlflowSettings | None:
    """The ``[mlflow]`` section with ``$MLFLOW_TRACKING_URI`` as the fallback URI; None when MLflow is off."""
    settings = load_section(MlflowSettings, "mlflow", path)
    uri = settings.tracking_uri or os.environ.get(TRACKING_ENV, "").strip()
    return replace(settings, tracking_uri=uri) if uri else None


def version_number(text: str) -> str | None:
    """The registered version number a ``number``-rule text names: ``v2`` → ``2``, ``12`` → ``12``; None when the
    text holds no number or more than one (``v1.2`` is ambiguous)."""
    numbers = re.findall(r"\d+", text)
    return str(int(numbers[0])) if len(numbers) == 1 else None
