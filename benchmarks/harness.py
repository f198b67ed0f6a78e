"""Measure a call in a fresh process: wall seconds and peak resident memory, so runs share no caches.

Peak memory is the child process's own high-water RSS (``VmHWM`` in /proc/self/status on Linux), interpreter
and imports included: what a user's process would need. Not ``getrusage``'s ``ru_maxrss``: Linux carries it
across fork + exec, so a child started by a parent holding 1.9 GB reported at least 1.9 GB whatever it used.
``setup`` runs before the clock starts (imports, warm-up).
"""

from __future__ import annotations

import multiprocessing
import platform
import resource
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Measurement:
    """One timed call: seconds (best of ``repeat``), peak RSS in MB, and the call's (small) result."""

    seconds: float
    peak_mb: float
    result: Any = None


@dataclass
class Row:
    """One line of the results table: our time and memory beside the alternative's, and the goal."""

    benchmark: str
    case: str
    rows: int
    ours_s: float
    ours_peak_mb: float
    alternative: str | None = None
    alt_s: float | None = None
    alt_peak_mb: float | None = None
    goal: str | None = None
    goal_met: bool | None = None
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def speedup(self) -> float | None:
        """How many times faster we are than the alternative (alt_s / ours_s)."""
        return None if not self.alt_s else self.alt_s / self.ours_s

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form with the speedup."""
        return {**asdict(self), "speedup": self.speedup}


def _child(queue: Any, target: Callable, args: tuple, setup: Callable | None, repeat: int) -> None:
    try:
        if setup is not None:
            setup()
        best, result = float("inf"), None
        for _ in range(repeat):
            started = time.perf_counter()
            result = target(*args)
            best = min(best, time.perf_counter() - started)
        queue.put(("ok", best, peak_mb(), result))
    except BaseException as exc:  # report any failure to the parent instead of hanging it
        queue.put(("error", f"{type(exc).__name__}: {exc}", None, None))


def peak_mb() -> float:
    """This process's peak resident memory in MB: VmHWM of its own address space (Linux), else ru_maxrss."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(target: Callable, *args: Any, setup: Callable | None = None, repeat: int = 1) -> Measurement:
    """Run ``target(*args)`` in a fresh spawned process; return its best time and the process's peak RSS."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(queue, target, args, setup, repeat))
    process.start()
    status, seconds, peak_mb, result = queue.get()
    process.join()
    if status != "ok":
        raise RuntimeError(f"{getattr(target, '__name__', target)} failed: {seconds}")
    return Measurement(seconds, peak_mb, result)


def measure_best(rounds: int, target: Callable, *args: Any, setup: Callable | None = None) -> Measurement:
    """The fastest of ``rounds`` :func:`measure` runs, each in a fresh process (cold, as a user's first call).

    For ratios against another tool measured the same way: a single run on this VM swings by ±30%.
    """
    runs = [measure(target, *args, setup=setup) for _ in range(max(1, rounds))]
    return min(runs, key=lambda run: run.seconds)


def machine() -> str:
    """A one-line description of this machine for the results file."""
    import os

    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
