"""The rules file of the retraining triggers: TOML parsed into rules and groups, errors naming the line.

```toml
mode = "any"                     # the set fires when any top-level rule or group fires
[[rule]]
name = "accuracy_drop"
metric = "online_accuracy"       # see workbench.stream.triggers.METRICS
window = "day"                   # hour | day | week
op = "<"                         # < <= > >=
threshold = 0.70
for = 3                          # consecutive buckets
min_n = 300                      # fewer labels (or events) in a bucket: no verdict for it
[[group]]
name = "enough_signal"
mode = "all"                     # all | any
rules = ["enough_new_labels", "schedule"]   # rules or earlier groups
```
Keys every rule has are checked here; keys of one metric (e.g. ``feedback_type``, ``reference``) are
declared by that metric as :class:`Param` and checked by the same loop, so their errors name the
line too.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from workbench.core.errors import InputError
from workbench.stream.buckets import GRANULARITIES

OPS = ("<", "<=", ">", ">=")
COMMON_KEYS = ("name", "metric", "op", "threshold", "for", "window", "min_n", "model_versions")
DEFAULT_MIN_N = 30


@dataclass(frozen=True)
class Param:
    """A rule key of one metric: ``parse`` turns the TOML value into the stored one or raises ValueError
    with a message ("must be thumb or click"); ``default`` is used when the key is absent."""

    parse: Callable[[Any], Any]
    default: Any = None
    required: bool = False
    help: str = ""


def choice(*options: str) -> Callable[[Any], str]:
    """A parser accepting one of ``options``."""

    def parse(value: Any) -> str:
        if value not in options:
            raise ValueError(f"must be one of {', '.join(options)}")
        return value

    return parse


def whole(minimum: int = 0) -> Callable[[Any], int]:
    """A parser accepting a whole number ≥ ``minimum``."""

    def parse(value: Any) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise ValueError(f"must be a whole number ≥ {minimum}")
        return value

    return parse


def number(low: float = float("-inf"), high: float = float("inf")) -> Callable[[Any], float]:
    """A parser accepting a number in [low, high]."""

    def parse(value: Any) -> float:
        if not isinstance(value, int | float) or isinstance(value, bool) or not low <= value <= high:
            raise ValueError(f"must be a number in [{low:g}, {high:g}]")
        return float(value)

    return parse


def texts(value: Any) -> tuple[str, ...]:
    """A parser accepting a non-empty list of strings (stored as a tuple)."""
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise ValueError('must be a list of names, e.g. ["outcome"]')
    return tuple(value)


def date_range(value: Any) -> tuple[date, date]:
    """A parser accepting ``"2026-01-01/2026-01-31"`` (both days included) as a (first, last) date pair."""
    if isinstance(value, str) and value.count("/") == 1:
        first_text, last_text = value.split("/")
        try:
            first, last = date.fromisoformat(first_text.strip()), date.fromisoformat(last_text.strip())
        except ValueError:
            first = last = None  # type: ignore[assignment]
        if first is not None and last is not None and first <= last:
            return first, last
    raise ValueError('must be a date range "YYYY-MM-DD/YYYY-MM-DD" (first day ≤ last day)')


@dataclass(frozen=True)
class Rule:
    """One trigger rule as written in the rules file (``line`` is where its [[rule]] starts).

    Fires in a bucket when ``metric op threshold`` held in ``persistence`` consecutive buckets of
    ``window``; ``params`` holds the metric's own keys (parsed, defaults filled in).
    """

    name: str
    metric: str
    op: str
    threshold: float
    persistence: int = 1
    window: str = "day"
    min_n: int = DEFAULT_MIN_N
    model_versions: tuple[str, ...] = ()
    params: tuple[tuple[str, Any], ...] = ()
    line: int = 0

    def param(self, key: str, default: Any = None) -> Any:
        """The value of a metric key (its default when the file did not set it)."""
        return dict(self.params).get(key, default)

    def describe(self) -> str:
        """The rule in words: ``online_accuracy < 0.7 per day for 3 consecutive days``."""
        plural = {"hour": "hours", "day": "days", "week": "weeks"}[self.window]
        span = f" for {self.persistence} consecutive {plural}" if self.persistence > 1 else ""
        versions = f", model versions {', '.join(self.model_versions)}" if self.model_versions else ""
        return f"{self.metric} {self.op} {self.threshold:g} per {self.window}{span}{versions}"


@dataclass(frozen=True)
class Group:
    """Members (rules or earlier groups) combined: fires when all (or any) of them fire."""

    name: str
    mode: str
    members: tuple[str, ...]
    line: int = 0


@dataclass(frozen=True)
class RuleSet:
    """A parsed rules file: rules, groups, and how the top level decides (any/all of the rules and groups
    that are not inside a group)."""

    rules: tuple[Rule, ...]
    groups: tuple[Group, ...] = ()
    mode: str = "any"
    source: str = "rules file"
    text: str = field(default="", repr=False)

    def top_level(self) -> list[str]:
        """Names of the rules and groups that no group contains, in file order."""
        inside = {m for g in self.groups for m in g.members}
        return [r.name for r in self.rules if r.name not in inside] + [
            g.name for g in self.groups if g.name not in inside
        ]


def _table_lines(lines: list[str], header: str) -> list[int]:
    """1-based lines of every ``[[header]]`` table in the file, in order."""
    return [i + 1 for i, line in enumerate(lines) if re.match(rf"\s*\[\[\s*{header}\s*\]\]", line)]


def _key_line(lines: list[str], start: int, key: str) -> int:
    """Line of ``key = …`` inside the table that starts at line ``start`` (else the table's line)."""
    for i in range(start, len(lines)):  # lines[start - 1] is the [[header]] itself
        if re.match(r"\s*\[", lines[i]):
            break
        if re.match(rf"\s*(?:{re.escape(key)}|\"{re.escape(key)}\")\s*=", lines[i]):
            return i + 1
    return start


def _toml_line(exc: tomllib.TOMLDecodeError) -> str:
    match = re.search(r"line (\d+)", str(exc))
    return f" line {match.group(1)}" if match else ""


def parse_rules(text: str, metrics: Mapping[str, Any], source: str = "rules file") -> RuleSet:
    """Parse a rules TOML document against ``metrics`` (name → entry with ``params``); a bad rule or group
    is refused with an :class:`InputError` that names the file and line."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{source}{_toml_line(exc)}: not valid TOML ({exc})") from None
    lines = text.splitlines()
    unknown_top = sorted(set(raw) - {"mode", "rule", "group"})
    if unknown_top:
        line = next((i + 1 for i, t in enumerate(lines) if re.match(rf"\s*\[*\s*{unknown_top[0]}\b", t)), 0)
        raise InputError(f"{source} line {line}: unknown key '{unknown_top[0]}' (use mode, [[rule]] and [[group]])")
    if not isinstance(raw.get("rule", []), list) or not isinstance(raw.get("group", []), list):
        raise InputError(f"{source}: write each rule as a [[rule]] table and each group as a [[group]] table")
    rule_lines = _table_lines(lines, "rule")
    rules: list[Rule] = []
    for i, item in enumerate(raw.get("rule", [])):
        rules.append(_parse_rule(item, i, rule_lines[i] if i < len(rule_lines) else 0, lines, metrics, source, rules))
    if not rules:
        raise InputError(f"{source}: no [[rule]] tables: nothing to check")
    group_lines = _table_lines(lines, "group")
    groups: list[Group] = []
    for i, item in enumerate(raw.get("group", [])):
        start = group_lines[i] if i < len(group_lines) else 0
        groups.append(_parse_group(item, i, start, lines, source, rules, groups))
    mode = raw.get("mode", "any")
    if mode not in ("all", "any"):
        line = next((i + 1 for i, t in enumerate(lines) if re.match(r"\s*mode\s*=", t)), 0)
        raise InputError(f'{source} line {line}: top-level mode must be "all" or "any", not {mode!r}')
    return RuleSet(tuple(rules), tuple(groups), mode, source, text)


def _parse_rule(
    item: dict[str, Any],
    index: int,
    start: int,
    lines: list[str],
    metrics: Mapping[str, Any],
    source: str,
    earlier: list[Rule],
) -> Rule:
    label = f"rule {index + 1}" if not isinstance(item.get("name"), str) else f"rule '{item['name']}'"

    def bad(key: str, message: str) -> InputError:
        return InputError(f"{source} line {_key_line(lines, start, key)}: {label}: {message}")

    for required in ("name", "metric", "op", "threshold"):
        if required not in item:
            raise InputError(f"{source} line {start}: {label} needs '{required}'")
    name, metric = item["name"], item["metric"]
    if not isinstance(name, str) or not name.strip():
        raise bad("name", "name must be a non-empty string")
    if name in {r.name for r in earlier}:
        raise bad("name", f"the name '{name}' is used by an earlier rule")
    if metric not in metrics:
        raise bad("metric", f"unknown metric {metric!r} (known: {', '.join(metrics)})")
    own = metrics[metric].params
    unknown = [k for k in item if k not in COMMON_KEYS and k not in own]
    if unknown:
        known = ", ".join([*COMMON_KEYS, *own])
        raise bad(unknown[0], f"unknown key '{unknown[0]}' for metric {metric} (known: {known})")
    if item["op"] not in OPS:
        raise bad("op", f"op must be one of {' '.join(OPS)}, not {item['op']!r}")
    checks: dict[str, Callable[[Any], Any]] = {
        "threshold": number(),
        "for": whole(1),
        "window": choice(*GRANULARITIES),
        "min_n": whole(0),
        "model_versions": texts,
    }
    common: dict[str, Any] = {}
    for key, parse in checks.items():
        if key in item:
            try:
                common[key] = parse(item[key])
            except ValueError as exc:
                raise bad(key, f"'{key}' {exc}, not {item[key]!r}") from None
    supported = getattr(metrics[metric], "windows", GRANULARITIES)
    if common.get("window", "day") not in supported:
        raise bad("window", f"metric {metric} is computed per {' or '.join(supported)}, not per {common['window']}")
    params: dict[str, Any] = {}
    for key, spec in own.items():
        if key not in item:
            if spec.required:
                raise InputError(f"{source} line {start}: {label}: metric {metric} needs '{key}' ({spec.help})")
            params[key] = spec.default
            continue
        try:
            params[key] = spec.parse(item[key])
        except ValueError as exc:
            raise bad(key, f"'{key}' {exc}, not {item[key]!r}") from None
    return Rule(
        name=name,
        metric=metric,
        op=item["op"],
        threshold=common["threshold"],
        persistence=common.get("for", 1),
        window=common.get("window", "day"),
        min_n=common.get("min_n", DEFAULT_MIN_N),
        model_versions=common.get("model_versions", ()),
        params=tuple(sorted(params.items())),
        line=start,
    )


def _parse_group(
    item: dict[str, Any],
    index: int,
    start: int,
    lines: list[str],
    source: str,
    rules: list[Rule],
    earlier: list[Group],
) -> Group:
    name = item.get("name", f"group {index + 1}")
    label = f"group '{name}'"

    def bad(key: str, message: str) -> InputError:
        return InputError(f"{source} line {_key_line(lines, start, key)}: {label}: {message}")

    unknown = [k for k in item if k not in ("name", "mode", "rules")]
    if unknown:
        raise bad(unknown[0], f"unknown key '{unknown[0]}' (known: name, mode, rules)")
    if not isinstance(name, str) or not name.strip():
        raise bad("name", "name must be a non-empty string")
    taken = {r.name for r in rules} | {g.name for g in earlier}
    if name in taken:
        raise bad("name", f"the name '{name}' is already used by a rule or an earlier group")
    mode = item.get("mode", "all")
    if mode not in ("all", "any"):
        raise bad("mode", f'mode must be "all" or "any", not {mode!r}')
    members = item.get("rules")
    if not isinstance(members, list) or not members or not all(isinstance(m, str) for m in members):
        raise bad("rules", 'rules must be a non-empty list of rule or group names, e.g. ["a", "b"]')
    missing = [m for m in members if m not in taken]
    if missing:
        raise bad("rules", f"unknown member '{missing[0]}' (a group can hold rules and groups defined above it)")
    windows = {m: _window_of(m, rules, earlier) for m in members}
    if len(set(windows.values())) > 1:
        detail = ", ".join(f"{m}: {w}" for m, w in windows.items())
        raise bad("rules", f"members must share one window to be combined bucket by bucket ({detail})")
    return Group(name, mode, tuple(members), start)


def _window_of(name: str, rules: list[Rule], groups: list[Group]) -> str:
    for r in rules:
        if r.name == name:
            return r.window
    group = next(g for g in groups if g.name == name)
    return _window_of(group.members[0], rules, groups)
