"""The Prometheus exporter: ``/metrics`` over HTTP, and the same text as a node_exporter textfile.

The numbers are computed by a background thread, once at the start and then ``refresh_seconds`` after the
previous computation ended, so two computations never overlap and never come closer than that; a scrape only
formats the last readings (a drift run and the rules take seconds: a scrape must not wait for them, nor
make the store do the work once per Prometheus replica).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server, write_to_textfile
from prometheus_client.core import Metric

from workbench.core.errors import InputError
from workbench.metrics.collector import Readings
from workbench.metrics.families import families


class Exporter:
    """Holds the latest readings and recomputes them at most every ``refresh_seconds``.

    ``compute``: returns fresh readings (e.g. ``lambda: collect(store, rules, settings)``); ``on_refresh``:
    called with each new readings (the CLI prints a section's failure there).
    """

    def __init__(
        self,
        compute: Callable[[], Readings],
        refresh_seconds: float,
        on_refresh: Callable[[Readings], None] | None = None,
    ):
        self.compute = compute
        self.refresh_seconds = refresh_seconds
        self.on_refresh = on_refresh
        self.readings: Readings | None = None
        self.refreshes = 0
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)  # no describe(): registering does not compute
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self) -> Readings:
        """Compute the readings now and publish them (one reference swap: a scrape sees old or new, whole)."""
        readings = self.compute()
        self.readings, self.refreshes = readings, self.refreshes + 1
        if self.on_refresh is not None:
            self.on_refresh(readings)
        return readings

    def collect(self) -> Iterator[Metric]:
        """The prometheus_client collector protocol: the last readings' families (nothing before the first)."""
        readings = self.readings
        if readings is not None:
            yield from families(readings, self.refreshes)

    def start(self) -> None:
        """Recompute in a daemon thread every ``refresh_seconds`` after the previous computation ended."""

        def loop() -> None:
            while not self._stop.wait(self.refresh_seconds):
                self.refresh()

        self._thread = threading.Thread(target=loop, name="workbench-metrics-refresh", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the refresh thread (a computation under way finishes first)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def serve(exporter: Exporter, port: int, host: str = "127.0.0.1") -> tuple[Any, threading.Thread]:
    """Compute the first readings, then serve ``/metrics`` on ``host:port`` and refresh in the background.

    Returns prometheus_client's (server, thread); ``server.shutdown()`` and ``exporter.stop()`` end it.
    """
    exporter.refresh()
    try:
        server, thread = start_http_server(port, addr=host, registry=exporter.registry)
    except OSError as exc:
        raise InputError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
    exporter.start()
    return server, thread


def write_textfile(exporter: Exporter, path: Path) -> Path:
    """Write the readings to ``path`` in the textfile-collector format: a temporary file in the same folder,
    renamed over ``path`` (atomic: node_exporter reads the old file or the new one, never half of one)."""
    if not path.parent.is_dir():
        raise InputError(f"cannot write {path}: the folder {path.parent} does not exist")
    if path.is_dir():
        raise InputError(f"cannot write {path}: it is a folder (give a file name, e.g. {path / 'workbench.prom'})")
    try:
        write_to_textfile(str(path), exporter.registry)
    except OSError as exc:  # a read-only folder, a full disk: the temporary file is removed by prometheus_client
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def stop_serving(server: Any, exporter: Exporter, timeout: float = 5.0) -> None:
    """End the server and the refresh thread, waiting at most ``timeout`` seconds for each: Ctrl-C stops the
    command even when a shutdown hangs (once in a CI run, ``server.shutdown()`` did not return in 30 s); both
    run in daemon threads, which end with the process."""
    for step in (server.shutdown, exporter.stop):
        worker = threading.Thread(target=step, name="workbench-metrics-stop", daemon=True)
        worker.start()
        worker.join(timeout)


def wait_forever(poll_seconds: float = 3600.0) -> None:
    """Block the main thread until Ctrl-C (the server and the refresh run in daemon threads)."""
    while True:
        time.sleep(poll_seconds)
