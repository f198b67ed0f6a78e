"""The examples in examples/ work with this workbench: the Grafana dashboard and the alert rules name metrics the
exporter publishes, the Airflow DAG runs commands the CLI has and branches on every exit code of `check`, and
the cron script retrains when the triggers fire. Airflow is not installed (it does not fit the test budget): the
DAG is read with ``ast``, and its Airflow-free part (commands and branch) is run on its own."""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import shutil
import subprocess
from datetime import UTC, datetime

import pytest
import typer
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ROOT
from workbench.cli import app
from workbench.metrics.exporter import Exporter

EXAMPLES = ROOT / "examples"
DAG = EXAMPLES / "airflow" / "workbench_dag.py"
METRIC_NAME = re.compile(r"\bworkbench_[a-z0-9_]+\b")


@pytest.fixture(scope="module")
def published(readings) -> set[str]:
    """Every sample name the exporter publishes for the session's store and rules file."""
    exporter = Exporter(lambda: readings, refresh_seconds=300)
    exporter.refresh()
    text = generate_latest(exporter.registry).decode("utf-8")
    return {s.name for f in text_string_to_metric_families(text) for s in f.samples}


def command_options(name: str) -> set[str]:
    """The options of `workbench NAME` as the CLI declares them (click's view of the Typer app)."""
    group = typer.main.get_command(app)
    command = group.commands[name] if " " not in name else group.commands["metrics"].commands[name.split()[1]]
    return {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}


