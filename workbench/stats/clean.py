"""JSON-ready values: where a statistic is undefined a result says None, never NaN or infinity.

JSON has no NaN; a reader of ``--json`` output (or a notebook's export) must not meet one, so every
result's ``to_dict`` passes through :func:`json_ready`, and scalar fields through :func:`finite`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def finite(value: Any) -> float | None:
    """``value`` as a float, or None when it is None, NaN or ±inf."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def json_ready(value: Any) -> Any:
    """A copy with NaN/±inf → None and numpy scalars, arrays and tuples → Python numbers and lists (recursively)."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return [json_ready(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
