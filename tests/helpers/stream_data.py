"""Small explicit stores for the stream and trigger tests: every count is known by construction."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from workbench.core.schema import Roles, TableRoles
from workbench.ingest.pipeline import ingest_frames
from workbench.sources.store import Store

START = pd.Timestamp("2026-01-01", tz="UTC")
HOUR = pd.Timedelta(hours=1)
ROLES = Roles(predictions=TableRoles(features=["region"], categorical=["region"], sensitive=["region"]))


def build(path: Path, predictions: Iterable[dict], feedback: Iterable[dict] = ()) -> Store:
    """A store holding exactly these rows (trace_id, ts, model_version, prediction, region / trace_id, ts,
    kind, type, value, label)."""
    store = Store(path, lock_timeout_s=5)
    frames = []
    p = pd.DataFrame(list(predictions))
    if len(p):
        p = p.assign(score=p["prediction"] * 0.8 + 0.1)
        p["region"] = p.get("region", "north")
        frames.append((p, "predictions"))
    f = pd.DataFrame(list(feedback))
    if len(f):
        f["label"] = f.get("label", pd.Series([None] * len(f))).astype("Int8")
        f["value"] = f["value"].astype(float)
        frames.append((f, "feedback"))
    ingest_frames(store, frames, ROLES, source="test")
    return store


def daily_accuracy(
    path: Path,
    accuracy: dict[int, float],
    labels_per_day: int = 100,
    delay: pd.Timedelta = HOUR,
    version: str = "v1",
) -> Store:
    """Predictions on the given days (day index from START), ``labels_per_day`` of them each, all predicting 1,
    every one labelled after ``delay`` by an automated outcome; the share labelled 1 is that day's accuracy."""
    predictions, feedback = [], []
    for day, share in accuracy.items():
        correct = round(share * labels_per_day)
        for i in range(labels_per_day):
            trace = f"d{day}-{i}"
            ts = START + pd.Timedelta(days=day, hours=8) + pd.Timedelta(minutes=5 * i)
            predictions.append({"trace_id": trace, "ts": ts, "model_version": version, "prediction": 1})
            feedback.append(
                {"trace_id": trace, "ts": ts + delay, "kind": "automated", "type": "outcome",
                 "value": float(i < correct), "label": int(i < correct)}
            )  # fmt: skip
    return build(path, predictions, feedback)
