"""The exporter over HTTP on 127.0.0.1 and as a textfile: Prometheus's own parser reads what it serves, scrapes
never recompute, and the file appears whole."""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest
from prometheus_client import exposition
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ROOT
from workbench.cli import main
from workbench.core.errors import InputError
from workbench.metrics.collector import check_rules
from workbench.metrics.exporter import Exporter, serve, write_textfile
from workbench.stream.snapshot import stream_snapshot


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    """GET /metrics and parse it with prometheus_client's parser: (sample name, sorted labels) → value."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode("utf-8")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


@pytest.fixture()
def counting(readings):
    """An exporter whose computation returns the session's readings stamped with the time it ran."""
    calls: list[float] = []

    def compute():
        calls.append(time.monotonic())
        return replace(readings, computed_at=time.time())

    return calls, compute


@pytest.fixture()
def served(counting):
    calls, compute = counting
    exporter = Exporter(compute, refresh_seconds=300)
    port = free_port()
    server, _ = serve(exporter, port)
    yield exporter, port, calls
    server.shutdown()
    exporter.stop()


def test_a_scrape_reads_every_section_with_prometheus_parser(served, readings):
    _, port, _ = served
    samples = scrape(port)
    for v in readings.versions:
        assert value(samples, "workbench_online_accuracy_ratio", model_version=v.model_version) == v.online_accuracy
        assert value(samples, "workbench_predictions", model_version=v.model_version) == v.predictions
        for share, hours in v.label_delay_hours.items():
            got = value(samples, "workbench_label_delay_seconds", model_version=v.model_version, share=f"{share:g}")
            assert got == pytest.approx(hours * 3600, rel=1e-12)
    for (table, reason), rows in readings.quarantined.items():
        assert value(samples, "workbench_quarantined_rows_total", table=table, reason=reason) == rows
    for f in readings.drift.features:
        assert value(samples, "workbench_drift_psi", feature=f.name) == pytest.approx(f.psi, rel=1e-12)
    for r in readings.check.rules:
        key = {"rule": r.name, "metric": r.metric}
        assert value(samples, "workbench_rule_fired", **key) == float(r.fired)
        assert value(samples, "workbench_rule_threshold", **key, op=r.op) == r.threshold
        assert (("workbench_rule_value", tuple(sorted(key.items()))) in samples) is (r.value is not None)
    assert value(samples, "workbench_rules_fired") == 1.0
    assert value(samples, "workbench_newest_prediction_timestamp_seconds") == readings.as_of.timestamp()


def test_two_scrapes_within_the_interval_compute_once(served):
    exporter, port, calls = served
    first, second = scrape(port), scrape(port)
    assert len(calls) == 1 and exporter.refreshes == 1
    stamp = ("workbench_metrics_computed_timestamp_seconds", ())
    assert first[stamp] == second[stamp]
    assert value(second, "workbench_metrics_refreshes_total") == 1.0


def test_the_numbers_are_recomputed_in_the_background_at_most_every_interval(counting):
    calls, compute = counting
    exporter = Exporter(compute, refresh_seconds=1.0)
    port = free_port()
    server, _ = serve(exporter, port)
    try:
        scrapes, deadline = 0, time.monotonic() + 2.6
        while time.monotonic() < deadline:  # a scrape every 0.1 s: twenty-odd scrapes, two or three computations
            scrape(port)
            scrapes += 1
            time.sleep(0.1)
        elapsed = time.monotonic() - calls[0]
        assert 2 <= len(calls) <= 1 + elapsed / 1.0 < scrapes
        assert all(later - earlier >= 1.0 for earlier, later in itertools.pairwise(calls))
    finally:
        server.shutdown()
        exporter.stop()


def test_the_textfile_is_renamed_into_place_whole(tmp_path, monkeypatch, readings):
    target = tmp_path / "workbench.prom"
    target.write_text("# the previous file\n", encoding="utf-8")
    renames = []
    rename = os.rename

    def watch(source, destination):
        # at the moment of the rename the new text is complete beside the old file, which is still intact
        renames.append((source, destination, Path(source).read_text(), Path(destination).read_text()))
        rename(source, destination)

    monkeypatch.setattr(exposition.os, "rename", watch)
    exporter = Exporter(lambda: readings, refresh_seconds=300)
    exporter.refresh()
    write_textfile(exporter, target)
    (source, destination, new_text, old_text) = renames[0]
    assert os.path.dirname(source) == str(tmp_path) and destination == str(target) and source != destination
    assert old_text == "# the previous file\n" and new_text == target.read_text(encoding="utf-8")
    assert os.listdir(tmp_path) == ["workbench.prom"]  # no temporary file left behind
    names = {f.name for f in text_string_to_metric_families(new_text)}
    assert {"workbench_online_accuracy_ratio", "workbench_drift_psi", "workbench_rule_value"} <= names


