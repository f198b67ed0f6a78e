"""Airflow DAG: evaluate the workbench's retraining triggers daily and, when they fire, build the retraining set.

``workbench check`` exits 0 when the rule set is quiet, 1 when it fires (retrain), 2 when a rule could not be
evaluated or the input is bad (README, "The CLI contract"). The branch maps each exit code to the next task
(:data:`NEXT_TASK`): 0 ends the run, 1 runs ``workbench curate`` (the curated retraining set and its manifest,
then your training job), 2 fails the run so Airflow alerts. Any other code (3: an unforeseen error) fails the
check task itself.

Set-up: put this file in Airflow's ``dags/`` folder on a worker where ``workbench`` is installed, and point
``WORKBENCH_DB``, ``WORKBENCH_RULES`` and ``WORKBENCH_EXPORTS`` at the store, the rules file and the folder the
retraining sets go to (or edit the defaults below). Works with Airflow 2.4+ and 3.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from datetime import datetime, timedelta

WORKBENCH = os.environ.get("WORKBENCH_BIN", "workbench")
STORE = os.environ.get("WORKBENCH_DB", "/srv/workbench/workbench.duckdb")
RULES = os.environ.get("WORKBENCH_RULES", "/srv/workbench/rules.toml")
EXPORTS = os.environ.get("WORKBENCH_EXPORTS", "/srv/workbench/retraining")

CHECK = [WORKBENCH, "check", "--rules", RULES, "--db", STORE, "--json"]
# Airflow renders {{ ds }} (the run's date, YYYY-MM-DD): one folder per run, with manifest.json beside the set.
CURATE = [WORKBENCH, "curate", "--db", STORE, "--out", EXPORTS + "/{{ ds }}", "--created-by", "airflow", "--json"]
NEXT_TASK = {0: "no_retrain", 1: "curate_retraining_set", 2: "check_failed"}


def next_task(returncode: int) -> str:
    """The task that follows ``workbench check`` for its exit code; any other code fails the check task."""
    if returncode not in NEXT_TASK:
        raise RuntimeError(f"workbench check exited {returncode} (expected 0, 1 or 2): see the task's log")
    return NEXT_TASK[returncode]


def run_check() -> str:
    """Run ``workbench check`` (its JSON and its stderr go to the task's log) and choose the branch."""
    done = subprocess.run(CHECK, capture_output=True, text=True, check=False)
    print(done.stdout)
    print(done.stderr, file=sys.stderr)
    return next_task(done.returncode)


def check_failed() -> None:
    """Exit 2: a rule could not be evaluated on the store, or the input was bad; fail so Airflow alerts."""
    raise RuntimeError("workbench check could not evaluate every rule (exit 2): see the workbench_check log")


try:  # Airflow 3
    from airflow.providers.standard.operators.bash import BashOperator
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.providers.standard.operators.python import BranchPythonOperator, PythonOperator
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG
    from airflow.operators.bash import BashOperator
    from airflow.operators.empty import EmptyOperator
    from airflow.operators.python import BranchPythonOperator, PythonOperator

with DAG(
    dag_id="workbench_retrain_check",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=10)},  # a store busy with an ingest: try again
    tags=["workbench", "retraining"],
) as dag:
    check = BranchPythonOperator(task_id="workbench_check", python_callable=run_check)
    quiet = EmptyOperator(task_id="no_retrain")
    curate = BashOperator(task_id="curate_retraining_set", bash_command=shlex.join(CURATE))
    train = EmptyOperator(task_id="train_model")  # your training job: reads EXPORTS/{{ ds }}/retraining_set.parquet
    failed = PythonOperator(task_id="check_failed", python_callable=check_failed, retries=0)
    check >> [quiet, curate, failed]
    curate >> train
