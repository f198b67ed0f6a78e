"""Column roles: what each column of the two streams means, and the rules a row must meet.

Canonical names work with no configuration; a roles file (TOML) maps them to a user's own
column names. The roles are stored with the data so every later analysis knows which columns
are features, sensitive attributes, label and score.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from workbench.core.errors import InputError

PREDICTIONS = "predictions"
FEEDBACK = "feedback"
TABLES = (PREDICTIONS, FEEDBACK)

# role -> (required, logical type). Order is the column order in the store.
PREDICTION_ROLES: dict[str, tuple[bool, str]] = {
    "trace_id": (True, "id"),
    "ts": (True, "timestamp"),
    "model_version": (True, "text"),
    "prediction": (True, "binary"),
    "score": (False, "probability"),
    "arm": (False, "text"),
    "unit_id": (False, "text"),
}
FEEDBACK_ROLES: dict[str, tuple[bool, str]] = {
    "trace_id": (True, "id"),
    "ts": (True, "timestamp"),
    "kind": (True, "kind"),
    "type": (True, "text"),
    "value": (False, "number"),
    "label": (False, "binary"),
}
ROLES_BY_TABLE = {PREDICTIONS: PREDICTION_ROLES, FEEDBACK: FEEDBACK_ROLES}
FEEDBACK_KINDS = ("explicit", "implicit", "automated")


@dataclass(frozen=True)
class TableRoles:
    """The user's column name for each role of one table, plus the feature lists (predictions)."""

    columns: dict[str, str] = field(default_factory=dict)
    features: list[str] | None = None
    categorical: list[str] | None = None
    sensitive: list[str] = field(default_factory=list)

    def source_column(self, role: str) -> str:
        """Return the file's column name for ``role`` (the canonical name when unmapped)."""
        return self.columns.get(role, role)


@dataclass(frozen=True)
class Roles:
    """Roles of both streams; ``Roles()`` means canonical names everywhere."""

    predictions: TableRoles = field(default_factory=TableRoles)
    feedback: TableRoles = field(default_factory=TableRoles)

    def for_table(self, table: str) -> TableRoles:
        """Return the roles of ``table`` ('predictions' or 'feedback')."""
        return self.predictions if table == PREDICTIONS else self.feedback

    def to_dict(self) -> dict:
        """Serialise for the store's metadata table (JSON-ready)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict) -> Roles:
        """Inverse of :meth:`to_dict`."""
        return cls(**{name: TableRoles(**raw[name]) for name in TABLES if name in raw})


_LIST_KEYS = ("features", "categorical", "sensitive")


def _table_roles(section: dict, table: str, source: str) -> TableRoles:
    known = ROLES_BY_TABLE[table]
    columns: dict[str, str] = {}
    lists: dict[str, list[str]] = {}
    for key, value in section.items():
        if key in _LIST_KEYS and table == PREDICTIONS:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise InputError(f"{source}: [{table}] {key} must be a list of column names")
            lists[key] = value
        elif key in known:
            if not isinstance(value, str) or not value:
                raise InputError(f"{source}: [{table}] {key} must be a column name (a string)")
            columns[key] = value
        else:
            allowed = ", ".join([*known, *(_LIST_KEYS if table == PREDICTIONS else ())])
            raise InputError(f"{source}: [{table}] has unknown role '{key}' (known: {allowed})")
    return TableRoles(columns=columns, **lists)


def parse_roles(text: str, source: str = "roles file") -> Roles:
    """Parse a roles TOML document (format in README.md, "Column roles") into :class:`Roles`."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{source}: not valid TOML ({exc})") from None
    unknown = set(raw) - set(TABLES)
    if unknown:
        raise InputError(f"{source}: unknown section [{sorted(unknown)[0]}]; use [predictions]/[feedback]")
    return Roles(**{name: _table_roles(raw.get(name, {}), name, source) for name in TABLES})


def load_roles(path: str | Path) -> Roles:
    """Read and parse a roles TOML file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read roles file {path}: {exc.strerror}") from None
    return parse_roles(text, source=str(path))