def test_a_textfile_in_a_missing_folder_or_over_a_folder_is_refused_in_one_line(tmp_path, readings):
    exporter = Exporter(lambda: readings, refresh_seconds=300)
    exporter.refresh()
    with pytest.raises(InputError, match=r"the folder .* does not exist"):
        write_textfile(exporter, tmp_path / "nowhere" / "workbench.prom")
    with pytest.raises(InputError, match=r"it is a folder"):
        write_textfile(exporter, tmp_path)
    assert os.listdir(tmp_path) == []


def test_a_port_in_use_is_refused_in_one_line(readings):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        exporter = Exporter(lambda: readings, refresh_seconds=300)
        with pytest.raises(InputError, match=rf"cannot serve on 127.0.0.1:{taken.getsockname()[1]}"):
            serve(exporter, taken.getsockname()[1])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["write", "w.prom", "--db", "none.duckdb"], "error: no store at"),
        (["serve", "--port", "70000", "--db", "none.duckdb"], "error: --port must be a TCP port from 1 to 65535"),
    ],
)
def test_the_cli_refuses_bad_input_in_one_line(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["workbench", "metrics", *args])
    with pytest.raises(SystemExit) as stopped:
        main()
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and err.startswith(message) and err.count("\n") == 1


def test_a_bad_rules_file_is_refused_before_anything_is_computed(tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rule]]\nname = "x"\nmetric = "online_accuracy"\nop = "<"\n', encoding="utf-8")
    with pytest.raises(InputError, match="line 1: rule 'x' needs 'threshold'"):
        check_rules(rules)


def _as_a_shell_starts_it() -> None:
    """The child's Ctrl-C as an interactive shell leaves it (SIGINT unblocked, default disposition), whatever the
    test worker's: in the whole suite on 2 workers the command never saw the test's SIGINT (alone it always did)."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_workbench_metrics_serve_is_scraped_and_stops_on_ctrl_c(metrics_store, tmp_path):
    """End to end: the command computes the real numbers, serves them on 127.0.0.1 and stops cleanly."""
    store, _, rules = metrics_store
    settings = tmp_path / "settings.toml"
    settings.write_text("[metrics]\nrefresh_seconds = 3600\n", encoding="utf-8")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "--settings", str(settings), "metrics", "serve", "--port", str(port),
         "--rules", str(rules), "--db", str(store.path), "--json"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_as_a_shell_starts_it,
    )  # fmt: skip
    try:
        samples, deadline = None, time.monotonic() + 90
        while samples is None and time.monotonic() < deadline and process.poll() is None:
            try:
                samples = scrape(port)
            except OSError:
                time.sleep(0.3)
        assert samples is not None, process.communicate(timeout=5)
    finally:
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0 and stderr == "stopped\n"
    started = json.loads(stdout)
    assert started["url"] == f"http://127.0.0.1:{port}/metrics" and started["refresh_seconds"] == 3600
    assert started["rules_fired"] is True and started["errors"] == {}
    snapshot = stream_snapshot(store, None, "day", "model_version", ("outcome",))
    counts = snapshot.series.groupby("segment")[["correct", "labels"]].sum()
    for version, row in counts.iterrows():
        got = value(samples, "workbench_online_accuracy_ratio", model_version=version)
        assert got == pytest.approx(row["correct"] / row["labels"], rel=1e-12)
    assert value(samples, "workbench_metrics_section_ok", section="rules") == 1.0


def test_ctrl_c_stops_even_when_the_server_s_shutdown_hangs():
    """stop_serving waits at most its timeout for each step: a shutdown that never returns does not keep the
    command alive, and the refresh thread is still told to stop."""
    import threading as _threading

    from workbench.metrics.exporter import stop_serving

    never = _threading.Event()
    stopped = []

    class Hanging:
        def shutdown(self) -> None:
            never.wait()

    class Refresh:
        def stop(self) -> None:
            stopped.append(True)

    started = time.monotonic()
    stop_serving(Hanging(), Refresh(), timeout=0.2)
    assert time.monotonic() - started < 2.0 and stopped == [True]
    never.set()
