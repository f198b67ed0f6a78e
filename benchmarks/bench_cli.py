"""The CLI as a scheduler runs it: each command's whole process (interpreter, imports, the store opened, the
analysis, the JSON printed) beside the analysis alone, timed in a process whose imports are already done."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from benchmarks.harness import Row, measure

TITLE = "CLI: whole process vs the analysis alone"
ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {
    "drift": ["drift", "--reference", "first:30d", "--current", "last:7d", "--no-multivariate"],
    "fairness": ["fairness", "--sensitive", "region"],
    "abtest": ["abtest", "--metric", "thumbs_up_rate"],
    "check": ["check", "--rules", str(ROOT / "rules.example.toml")],
}


def build(db: str, rows: int) -> int:
    """The demo store at ``rows`` predictions."""
    from workbench.demo.scenario import Scenario, build_demo
    from workbench.sources.store import Store

    return build_demo(Store(db), Scenario(rows=rows))["predictions"]


def analysis(db: str, command: str) -> str:
    """The analysis a command runs, called in-process (its imports paid by the setup)."""
    from workbench.abtest.request import ABTestRequest
    from workbench.abtest.run import run as run_abtest
    from workbench.core.window import parse_window
    from workbench.drift.request import DriftRequest
    from workbench.drift.run import run as run_drift
    from workbench.fairness.request import FairnessRequest
    from workbench.fairness.run import run as run_fairness
    from workbench.sources.base import StoreSource
    from workbench.sources.store import Store
    from workbench.sources.store_queries import store_bounds
    from workbench.stream.request import CheckRequest
    from workbench.stream.triggers import run as run_check

    source = StoreSource(Store(db))
    if command == "drift":
        bounds = store_bounds(source.store)
        request = DriftRequest(parse_window("first:30d", None, bounds), parse_window("last:7d", None, bounds),
                               multivariate=False)  # fmt: skip
        result = run_drift(source, request)
    elif command == "fairness":
        result = run_fairness(source, FairnessRequest(sensitive=("region",)))
    elif command == "abtest":
        result = run_abtest(source, ABTestRequest(metrics=("thumbs_up_rate",)))
    else:
        result = run_check(source, CheckRequest(rules_path=ROOT / "rules.example.toml"))
    return result.verdict


def _imports() -> None:
    import duckdb  # noqa: F401
    import ibis  # noqa: F401
    import pandas  # noqa: F401
    import scipy.stats  # noqa: F401
    import sklearn.isotonic  # noqa: F401

    import workbench.abtest.run
    import workbench.drift.run
    import workbench.fairness.run
    import workbench.stream.triggers  # noqa: F401


def whole_process(db: str, argv: list[str], repeat: int = 3) -> float:
    """The fastest of ``repeat`` runs of ``workbench ARGV --db DB --json`` as a subprocess (wall seconds)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "workbench.cli", *argv, "--db", db, "--json"], cwd=ROOT,
                             capture_output=True, text=True)  # fmt: skip
        best = min(best, time.perf_counter() - started)
        if out.returncode not in (0, 1):
            raise RuntimeError(f"workbench {argv[0]} failed: {out.stderr.strip()[:300]}")
    return best


def cases(quick: bool, workdir: Path) -> Iterator[Row]:
    """Each command on the default 300k-prediction demo (20k in quick mode)."""
    rows = 20_000 if quick else 300_000
    db = str(workdir / "cli.duckdb")
    measure(build, db, rows)
    for command, argv in COMMANDS.items():
        alone = measure(analysis, db, command, setup=_imports, repeat=3)
        whole = whole_process(db, argv)
        yield Row(
            "cli", f"workbench {command} (whole process)", rows, whole, 0.0,
            "the analysis alone (imports done)", alone.seconds, alone.peak_mb,
            notes=f"{' '.join(argv[:3])} …; the difference is the interpreter, imports and JSON: "
            f"{whole - alone.seconds:.2f} s",
        )  # fmt: skip
