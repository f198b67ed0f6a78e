"""A hash of a text column that every engine computes alike: the calibration folds and the hashed sample.

Ibis' ``hash()`` compiles to each engine's own function (DuckDB's ``hash``, Spark's Murmur3 ``hash``,
BigQuery's ``FARM_FINGERPRINT``), so the same trace id lands in another fold on another engine, and the
numbers that depend on the split move (the isotonic ECE on the 20,000-row test lake: 0.0075 on DuckDB, 0.0094
on Spark). MD5 is the same function everywhere (RFC 1321); its first hex digits, read as an integer with
plain string and integer operations (``substring``, ``ascii``, ``%``, ``*``, ``+``), give the same number on
DuckDB and Spark, and in principle on any SQL engine with ``md5`` (Ibis 12 compiles ``hexdigest('md5')`` for
DuckDB and PySpark, not yet for BigQuery or Snowflake).
"""

from __future__ import annotations

from typing import Any

HASH_DIGITS = 8  # hex digits of the MD5 read by default: 32 bits, the sample's fraction to 2⁻³²
HASH_RANGE = 16**HASH_DIGITS  # the default hash lies in [0, HASH_RANGE)
CALIBRATION_FOLDS = 10  # held-out folds of the reference for the calibration choice (NannyML's split_count)
FOLD_HASH_DIGITS = 4  # the fold is MD5's first 16 bits mod 10: shares uneven by at most 1 in 65,536


def portable_hash(value: Any, digits: int = HASH_DIGITS) -> Any:
    """The first ``digits`` hex digits of MD5 of ``value`` (an Ibis column, cast to text) as an int64 in
    [0, 16^digits): by default 8, [0, 2³²).

    Each hex digit's ASCII code c maps to its value by ``c % 16 + 9·(c > 57)`` ('0'…'9' are 48…57, 'a'…'f'
    97…102 and 'A'…'F' 65…70), so the engine's case of the hex text does not matter. Cost on DuckDB (one thread):
    MD5 ~0.27 µs a row, each digit read ~0.07 µs more; fewer digits suit a coarse split (10 folds).
    One expression repeats the MD5 for each digit: DuckDB computes it once, Spark once per use (3 a digit).
    Over a table, :func:`with_hash` computes it once on every engine.
    """
    return _digest_number(_digest(value), digits)


def with_hash(table: Any, value: Any, name: str, digits: int = HASH_DIGITS) -> Any:
    """``table`` with a column ``name``: :func:`portable_hash` of ``value`` (an expression over ``table``), the MD5
    computed once a row in a projection of its own (Spark's SQL of one expression holds 32 MD5 calls for 8 digits).
    On Spark, run such a query under :func:`workbench.sources.spark.plain_codegen`: the digits' expression is what
    made the 20M demo lake's seeded sample take 142-180 s a window, MD5 once or not."""
    digest = f"__md5_{name}"
    hashed = table.mutate(**{digest: _digest(value)})
    return hashed.mutate(**{name: _digest_number(hashed[digest], digits)}).drop(digest)


def _digest(value: Any) -> Any:
    """MD5 of ``value`` as hex text (Ibis)."""
    text = value if value.type().is_string() else value.cast("string")
    return text.hexdigest("md5")


def _digest_number(digest: Any, digits: int) -> Any:
    """The first ``digits`` hex digits of the hex text ``digest`` as an int64 (see :func:`portable_hash`)."""
    number = None
    for position in range(digits):
        code = digest.substr(position, 1).ascii_str().cast("int64")
        digit = code % 16 + (code > 57).cast("int64") * 9
        number = digit if number is None else number * 16 + digit
    return number


def calibration_fold(trace_id: Any) -> Any:
    """A trace's calibration fold in [0, 10) (:mod:`workbench.sources.scores`): MD5's first 16 bits mod 10, as an
    Ibis expression. The ingest keeps it on each prediction (:mod:`workbench.sources.trace_feedback`); over a table
    on another engine, :func:`with_fold`."""
    return portable_hash(trace_id, FOLD_HASH_DIGITS) % CALIBRATION_FOLDS


def with_fold(table: Any, name: str) -> Any:
    """``table`` with its rows' :func:`calibration_fold` in a column ``name``, the MD5 computed once a row."""
    hashed = with_hash(table, table.trace_id, name, FOLD_HASH_DIGITS)
    return hashed.mutate(**{name: hashed[name] % CALIBRATION_FOLDS})
