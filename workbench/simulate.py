"""Live mode: append realistic predictions and their feedback to the store as time passes.

Each batch is one short write transaction (predictions and the feedback that is due), so a reader
never sees half a batch and the app's short read-only connections never block the writer for long.
Feedback that is not due yet (labels arrive days later) waits in memory and is written when due.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from workbench.demo import DEMO_ROLES, START, Scenario, _feedback, _predictions
from workbench.errors import InputError
from workbench.ingest import ingest_frames
from workbench.schema import FEEDBACK, PREDICTIONS
from workbench.store import Store

# The live scenario: no injected drift or A/B split (their days lie far in the future).
_LIVE = Scenario(rows=1_000_000, days=1_000_000)


@dataclass(frozen=True)
class SimulationReport:
    """What the simulator wrote: batches, predictions and feedback rows, feedback still pending."""

    batches: int
    predictions: int
    feedback: int
    pending_feedback: int

    def to_dict(self) -> dict[str, int]:
        """JSON-ready form."""
        return asdict(self)


class Simulator:
    """Generates batches of live events at ``rate`` predictions per second, seeded."""

    def __init__(self, rate: float, seed: int | None = None):
        if rate <= 0:
            raise InputError("--rate must be a positive number of predictions per second")
        self.rate = rate
        self.rng = np.random.default_rng(seed)
        self.run_id = secrets.token_hex(4) if seed is None else f"s{seed}"
        self.counter = 0
        self.pending: pa.Table | None = None

    def batch(self, now_us: int, seconds: float, span_us: int) -> tuple[pa.Table | None, pa.Table | None]:
        """``rate·seconds`` predictions spread over the ``span_us`` before ``now_us`` (µs since the demo START),
        and the feedback that is due by ``now_us``."""
        n = int(self.rng.poisson(self.rate * seconds))
        predictions, feedback = None, None
        if n:
            predictions, hidden = _predictions(_LIVE, self.rng, n, 0)
            t_us = np.sort(now_us - (self.rng.random(n) * span_us).astype(np.int64))
            ids = pc.binary_join_element_wise(
                f"live-{self.run_id}-", pc.cast(pa.array(np.arange(self.counter, self.counter + n)), pa.string()), ""
            )
            self.counter += n
            ts = pa.array(START + t_us.astype("timedelta64[us]"), pa.timestamp("us", tz="UTC"))
            predictions = predictions.set_column(0, "trace_id", ids).set_column(1, "ts", ts)
            hidden = {**hidden, "t_us": t_us, "trace": ids}
            feedback = _feedback(_LIVE, self.rng, hidden, 0, rating_rng=self.rng)
            feedback = feedback.filter(pc.is_in(feedback["trace_id"], value_set=ids))  # no orphans in live mode
        parts = [t for t in (self.pending, feedback) if t is not None and t.num_rows]
        if not parts:
            return predictions, None
        waiting = pa.concat_tables(parts)
        now_epoch_us = int((START + np.timedelta64(now_us, "us")).astype(np.int64))
        is_due = pc.less_equal(pc.cast(waiting["ts"], pa.int64()), now_epoch_us)
        self.pending = waiting.filter(pc.invert(is_due))
        return predictions, waiting.filter(is_due)


def _store_clock_us(store: Store) -> int:
    """The newest prediction ts in the store (µs since the demo START), or now when the store is empty."""
    if store.exists():
        with store.connect() as con:
            newest = con.execute("SELECT epoch_us(max(ts)) FROM predictions").fetchall()[0][0]
        if newest is not None:
            return int(newest - START.astype(np.int64))
    return int((np.datetime64("now", "us") - START).astype(np.int64))


def simulate(
    store: Store,
    rate: float,
    duration: float | None = None,
    interval: float = 1.0,
    seed: int | None = None,
    speed: float = 1.0,
    on_batch: Callable[[SimulationReport], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> SimulationReport:
    """Append a batch every ``interval`` seconds until ``duration`` (or ``should_stop``); report the counts.

    The stream continues the store's timeline from its newest prediction; ``speed`` stream seconds
    pass per wall-clock second (3600: an hour a second, so delayed labels arrive while you watch).
    """
    sim = Simulator(rate, seed)
    clock_us = _store_clock_us(store)
    span_us = int(interval * speed * 1e6)
    started = time.monotonic()
    batches = n_predictions = n_feedback = 0
    while duration is None or time.monotonic() - started < duration:
        if should_stop is not None and should_stop():
            break
        tick = time.monotonic()
        clock_us += span_us
        predictions, feedback = sim.batch(clock_us, interval, span_us)
        frames = [
            (t, name) for t, name in ((predictions, PREDICTIONS), (feedback, FEEDBACK)) if t is not None and t.num_rows
        ]
        if frames:
            results = ingest_frames(store, frames, DEMO_ROLES, source=f"simulate:{sim.run_id}:{batches}")
            n_predictions += sum(r.accepted for r in results if r.table == PREDICTIONS)
            n_feedback += sum(r.accepted for r in results if r.table == FEEDBACK)
        batches += 1
        if on_batch is not None:
            pending = sim.pending.num_rows if sim.pending is not None else 0
            on_batch(SimulationReport(batches, n_predictions, n_feedback, pending))
        time.sleep(max(0.0, interval - (time.monotonic() - tick)))
    pending = sim.pending.num_rows if sim.pending is not None else 0
    return SimulationReport(batches, n_predictions, n_feedback, pending)
