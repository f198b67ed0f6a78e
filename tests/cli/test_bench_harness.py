"""The benchmark harness measures the child alone: its peak memory is its own, not the parent's at fork."""

from __future__ import annotations

from benchmarks.harness import measure, peak_mb


def _allocate(megabytes: int) -> int:
    block = bytearray(megabytes * 1024 * 1024)
    block[::4096] = b"x" * len(block[::4096])  # touch every page so it is resident
    return len(block) // (1024 * 1024)


def test_a_child_does_not_report_the_memory_its_parent_held_when_it_started() -> None:
    held = bytearray(400 * 1024 * 1024)
    held[::4096] = b"x" * len(held[::4096])
    assert peak_mb() > 400
    small = measure(_allocate, 1)
    assert small.result == 1
    assert small.peak_mb < 300, small.peak_mb  # an interpreter is ~15–100 MB; the parent holds > 400 MB
    del held


def test_a_child_reports_what_it_allocated_itself() -> None:
    big = measure(_allocate, 250)
    assert big.result == 250
    assert big.peak_mb >= 250
