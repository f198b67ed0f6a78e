"""The small tricky experiment two A/B query test modules share: written with DuckDB SQL, not the ingest."""

from __future__ import annotations

from typing import Any

TRICKY_PREDICTIONS = """
    INSERT INTO predictions
    SELECT 'tr-' || i,
           TIMESTAMPTZ '2026-03-01 00:00:00+00' + to_microseconds((hash(i) % (9 * 86400000000))::BIGINT),
           {model_version}, 0, 0.5,
           CASE WHEN i % 400 < 7 AND i >= 3000 THEN 'gamma'
                ELSE ['alpha', 'beta', 'gamma'][1 + (i % 400) % 3] END,
           CASE WHEN i = 2999 THEN NULL ELSE 'u-' || (i % 400) END, NULL,
           CASE WHEN i % 11 = 0 THEN NULL ELSE ['north', 'south'][1 + (hash(i + 7) % 2)::INT] END,
           ['mobile', 'desktop', 'tablet'][1 + (hash(i + 9) % 3)::INT]
    FROM range(4000) t(i)"""


def insert_tricky_predictions(con: Any, model_version: str = "'v1'") -> None:
    """4000 predictions in 3 arms and 400 units, of which 5 crossed arms, a NULL region on every 11th, a
    unit-less prediction, with region and device columns; ``model_version``: its SQL expression over ``i``."""
    con.execute("ALTER TABLE predictions ADD COLUMN region VARCHAR")
    con.execute("ALTER TABLE predictions ADD COLUMN device VARCHAR")
    con.execute(TRICKY_PREDICTIONS.format(model_version=model_version))
