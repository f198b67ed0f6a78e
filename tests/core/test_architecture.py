"""The folder tree is the architecture (docs/ARCHITECTURE.md): no import cycle, no private name across
modules, no own-module import hidden in a function to dodge a cycle, thin pages, no citation of a file
outside the repository. The layer contracts themselves are import-linter's (`lint-imports` in make test)."""

from __future__ import annotations

import ast
from pathlib import Path

import grimp
import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "workbench"
PAGE_LINES = 120


def strongly_connected(graph: grimp.ImportGraph, modules: list[str]) -> list[list[str]]:
    """Tarjan's strongly connected components of size > 1 among ``modules`` (each one is an import cycle)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.find_modules_directly_imported_by(v):
            if w not in modules:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in modules:
        if module not in index:
            visit(module)
    return found


def test_strongly_connected_finds_a_planted_cycle() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}

    class Graph:
        def find_modules_directly_imported_by(self, m: str) -> set[str]:
            return edges[m]

    assert strongly_connected(Graph(), ["a", "b", "c", "d"]) == [["a", "b", "c"]]  # type: ignore[arg-type]


def test_workbench_has_no_import_cycle() -> None:
    graph = grimp.build_graph("workbench")
    modules = sorted(m for m in graph.modules if m.startswith("workbench"))
    assert strongly_connected(graph, modules) == []


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_no_private_name_is_imported_from_another_module() -> None:
    offenders = []
    for path in [*_sources(), *sorted((ROOT / "pages").glob("*.py")), *sorted((ROOT / "benchmarks").glob("*.py")),
                 ROOT / "app.py"]:  # fmt: skip
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("workbench"):
                offenders += [f"{path.relative_to(ROOT)}:{node.lineno} {a.name}" for a in node.names
                              if a.name.startswith("_")]  # fmt: skip
    assert offenders == []


def test_own_modules_are_imported_at_the_top_outside_the_cli() -> None:
    """A function-level import of our own module hides a cycle; only the CLI modules import lazily (so that
    `workbench --help` and each command pay only for the analysis they run)."""
    offenders = []
    for path in _sources():
        if path.name == "cli.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for func in ast.walk(tree):
            if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                nested = [n for n in ast.walk(func) if isinstance(n, ast.ImportFrom)]
                offenders += [f"{path.relative_to(ROOT)}:{n.lineno} {n.module}" for n in nested
                              if (n.module or "").startswith("workbench")]  # fmt: skip
    assert offenders == []


@pytest.mark.parametrize("page", sorted(p.name for p in (ROOT / "pages").glob("*.py")))
def test_every_page_is_thin(page: str) -> None:
    lines = (ROOT / "pages" / page).read_text(encoding="utf-8").splitlines()
    assert len(lines) <= PAGE_LINES


def test_no_code_or_doc_cites_a_file_outside_the_repository() -> None:
    texts = [*_sources(), *sorted((ROOT / "pages").glob("*.py")), *sorted((ROOT / "tests").rglob("*.py")),
             ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]  # fmt: skip
    citing = [str(p.relative_to(ROOT)) for p in texts if p != Path(__file__) and "DESIGN.md" in p.read_text("utf-8")]
    assert citing == []


def test_every_capability_has_its_parts() -> None:
    for capability in ("drift", "abtest", "fairness"):
        parts = {p.stem for p in (PACKAGE / capability).glob("*.py")}
        assert {"request", "run", "queries", "result", "view", "charts", "cli"} <= parts, capability


def _entry_points() -> set[tuple[str, str]]:
    """(module, function) pairs that pages and notebooks call: the public entry points of the package."""
    import json

    texts = [p.read_text("utf-8") for p in sorted((ROOT / "pages").glob("*.py"))]
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(notebook.read_text("utf-8"))["cells"]
        texts += ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    found = set()
    for text in texts:
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("workbench"):
                found |= {(node.module, a.name) for a in node.names}
    return found


def test_every_entry_point_takes_a_request_or_at_most_five_parameters() -> None:
    import importlib
    import inspect

    wide = []
    for module_name, name in sorted(_entry_points()):
        target = getattr(importlib.import_module(module_name), name, None)
        if inspect.isfunction(target) and len(inspect.signature(target).parameters) > 5:
            wide.append(f"{module_name}.{name}")
    for capability in ("drift", "abtest", "fairness"):
        run = importlib.import_module(f"workbench.{capability}.run").run
        assert list(inspect.signature(run).parameters)[:2] == ["source", "request"], capability
    assert wide == []
