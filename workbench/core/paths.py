"""Paths a person types in the app, confined to configured roots, and the read-only switch.

A visitor of a shared app must not open or write any file the server can reach: a typed path is resolved
(``..`` and symlinks followed) and must lie inside one of the roots, else it is refused in one line.
"""

from __future__ import annotations

import os
from pathlib import Path

from workbench.core.errors import InputError

READ_ONLY_ENV = "WORKBENCH_READ_ONLY"
TRUE_WORDS = ("1", "true", "yes", "on")


def read_only() -> bool:
    """Whether the workbench runs read-only: ``$WORKBENCH_READ_ONLY`` is 1, true, yes or on."""
    return os.environ.get(READ_ONLY_ENV, "").strip().lower() in TRUE_WORDS


def roots_from(env: str, default: Path) -> list[Path]:
    """The folders named in ``$env`` (separated by the OS path separator), else ``default``; resolved."""
    listed = [Path(p).expanduser() for p in os.environ.get(env, "").split(os.pathsep) if p.strip()]
    return [p.resolve() for p in (listed or [default])]


def confine(typed: str | Path, roots: list[Path], what: str) -> Path:
    """``typed`` resolved, when it lies inside one of ``roots``; else a one-line :class:`InputError`."""
    path = Path(typed).expanduser().resolve()
    if any(path == root or root in path.parents for root in roots):
        return path
    allowed = ", ".join(str(r) for r in roots)
    raise InputError(f"{what} {typed} is outside the folders this app may use ({allowed})")
