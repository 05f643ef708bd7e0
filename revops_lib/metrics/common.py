"""What every metric family shares: one ratio, engine helpers, argument checks.

The rules pinned here hold everywhere in the kit:

- :func:`ratio` — ``numerator / denominator``; NaN when either is missing (None or NaN), and when
  the denominator is zero or negative (no rate, share or average in the kit has a meaningful
  negative base; a negative target gives no "% of target"). Scalars give a float, arrays an array.
- Money sums run in whole cents (:func:`cents`), so identities such as the MRR movements and the
  pipeline waterfall hold exactly and every engine gives the same totals.
- Instants are compared as microseconds since the epoch (:func:`micros`), which every engine
  computes exactly.
"""

from __future__ import annotations

import datetime as _dt
import math
from typing import Any, Sequence

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.operations as ops
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from revops_lib.errors import ParameterError, SchemaError, SourceError
from revops_lib.periods import resolve_as_of
from revops_lib.schema import TABLES
from revops_lib.sources import Source, as_table, open_source, to_pandas

__all__ = ["ratio", "backend_name", "caches", "NO_ASOF_ENGINES",
           "SPARK_UNCACHEABLE", "cents", "money", "micros", "us", "count_if", "as_int", "ts_lit",
           "date_lit", "run", "check_int", "check_fraction", "parse_instants", "source_of", "require", "typed",
           "raw", "instant", "dimension", "check_stages", "pairs", "UNKNOWN"]

_INT = dt.int64
_EPOCH = pd.Timestamp("1970-01-01")


