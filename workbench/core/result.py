"""The result contract: every analysis (drift, A/B, fairness, triggers, curation) returns one frozen object
with the same six members, so a page, the CLI, a notebook and the retrain gate read any of them alike.

- ``verdict``: the key (``drift`` / ``no drift`` / ``insufficient``, ``ship`` / ``srm_fail`` …, ``pass`` /
  ``fail`` …, ``fired`` / ``quiet`` / ``unknown``), the word the gate and a scheduler compare;
- ``verdict_text``: the same verdict as a sentence for a person;
- ``reasons``: the short lines that led to it (each names a number and the rule it was held to);
- ``evidence()``: the small JSON-ready dict the retrain gate records (``sources.evidence.record_once``);
- ``to_frame()``: one tidy table (a row per feature, comparison, group or rule);
- ``to_json()``: the CLI's ``--json`` document.

``family`` names the analysis in the gate's evidence (``drift``, ``abtest``, ``fairness``, ``triggers``, ``quality``).
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol, runtime_checkable

FAMILIES = ("drift", "abtest", "fairness", "triggers", "quality")


@runtime_checkable
class Result(Protocol):
    """What every analysis result offers (structural: a frozen dataclass with these members conforms)."""

    family: ClassVar[str]

    @property
    def verdict(self) -> str: ...

    @property
    def verdict_text(self) -> str: ...

    @property
    def reasons(self) -> tuple[str, ...]: ...

    def evidence(self) -> dict[str, Any]: ...

    def to_frame(self) -> Any: ...

    def to_json(self) -> dict[str, Any]: ...
