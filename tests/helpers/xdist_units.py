"""How `pytest -n 2` splits the suite: one work unit per test module, so its module-scoped fixtures (a demo
store, the golden CLI run, a Spark session) are built on one worker only, not on both.

xdist's ``--dist loadgroup`` meant to do this for ``xdist_group`` marks, but on pytest 9.2 it no longer does:
it appends the group to ``item._nodeid``, which pytest 9.2 ignores (pytest-xdist issue #1386), so every test
became its own unit, dealt round-robin, and each worker built every module fixture (two Spark JVMs, the golden
documents twice). This scheduler groups by module path instead, which the controller can see.
"""

from __future__ import annotations

from xdist.scheduler import LoadScopeScheduling

# Folders whose modules share one worker: the Spark tests share one local Spark JVM (the ``xdist_group("spark")``
# their modules declare).
SHARED = {"tests/spark/": "spark"}
# Units handed out before the others (the longest: Spark, the golden CLI run), so neither is left for the end
# while the other worker has nothing to do; the rest go by test count, largest first (xdist's own order).
FIRST = ("spark", "tests/cli/test_golden_cli.py")


def unit_of(nodeid: str) -> str:
    """The work unit of a test id: ``@group`` when xdist still suffixes one, else its folder's shared group,
    else its module path."""
    if nodeid.rfind("@") > nodeid.rfind("]"):
        return nodeid.rsplit("@", 1)[1]
    module = nodeid.split("::", 1)[0]
    return next((group for folder, group in SHARED.items() if module.startswith(folder)), module)


class ModuleScheduling(LoadScopeScheduling):
    """xdist's load-scope scheduling with :func:`unit_of` as the scope and :data:`FIRST` dealt first."""

    def _split_scope(self, nodeid: str) -> str:
        return unit_of(nodeid)

    def _assign_work_unit(self, node: object) -> None:
        for unit in reversed(FIRST):
            if unit in self.workqueue:
                self.workqueue.move_to_end(unit, last=False)
        super()._assign_work_unit(node)
