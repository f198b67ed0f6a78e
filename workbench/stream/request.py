"""The request of a trigger check: which rules, over which window, with or without the per-bucket backtest.

Built alike by the CLI (``workbench check``), the stream page and a notebook, validated once here, and run by
:func:`workbench.stream.triggers.run`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from workbench.core.errors import InputError
from workbench.core.window import Window


@dataclass(frozen=True)
class CheckRequest:
    """Evaluate a rule set now and over history.

    Exactly one of ``rules_text`` (a rules TOML document; ``source`` names it in errors and in the evidence)
    and ``rules_path`` (a rules file). ``window``: the predictions checked (None: the whole store);
    ``backtest``: the JSON document carries each rule's per-bucket series.
    """

    rules_text: str | None = None
    rules_path: Path | None = None
    source: str = "rules file"
    window: Window | None = None
    backtest: bool = False

    def __post_init__(self) -> None:
        if (self.rules_text is None) == (self.rules_path is None):
            raise InputError("a check needs either the rules text or a rules file, not both or neither")
        if self.rules_path is not None and not isinstance(self.rules_path, Path):
            object.__setattr__(self, "rules_path", Path(self.rules_path))
        if self.window == Window():  # no filter at all: the whole store, as None
            object.__setattr__(self, "window", None)

    @classmethod
    def from_options(
        cls,
        rules_path: str | Path,
        start: str | None = None,
        end: str | None = None,
        model_versions: Sequence[str] = (),
        backtest: bool = False,
    ) -> CheckRequest:
        """The request of ``workbench check``: a rules file and the window as ISO texts (naive means UTC)."""
        window = Window(parse_moment(start, "--start"), parse_moment(end, "--end"), tuple(model_versions))
        return cls(rules_path=Path(rules_path), window=window, backtest=backtest)


def parse_moment(text: str | None, option: str) -> datetime | None:
    """An ISO date or date-time as an aware UTC datetime (naive means UTC); None for None."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"{option} must be an ISO date or date-time, e.g. 2026-03-01, not '{text}'") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
