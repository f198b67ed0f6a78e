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


def listed_folders(env: str) -> list[Path]:
    """The folders named in ``$env`` (separated by the OS path separator), resolved; empty when unset."""
    return [Path(p.strip()).expanduser().resolve() for p in os.environ.get(env, "").split(os.pathsep) if p.strip()]


def confine(typed: str | Path, roots: list[Path], action: str, env: str) -> Path:
    """``typed`` resolved (a relative path starts in the first root; ``..`` and symlinks followed) when it lies
    inside one of ``roots``; else a one-line :class:`InputError` naming the roots and ``$env`` that adds more."""
    text = str(typed).strip()
    if not text:
        raise InputError(f"type a folder or file to {action}")
    path = (roots[0] / Path(text).expanduser()).resolve()  # an absolute typed path replaces the root
    if any(path == root or path.is_relative_to(root) for root in roots):
        return path
    allowed = ", ".join(str(r) for r in roots)
    raise InputError(f"refused: {text} is outside the folders this app may {action} ({allowed}; ${env} adds more)")