def ratio(numerator, denominator):
    """``numerator / denominator``, NaN when either is missing or the denominator is zero or negative.

    >>> ratio(5, 2), ratio(5, 0), ratio(5, -2), ratio(None, 2)
    (2.5, nan, nan, nan)
    >>> ratio(np.array([1, 1, 1]), np.array([2, 0, np.nan]))
    array([0.5, nan, nan])
    """
    scalar = np.ndim(numerator) == 0 and np.ndim(denominator) == 0
    num = np.asarray(np.nan if numerator is None else numerator, dtype="float64")
    den = np.asarray(np.nan if denominator is None else denominator, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return float(out) if scalar else out


def backend_name(t: ir.Expr) -> str:
    """The engine an expression runs on (``duckdb`` for tables made from pandas frames)."""
    try:
        return t._find_backend(use_default=True).name
    except Exception:  # pragma: no cover - unbound expressions run on the default DuckDB
        return "duckdb"


def cents(amount: ir.NumericValue, backend: str) -> ir.IntegerValue:
    """An amount in whole cents (nearest cent).

    DuckDB and PostgreSQL round when casting a double to an integer, so the cast alone does it
    (``ROUND(x, 0)`` first costs DuckDB a third more time on 10 million rows); other engines may
    truncate, so they round first.
    """
    x = amount.cast(dt.float64) * 100
    return x.cast(_INT) if backend in ("duckdb", "postgres") else x.round().cast(_INT)


#: Spark persists any plan but serves a query from its cache only when it finds the plan there again, which
#: fails for some plans: a non-deterministic aggregate (``FIRST(…) IGNORE NULLS``, what Ibis compiles
#: ``first``, ``last`` and ``arbitrary`` to) or a table joined with itself (the stage spells). Ibis's check after
#: ``cache()`` then fails with the data already pinned on the server. So on Spark the kit caches only the
#: tables whose caller vouches for them (``caches(t, spark=True)``: the deal history, the bulk of the
#: forecast's and scorecard's work, checked by ``tests/test_spark.py``) and that hold none of these operations.
SPARK_UNCACHEABLE = (ops.First, ops.Last, ops.Arbitrary)


#: Engines without an as-of join (Ibis: "ASOF joins are not supported by Spark SQL"): the kit looks instants
#: up in a small calendar with nested comparisons there instead (:class:`revops_lib.metrics.deal_history.Calendar`).
NO_ASOF_ENGINES = ("pyspark",)


def caches(t: ir.Table, *, spark: bool = False) -> bool:
    """Whether the kit materializes ``t`` with Ibis's own ``cache()`` on its engine; on Spark only when
    ``spark`` (the caller knows Spark finds the plan in its cache again, see :data:`SPARK_UNCACHEABLE`)."""
    if backend_name(t) == "pyspark":
        return spark and not t.op().find(SPARK_UNCACHEABLE)
    return True


def money(cents_value) -> Any:
    """Cents (int or array) to currency units (float)."""
    return np.asarray(cents_value, dtype="float64") / 100.0


@ibis.udf.scalar.builtin(name="epoch_us")
def _duck_epoch_us(x) -> dt.int64:  # DuckDB: microseconds since the epoch of a TIMESTAMP or TIMESTAMPTZ
    ...


def micros(value: ir.Value, backend: str) -> ir.IntegerValue:
    """Microseconds since 1970-01-01 UTC of an instant expression."""
    if backend == "duckdb":
        return _duck_epoch_us(value)
    return value.delta(ibis.timestamp("1970-01-01 00:00:00"), unit="microsecond")


def us(ts) -> int:
    """Microseconds since the epoch of a naive-UTC timestamp."""
    return int((pd.Timestamp(ts) - _EPOCH) // pd.Timedelta(microseconds=1))


def count_if(cond: ir.BooleanValue) -> ir.IntegerScalar:
    """Number of rows where ``cond`` is true (portable: PostgreSQL cannot cast booleans to integers)."""
    return ibis.ifelse(cond, 1, 0).sum()


def as_int(x) -> int:
    """An engine count as int (None/NaN -> 0: SUM over no rows is NULL)."""
    return 0 if x is None or pd.isna(x) else int(x)


def ts_lit(ts) -> ir.Value:
    """A naive-UTC timestamp literal."""
    return ibis.timestamp(pd.Timestamp(ts).to_pydatetime())


def date_lit(d) -> ir.Value:
    """A date literal from a date, a timestamp (its date) or ISO text."""
    return ibis.date(pd.Timestamp(d).date() if not isinstance(d, _dt.date) or isinstance(d, _dt.datetime) else d)


def run(expr) -> pd.DataFrame:
    """Execute an expression (on its engine; DuckDB for pandas-made tables) and return pandas."""
    return to_pandas(expr)


def check_int(value, name: str, minimum: int = 1) -> int:
    """A whole-number argument, at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ParameterError(f"`{name}` must be a whole number >= {minimum}, not `{value!r}`.")
    return int(value)


def check_fraction(value, name: str, *, allow_zero: bool = False) -> float:
    """A fraction argument: above 0 (or from 0 with ``allow_zero``) and at most 1."""
    ok = isinstance(value, (int, float, np.floating)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value > 1 or value < 0 or (value == 0 and not allow_zero):
        allowed = "a fraction from 0 to 1" if allow_zero else "a fraction above 0 and at most 1"
        raise ParameterError(f"`{name}` must be {allowed} (0.8 means 80%), not `{value!r}`.")
    return float(value)


def parse_instants(values, name: str) -> list[pd.Timestamp]:
    """Cut-off instants (naive UTC) from dates, timestamps or ISO text; a date means its 00:00 UTC."""
    out = []
    for v in values:
        try:
            ts = resolve_as_of(None, v)
        except Exception:
            raise ParameterError(f"Cannot read `{name}` value `{v!r}` as a date or time (e.g. 2026-10-05).") from None
        out.append(ts)
    return out


def source_of(data: Any, name: str | None = None) -> Source:
    """A :class:`Source` from a Source, a source spec, a dict of frames, or (with ``name``) one table."""
    if isinstance(data, Source):
        return data
    source = getattr(data, "source", None)
    if isinstance(source, Source):  # a prepared result that carries its source (e.g. DealHistory)
        return source
    if isinstance(data, (ir.Table, pd.DataFrame)):
        if name is None:
            raise ParameterError(
                "`data` is a single table, but this function needs several: pass a Source, a folder or "
                "a dict of tables such as {'opportunities': df, 'opportunity_history': df}.")
        return Source.from_frames({name: data})
    return open_source(data)


def require(src: Source, *names: str) -> None:
    """Raise :class:`SchemaError` naming the tables of ``names`` that ``src`` lacks."""
    missing = [n for n in names if not src.has(n)]
    if missing:
        raise SchemaError(
            f"Table(s) {', '.join(f'`{m}`' for m in missing)} absent from {src.description}: "
            f"this computation needs {', '.join(names)}.")


def _table(data: Any, name: str, *, typed_view: bool, needed_by: str) -> ir.Table:
    if isinstance(data, (ir.Table, pd.DataFrame)):
        return as_table(data, name) if typed_view else (data if isinstance(data, ir.Table) else as_table(data))
    if data is None:
        raise ParameterError(f"Give the `{name}` data: a Source, an Ibis table or a pandas DataFrame.")
    src = open_source(data)
    if not src.has(name):
        raise SourceError(f"Table `{name}` is absent from {src.description}; {needed_by} needs it.")
    return src.table(name) if typed_view else src.raw(name)


def typed(data: Any, name: str, *, needed_by: str = "this computation") -> ir.Table:
    """Table ``name`` typed to the contract, from a Source / source spec, an Ibis table or a DataFrame."""
    return _table(data, name, typed_view=True, needed_by=needed_by)


def raw(data: Any, name: str, *, needed_by: str = "this computation") -> ir.Table:
    """Table ``name`` as stored (untyped), from a Source / source spec, an Ibis table or a DataFrame."""
    return _table(data, name, typed_view=False, needed_by=needed_by)


#: The group of rows whose grouping column is missing.
UNKNOWN = "unknown"


def with_dtypes(df: pd.DataFrame, dtypes: dict[str, str]) -> pd.DataFrame:
    """``df`` with the columns named in ``dtypes`` (those present) cast to them; ``"str"`` is pandas' text dtype, in
    which a missing value stays missing (never the text ``"None"``). Applied to results that can be empty, so a
    result without rows has the dtypes of one with rows (an empty frame's columns are otherwise ``object`` or
    ``float64``, and concatenating it with a full one changes the full one's dtypes).

    >>> with_dtypes(pd.DataFrame({"id": [], "n": []}), {"id": "str", "n": "int64"}).dtypes.astype(str).tolist()
    ['str', 'int64']
    """
    conv = {c: t for c, t in dtypes.items() if c in df.columns and df[c].dtype != t}
    return df.astype(conv) if conv else df


def instant(t: ir.Table, col: str, *, table: str, param: str) -> ir.Value:
    """A timestamp column as an instant (tz-aware or naive UTC), without converting time zones."""
    spec = TABLES[table]
    if col not in t.columns:
        if col in spec.names and spec.column(col).kind in ("timestamp", "date"):
            return ibis.null(dt.Timestamp())
        cols = [c for c in t.columns]
        raise ParameterError(f"`{param}` names column `{col}`, which is not in `{table}`; "
                             f"columns: {', '.join(cols)}.")
    c = t[col]
    ty = c.type()
    if ty.is_timestamp():
        return c
    if ty.is_date():
        return c.cast(dt.Timestamp())
    if ty.is_string():
        return c.try_cast(dt.Timestamp(timezone="UTC"))
    if ty.is_null():
        return ibis.null(dt.Timestamp())
    raise SchemaError(f"Column `{table}.{col}` (given in `{param}`) holds {ty}, not timestamps.")


def dimension(t: ir.Table, by: str | None, *, table: str) -> ir.StringValue | None:
    if by is None:
        return None
    if not isinstance(by, str) or not by:
        raise ParameterError(f"`by` must be a column name such as 'source' or 'segment', or None, not `{by!r}`.")
    if by not in t.columns:
        if by in TABLES[table].names:
            return ibis.literal(UNKNOWN)
        raise ParameterError(f"`by` names column `{by}`, which is not in `{table}`; columns: {', '.join(t.columns)}.")
    c = t[by]
    if not c.type().is_string():
        c = c.cast(dt.string)
    return c.fill_null(UNKNOWN)


def check_stages(stages, *, param: str = "stages") -> tuple[str, ...]:
    if isinstance(stages, str) or not isinstance(stages, Sequence):
        raise ParameterError(f"`{param}` must be a list of at least two stage names, not `{stages!r}`.")
    out = tuple(stages)
    if len(out) < 2 or not all(isinstance(s, str) and s for s in out):
        raise ParameterError(f"`{param}` must be a list of at least two stage names, not `{list(out)!r}`.")
    if len(set(out)) != len(out):
        raise ParameterError(f"`{param}` lists a stage twice: `{list(out)!r}`.")
    return out


def pairs(stages: Sequence[str]) -> list[tuple[str, str]]:
    return list(zip(stages[:-1], stages[1:]))
