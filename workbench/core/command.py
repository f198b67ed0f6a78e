"""What every command of the `workbench` CLI shares: the --db and --json options and how a result is printed.

Each capability's ``cli.py`` declares its commands on its own ``commands`` Typer; ``workbench.cli`` mounts them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

DbOption = Annotated[
    Path | None,
    typer.Option("--db", help="Store file (default: $WORKBENCH_DB or data/workbench.duckdb)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]


def emit(as_json: bool, document: dict[str, Any], text: str) -> None:
    """Print the result: one JSON document with ``--json``, else the human-readable text."""
    typer.echo(json.dumps(document, default=str, sort_keys=False) if as_json else text)


def split_names(values: str | list[str] | None) -> list[str]:
    """Names from ``a,b`` options (one text, or a repeated option's texts): trimmed, empty parts dropped."""
    texts = [values] if isinstance(values, str) else list(values or [])
    return [name.strip() for text in texts for name in text.split(",") if name.strip()]
