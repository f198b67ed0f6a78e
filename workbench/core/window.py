"""Comparison windows in words and from text: ``START..END``, ``first:30d``, ``last:7d``, ``all`` (+ model versions)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from datetime import datetime

from workbench.core.errors import InputError


@dataclass(frozen=True)
class Window:
    """The global filters: a time range [start, end) on prediction ts and model versions."""

    start: datetime | None = None
    end: datetime | None = None
    model_versions: tuple[str, ...] = ()


def describe_window(window: Window | None) -> str:
    """A window in words: 'Mar 3 – Mar 10 (v2)', 'since Mar 3', 'all data'."""
    w = window or Window()
    fmt = lambda d: f"{d:%b} {d.day}"  # noqa: E731
    if w.start and w.end:
        text = f"{fmt(w.start)} – {fmt(w.end - dt.timedelta(microseconds=1))}"
    elif w.start:
        text = f"since {fmt(w.start)}"
    elif w.end:
        text = f"until {fmt(w.end - dt.timedelta(microseconds=1))}"
    else:
        text = "all data"
    return text + (f" ({', '.join(w.model_versions)})" if w.model_versions else "")


def _instant(text: str, end: bool) -> dt.datetime:
    """An ISO date or date-time in UTC; a bare date as an end means the end of that day (inclusive)."""
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"'{text}' is not a date or time (use ISO, e.g. 2026-03-02 or 2026-03-02T12:00)") from None
    value = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    if end and len(text) == 10:
        value += dt.timedelta(days=1)
    return value


def parse_window(
    text: str | None, versions: list[str] | None = None, bounds: tuple[dt.datetime, dt.datetime] | None = None
) -> Window:
    """A window from text: ``START..END`` (ISO dates inclusive, either side open), ``first:30d``, ``last:7d``, ``all``.

    ``first:``/``last:`` count whole days from the data's first/last day (``bounds``: first and last ts).
    """
    versions_t = tuple(versions or ())
    text = (text or "all").strip()
    if text == "all":
        return Window(model_versions=versions_t)
    if text.startswith(("first:", "last:")):
        side, _, amount = text.partition(":")
        if not (amount.endswith("d") and amount[:-1].isdigit() and int(amount[:-1]) > 0):
            raise InputError(f"'{text}': use first:Nd or last:Nd with N days, e.g. last:7d")
        if bounds is None:
            raise InputError("the store has no predictions to take days from")
        days = dt.timedelta(days=int(amount[:-1]))
        first_day = bounds[0].astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        last_day = bounds[1].astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        if side == "first":
            return Window(start=None, end=first_day + days, model_versions=versions_t)
        return Window(start=last_day + dt.timedelta(days=1) - days, end=None, model_versions=versions_t)
    if ".." not in text:
        raise InputError(f"'{text}' is not a range: use START..END (e.g. 2026-01-01..2026-01-31), first:30d or last:7d")
    start, _, end = text.partition("..")
    window = Window(
        start=_instant(start.strip(), False) if start.strip() else None,
        end=_instant(end.strip(), True) if end.strip() else None,
        model_versions=versions_t,
    )
    if window.start and window.end and window.end <= window.start:
        raise InputError(f"'{text}': the end is not after the start")
    return window
