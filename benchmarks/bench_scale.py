"""Scale: the demo at 1M, 5M and 20M predictions, each command a whole process, on three set-ups side by side:
the embedded store (DuckDB), the same rows as a lake folder read in place by DuckDB, and that lake on Spark
(local mode). Time is wall seconds of the whole command; peak is the summed resident memory of the command's
process tree (Python, and Spark's JVM when there is one), sampled every 50 ms.

``BENCH_SCALE_SIZES=1000000,5000000`` runs some sizes only; ``BENCH_SCALE_ENGINES=store,lake`` some set-ups.
The log-log plot of time against rows per set-up is written to ``benchmarks/scale.png``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from benchmarks.harness import Row

TITLE = "Scale: 1M, 5M, 20M predictions; store vs lake on DuckDB vs lake on Spark (whole process)"
ROOT = Path(__file__).resolve().parents[1]
SIZES = (1_000_000, 5_000_000, 20_000_000)
QUICK_SIZES = (20_000, 60_000)
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Setup:
    """One way of reading the rows: a source spec and an engine."""

    name: str
    engine: str


SETUPS = (Setup("store", "duckdb"), Setup("lake", "duckdb"), Setup("lake-spark", "spark"))


@dataclass(frozen=True)
class Command:
    """A command as a scheduler runs it, with the issue's goal (seconds, and MB when there is one)."""

    case: str
    argv: tuple[str, ...]
    goal_s: float | None
    goal_mb: float | None = None
    lake_only: bool = False


COMMANDS = (
    # A lake's first read applies the ingest's rules to every row once and keeps the rows they leave out (the
    # folder's .lake-cache/): timed on its own, so each command below is what a user meets on a known lake.
    Command("validate (first read of a lake)", ("validate",), None, lake_only=True),
    Command("info", ("info",), 2.0),
    Command("drift, first run", ("drift", "--reference", "first:30d", "--current", "last:7d"), 15.0, 1536.0),
    Command("drift, a new window", ("drift", "--reference", "first:30d", "--current", "last:14d"), 3.0),
    Command("fairness", ("fairness", "--sensitive", "region"), 1.0),
    Command("abtest", ("abtest",), 2.0),
    Command("check, 9 rules", ("check", "--rules", str(ROOT / "rules.example.toml")), 10.0, 2048.0),
)
DEMO_GOAL_S = 200.0  # the demo build at 20M rows


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            tree.setdefault(ppid, []).append(int(entry))
    return tree


