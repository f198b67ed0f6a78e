"""Deterministic demo scenario with a ground-truth manifest of everything injected into it.

A binary classifier serves for ``days`` days. Into its stream we inject, at known days: sudden
drift in two features, gradual drift in one, a new category, concept drift that lowers accuracy,
a group with a higher false-positive rate, and an A/B test of a challenger with a known true lift
on thumbs-up rate. ``ground_truth.json`` names all of it so tests can check the workbench finds it.
Everything is vectorised numpy/Arrow: 1M predictions take seconds.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from workbench.core.errors import InputError
from workbench.core.schema import FEEDBACK, PREDICTIONS, Roles, TableRoles
from workbench.ingest.pipeline import ingest_frames
from workbench.sources.store import Store, read_meta, write_meta

START = np.datetime64("2026-01-01T00:00:00", "us")
NUMERIC = [
    "amount",
    "tenure_days",
    "age",
    "sessions_30d",
    "discount_rate",
    "latency_ms",
    "items_in_cart",
    "page_views",
]
CATEGORICAL = ["country", "device", "channel"]
SENSITIVE = ["age_band", "region"]
COUNTRIES = np.array(["US", "DE", "FR", "GB", "ES", "IT", "NL", "PL"])
DEVICES = np.array(["mobile", "desktop", "tablet", "smartwatch"])
CHANNELS = np.array(["organic", "paid", "email", "social"])
REGIONS = np.array(["north", "south", "east", "west"])
AGE_BANDS = np.array(["18-25", "26-35", "36-50", "51+"])
US_PER_DAY = 86_400_000_000


@dataclass(frozen=True)
class Scenario:
    """The knobs of the demo; every injected effect is a field so the truth file can name it."""

    rows: int = 300_000
    days: int = 90
    seed: int = 7
    thumbs_up_rate_champion: float = 0.62
    true_lift_abs: float = 0.03
    rating_lift_latent: float = 0.15  # challenger's shift of the latent mean of 1–5 star ratings
    extra_fpr_biased_group: float = 0.15
    sudden_drift_factor: float = 1.6

    @property
    def sudden_drift_day(self) -> int:
        return int(self.days * 2 / 3)

    @property
    def gradual_drift_start_day(self) -> int:
        return int(self.days / 3)

    @property
    def new_category_day(self) -> int:
        return int(self.days / 2)

    @property
    def concept_drift_day(self) -> int:
        return int(self.days * 3 / 4)

    @property
    def ab_start_day(self) -> int:
        return max(self.days - 21, int(self.days * 2 / 3))


def _day_ts(rng: np.random.Generator, n: int, days: int) -> np.ndarray:
    """Timestamps over ``days`` days with a diurnal cycle (busier in the day), sorted."""
    day = rng.integers(0, days, n)
    hour = np.clip(rng.normal(14, 4.5, n), 0, 23.999)
    us = (day * US_PER_DAY + hour * 3_600_000_000).astype(np.int64)
    return np.sort(us)


def prediction_rows(
    sc: Scenario, rng: np.random.Generator, n: int, offset: int, t_us: np.ndarray | None = None
) -> tuple[pa.Table, dict[str, Any]]:
    # t_us (µs since START) places the rows in time instead of the scenario's own draw (live mode)
    t_us = _day_ts(rng, n, sc.days) if t_us is None else t_us
    day = t_us // US_PER_DAY
    after_sudden = day >= sc.sudden_drift_day
    ramp = np.clip((day - sc.gradual_drift_start_day) / max(sc.days - sc.gradual_drift_start_day, 1), 0, 1)

    amount = rng.lognormal(3.5, 0.8, n) * np.where(after_sudden, sc.sudden_drift_factor, 1.0)
    tenure = rng.gamma(2.0, 180.0, n) + ramp * 360.0
    age = np.clip(rng.normal(40, 13, n), 18, 85).round()
    sessions = rng.poisson(6, n).astype(float)
    discount = rng.beta(2, 8, n)
    latency = rng.lognormal(5.0, 0.4, n) * np.where(after_sudden, 1.5, 1.0)
    items = rng.poisson(3, n).astype(float)
    page_views = rng.poisson(12, n).astype(float)
    page_views[rng.random(n) < 0.01] = np.nan  # missing values are data

    country = rng.choice(len(COUNTRIES), n, p=[0.3, 0.15, 0.12, 0.12, 0.09, 0.09, 0.07, 0.06])
    device = rng.choice(3, n, p=[0.6, 0.3, 0.1])
    watch = (day >= sc.new_category_day) & (rng.random(n) < 0.08)
    device = np.where(watch, 3, device)
    channel = rng.choice(len(CHANNELS), n, p=[0.4, 0.3, 0.2, 0.1])
    region = rng.choice(len(REGIONS), n, p=[0.3, 0.25, 0.25, 0.2])
    age_band = np.digitize(age, [26, 36, 51])

    # Standardise with the reference-period moments of each generator, so drift moves the score.
    z_amount = (np.log(amount) - 3.5) / 0.8
    z_tenure = (tenure - 360.0) / 254.6  # gamma(2, 180): mean 360, sd 180·√2
    z_disc = (discount - 0.2) / 0.1206  # beta(2, 8): mean 0.2, sd √(16/1100)
    z_sess = (sessions - 6.0) / 6.0**0.5  # Poisson(6)
    learned = -0.6 + 2.0 * z_amount - 1.4 * z_tenure + 1.1 * z_disc + 0.7 * z_sess + 0.5 * (device == 1)
    concept = day >= sc.concept_drift_day
    truth_logit = np.where(concept, -0.6 - 1.6 * z_amount - 1.4 * z_tenure + 1.1 * z_disc + 0.7 * z_sess, learned)
    y = (rng.random(n) < 1 / (1 + np.exp(-truth_logit))).astype(np.int8)

    in_ab = day >= sc.ab_start_day
    n_units = max(sc.rows // 8, 10)
    unit = rng.integers(0, n_units, n)
    challenger = in_ab & (unit % 2 == 1)
    model_noise = np.where(challenger, 0.15, 0.3)
    score = 1 / (1 + np.exp(-(learned + rng.normal(0, 1, n) * model_noise)))
    biased = (region == 1) & (y == 0) & (rng.random(n) < sc.extra_fpr_biased_group)
    score = np.where(biased, np.maximum(score, rng.uniform(0.5, 0.9, n)), score)
    prediction = (score >= 0.5).astype(np.int8)

    idx = pa.array(np.arange(offset, offset + n))
    trace = pc.binary_join_element_wise("tr-", pc.utf8_lpad(pc.cast(idx, pa.string()), 9, "0"), "")
    strings = lambda values, codes: pc.take(pa.array(values), pa.array(codes))  # noqa: E731
    arm = pa.array(np.where(in_ab, np.where(challenger, "challenger", "champion"), None))
    table = pa.table(
        {
            "trace_id": trace,
            "ts": pa.array((START + t_us.astype("timedelta64[us]")), pa.timestamp("us", tz="UTC")),
            "model_version": pa.array(np.where(challenger, "v2", "v1")),
            "prediction": pa.array(prediction),
            "score": pa.array(score),
            "arm": arm,
            "unit_id": pc.binary_join_element_wise("u-", pc.cast(pa.array(unit), pa.string()), ""),
            "amount": amount.round(2),
            "tenure_days": tenure.round(1),
            "age": age,
            "sessions_30d": sessions,
            "discount_rate": discount.round(4),
            "latency_ms": latency.round(1),
            "items_in_cart": items,
            "page_views": pa.array(page_views, from_pandas=True),
            "country": strings(COUNTRIES, country),
            "device": strings(DEVICES, device),
            "channel": strings(CHANNELS, channel),
            "age_band": strings(AGE_BANDS, age_band),
            "region": strings(REGIONS, region),
        }
    )
    hidden = {
        "t_us": t_us,
        "y": y,
        "prediction": prediction,
        "challenger": challenger,
        "in_ab": in_ab,
        "trace": trace,
    }
    return table, hidden


def feedback_rows(
    sc: Scenario,
    rng: np.random.Generator,
    hidden: dict[str, Any],
    chunk: int,
    rating_rng: np.random.Generator | None = None,
) -> pa.Table:
    t_us, y, pred = hidden["t_us"], hidden["y"], hidden["prediction"]
    n = len(t_us)
    end_us = sc.days * US_PER_DAY
    wrong = (pred != y).astype(float)
    minute = 60_000_000
    parts: list[dict[str, np.ndarray]] = []

    def add(
        mask: np.ndarray,
        kind: str,
        type_: str,
        value: np.ndarray,
        label: np.ndarray | None,
        delay_us: np.ndarray,
    ):
        rows = np.flatnonzero(mask)
        parts.append(
            {
                "row": rows,
                "ts": t_us[rows] + delay_us[rows].astype(np.int64),
                "kind": np.full(len(rows), kind),
                "type": np.full(len(rows), type_),
                "value": value[rows].astype(float),
                "label": np.full(len(rows), -1, np.int8) if label is None else label[rows].astype(np.int8),
            }
        )

    p_up = sc.thumbs_up_rate_champion + sc.true_lift_abs * hidden["challenger"]
    thumb_value = (rng.random(n) < p_up).astype(float)
    add(rng.random(n) < 0.05, "explicit", "thumb", thumb_value, None, rng.exponential(30 * minute, n))
    # Users sometimes correct to the wrong class: 10% of corrections disagree with the true label,
    # so some traces carry conflicting labels (the curation step must find and resolve them).
    corrected = np.where(rng.random(n) < 0.1, 1 - y, y).astype(np.int8)
    add(
        rng.random(n) < 0.005 + 0.05 * wrong,
        "explicit",
        "correction",
        corrected.astype(float),
        corrected,
        rng.exponential(360 * minute, n),
    )
    # Star ratings (1–5) on 3% of predictions, better when the prediction was right, from their own
    # seeded stream so adding them left every other generated row unchanged.
    rating_rng = rating_rng or np.random.default_rng([sc.seed, chunk, 1])
    latent = 3.0 + 1.0 * (pred == y) + sc.rating_lift_latent * hidden["challenger"] + rating_rng.normal(0, 1.0, n)
    stars = np.clip(np.round(latent), 1, 5)
    add(rating_rng.random(n) < 0.03, "explicit", "rating", stars, None, rating_rng.exponential(120 * minute, n))
    outcome_delay = np.minimum(np.exp(rng.normal(np.log(3), 0.6, n)), 30) * US_PER_DAY
    add(rng.random(n) < 0.35, "automated", "outcome", y.astype(float), y, outcome_delay)
    logged = rng.random(n) < 0.5
    clicked = (rng.random(n) < 0.3).astype(float)
    click_delay = rng.exponential(0.33 * minute, n)
    add(logged, "implicit", "click", clicked, None, click_delay)
    dwell = np.exp(rng.normal(np.log(40), 0.8, n))
    add(logged & (clicked == 1), "implicit", "dwell", dwell.round(1), None, click_delay + dwell * 1e6)

    cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    arrived = cols["ts"] < end_us
    cols = {k: v[arrived] for k, v in cols.items()}
    order = np.argsort(cols["ts"], kind="stable")
    cols = {k: v[order] for k, v in cols.items()}
    trace = pc.take(hidden["trace"], pa.array(cols["row"]))
    n_orphans = max(n // 2000, 1)
    orphan_ids = pc.binary_join_element_wise(
        f"tr-orphan-{chunk}-", pc.cast(pa.array(np.arange(n_orphans)), pa.string()), ""
    )
    orphan_ts = np.sort(rng.integers(0, end_us, n_orphans))
    label = cols["label"]
    table = pa.table(
        {
            "trace_id": pa.concat_arrays([trace, orphan_ids]),
            "ts": pa.array(
                START + np.concatenate([cols["ts"], orphan_ts]).astype("timedelta64[us]"),
                pa.timestamp("us", tz="UTC"),
            ),
            "kind": np.concatenate([cols["kind"], np.full(n_orphans, "implicit")]),
            "type": np.concatenate([cols["type"], np.full(n_orphans, "click")]),
            "value": np.concatenate([cols["value"], np.ones(n_orphans)]),
            "label": pa.array(
                np.concatenate([label, np.full(n_orphans, -1, np.int8)]),
                mask=np.concatenate([label < 0, np.ones(n_orphans, bool)]),
            ),
        }
    )
    return table


def _update_hash(digest: Any, table: pa.Table) -> None:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    digest.update(memoryview(sink.getvalue()))  # the IPC buffer itself: no copy into Python bytes


def content_hash(*tables: pa.Table) -> str:
    """SHA-256 of the tables' Arrow IPC bytes: same seed and parameters → same hash."""
    digest = hashlib.sha256()
    for table in tables:
        _update_hash(digest, table)
    return digest.hexdigest()


