"""Live mode: append realistic predictions and their feedback to the store as time passes.

The stream continues the store's timeline from its newest prediction, in the state the demo
scenario ends in (sudden and gradual drift in place, the concept drift, the A/B split with the
same units and arms), so the live rows look like the next minutes of the same production model.
Each batch is one short write transaction (its predictions and the feedback that is due), so a
reader never sees half a batch and the app's short read-only connections never block the writer
for long. Feedback that is not due yet (labels arrive days later) waits in memory and is written
when due; what is still waiting when the run stops is reported, not written.
"""

from __future__ import annotations

import dataclasses
import secrets
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from workbench.core.errors import InputError
from workbench.core.schema import FEEDBACK, PREDICTIONS
from workbench.demo.scenario import DEMO_ROLES, START, Scenario, feedback_rows, prediction_rows
from workbench.ingest.pipeline import ingest_frames
from workbench.sources.store import Store, read_meta

# Feedback is generated with an end of time far away, so every event exists and waits until it is due.
_FOREVER_DAYS = 1_000_000


@dataclass(frozen=True)
class SimulationReport:
    """What the simulator wrote (rows accepted by the store), and the feedback still waiting when it stopped."""

    batches: int
    predictions: int
    feedback: int
    pending_feedback: int
    quarantined: int = 0
    stream_end: str | None = None

    def to_dict(self) -> dict[str, int | str | None]:
        """JSON-ready form."""
        return asdict(self)


class Simulator:
    """Generates batches of live events at ``rate`` predictions per (wall-clock) second, seeded."""

    def __init__(self, rate: float, seed: int | None = None, scenario: Scenario | None = None, start_us: int = 0):
        if not rate > 0:
            raise InputError("--rate must be a positive number of predictions per second")
        self.rate = rate
        self.scenario = scenario or Scenario()
        self.rng = np.random.default_rng(seed)
        # Unique trace ids per run: a seeded run is reproducible on the same store, and a second run
        # with the same seed starts at a later clock, so its ids differ.
        self.run_id = secrets.token_hex(4) if seed is None else f"s{seed}t{start_us}"
        self.counter = 0
        self.pending: pa.Table | None = None

    @property
    def pending_rows(self) -> int:
        """Feedback rows generated but not due yet."""
        return 0 if self.pending is None else self.pending.num_rows

    def batch(self, now_us: int, seconds: float, span_us: int) -> tuple[pa.Table | None, pa.Table | None]:
        """``rate·seconds`` predictions (Poisson) spread over the ``span_us`` before ``now_us`` (µs since the
        demo START), and the feedback that is due by ``now_us``."""
        n = int(self.rng.poisson(self.rate * seconds))
        predictions, feedback = None, None
        if n:
            t_us = np.sort(now_us - (self.rng.random(n) * span_us).astype(np.int64))
            predictions, hidden = prediction_rows(self.scenario, self.rng, n, 0, t_us=t_us)
            ids = pc.binary_join_element_wise(
                f"live-{self.run_id}-", pc.cast(pa.array(np.arange(self.counter, self.counter + n)), pa.string()), ""
            )
            self.counter += n
            predictions = predictions.set_column(0, "trace_id", ids)
            hidden = {**hidden, "trace": ids}
            forever = dataclasses.replace(self.scenario, days=_FOREVER_DAYS)
            feedback = feedback_rows(forever, self.rng, hidden, 0, rating_rng=self.rng)
            feedback = feedback.filter(pc.is_in(feedback["trace_id"], value_set=ids))  # no orphans in live mode
        parts = [t for t in (self.pending, feedback) if t is not None and t.num_rows]
        if not parts:
            return predictions, None
        waiting = pa.concat_tables(parts)
        now_epoch_us = int((START + np.timedelta64(now_us, "us")).astype(np.int64))
        is_due = pc.less_equal(pc.cast(waiting["ts"], pa.int64()), now_epoch_us)
        self.pending = waiting.filter(pc.invert(is_due))
        return predictions, waiting.filter(is_due)


def _store_state(store: Store) -> tuple[int, Scenario]:
    """The newest prediction ts (µs since the demo START; now when the store is empty) and the demo
    scenario the store was built with (the default one for a store that is not a demo)."""
    clock, scenario = None, Scenario()
    if store.exists():
        with store.connect() as con:
            newest = con.execute("SELECT epoch_us(max(ts)) FROM predictions").fetchall()[0][0]
            has_meta = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'meta'")
            truth = read_meta(con, "demo") if has_meta.fetchall()[0][0] else None
        if newest is not None:
            clock = int(newest - START.astype(np.int64))
        if truth:
            scenario = Scenario(rows=int(truth["rows"]), days=int(truth["days"]), seed=int(truth["seed"]))
    if clock is None:
        clock = int((np.datetime64("now", "us") - START).astype(np.int64))
    return clock, scenario


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Turn Ctrl-C and SIGTERM into a request to stop after the current batch (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handler = lambda signum, frame: stop.set()  # noqa: E731
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


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
    """Append a batch every ``interval`` seconds until ``duration`` (or Ctrl-C, SIGTERM, ``should_stop``).

    ``speed`` stream seconds pass per wall-clock second (3600: an hour a second, so delayed labels
    arrive while you watch). After each write the store is left free at least as long as the write
    took, so when writes are slow, batches come less often (each still holds ``rate·interval``
    predictions on average and advances the stream by ``interval·speed``). A stop request ends the
    run between batches: every batch counted in the report is committed, nothing else was written.
    """
    if not interval > 0 or not speed > 0:
        raise InputError("--interval and --speed must be positive")
    if duration is not None and duration < 0:
        raise InputError("--duration must be ≥ 0 seconds")
    clock_us, scenario = _store_state(store)
    sim = Simulator(rate, seed, scenario, clock_us)
    span_us = int(interval * speed * 1e6)
    stop = threading.Event()
    started = time.monotonic()
    batches = n_predictions = n_feedback = n_quarantined = 0

    def report() -> SimulationReport:
        end = str(START + np.timedelta64(clock_us, "us")) + "Z"
        return SimulationReport(batches, n_predictions, n_feedback, sim.pending_rows, n_quarantined, end)

    with _stop_on_signals(stop):
        while duration is None or time.monotonic() - started < duration:
            if stop.is_set() or (should_stop is not None and should_stop()):
                break
            tick = time.monotonic()
            predictions, feedback = sim.batch(clock_us + span_us, interval, span_us)
            frames = [(t, name) for t, name in ((predictions, PREDICTIONS), (feedback, FEEDBACK)) if t is not None]
            frames = [(t, name) for t, name in frames if t.num_rows]
            writing = time.monotonic()
            if frames:
                results = ingest_frames(store, frames, DEMO_ROLES, source=f"simulate:{sim.run_id}:{batches + 1}")
                n_predictions += sum(r.accepted for r in results if r.table == PREDICTIONS)
                n_feedback += sum(r.accepted for r in results if r.table == FEEDBACK)
                n_quarantined += sum(r.quarantined for r in results)
            wrote = time.monotonic() - writing
            clock_us += span_us
            batches += 1
            if on_batch is not None:
                on_batch(report())
            # Leave the store free at least as long as the write took (up to one interval): DuckDB has one
            # writer and a reader cannot open the file meanwhile, so back-to-back writes would starve the app.
            stop.wait(max(interval - (time.monotonic() - tick), min(wrote, interval)))
    return report()