def tree_rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and every descendant, in MB (statm's resident pages)."""
    tree, todo, total = _children(), [pid], 0
    while todo:
        current = todo.pop()
        try:
            with open(f"/proc/{current}/statm") as statm:
                total += int(statm.read().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            pass
        todo += tree.get(current, [])
    return total / 2**20


def run_tree(argv: list[str], env: dict[str, str]) -> tuple[float, float, int, str]:
    """Run ``argv``; return wall seconds, the peak summed RSS of its process tree (MB), exit code and stderr."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = 0.0
    while process.poll() is None:
        peak = max(peak, tree_rss_mb(process.pid))
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    return seconds, peak, process.returncode, process.stderr.read() if process.stderr else ""


def workbench(*argv: str) -> list[str]:
    """The CLI as a user runs it, in this interpreter."""
    return [sys.executable, "-m", "workbench.cli", *argv]


def forget_profiles(db: Path) -> None:
    """Drop the store's cached reference profiles, so the next drift is a first run."""
    import duckdb

    with duckdb.connect(str(db)) as con:
        con.execute("DROP TABLE IF EXISTS drift_profiles")


def export(db: Path, lake: Path) -> None:
    """The store's rows as a lake folder (the demo's own export)."""
    from workbench.ingest.lake import export_lake
    from workbench.sources.store import Store

    export_lake(Store(db), lake)


def _plot(points: list[dict]) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # the plot is a convenience of the dev environment
        return
    cases = [c.case for c in COMMANDS if c.goal_s is not None]
    fig, axes = plt.subplots(2, 3, figsize=(13, 7.5), sharex=True)
    for ax, case in zip(axes.flat, cases, strict=True):
        for setup in SETUPS:
            mine = sorted((p["rows"], p["seconds"]) for p in points if p["case"] == case and p["setup"] == setup.name)
            if mine:
                ax.plot(*zip(*mine, strict=True), marker="o", label=setup.name)
        goal = next(c.goal_s for c in COMMANDS if c.case == case)
        ax.axhline(goal, color="grey", linestyle="--", linewidth=1, label=f"goal {goal:g} s")
        ax.set(xscale="log", yscale="log", title=case, xlabel="predictions", ylabel="seconds (whole process)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Time vs rows per set-up (log-log)")
    fig.tight_layout()
    fig.savefig(Path(__file__).with_name("scale.png"), dpi=110)


def cases(quick: bool, workdir: Path) -> Iterator[Row]:
    """Build the demo at each size, export it as a lake, run every command on every set-up in its own process."""
    sizes = tuple(int(s) for s in os.environ.get("BENCH_SCALE_SIZES", "").split(",") if s) or (
        QUICK_SIZES if quick else SIZES
    )
    wanted = set(filter(None, os.environ.get("BENCH_SCALE_ENGINES", "").split(","))) or {s.name for s in SETUPS}
    # Each command as a user meets it after its first run: with the package's bytecode compiled (a process started
    # with PYTHONDONTWRITEBYTECODE, as in some containers, would otherwise compile every module in each run).
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "workbench")], check=True, capture_output=True)
    points: list[dict] = []
    for rows in sizes:
        db, lake = workdir / f"scale-{rows}.duckdb", workdir / f"scale-{rows}-lake"
        seconds, peak, code, err = run_tree(workbench("demo", "--rows", str(rows), "--db", str(db)), dict(os.environ))
        if code != 0:
            raise RuntimeError(f"demo --rows {rows} failed: {err.strip()[-300:]}")
        goal = f"≤ {DEMO_GOAL_S:g} s at 20M" if rows == 20_000_000 else None
        started = time.perf_counter()
        export(db, lake)
        yield Row("scale", "demo build (store)", rows, seconds, peak, goal=goal,
                  goal_met=(seconds <= DEMO_GOAL_S) if goal else None,
                  notes=f"then its export as a lake folder: {time.perf_counter() - started:.1f} s")  # fmt: skip
        for setup in SETUPS:
            if setup.name not in wanted:
                continue
            source = str(db) if setup.name == "store" else f"lake:{lake}"
            # the default store's folder holds a lake's cache: the work folder, emptied for each set-up
            env = {**os.environ, "WORKBENCH_ENGINE": setup.engine, "WORKBENCH_DB": str(db)}
            env.pop("WORKBENCH_SOURCE", None)
            if setup.name == "store":
                forget_profiles(db)
            shutil.rmtree(workdir / ".lake-cache", ignore_errors=True)
            for command in COMMANDS:
                if command.lake_only and setup.name == "store":
                    continue
                seconds, peak, code, err = run_tree(workbench("--source", source, *command.argv, "--json"), env)
                ok = code in (0, 1)
                goal = (f"≤ {command.goal_s:g} s" + (f", ≤ {command.goal_mb / 1024:g} GB" if command.goal_mb else "")
                        if command.goal_s is not None else None)  # fmt: skip
                met = (ok and seconds <= command.goal_s and (command.goal_mb is None or peak <= command.goal_mb)
                       if command.goal_s is not None else None)  # fmt: skip
                last = err.strip().splitlines()[-1][:160] if err.strip() else ""
                note = "" if ok else f"failed (exit {code}): {last}"
                yield Row("scale", f"{command.case} [{setup.name}]", rows, seconds, peak, goal=goal, goal_met=met,
                          notes=note, extra={"setup": setup.name, "engine": setup.engine})  # fmt: skip
                if ok:
                    points.append({"case": command.case, "setup": setup.name, "rows": rows, "seconds": seconds,
                                   "peak_mb": peak})  # fmt: skip
    out = Path(__file__).with_name("out")
    out.mkdir(exist_ok=True)
    # a run of some sizes or set-ups keeps the other points of earlier runs (the plot shows every size)
    try:
        earlier = json.loads((out / "scale.json").read_text())
    except (OSError, ValueError):
        earlier = []
    mine = {(p["case"], p["setup"], p["rows"]) for p in points}
    points = [p for p in earlier if (p["case"], p["setup"], p["rows"]) not in mine] + points
    (out / "scale.json").write_text(json.dumps(points, indent=2))
    _plot(points)