# Rows generated (and ingested) at a time: bounds memory whatever --rows is. Part of the
# scenario's definition: each chunk has its own seeded generator, so changing it changes rows.
CHUNK_ROWS = 1_000_000


def generate_chunks(sc: Scenario) -> Iterator[tuple[pa.Table, pa.Table, dict[str, np.ndarray]]]:
    """Yield (predictions, feedback, hidden truth arrays) chunk by chunk, each from its own seeded rng."""
    if sc.rows < 100 or sc.days < 7:
        raise InputError("demo needs at least 100 rows and 7 days")
    for chunk, offset in enumerate(range(0, sc.rows, CHUNK_ROWS)):
        rng = np.random.default_rng([sc.seed, chunk])
        predictions, hidden = prediction_rows(sc, rng, min(CHUNK_ROWS, sc.rows - offset), offset)
        feedback = feedback_rows(sc, rng, hidden, chunk)
        yield predictions, feedback, hidden


class _Tally:
    """Running ground-truth numbers over chunks: content hash, row counts, accuracy by period."""

    def __init__(self, sc: Scenario):
        self.sc = sc
        self.digest = hashlib.sha256()
        self.predictions = self.feedback = self.orphans = 0
        self.correct = np.zeros(2)
        self.total = np.zeros(2)

    def add(self, predictions: pa.Table, feedback: pa.Table, hidden: dict[str, Any]) -> None:
        _update_hash(self.digest, predictions)
        _update_hash(self.digest, feedback)
        self.predictions += predictions.num_rows
        self.feedback += feedback.num_rows
        self.orphans += max(predictions.num_rows // 2000, 1)
        after = (hidden["t_us"] >= self.sc.concept_drift_day * US_PER_DAY).astype(int)
        right = hidden["prediction"] == hidden["y"]
        self.correct += np.bincount(after, weights=right, minlength=2)
        self.total += np.bincount(after, minlength=2)

    def truth(self) -> dict[str, Any]:
        sc = self.sc
        as_date = lambda d: str(START.astype("datetime64[D]") + np.timedelta64(d, "D"))  # noqa: E731
        accuracy = self.correct / np.maximum(self.total, 1)
        return {
            "seed": sc.seed,
            "rows": sc.rows,
            "days": sc.days,
            "start": as_date(0),
            "content_hash": self.digest.hexdigest(),
            "features": {"numeric": NUMERIC, "categorical": CATEGORICAL, "sensitive": SENSITIVE},
            "sudden_drift": {
                "features": ["amount", "latency_ms"],
                "day": sc.sudden_drift_day,
                "date": as_date(sc.sudden_drift_day),
            },
            "gradual_drift": {"features": ["tenure_days"], "start_day": sc.gradual_drift_start_day},
            "new_category": {"feature": "device", "category": "smartwatch", "day": sc.new_category_day},
            "drifted_features": ["amount", "latency_ms", "tenure_days", "device"],
            "concept_drift": {
                "day": sc.concept_drift_day,
                "date": as_date(sc.concept_drift_day),
                "accuracy_before": round(float(accuracy[0]), 4),
                "accuracy_after": round(float(accuracy[1]), 4),
            },
            "biased_group": {
                "attribute": "region",
                "value": "south",
                "metric": "fpr",
                "extra_fpr": sc.extra_fpr_biased_group,
            },
            "ab_test": {
                "start_day": sc.ab_start_day,
                "control": "champion",
                "variant": "challenger",
                "control_model_version": "v1",
                "variant_model_version": "v2",
                "metric": "thumbs_up_rate",
                "feedback_type": "thumb",
                "control_rate": sc.thumbs_up_rate_champion,
                "true_lift_abs": sc.true_lift_abs,
                "split": [0.5, 0.5],
                "rating_feedback_type": "rating",
                "rating_lift_latent": sc.rating_lift_latent,
            },
            "predictions": self.predictions,
            "feedback_rows": self.feedback,
            "orphan_feedback": self.orphans,
        }


def generate(sc: Scenario) -> tuple[pa.Table, pa.Table, dict[str, Any]]:
    """Return (predictions, feedback, ground truth) for a scenario in memory; pure, no I/O."""
    tally = _Tally(sc)
    predictions, feedback = [], []
    for p, f, hidden in generate_chunks(sc):
        tally.add(p, f, hidden)
        predictions.append(p)
        feedback.append(f)
    return pa.concat_tables(predictions), pa.concat_tables(feedback), tally.truth()


DEMO_ROLES = Roles(predictions=TableRoles(features=NUMERIC + CATEGORICAL, categorical=CATEGORICAL, sensitive=SENSITIVE))


def build_demo(
    store: Store, sc: Scenario, truth_path: Path | None = None, progress: Callable[[int, int], None] | None = None
) -> dict[str, Any]:
    """Generate the scenario and write it into a fresh ``store``; return the ground truth."""
    if store.exists():
        with store.connect(read_only=True) as con:
            is_demo = read_meta(con, "demo") is not None if _has_meta(con) else False
        if not is_demo:
            raise InputError(f"{store.path} exists and is not a demo store; pass another --db")
        store.path.unlink()
        Path(str(store.path) + ".wal").unlink(missing_ok=True)
    tally = _Tally(sc)
    accepted = {"predictions": 0, "feedback": 0, "quarantined": 0}
    written = 0
    for chunk, (predictions, feedback) in enumerate(_ahead(_tallied(generate_chunks(sc), tally))):
        # a chunk's predictions and feedback in one transaction: one open and checkpoint of the store, not two
        frames = [(predictions, PREDICTIONS), (feedback, FEEDBACK)]
        for result in ingest_frames(store, frames, DEMO_ROLES, source=f"demo:{chunk}"):
            accepted[result.table] += result.accepted
            accepted["quarantined"] += result.quarantined
        written += predictions.num_rows
        if progress is not None:
            progress(written, sc.rows)
    truth = tally.truth()
    truth["ingest"] = accepted
    with store.connect(read_only=False) as con:
        write_meta(con, "demo", truth)
    truth_path = truth_path or store.path.parent / "demo" / "ground_truth.json"
    truth_path.parent.mkdir(parents=True, exist_ok=True)
    truth_path.write_text(json.dumps(truth, indent=2, sort_keys=True) + "\n")
    return truth


def _tallied(
    chunks: Iterator[tuple[pa.Table, pa.Table, dict[str, np.ndarray]]], tally: _Tally
) -> Iterator[tuple[pa.Table, pa.Table]]:
    """The chunks' (predictions, feedback), each added to ``tally`` (in order) before it is yielded."""
    for predictions, feedback, hidden in chunks:
        tally.add(predictions, feedback, hidden)
        yield predictions, feedback


def _ahead(items: Iterator[Any]) -> Iterator[Any]:
    """``items`` in order, the next one made by a thread while the caller works on this one.

    The demo's generation and content hash (numpy, Arrow, SHA-256) overlap the ingest (DuckDB, which releases the
    GIL): one chunk ahead, so at most three chunks are in memory (being ingested, ready, being made).
    """
    done = object()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="demo-chunks") as pool:
        upcoming = pool.submit(next, items, done)
        while (item := upcoming.result()) is not done:
            upcoming = pool.submit(next, items, done)
            yield item


def _has_meta(con: Any) -> bool:
    return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'meta'").fetchone()[0])
