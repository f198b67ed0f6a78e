"""Demo stores for module fixtures: each scenario is generated once per test process and every fixture that
asks for it gets its own copy of the file (a few MB, milliseconds), so a module still starts from a pristine
store of its own (runs it records stay its own) while the generation is paid once, not once per module.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest

from workbench.demo.scenario import Scenario, build_demo
from workbench.sources.store import Store

# scenario → (template store file, its ground truth); one per test process (xdist worker)
_TEMPLATES: dict[Scenario, tuple[Path, dict]] = {}


def copy_demo(tmp_path_factory: pytest.TempPathFactory, scenario: Scenario, target: Path) -> tuple[Store, dict]:
    """``scenario``'s demo store copied to ``target`` (a path in a fresh folder) with ``demo/ground_truth.json``
    beside it, as :func:`build_demo` leaves a store it writes there, and a copy of its ground truth."""
    if scenario not in _TEMPLATES:
        template = Store(tmp_path_factory.mktemp("demo-template") / "workbench.duckdb")
        _TEMPLATES[scenario] = (template.path, build_demo(template, scenario))
    source, truth = _TEMPLATES[scenario]
    shutil.copyfile(source, target)
    if Path(f"{source}.wal").exists():  # DuckDB checkpoints on close, so normally there is none
        shutil.copyfile(f"{source}.wal", f"{target}.wal")
    shutil.copytree(source.parent / "demo", target.parent / "demo")
    return Store(target), copy.deepcopy(truth)
