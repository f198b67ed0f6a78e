"""Golden CLI documents: every command's ``--json`` output on a small demo store, saved before the
restructure and compared after it (time stamps, durations and temporary paths masked).

Regenerate (only when a change to a document is intended): ``python -m tests.golden.cases --write``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).resolve().parent
DEMO = ("--rows", "40000", "--days", "60", "--seed", "7")

# keys whose values change from run to run: wall-clock times, durations, paths of the temp folder
MASKED_KEYS = {
    "seconds", "elapsed_s", "duration_s", "computed_at", "created_at", "recorded_at", "generated_at",
    "as_of_wall", "run_at", "at", "exported_at", "db", "path", "ground_truth", "out", "file", "manifest",
    "store", "source", "data_version", "written_at", "evaluated_at",
}  # fmt: skip
TIME_STAMP = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(\+00:00|Z)?")


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m workbench.cli ARGS`` in the repository."""
    return subprocess.run(
        [sys.executable, "-m", "workbench.cli", *args], capture_output=True, text=True, cwd=ROOT, env=env
    )


def build_inputs(folder: Path) -> dict[str, str]:
    """Build the demo store and the small files the file modes read; returns named paths."""
    db = folder / "w.duckdb"
    out = cli("demo", *DEMO, "--db", str(db), "--json")
    assert out.returncode == 0, out.stderr
    paths = {"db": str(db)}
    con = duckdb.connect(str(db), read_only=True)
    try:
        cols = [r[0] for r in con.execute("DESCRIBE predictions").fetchall()]
        feats = ", ".join(c for c in cols if not c.startswith("__") and c not in ("trace_id", "ts", "ingest_id"))
        paths["ref"] = str(folder / "ref.parquet")
        paths["cur"] = str(folder / "cur.csv")
        con.execute(
            f"COPY (SELECT {feats} FROM predictions WHERE ts < TIMESTAMP '2026-01-21' ORDER BY trace_id) "
            f"TO '{paths['ref']}' (FORMAT parquet)"
        )
        con.execute(
            f"COPY (SELECT {feats} FROM predictions WHERE ts >= TIMESTAMP '2026-02-20' ORDER BY trace_id) "
            f"TO '{paths['cur']}' (HEADER)"
        )
    finally:
        con.close()
    (folder / "units.csv").write_text(
        "arm,converted\n"
        + "".join(f"{'a' if i % 2 else 'b'},{int((i * 7919) % 10 < (3 if i % 2 else 4))}\n" for i in range(4000)),
        encoding="utf-8",
    )
    paths["units"] = str(folder / "units.csv")
    (folder / "summary.csv").write_text("arm,n,successes\ncontrol,5000,600\nvariant,5050,690\n", encoding="utf-8")
    paths["summary"] = str(folder / "summary.csv")
    (folder / "pairs.csv").write_text(
        "v1,v2,label\n" + "".join(f"{i % 2},{(i // 3) % 2},{(i // 2) % 2}\n" for i in range(600)), encoding="utf-8"
    )
    paths["pairs"] = str(folder / "pairs.csv")
    (folder / "scored.csv").write_text(
        "y,yhat,s0\n" + "".join(f"{(i // 2) % 2},{(i * 31 // 7) % 2},{'abc'[i % 3]}\n" for i in range(900)),
        encoding="utf-8",
    )
    paths["scored"] = str(folder / "scored.csv")
    paths["curated"] = str(folder / "curated")
    return paths


def cases(p: dict[str, str]) -> dict[str, list[str]]:
    """Every command's arguments (the golden file's name → argv), in the order they are run."""
    db = ("--db", p["db"])
    return {
        "info": ["info", *db],
        "drift_windows": ["drift", "--reference", "first:20d", "--current", "last:7d", *db],
        "drift_versions": ["drift", "--reference-version", "v1", "--current-version", "v2", "--no-multivariate", *db],
        "drift_over_time": [
            "drift",
            "--reference",
            "first:20d",
            "--current",
            "last:14d",
            "--over-time",
            "week",
            "--no-multivariate",
            *db,
        ],
        "drift_files": [
            "drift",
            "--reference-file",
            p["ref"],
            "--current-file",
            p["cur"],
            "--categorical",
            "country,device",
        ],
        "drift_file_window": ["drift", "--reference-file", p["ref"], "--current", "last:7d", *db],
        "abtest_store": ["abtest", "--metric", "thumbs_up_rate", *db],
        "abtest_by": ["abtest", "--metric", "thumbs_up_rate", "--by", "region", *db],
        "abtest_file": ["abtest", "--file", p["units"], "--arm-col", "arm", "--metric-col", "converted"],
        "abtest_summary": ["abtest", "--summary-file", p["summary"]],
        "power": ["power", "--baseline", "0.62", "--mde", "0.05", "--relative"],
        "power_mean": ["power", "--baseline", "50", "--mde", "2", "--std", "20", "--arms", "3", "--daily-units", "500"],
        "shadow": [
            "shadow",
            "--file",
            p["pairs"],
            "--champion-col",
            "v1",
            "--challenger-col",
            "v2",
            "--label-col",
            "label",
        ],
        "fairness_store": ["fairness", "--sensitive", "region", *db],
        "fairness_intersection": ["fairness", "--sensitive", "age_band,region", *db],
        "fairness_tradeoffs": [
            "fairness",
            "--sensitive",
            "region",
            "--compare-versions",
            "--mitigate",
            "equalized_odds",
            *db,
        ],
        "fairness_file": [
            "fairness",
            "--file",
            p["scored"],
            "--label",
            "y",
            "--prediction",
            "yhat",
            "--sensitive",
            "s0",
        ],
        "check": ["check", "--rules", str(ROOT / "rules.example.toml"), *db],
        "curate": ["curate", "--out", p["curated"], *db],
        "quality": ["quality", "--window", "last:21d", "--reference", "first:30d", "--chunk", "week", *db],
    }


def mask(value: Any, key: str | None = None) -> Any:
    """The document with run-dependent values replaced by '<masked>' (keys above; ISO time stamps of now)."""
    if key in MASKED_KEYS:
        return "<masked>"
    if isinstance(value, dict):
        return {k: mask(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v) for v in value]
    if isinstance(value, str) and p_tmp.search(value):
        return p_tmp.sub("<tmp>", value)
    return value


p_tmp = re.compile(r"/tmp/[^\s'\"]*")


def run_all(folder: Path) -> dict[str, Any]:
    """Run every case on fresh inputs in ``folder``; returns name → masked JSON document (or exit info)."""
    p = build_inputs(folder)
    env = {k: v for k, v in os.environ.items() if k not in ("WORKBENCH_SETTINGS", "WORKBENCH_DB")}
    documents: dict[str, Any] = {}
    for name, argv in cases(p).items():
        out = cli(*argv, "--json", env=env)
        document: Any = json.loads(out.stdout) if out.stdout.strip() else None
        if name == "curate":
            document = {"cli": document, "manifest": json.loads((Path(p["curated"]) / "manifest.json").read_text())}
        documents[name] = {"exit_code": out.returncode, "document": mask(document)}
    return documents


if __name__ == "__main__":
    import tempfile

    if "--write" not in sys.argv:
        sys.exit("usage: python -m tests.golden.cases --write")
    with tempfile.TemporaryDirectory() as tmp:
        for name, doc in run_all(Path(tmp)).items():
            (GOLDEN / f"{name}.json").write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")
            print(name, doc["exit_code"])
