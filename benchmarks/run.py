"""`make bench`: run every benchmarks/bench_*.py, print each row as it lands, write RESULTS.md and out/results.json.

A run of some modules only (``run.py drift``) or at quick sizes writes out/ only: RESULTS.md always holds one
complete run, measured under one load (the 1-minute load average is recorded before each module and at the end).

Each module exposes ``TITLE`` and ``cases(quick: bool, workdir: Path) -> Iterator[Row]``; a case measures
our path and, where one exists, the alternative a user would pick instead, in the same run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.harness import Row, machine  # noqa: E402


def _fmt(value: float | None, unit: str = "") -> str:
    return "—" if value is None else f"{value:,.2f}{unit}"


def table(rows: list[Row]) -> list[str]:
    """Markdown table of one benchmark module's rows."""
    lines = [
        "| case | rows | ours (s) | ours peak (MB) | alternative | alt (s) | alt peak (MB) | × faster | goal | met |",
        "| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- | --- |",
    ]
    for r in rows:
        met = "—" if r.goal_met is None else ("yes" if r.goal_met else "**no**")
        lines.append(
            f"| {r.case} | {r.rows:,} | {_fmt(r.ours_s)} | {_fmt(r.ours_peak_mb, '')} | {r.alternative or '—'} | "
            f"{_fmt(r.alt_s)} | {_fmt(r.alt_peak_mb)} | {_fmt(r.speedup, '×')} | {r.goal or '—'} | {met} |"
        )
    notes = [f"- {r.case}: {r.notes}" for r in rows if r.notes]
    return lines + (["", *notes] if notes else [])


def main() -> None:
    """Run the benchmarks named on the command line (default: all) and write the results files."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="Small sizes: checks the benchmarks run, not the goals.")
    parser.add_argument("only", nargs="*", help="Module names without bench_ (e.g. drift abtest).")
    args = parser.parse_args()
    names = args.only or sorted(p.stem[len("bench_") :] for p in HERE.glob("bench_*.py"))
    sections, everything, loads = [], [], []
    with tempfile.TemporaryDirectory(prefix="workbench-bench-") as tmp:
        for name in names:
            module = importlib.import_module(f"benchmarks.bench_{name}")
            loads.append(os.getloadavg()[0])
            print(f"== {module.TITLE}", flush=True)
            rows = []
            for row in module.cases(args.quick, Path(tmp)):
                print(
                    f"  {row.case}: ours {row.ours_s:.2f} s / {row.ours_peak_mb:.0f} MB"
                    + (f"; {row.alternative} {row.alt_s:.2f} s ({row.speedup:.1f}× faster)" if row.alt_s else ""),
                    flush=True,
                )
                rows.append(row)
            sections += [f"## {module.TITLE}", "", *table(rows), ""]
            everything += [{"module": name, **r.to_dict()} for r in rows]
    loads.append(os.getloadavg()[0])
    header = [
        "# Benchmark results",
        "",
        f"`make bench` on {dt.date.today().isoformat()}, {machine()}{' (quick sizes)' if args.quick else ''}.",
        "Times are wall-clock seconds of the measured call (best of the repeats), each in a fresh process;",
        "peak is that process's own high-water resident memory (VmHWM), interpreter and imports included.",
        f"1-minute load average before each module and at the end: {', '.join(f'{x:.1f}' for x in loads)}.",
        "",
    ]
    if not args.quick and not args.only:
        (HERE / "RESULTS.md").write_text("\n".join(header + sections))
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "results.json").write_text(json.dumps(everything, indent=2, default=str))
    print("\n".join(header + sections))


if __name__ == "__main__":
    main()