def test_the_grafana_dashboard_uses_only_published_metrics(published):
    dashboard = json.loads((EXAMPLES / "grafana" / "workbench_dashboard.json").read_text(encoding="utf-8"))
    expressions = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    expressions.append(dashboard["templating"]["list"][1]["query"]["query"])
    used = {name for e in expressions for name in METRIC_NAME.findall(e)}
    assert used - published == set()
    assert {"workbench_online_accuracy_ratio", "workbench_drift_psi", "workbench_rule_value"} <= used
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    cells = [
        (x, y)
        for p in dashboard["panels"]
        for x in range(p["gridPos"]["x"], p["gridPos"]["x"] + p["gridPos"]["w"])
        for y in range(p["gridPos"]["y"], p["gridPos"]["y"] + p["gridPos"]["h"])
    ]
    assert len(cells) == len(set(cells)) and max(x for x, _ in cells) < 24  # no panel over another, 24 columns
    accuracy = next(p for p in dashboard["panels"] if p["title"].startswith("Online accuracy"))
    steps = accuracy["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert 0.70 in [s["value"] for s in steps]  # the chart draws the alert's threshold
    assert accuracy["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] == "line"


def test_the_alert_rules_use_only_published_metrics(published):
    rules = yaml.safe_load((EXAMPLES / "prometheus" / "workbench_alerts.yml").read_text(encoding="utf-8"))
    alerts = [r for g in rules["groups"] for r in g["rules"]]
    assert len({a["alert"] for a in alerts}) == len(alerts) >= 8
    for alert in alerts:
        assert set(alert) <= {"alert", "expr", "for", "labels", "annotations"}, alert["alert"]
        assert re.fullmatch(r"\d+[smhd]", alert.get("for", "0s")), alert["alert"]
        assert alert["annotations"]["summary"], alert["alert"]
    used = {name for a in alerts for name in METRIC_NAME.findall(a["expr"])}
    assert used - published == set()
    assert "workbench_rules_fired" in used and "workbench_metrics_computed_timestamp_seconds" in used


def dag_tree() -> ast.Module:
    return ast.parse(DAG.read_text(encoding="utf-8"), filename=str(DAG))


def airflow_free_part(env: dict[str, str]) -> dict:
    """Execute the DAG file's statements that do not touch Airflow (imports of the standard library, the
    commands, NEXT_TASK and the functions) with ``env`` as the environment the file reads."""
    tree = dag_tree()
    body = [
        node for node in tree.body
        if not isinstance(node, ast.Try | ast.With)
        and not (isinstance(node, ast.ImportFrom) and (node.module or "").startswith("airflow"))
    ]  # fmt: skip
    namespace: dict = {}
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        exec(compile(ast.Module(body=body, type_ignores=[]), str(DAG), "exec"), namespace)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return namespace


def test_the_dag_branches_on_every_exit_code_of_check_to_a_task_it_defines():
    tree = dag_tree()
    tasks = {
        kw.value.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        for kw in node.keywords
        if kw.arg == "task_id"
    }
    namespace = airflow_free_part({})
    assert namespace["NEXT_TASK"] == {0: "no_retrain", 1: "curate_retraining_set", 2: "check_failed"}
    assert set(namespace["NEXT_TASK"].values()) <= tasks
    assert [namespace["next_task"](code) for code in (0, 1, 2)] == [
        "no_retrain",
        "curate_retraining_set",
        "check_failed",
    ]
    with pytest.raises(RuntimeError, match="exited 3"):
        namespace["next_task"](3)
    with pytest.raises(RuntimeError, match="exit 2"):
        namespace["check_failed"]()
    # the branch task is upstream of the three branches
    shifts = [n for n in ast.walk(tree) if isinstance(n, ast.BinOp) and isinstance(n.op, ast.RShift)]
    assert any(isinstance(s.left, ast.Name) and s.left.id == "check" and isinstance(s.right, ast.List) for s in shifts)


def test_the_dag_runs_commands_the_cli_has_and_branches_on_their_exit_code(capsys):
    namespace = airflow_free_part({"WORKBENCH_DB": "/data/w.duckdb", "WORKBENCH_RULES": "/data/rules.toml"})
    assert namespace["CHECK"] == [
        "workbench",
        "check",
        "--rules",
        "/data/rules.toml",
        "--db",
        "/data/w.duckdb",
        "--json",
    ]
    for command in (namespace["CHECK"], namespace["CURATE"]):
        assert command[0] == "workbench"
        options = {word for word in command[2:] if word.startswith("--")}
        assert options <= command_options(command[1]), command
    assert "{{ ds }}" in shlex.join(namespace["CURATE"])  # Airflow renders the run's date into the folder
    # the branch follows the process's exit code (the cron test below runs the real check and curate)
    for code, branch in ((0, "no_retrain"), (1, "curate_retraining_set"), (2, "check_failed")):
        namespace["CHECK"][:] = ["sh", "-c", f"echo '{{}}'; exit {code}"]
        assert namespace["run_check"]() == branch


def test_the_cron_script_builds_the_retraining_set_when_the_triggers_fire(metrics_store, tmp_path):
    store, _, rules = metrics_store
    copy = tmp_path / "workbench.duckdb"
    shutil.copy(store.path, copy)
    binary = ROOT / ".venv" / "bin" / "workbench"
    env = {
        **os.environ,
        "WORKBENCH_DB": str(copy),
        "WORKBENCH_RULES": str(rules),
        "WORKBENCH_EXPORTS": str(tmp_path / "sets"),
        "WORKBENCH_BIN": str(binary) if binary.exists() else "workbench",
    }
    out = subprocess.run(
        [str(EXAMPLES / "cron" / "workbench-check.sh")], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    manifest = json.loads((tmp_path / "sets" / day / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["rows"] > 0


def test_the_crontab_lines_run_existing_commands():
    lines = [
        line for line in (EXAMPLES / "cron" / "workbench.crontab").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]  # fmt: skip
    assert len(lines) == 2
    for line in lines:
        fields = line.split()
        assert all(re.fullmatch(r"[\d*/,-]+", f) for f in fields[:5]), line
    script = lines[0].split()[5:]
    assert script[-4].endswith("examples/cron/workbench-check.sh")
    words = lines[1].split()[5:]
    assert words[:3] == ["workbench", "metrics", "write"]
    assert {w for w in words if w.startswith("--")} <= command_options("metrics write")


def series_text(samples: list) -> list[dict]:
    """promtool input series: each published sample held constant for two hours (one point a minute)."""
    out = []
    for s in samples:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
        out.append({"series": f"{s.name}{{{labels}}}", "values": f"{s.value!r}+0x120"})
    return out


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian's prometheus package) is not installed")
def test_the_alerts_fire_on_the_demo_as_its_truth_says(readings, metrics_store, tmp_path):
    """promtool evaluates every alert's expression on the exporter's numbers for the demo store: the trigger set and
    accuracy_drop fire, fpr_gap cannot be evaluated, v2 (serving only after the concept drift) has low accuracy,
    the four injected features drift; nothing else alerts."""
    truth = metrics_store[1]
    exporter = Exporter(lambda: readings, refresh_seconds=300)
    exporter.refresh()
    text = generate_latest(exporter.registry).decode("utf-8")
    samples = [s for f in text_string_to_metric_families(text) for s in f.samples]
    psi = {f.name: f.psi for f in readings.drift.features}
    accuracy = {v.model_version: v.online_accuracy for v in readings.versions}
    expected = {
        "WorkbenchRetrainTriggerFired": [("workbench_rules_fired", {}, 1.0)],
        "WorkbenchRuleFiring": [("workbench_rule_fired", {"rule": "accuracy_drop", "metric": "online_accuracy"}, 1.0)],
        "WorkbenchRuleNotEvaluable": [("workbench_rule_error", {"rule": "fpr_gap", "metric": "fairness_ratio"}, 1.0)],
        "WorkbenchOnlineAccuracyLow": [("workbench_online_accuracy_ratio", {"model_version": "v2"}, accuracy["v2"])],
        "WorkbenchFeatureDrift": [("workbench_drift_psi", {"feature": f}, psi[f]) for f in truth["drifted_features"]],
    }
    rules = yaml.safe_load((EXAMPLES / "prometheus" / "workbench_alerts.yml").read_text(encoding="utf-8"))
    tests = []
    for alert in (r for g in rules["groups"] for r in g["rules"]):
        rows = expected.get(alert["alert"], [])
        tests.append({
            "expr": alert["expr"],
            "eval_time": "60m",
            "exp_samples": [
                {"labels": name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}", "value": value}
                for name, labels, value in rows
            ],
        })  # fmt: skip
    unit = {"rule_files": [], "evaluation_interval": "1m",
            "tests": [{"interval": "1m", "input_series": series_text(samples), "promql_expr_test": tests}]}  # fmt: skip
    (tmp_path / "alerts_test.yml").write_text(yaml.safe_dump(unit), encoding="utf-8")
    out = subprocess.run(["promtool", "test", "rules", "alerts_test.yml"], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    alerts = str(EXAMPLES / "prometheus" / "workbench_alerts.yml")
    checked = subprocess.run(["promtool", "check", "rules", alerts], capture_output=True, text=True)  # templates too
    assert checked.returncode == 0 and "SUCCESS: 11 rules found" in checked.stdout, checked.stdout + checked.stderr


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian's prometheus package) is not installed")
def test_the_exposition_passes_promtools_naming_lint(readings):
    """promtool check metrics: units and _total suffixes, no reserved labels on the wrong type, help on every family."""
    exporter = Exporter(lambda: readings, refresh_seconds=300)
    exporter.refresh()
    text = generate_latest(exporter.registry).decode("utf-8")
    out = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout + out.stderr == "", out.stdout + out.stderr


def test_the_readme_shows_the_dag_and_the_cron_lines_as_they_are():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Scheduling: Airflow and cron") :]
    dag = DAG.read_text(encoding="utf-8")
    shown = section[section.index("```python") + 9 : section.index("```", section.index("```python") + 9)]
    code = [line.split("  #")[0].rstrip() for line in shown.splitlines() if line.strip()]
    assert len(code) >= 10
    assert all(line in dag or line.startswith("with DAG(") for line in code), [c for c in code if c not in dag]
    crontab = (EXAMPLES / "cron" / "workbench.crontab").read_text(encoding="utf-8")
    assert all(line in section for line in crontab.splitlines() if line and not line.startswith("#"))
