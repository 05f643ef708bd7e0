"""Cohort retention: month-end MRR, cohorts, NRR/GRR, MRR movements, survival, LTV and CAC.

Every function takes the data first — a :class:`~revops_lib.sources.Source`
(or anything :func:`~revops_lib.sources.open_source` accepts), an Ibis table or
a pandas DataFrame of ``subscriptions``, ``transactions`` or customer-months
(``customer_id, month, mrr``), or a :class:`CustomerMRR` computed once with
:func:`customer_mrr` — runs the heavy work in the engine (DuckDB, PostgreSQL or
any Ibis backend) and returns a small pandas DataFrame.

Definitions (``shared/METRICS.md``, "Cohort retention")
--------------------------------------------------------
- **Month-end MRR** of a customer in month *m* is the sum of ``mrr`` of its
  subscriptions active on the last day *d* of *m*: ``start_date <= d`` and
  (``end_date`` is null or ``end_date > d``). A subscription therefore counts
  from the month of its ``start_date`` to the month before the month of its
  ``end_date`` (one that starts and ends in the same month never counts; one
  that ends on a month's last day does not count in that month).
- **From transactions** (when the source has no ``subscriptions``): a customer
  is active in a month when it had a payment in it (``occurred_at`` in the
  month and before ``as_of``) and its MRR is the sum of those payments. A
  customer-month whose payments sum to zero (zero-value transactions, or
  refunds that cancel the payments) has MRR 0: the customer is not paying.
- **Complete months only.** A month counts when it is complete before the
  cut-off: its last day is before ``as_of``'s date, and before the end of the
  report period (a report for 2026-10 with ``as_of`` 2026-11-05 stops at
  2026-10). :func:`last_complete_month` gives that month.
- **Cents.** Money is counted in whole cents (each subscription's ``mrr``, each
  payment rounded to the cent before summing), so that every sum is exact and
  the movement identity holds to the cent. Tables show currency units.
- **Cohort** = month of a customer's first positive MRR; **age** *k* = months
  since the cohort month (k = 0 is the cohort month). **Logo retention**(c, k) =
  customers of cohort c with MRR > 0 at age k / cohort size. **NRR** = cohort
  MRR at age k / starting MRR (cohort MRR at age 0); **GRR** = Σ min(customer
  MRR at k, customer MRR at 0) / starting MRR. Cells past the last complete
  month are absent (empty in charts), never zero. The **average** row weights
  cohorts by size (logo) and by starting MRR (revenue), over the cohorts old
  enough to have reached each age.
- **Quarterly cohorts** group the monthly cohorts of a (fiscal) quarter; ages
  stay in months since each customer's own first paid month (so age 0 is still
  100 %), and a cell is shown once every month of the quarter has reached that
  age.
- **MRR movements** of month *m* against *m−1*, per customer: new (first ever
  positive MRR), expansion (up), contraction (down, still > 0), churned (from
  > 0 to 0, a positive amount), reactivation (from 0 to > 0 after an earlier
  positive month). ending = starting + new + expansion + reactivation −
  contraction − churned, exactly (in cents).
- **Quick ratio** = (new + expansion + reactivation) / (contraction + churned).
- **Trailing-12-month NRR / GRR / logo retention** at month *m*: the customers
  with MRR > 0 in *m−12*; NRR = their MRR in *m* / their MRR in *m−12*; GRR caps
  each customer at its MRR in *m−12*; logo retention = those still paying in
  *m* / their number.
- **Logo churn rate** (month) = customers churned in the month / customers with
  MRR > 0 at the end of the month before. **Revenue churn rate** (month, gross)
  = (churned + contraction) / starting MRR, i.e. 1 − the month's GRR; over a
  period of several months, Σ (churned + contraction) / Σ starting MRR.
- **ARPA** = MRR / paying customers at a month end. **LTV** = ARPA × gross
  margin / monthly revenue churn rate (the period's months; ARPA at the
  period's last complete month). **CAC** = Σ ``marketing_spend.spend`` dated in
  the period (and before ``as_of``) / new customers in the period
  (:func:`new_customers`: distinct accounts whose first won ``new_business``
  opportunity closed in the period). **CAC payback** (months) = CAC / (ARPA of
  new customers × gross margin), where the ARPA of new customers is the new MRR
  of the period's months / the customers whose first paid month it was.
- **Survival**: Kaplan–Meier on the months from a customer's first paid month
  to its first churn (the first month-end with MRR 0), censored at the last
  complete month for customers still paying; S(k) = share still paying without
  interruption k months after their first paid month. 95 % interval: Greenwood
  ("linear", clipped to [0, 1]) from :func:`scipy.stats.ecdf` on
  :class:`scipy.stats.CensoredData`.

How it runs
-----------
Month-end MRR is kept as *change points*: one row per customer and month in
which its MRR changes (from subscription starts and ends, or from the
customer-months of payments), with the level from then on. Cohort cells,
movements, trailing retention and survival are aggregates over those rows, so
the engine never sorts or joins the full customer × month grid. The only
per-row work on the grid is a low-cardinality aggregation by (cohort, month).
:func:`customer_mrr` with ``cache=True`` keeps the change points in a
temporary table when several metrics are computed from them (:func:`analyze`).

Customer-months given as such (``customer_id, month, mrr``, one row per
customer and month) are aggregated in one pass per customer: month and cents
are packed into one integer (``(month << 40) + cents``), whose minimum gives
the cohort and its starting MRR, and the customer's packed months are listed
and unnested again — no join back to the 10-million-row grid. Filters use the
stored columns (``mrr >= 0.005``, i.e. at least one cent once rounded) so the
engine applies them while reading.

>>> import pandas as pd, datetime as dt
>>> subs = pd.DataFrame({"customer_id": ["A", "A", "B"],
...                      "start_date": [dt.date(2026, 1, 5), dt.date(2026, 3, 1), dt.date(2026, 2, 1)],
...                      "mrr": [100.0, 50.0, 80.0], "end_date": [None, None, dt.date(2026, 3, 15)]})
>>> mrr_movements(subs, period="2026-03", months=3)[["month", "new", "expansion", "churned", "ending_mrr"]]
     month    new  expansion  churned  ending_mrr
0  2026-01  100.0        0.0      0.0       100.0
1  2026-02   80.0        0.0      0.0       180.0
2  2026-03    0.0       50.0     80.0       150.0
"""

from __future__ import annotations

import datetime as _dt
import math
import uuid
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from revops_lib.errors import ParameterError, SchemaError, SourceError
from revops_lib.periods import Period, parse_period, period_of, resolve_as_of
from revops_lib.sources import Source, as_table, date_windows, open_source, to_pandas
from revops_lib.text import md

__all__ = [
    "FOOTNOTES",
    "LOGO_COLUMNS",
    "REVENUE_COLUMNS",
    "MOVEMENT_COLUMNS",
    "CustomerMRR",
    "last_complete_month",
    "customer_mrr",
    "customer_months",
    "cohort_retention",
    "logo_retention",
    "revenue_retention",
    "quarterly_retention",
    "cohort_average",
    "mrr_movements",
    "arr_bridge",
    "monthly_kpis",
    "trailing_retention",
    "survival",
    "new_customers",
    "marketing_spend_total",
    "unit_economics",
    "RetentionReport",
    "analyze",
]

#: Columns of the published tables (DESIGN.md, "Published tables").
LOGO_COLUMNS = ["cohort", "age", "cohort_size", "active", "retention"]
REVENUE_COLUMNS = ["cohort", "age", "starting_mrr", "mrr", "nrr", "grr"]
MOVEMENT_COLUMNS = ["month", "starting_mrr", "new", "expansion", "reactivation", "contraction", "churned",
                    "ending_mrr"]
AVERAGE = "average"
ALL = "all"
UNKNOWN = "unknown"

FOOTNOTES = [
    ("Monthly MRR per customer", "a month-end snapshot: the sum of mrr of the customer's subscriptions active on "
     "the last day d of the month (start_date <= d and end_date null or > d). Without subscriptions: a customer "
     "is active in a month when it had a payment in it, and its MRR is the sum of those payments (a zero sum is "
     "not paying). Only months complete before as of count; amounts are counted in whole cents."),
    ("Cohort", "month of a customer's first positive MRR; age k = months since the cohort month (k = 0 is the "
     "cohort month). Quarterly cohorts group the monthly cohorts of a quarter, ages stay in months."),
    ("Logo retention", "customers of cohort c with MRR > 0 at age k / cohort size. Cells past as of are empty, "
     "not zero. The average row weights cohorts by size."),
    ("Revenue retention", "starting MRR = cohort MRR at age 0; NRR = cohort MRR at age k / starting MRR; "
     "GRR = Σ min(customer MRR at k, customer MRR at 0) / starting MRR. The average row weights cohorts by "
     "starting MRR."),
    ("MRR movements", "month m vs m−1, per customer: new (first ever positive MRR), expansion (up), contraction "
     "(down, still > 0), churned (from > 0 to 0, shown positive), reactivation (from 0 to > 0 after an earlier "
     "positive month); ending = starting + new + expansion + reactivation − contraction − churned, exactly. "
     "ARR = 12 × MRR. Quick ratio = (new + expansion + reactivation) / (contraction + churned)."),
    ("Trailing-12-month NRR / GRR", "at month m: customers with MRR > 0 in m−12; NRR = their MRR in m / their "
     "MRR in m−12; GRR caps each customer at its MRR in m−12; logo retention = those still paying / their number."),
    ("Logo churn rate", "customers churned in the month / customers with MRR > 0 at the start of the month."),
    ("Revenue churn rate", "(churned + contraction MRR) / starting MRR of the month (gross; 1 − monthly GRR); "
     "over a period of several months, Σ (churned + contraction) / Σ starting MRR."),
    ("Survival curve", "Kaplan–Meier on months from first paid month to first churn, censored at as of for "
     "customers still paying; 95% CI (Greenwood, clipped to [0, 1])."),
    ("ARPA, LTV", "ARPA = MRR / paying customers at the period's last complete month; LTV = ARPA × gross margin / "
     "monthly revenue churn rate (gross margin a parameter, default 0.8)."),
    ("CAC, payback", "CAC = Σ marketing_spend.spend in the period (sales costs included as their own channel) / "
     "new customers (distinct accounts with a first won new_business opportunity in the period); CAC payback "
     "(months) = CAC / (ARPA of new customers × gross margin), ARPA of new customers = new MRR / customers "
     "whose first paid month fell in the period."),
]

_INT = dt.int64
#: Amounts below half a cent round to 0 cents: such subscriptions and customer-months are not paying.
_HALF_CENT = 0.005


# ---------------------------------------------------------------------------
# Months and checks
# ---------------------------------------------------------------------------


def _mi(year: int, month: int) -> int:
    """Month index: months since year 0 (``year * 12 + month - 1``)."""
    return year * 12 + month - 1


def _mi_of(day: _dt.date) -> int:
    return _mi(day.year, day.month)


def _label(mi: int) -> str:
    """``YYYY-MM`` of a month index."""
    y, m0 = divmod(int(mi), 12)
    return f"{y:04d}-{m0 + 1:02d}"


def _labels(values) -> list[str]:
    return [_label(v) for v in values]


def _first_day(mi: int) -> _dt.date:
    y, m0 = divmod(int(mi), 12)
    return _dt.date(y, m0 + 1, 1)


_MONTH_ZERO = 1900 * 12  # month index of 1900-01


def _month_expr(col: ir.Value) -> ir.IntegerValue:
    """Month index of a date or timestamp expression (from 1900 on).

    Calendar months since 1900-01 (DuckDB's ``date_diff('month', …)``,
    PostgreSQL's ``age``), cheaper to compute than ``year * 12 + month``.
    """
    if col.type().is_timestamp():
        ref = ibis.timestamp(_dt.datetime(1900, 1, 1))
        col = col.cast(dt.Timestamp()) if col.type().timezone is not None else col
    else:
        ref = ibis.date(1900, 1, 1)
    return col.delta(ref, unit="month").cast(_INT) + _MONTH_ZERO


def _backend_name(t: ir.Table) -> str:
    try:
        return t._find_backend(use_default=True).name
    except Exception:  # pragma: no cover - unbound expressions run on the default DuckDB
        return "duckdb"


def _cents(amount: ir.NumericValue, backend: str) -> ir.IntegerValue:
    """An amount in whole cents (nearest cent).

    DuckDB and PostgreSQL round when casting a double to an integer, so the
    cast alone does it (``ROUND(x, 0)`` first costs DuckDB a third more time
    on 10 million rows); other engines may truncate, so they round first.
    """
    x = amount.cast(dt.float64) * 100
    return x.cast(_INT) if backend in ("duckdb", "postgres") else x.round().cast(_INT)


def _check_int(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ParameterError(f"`{name}` must be a whole number >= {minimum}, not `{value!r}`.")
    return int(value)


def _check_fraction(value, name: str, *, allow_zero: bool = False) -> float:
    ok = isinstance(value, (int, float, np.floating)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value > 1 or value < 0 or (value == 0 and not allow_zero):
        allowed = "a fraction from 0 to 1" if allow_zero else "a fraction above 0 and at most 1"
        raise ParameterError(f"`{name}` must be {allowed} (0.8 means 80%), not `{value!r}`.")
    return float(value)


def _window(period, as_of) -> tuple[Period | None, pd.Timestamp]:
    p = parse_period(period) if period is not None and not isinstance(period, Period) else period
    if p is None and (as_of is None or (isinstance(as_of, str) and not as_of.strip())):
        raise ParameterError("Give `period` (e.g. '2026-10') or `as_of` (e.g. '2026-11-01'): "
                             "retention counts only months complete before the cut-off.")
    return p, resolve_as_of(p, as_of)


def last_complete_month(period=None, as_of=None) -> str:
    """The last month counted: complete before ``as_of``'s date and the end of ``period``.

    A month counts when its last day is before ``as_of``'s date (so with the
    default cut-off at the period end the period's last month counts) and it
    ends within the period.

    >>> last_complete_month("2026-10"), last_complete_month("2026-10", "2026-10-31T12:00")
    ('2026-10', '2026-09')
    >>> last_complete_month("2026-Q4", "2026-12-01"), last_complete_month("2026-W40")
    ('2026-11', '2026-09')
    """
    return _label(_last_month(*_window(period, as_of)))


def _last_month(p: Period | None, cut: pd.Timestamp) -> int:
    limit = cut.date()
    if p is not None:
        limit = min(limit, p.end_date)
    # months whose first day of the next month is on or before `limit`
    return _mi_of(limit) - 1


def _period_months(p: Period | None, last: int) -> list[int]:
    """Complete months (<= last) that end inside the period; the last complete month if none does."""
    if p is None:
        return [last]
    first = _mi_of(p.start_date)
    # a month ends inside [start, end) when its last day is >= start: months from the start month on
    months = [m for m in range(first, last + 1) if _first_day(m + 1) > p.start_date]
    return months or [last]


# ---------------------------------------------------------------------------
# Input: subscriptions, transactions or customer-months -> change points
# ---------------------------------------------------------------------------

CUSTOMER_MONTH_COLUMNS = ("customer_id", "month", "mrr")


def _resolve(data: Any) -> tuple[str, ir.Table, Source | None]:
    """``(basis, table, source)``: basis is subscriptions, transactions or customer_months."""
    if isinstance(data, (ir.Table, pd.DataFrame)):
        cols = set(data.columns)
        if set(CUSTOMER_MONTH_COLUMNS) <= cols:
            if isinstance(data, pd.DataFrame):
                df = data.copy()
                df["month"] = pd.to_datetime(df["month"]).dt.date
                data = ibis.memtable(df)
            return "customer_months", data, None
        if {"customer_id", "start_date", "mrr"} <= cols:
            return "subscriptions", as_table(data, "subscriptions"), None
        if {"customer_id", "occurred_at", "amount"} <= cols:
            return "transactions", as_table(data, "transactions"), None
        raise SchemaError(
            f"Cannot tell what the table with columns {', '.join(f'`{c}`' for c in data.columns)} holds: "
            "give subscriptions (customer_id, start_date, mrr, end_date), transactions (customer_id, "
            "occurred_at, amount) or customer-months (customer_id, month, mrr)."
        )
    if data is None:
        raise ParameterError("Give the data: a Source, a subscriptions or transactions table, or customer-months.")
    src = open_source(data)
    if src.has("subscriptions"):
        return "subscriptions", src.table("subscriptions"), src
    if src.has("transactions"):
        return "transactions", src.table("transactions"), src
    raise SourceError(f"Cohort retention needs table `subscriptions` or `transactions`; {src.description} has "
                      f"neither (present: {', '.join(src.names) or 'none'}).")


def _attribute(t: ir.Table, by: str | None, order_col: str, basis: str) -> ir.Table | None:
    """Per customer, the value of column ``by`` on its earliest row (``customer_id, group``)."""
    if by is None:
        return None
    if not isinstance(by, str) or not by:
        raise ParameterError(f"`by` must be a column name such as 'segment', or None, not `{by!r}`.")
    if by not in t.columns:
        raise ParameterError(f"`by` names column `{by}`, which is not in the {basis} table; "
                             f"columns: {', '.join(t.columns)}.")
    keep = t.filter(t.customer_id.notnull())
    col = keep[by] if keep[by].type().is_string() else keep[by].cast(dt.string)
    return keep.group_by("customer_id").aggregate(group=col.argmin(keep[order_col]))


@dataclass
class CustomerMRR:
    """Month-end MRR of every customer as change points, in the engine (see :func:`customer_mrr`).

    Attributes
    ----------
    changes : ibis Table
        One row per customer and month in which its month-end MRR changes:
        ``customer_id``, ``m`` (month index, ``year * 12 + month - 1``), ``d``
        (change in cents), ``lvl`` (MRR in cents from ``m`` until ``nxt``),
        ``nxt`` (month index of the next change, or the last month + 1),
        ``cohort`` (month index of the first positive MRR), ``l0`` (MRR in
        cents in the cohort month) and ``group`` (when ``by`` is given).
    last_month : int
        Month index of the last complete month counted.
    basis : str
        ``subscriptions``, ``transactions`` or ``customer_months``.
    by : str or None
        The customer attribute in ``group`` (its value on the customer's first row).
    period, as_of
        The window the months were cut with.
    """

    changes: ir.Table
    last_month: int
    basis: str
    by: str | None
    period: Period | None
    as_of: pd.Timestamp
    source: Source | None = None
    _months: ir.Table | None = None
    _temp: tuple | None = None

    @property
    def last_month_label(self) -> str:
        return _label(self.last_month)

    def months(self) -> ir.Table:
        """Customer-months with positive MRR: ``customer_id, month`` (first day, date), ``mrr`` [, ``group``]."""
        if self._months is not None:
            t = self._months
        else:
            ch = self.changes
            pos = ch.filter(ch.lvl > 0)
            extra = {"group": pos.group} if "group" in ch.columns else {}
            t = pos.select("customer_id", m=ibis.range(pos.m, pos.nxt).unnest(), c=pos.lvl, **extra)
        extra = {"group": t.group} if "group" in t.columns else {}
        return t.select("customer_id", month=ibis.date(t.m // 12, t.m % 12 + 1, 1),
                        mrr=t.c.cast(dt.float64) / 100, **extra)

    def cache(self) -> "CustomerMRR":
        """Materialize the change points as a temporary table of the engine (until :meth:`release`)."""
        if self._temp is None:
            backend = self.changes._find_backend(use_default=True)
            name = f"revops_retention_{uuid.uuid4().hex[:16]}"
            self.changes = backend.create_table(name, self.changes, temp=True)
            self._temp = (backend, name)
        return self

    def release(self) -> None:
        """Drop the temporary table made by :meth:`cache` (the change points cannot be used afterwards)."""
        if self._temp is not None:
            backend, name = self._temp
            self._temp = None
            cur = backend.raw_sql(f'DROP TABLE IF EXISTS "{name}"')
            if getattr(backend, "name", "") != "duckdb":  # DuckDB hands back the connection itself
                close = getattr(cur, "close", None)
                if close is not None:
                    close()

    def __enter__(self) -> "CustomerMRR":
        return self.cache()

    def __exit__(self, *exc) -> None:
        self.release()

    def __repr__(self) -> str:
        by = f", by {self.by}" if self.by else ""
        return f"<CustomerMRR from {self.basis}, months up to {self.last_month_label}{by}>"


def _subscription_deltas(t: ir.Table, last: int) -> ir.Table:
    # filter on stored columns (pushed into the scan); a cents filter on a computed column is much slower
    t = t.filter(t.customer_id.notnull(), t.start_date.notnull(), t.mrr >= _HALF_CENT,
                 t.start_date < ibis.date(_first_day(last + 1)))
    cents = _cents(t.mrr, _backend_name(t))
    m0 = _month_expr(t.start_date)
    m1 = ibis.ifelse(t.end_date.isnull(), last, ibis.least(_month_expr(t.end_date) - 1, last))
    s = t.select("customer_id", c=cents, m0=m0, m1=m1)
    s = s.filter(s.m1 >= s.m0)
    plus = s.select("customer_id", m=s.m0, d=s.c)
    minus = s.filter(s.m1 < last).select("customer_id", m=s.m1 + 1, d=-s.c)
    return plus.union(minus)


def _transaction_months(t: ir.Table, last: int, cut: pd.Timestamp) -> ir.Table:
    """``customer_id, m, c``: payments per customer and complete month, in cents (positive sums only)."""
    t = t.filter(t.customer_id.notnull() & t.occurred_at.notnull()
                 & (t.occurred_at < ibis.timestamp(cut.to_pydatetime())))
    t = t.select("customer_id", m=_month_expr(t.occurred_at), c=_cents(t.amount.fill_null(0), _backend_name(t)))
    t = t.filter(t.m <= last)
    g = t.group_by(["customer_id", "m"]).aggregate(c=t.c.sum())
    return g.filter(g.c > 0)


def _month_rows(t: ir.Table, last: int) -> ir.Table:
    """``customer_id, m, c`` from a customer-months table (month: a date or timestamp; mrr in currency).

    Customer-months hold one row per customer and month (as :func:`customer_months`
    returns them); rows with MRR below half a cent (0 once rounded) are dropped.
    """
    if t.month.type().is_string():
        t = t.mutate(month=t.month.try_cast(dt.date))
    # filters on the stored columns first: the engine pushes them into the scan
    end = _first_day(last + 1)
    limit = ibis.timestamp(_dt.datetime(end.year, end.month, 1)) if t.month.type().is_timestamp() else ibis.date(end)
    t = t.filter(t.customer_id.notnull(), t.month.notnull(), t.month < limit, t.mrr >= _HALF_CENT)
    return t.select("customer_id", m=_month_expr(t.month), c=_cents(t.mrr, _backend_name(t)))


def _month_deltas(cm: ir.Table, last: int) -> ir.Table:
    plus = cm.select("customer_id", "m", d=cm.c)
    minus = cm.filter(cm.m < last).select("customer_id", m=cm.m + 1, d=-cm.c)
    return plus.union(minus)


def _changes(deltas: ir.Table, last: int) -> ir.Table:
    g = deltas.group_by(["customer_id", "m"]).aggregate(d=deltas.d.sum())
    g = g.filter(g.d != 0)
    # one window specification for all four: the engine sorts each customer's rows once
    w = ibis.cumulative_window(group_by="customer_id", order_by="m")
    return g.mutate(
        lvl=g.d.sum().over(w),
        nxt=g.m.lead(1, default=last + 1).over(w),
        cohort=g.m.first().over(w),
        l0=g.d.first().over(w),
    )


def customer_mrr(data, *, period=None, as_of=None, by: str | None = None, cache: bool = False) -> CustomerMRR:
    """Month-end MRR of every customer, kept in the engine as change points.

    Parameters
    ----------
    data : Source, source spec, Ibis table or pandas DataFrame
        ``subscriptions`` (``customer_id, start_date, mrr, end_date``; used
        when a source has them), else ``transactions`` (``customer_id,
        occurred_at, amount``), or customer-months (``customer_id, month,
        mrr``: the month as its first day). A :class:`CustomerMRR` is returned as it is.
    period : str or Period, optional
        The report period: months after it are not counted.
    as_of : str or Timestamp, optional
        Exclusive cut-off (default: the period end). Only months whose last day
        is before its date count.
    by : str, optional
        A customer attribute to group by (e.g. ``'segment'``): the value on the
        customer's earliest subscription (earliest payment or month otherwise).
    cache : bool, default False
        Materialize the change points in the engine (a temporary table) when
        several metrics will be computed from them; drop it with
        ``release()``, or use the result as a context manager
        (``with customer_mrr(src, period=p) as cm: ...`` caches and releases).

    Returns
    -------
    CustomerMRR
        Its ``months()`` gives the customer-months ``customer_id, month, mrr``.

    Examples
    --------
    >>> import pandas as pd, datetime as dt
    >>> subs = pd.DataFrame({"customer_id": ["A", "A"], "start_date": [dt.date(2026, 1, 5), dt.date(2026, 2, 1)],
    ...                      "mrr": [100.0, 50.0], "end_date": [dt.date(2026, 2, 28), None]})
    >>> cm = customer_mrr(subs, period="2026-03")
    >>> to_pandas(cm.months().order_by("month"))
      customer_id      month    mrr
    0           A 2026-01-01  100.0
    1           A 2026-02-01   50.0
    2           A 2026-03-01   50.0
    """
    if isinstance(data, CustomerMRR):
        return data
    p, cut = _window(period, as_of)
    last = _last_month(p, cut)
    basis, t, src = _resolve(data)
    months = None
    if basis == "subscriptions":
        attr = _attribute(t, by, "start_date", basis)
        deltas = _subscription_deltas(t, last)
    elif basis == "transactions":
        attr = _attribute(t, by, "occurred_at", basis)
        months = _transaction_months(t, last, cut)
        deltas = _month_deltas(months, last)
    else:
        attr = _attribute(t, by, "month", "customer-months")
        months = _month_rows(t, last)
        deltas = _month_deltas(months, last)
    ch = _changes(deltas, last)
    if attr is not None:
        ch = ch.left_join(attr, "customer_id").select(ch, group=attr.group.fill_null(UNKNOWN))
        if months is not None:
            months = months.left_join(attr, "customer_id").select(months, group=attr.group.fill_null(UNKNOWN))
    result = CustomerMRR(changes=ch, last_month=last, basis=basis, by=by, period=p, as_of=cut, source=src,
                         _months=months)
    if cache:
        result.cache()
    return result


def customer_months(data, *, period=None, as_of=None, by: str | None = None) -> ir.Table:
    """Month-end MRR per customer and complete month, as an Ibis table (months with MRR > 0 only).

    Parameters are those of :func:`customer_mrr`.

    Returns
    -------
    ibis Table
        ``customer_id``, ``month`` (date, the month's first day), ``mrr``
        (currency, to the cent) and ``group`` when ``by`` is given. Run it with
        :func:`revops_lib.sources.to_pandas` for a pandas DataFrame.

    Examples
    --------
    >>> import pandas as pd, datetime as dt
    >>> tx = pd.DataFrame({"customer_id": ["A", "A", "B"], "amount": [10.0, 5.0, 0.0],
    ...                    "occurred_at": pd.to_datetime(["2026-01-03", "2026-01-20", "2026-01-09"])})
    >>> to_pandas(customer_months(tx, period="2026-01"))
      customer_id      month   mrr
    0           A 2026-01-01  15.0
    """
    return customer_mrr(data, period=period, as_of=as_of, by=by).months()


def _prepare(data, period, as_of, by) -> CustomerMRR:
    if isinstance(data, CustomerMRR):
        if by is not None and data.by != by:
            raise ParameterError(f"`by`={by!r} differs from the CustomerMRR's `by`={data.by!r}: "
                                 "compute it with customer_mrr(..., by=...) first.")
        return data
    return customer_mrr(data, period=period, as_of=as_of, by=by)


def _run(expr: ir.Expr) -> pd.DataFrame:
    return to_pandas(expr)


def _money(cents) -> Any:
    """Cents (int or array) to currency units (float)."""
    return np.asarray(cents, dtype="float64") / 100.0


def _ratio(num, den) -> np.ndarray:
    num = np.asarray(num, dtype="float64")
    den = np.asarray(den, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return out


# ---------------------------------------------------------------------------
# Cohort tables
# ---------------------------------------------------------------------------


def _cells_from_changes(cm: CustomerMRR, first_cohort: int, grouped: bool = False) -> ir.Table:
    ch = cm.changes
    pos = ch.filter((ch.lvl > 0) & (ch.cohort >= first_cohort))
    keys = {"group": pos.group} if grouped else {}
    u = pos.select(**keys, cohort=pos.cohort, c=pos.lvl, cap=ibis.least(pos.lvl, pos.l0),
                   m=ibis.range(pos.m, pos.nxt).unnest())
    return u.group_by([*keys, "cohort", "m"]).aggregate(active=u.count(), mrr=u.c.sum(), capped=u.cap.sum())


#: Packing of (month index, cents) into one integer: ``(m << 40) + cents``; cents must stay below
#: 2**40 (11 billion currency units of MRR per customer and month).
_BITS = 40
_LOW = 2**_BITS - 1


def _cells_from_months(months: ir.Table, first_cohort: int) -> ir.Table:
    """The same cells straight from customer-months (``customer_id, m, c`` [, group]).

    One pass groups the rows by customer: the smallest packed ``(m << 40) + c``
    gives the cohort month and its MRR, and the customer's packed months are
    collected and unnested again with them — so no join back to the
    customer-months and no string key is hashed twice.
    """
    t = months.mutate(k=(months.m << _BITS) + months.c)
    extra = {"group": t.group.argmin(t.m)} if "group" in t.columns else {}
    g = t.group_by("customer_id").aggregate(kmin=t.k.min(), ks=t.k.collect(include_null=True), **extra)
    g = g.filter(g.kmin >= first_cohort << _BITS)
    keys = {"group": g.group} if extra else {}
    u = g.select(**keys, cohort=g.kmin >> _BITS, c0=g.kmin & _LOW, k=g.ks.unnest())
    c = u.k & _LOW
    u = u.select(**keys, cohort=u.cohort, m=u.k >> _BITS, c=c, cap=ibis.least(c, u.c0))
    return u.group_by([*keys, "cohort", "m"]).aggregate(active=u.count(), mrr=u.c.sum(), capped=u.cap.sum())


def _cohort_frame(cells: pd.DataFrame, *, first_cohort: int, last: int, grouped: bool) -> pd.DataFrame:
    """Cells (cohort, m, active, mrr, capped in cents) -> the monthly cohort table, every age up to ``last``."""
    keys = ["group"] if grouped else []
    cols = [*keys, "cohort", "age", "cohort_size", "active", "retention", "starting_mrr", "mrr", "nrr", "grr",
            "capped_mrr"]
    if cells.empty:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in cols})
    cohort = cells["cohort"].to_numpy(dtype="int64")
    age = cells["m"].to_numpy(dtype="int64") - cohort
    span = last - first_cohort + 1
    if grouped:
        codes, names = pd.factorize(cells["group"], sort=True)
    else:
        codes, names = np.zeros(len(cells), dtype="int64"), np.array([None])
    # a dense (group, cohort, age) grid: cells land at their slot, slots without a cell hold 0
    slot = (codes * span + (cohort - first_cohort)) * span + age
    size = len(names) * span * span
    dense = {c: np.zeros(size, dtype="int64") for c in ("active", "mrr", "capped")}
    for c in dense:
        dense[c][slot] = cells[c].to_numpy(dtype="int64")
    # cohorts = (group, cohort) with customers at age 0; every age from 0 to the last complete month
    first = age == 0
    b_code, b_cohort = codes[first], cohort[first]
    order = np.lexsort((b_cohort, b_code))
    b_code, b_cohort = b_code[order], b_cohort[order]
    n = last - b_cohort + 1
    row_code, row_cohort = np.repeat(b_code, n), np.repeat(b_cohort, n)
    row_age = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    base = (row_code * span + (row_cohort - first_cohort)) * span
    at = base + row_age
    active, mrr, capped = dense["active"][at], dense["mrr"][at], dense["capped"][at]
    size0, start = dense["active"][base], dense["mrr"][base]
    labels = {m: _label(m) for m in np.unique(row_cohort)}
    result = pd.DataFrame({
        **({"group": np.asarray(names, dtype=object)[row_code]} if grouped else {}),
        "cohort": [labels[m] for m in row_cohort],
        "age": row_age.astype("int64"),
        "cohort_size": size0,
        "active": active,
        "retention": _ratio(active, size0),
        "starting_mrr": _money(start),
        "mrr": _money(mrr),
        "nrr": _ratio(mrr, start),
        "grr": _ratio(capped, start),
        "capped_mrr": _money(capped),
    })
    return result[cols]


def cohort_retention(data, *, period=None, as_of=None, cohorts: int = 24, by: str | None = None) -> pd.DataFrame:
    """Logo and revenue retention of the last ``cohorts`` monthly cohorts, at every age up to the cut-off.

    Parameters
    ----------
    data : Source, Ibis table, pandas DataFrame or CustomerMRR
        See :func:`customer_mrr`. Customer-months (``customer_id, month, mrr``)
        are aggregated directly (one join, no change points).
    period : str or Period
        Cohorts and ages run up to the last complete month (:func:`last_complete_month`).
    as_of : str or Timestamp, optional
        Exclusive cut-off (default: the period end).
    cohorts : int, default 24
        Number of monthly cohorts: the calendar months ending with the last
        complete month (months without a new customer have no rows).
    by : str, optional
        Split by a customer attribute (e.g. ``'segment'``): adds column ``group``.

    Returns
    -------
    DataFrame
        ``[group,] cohort`` (``YYYY-MM``), ``age`` (months), ``cohort_size``,
        ``active``, ``retention``, ``starting_mrr``, ``mrr``, ``nrr``, ``grr``,
        ``capped_mrr`` (Σ min(customer MRR at age, at 0)); one row per cohort
        and age from 0 to the last complete month (later cells are absent).

    Examples
    --------
    >>> import pandas as pd
    >>> cm = pd.DataFrame({"customer_id": ["A", "A", "B", "A"], "mrr": [100.0, 120.0, 50.0, 80.0],
    ...                    "month": pd.to_datetime(["2026-01-01", "2026-02-01", "2026-01-01", "2026-03-01"])})
    >>> cohort_retention(cm, period="2026-03")[["cohort", "age", "cohort_size", "active", "retention", "nrr", "grr"]]
        cohort  age  cohort_size  active  retention       nrr       grr
    0  2026-01    0            2       2        1.0  1.000000  1.000000
    1  2026-01    1            2       1        0.5  0.800000  0.666667
    2  2026-01    2            2       1        0.5  0.533333  0.533333
    """
    cohorts = _check_int(cohorts, "cohorts")
    if isinstance(data, CustomerMRR):
        cm = _prepare(data, period, as_of, by)
        last = cm.last_month
        first = last - cohorts + 1
        grouped = by is not None
        expr = _cells_from_changes(cm, first, grouped)
    else:
        basis, t, _ = _resolve(data)
        if basis == "customer_months":
            p, cut = _window(period, as_of)
            last = _last_month(p, cut)
            first = last - cohorts + 1
            months = _month_rows(t, last)
            attr = _attribute(t, by, "month", "customer-months")
            if attr is not None:
                months = months.left_join(attr, "customer_id").select(months, group=attr.group.fill_null(UNKNOWN))
            expr = _cells_from_months(months, first)
            grouped = attr is not None
        else:
            cm = customer_mrr(data, period=period, as_of=as_of, by=by)
            last = cm.last_month
            first = last - cohorts + 1
            grouped = by is not None
            expr = _cells_from_changes(cm, first, grouped)
    return _cohort_frame(_run(expr), first_cohort=first, last=last, grouped=grouped)


def logo_retention(data, *, period=None, as_of=None, cohorts: int = 24) -> pd.DataFrame:
    """The published ``logo_retention`` table: ``cohort, age, cohort_size, active, retention``.

    ``data`` may also be the result of :func:`cohort_retention`. See that function.

    >>> import pandas as pd
    >>> cm = pd.DataFrame({"customer_id": ["A", "B"], "month": pd.to_datetime(["2026-01-01"] * 2), "mrr": [1.0, 2.0]})
    >>> logo_retention(cm, period="2026-02")
        cohort  age  cohort_size  active  retention
    0  2026-01    0            2       2        1.0
    1  2026-01    1            2       0        0.0
    """
    table = data if _is_cohort_table(data) else cohort_retention(data, period=period, as_of=as_of, cohorts=cohorts)
    return table[LOGO_COLUMNS].reset_index(drop=True)


def revenue_retention(data, *, period=None, as_of=None, cohorts: int = 24) -> pd.DataFrame:
    """The published ``revenue_retention`` table: ``cohort, age, starting_mrr, mrr, nrr, grr``.

    ``data`` may also be the result of :func:`cohort_retention`. See that function.

    >>> import pandas as pd
    >>> cm = pd.DataFrame({"customer_id": ["A", "A"], "month": pd.to_datetime(["2026-01-01", "2026-02-01"]),
    ...                    "mrr": [100.0, 150.0]})
    >>> revenue_retention(cm, period="2026-02")
        cohort  age  starting_mrr    mrr  nrr  grr
    0  2026-01    0         100.0  100.0  1.0  1.0
    1  2026-01    1         100.0  150.0  1.5  1.0
    """
    table = data if _is_cohort_table(data) else cohort_retention(data, period=period, as_of=as_of, cohorts=cohorts)
    return table[REVENUE_COLUMNS].reset_index(drop=True)


def _is_cohort_table(data) -> bool:
    return isinstance(data, pd.DataFrame) and {"cohort", "age", "cohort_size", "capped_mrr"} <= set(data.columns)


def cohort_average(table: pd.DataFrame) -> pd.DataFrame:
    """The weighted-average row per age of a cohort table (:func:`cohort_retention` or quarterly).

    Logo retention is weighted by cohort size (Σ active / Σ cohort size), NRR and
    GRR by starting MRR (Σ MRR / Σ starting MRR), over the cohorts that have
    reached the age.

    Returns
    -------
    DataFrame
        ``[group,] cohort`` (``'average'``), ``age``, ``cohorts`` (how many
        cohorts have reached the age), ``cohort_size``, ``active``,
        ``retention``, ``starting_mrr``, ``mrr``, ``nrr``, ``grr``, ``capped_mrr``.

    >>> t = pd.DataFrame({"cohort": ["2026-01", "2026-01", "2026-02"], "age": [0, 1, 0],
    ...                   "cohort_size": [4, 4, 1], "active": [4, 2, 1], "starting_mrr": [40.0, 40.0, 10.0],
    ...                   "mrr": [40.0, 30.0, 10.0], "capped_mrr": [40.0, 20.0, 10.0]})
    >>> cohort_average(t)[["age", "cohorts", "retention", "nrr", "grr"]]
       age  cohorts  retention   nrr  grr
    0    0        2        1.0  1.00  1.0
    1    1        1        0.5  0.75  0.5
    """
    keys = ["group"] if "group" in table.columns else []
    if table.empty:
        return pd.DataFrame(columns=[*keys, "cohort", "age", "cohorts", "cohort_size", "active", "retention",
                                     "starting_mrr", "mrr", "nrr", "grr", "capped_mrr"])
    # money back to cents for exact sums
    t = table.assign(_s=(table["starting_mrr"] * 100).round().astype("int64"),
                     _m=(table["mrr"] * 100).round().astype("int64"),
                     _c=(table["capped_mrr"] * 100).round().astype("int64"))
    g = t.groupby([*keys, "age"], sort=True).agg(cohorts=("cohort", "size"), cohort_size=("cohort_size", "sum"),
                                                 active=("active", "sum"), _s=("_s", "sum"), _m=("_m", "sum"),
                                                 _c=("_c", "sum")).reset_index()
    return pd.DataFrame({
        **{k: g[k] for k in keys},
        "cohort": AVERAGE,
        "age": g["age"].astype("int64"),
        "cohorts": g["cohorts"].astype("int64"),
        "cohort_size": g["cohort_size"].astype("int64"),
        "active": g["active"].astype("int64"),
        "retention": _ratio(g["active"], g["cohort_size"]),
        "starting_mrr": _money(g["_s"]),
        "mrr": _money(g["_m"]),
        "nrr": _ratio(g["_m"], g["_s"]),
        "grr": _ratio(g["_c"], g["_s"]),
        "capped_mrr": _money(g["_c"]),
    })


def quarterly_retention(data, *, period=None, as_of=None, quarters: int = 8, fiscal_year_start_month: int | None = None,
                        by: str | None = None) -> pd.DataFrame:
    """Retention of quarterly cohorts: the monthly cohorts of each (fiscal) quarter added up.

    Ages stay in months since each customer's own first paid month; a cell is
    shown once every month of the quarter (up to the last complete month) has
    reached that age, so a quarter's cells are the cohort-size weighted
    average of its months'.

    Parameters
    ----------
    data, period, as_of, by
        As in :func:`cohort_retention`.
    quarters : int, default 8
        Number of quarters, ending with the one holding the last complete month.
    fiscal_year_start_month : int, optional
        Shifts quarters (default: the period's setting, else 1).

    Returns
    -------
    DataFrame
        The columns of :func:`cohort_retention` with ``cohort`` a quarter label (``2026-Q3``).

    >>> import pandas as pd
    >>> cm = pd.DataFrame({"customer_id": ["A", "B", "B", "C"], "mrr": [10.0, 10.0, 10.0, 20.0],
    ...                    "month": pd.to_datetime(["2026-01-01", "2026-03-01", "2026-04-01", "2026-04-01"])})
    >>> quarterly_retention(cm, period="2026-04")[["cohort", "age", "cohort_size", "active", "retention"]]
        cohort  age  cohort_size  active  retention
    0  2026-Q1    0            2       2        1.0
    1  2026-Q1    1            2       1        0.5
    2  2026-Q2    0            1       1        1.0
    """
    quarters = _check_int(quarters, "quarters")
    if isinstance(data, CustomerMRR):
        p, last = data.period, data.last_month
    else:
        p, cut = _window(period, as_of)
        last = _last_month(p, cut)
    fiscal = fiscal_year_start_month or (p.fiscal_year_start_month if p is not None else 1)
    cm_or_data = data
    q_last = period_of(_first_day(last), "quarter", fiscal_year_start_month=fiscal)
    q_first = q_last.previous(quarters - 1)
    first = _mi_of(q_first.start_date)
    monthly = cohort_retention(cm_or_data, period=period, as_of=as_of, cohorts=last - first + 1, by=by)
    keys = ["group"] if "group" in monthly.columns else []
    cols = [*keys, "cohort", "age", "cohort_size", "active", "retention", "starting_mrr", "mrr", "nrr", "grr",
            "capped_mrr"]
    if monthly.empty:
        return pd.DataFrame(columns=cols)
    mi = monthly["cohort"].map(lambda s: _mi(int(s[:4]), int(s[5:7])))
    qlab = {m: period_of(_first_day(m), "quarter", fiscal_year_start_month=fiscal) for m in sorted(set(mi))}
    t = monthly.assign(quarter=mi.map(lambda m: qlab[m].label),
                       q_end=mi.map(lambda m: min(_mi_of(qlab[m].end_date) - 1, last)),
                       _s=(monthly["starting_mrr"] * 100).round().astype("int64"),
                       _m=(monthly["mrr"] * 100).round().astype("int64"),
                       _c=(monthly["capped_mrr"] * 100).round().astype("int64"))
    t = t[t["age"] <= last - t["q_end"]]
    sizes = (t[t["age"] == 0].groupby([*keys, "quarter"]).agg(cohort_size=("cohort_size", "sum"), _s=("_s", "sum")))
    g = t.groupby([*keys, "quarter", "age"]).agg(active=("active", "sum"), _m=("_m", "sum"),
                                                 _c=("_c", "sum")).reset_index()
    g = g.join(sizes, on=[*keys, "quarter"])
    g = g.sort_values([*keys, "quarter", "age"], ignore_index=True)
    return pd.DataFrame({
        **{k: g[k] for k in keys},
        "cohort": g["quarter"],
        "age": g["age"].astype("int64"),
        "cohort_size": g["cohort_size"].astype("int64"),
        "active": g["active"].astype("int64"),
        "retention": _ratio(g["active"], g["cohort_size"]),
        "starting_mrr": _money(g["_s"]),
        "mrr": _money(g["_m"]),
        "nrr": _ratio(g["_m"], g["_s"]),
        "grr": _ratio(g["_c"], g["_s"]),
        "capped_mrr": _money(g["_c"]),
    })[cols]


# ---------------------------------------------------------------------------
# MRR movements
# ---------------------------------------------------------------------------


def _movement_expr(cm: CustomerMRR) -> ir.Table:
    ch = cm.changes
    prev = ch.lvl - ch.d
    first = ch.m == ch.cohort
    zero = ibis.literal(0, type=_INT)

    def when(cond, value):
        return ibis.ifelse(cond, value, zero)

    new = (prev == 0) & first
    react = (prev == 0) & ~first
    churn = (prev > 0) & (ch.lvl == 0)
    up = (prev > 0) & (ch.d > 0)
    down = (prev > 0) & (ch.lvl > 0) & (ch.d < 0)
    return ch.group_by("m").aggregate(
        new=when(new, ch.lvl).sum(), new_logos=when(new, 1).sum(),
        expansion=when(up, ch.d).sum(), expanded_logos=when(up, 1).sum(),
        reactivation=when(react, ch.lvl).sum(), reactivated_logos=when(react, 1).sum(),
        contraction=when(down, -ch.d).sum(), contracted_logos=when(down, 1).sum(),
        churned=when(churn, prev).sum(), churned_logos=when(churn, 1).sum(),
    )


_MOVE_MONEY = ["new", "expansion", "reactivation", "contraction", "churned"]
_MOVE_LOGOS = ["new_logos", "expanded_logos", "reactivated_logos", "contracted_logos", "churned_logos"]


def _movement_frame(raw: pd.DataFrame, last: int, months: int) -> pd.DataFrame:
    """Per-month movements in cents -> the full table (cumulated from the first month with data)."""
    cols = ["month", *MOVEMENT_COLUMNS[1:], "starting_customers", *_MOVE_LOGOS, "ending_customers"]
    first_view = last - months + 1
    start = min([first_view] + ([int(raw["m"].min())] if len(raw) else []))
    grid = pd.DataFrame({"m": np.arange(start, last + 1, dtype="int64")})
    raw = raw.astype({c: "int64" for c in raw.columns})
    g = grid.merge(raw, on="m", how="left").fillna(0)
    for c in _MOVE_MONEY + _MOVE_LOGOS:
        g[c] = g[c].astype("int64")
    net = g["new"] + g["expansion"] + g["reactivation"] - g["contraction"] - g["churned"]
    g["ending"] = net.cumsum()
    g["starting"] = g["ending"].shift(1, fill_value=0)
    logos = g["new_logos"] + g["reactivated_logos"] - g["churned_logos"]
    g["ending_customers"] = logos.cumsum()
    g["starting_customers"] = g["ending_customers"].shift(1, fill_value=0)
    g = g[g["m"] >= first_view].reset_index(drop=True)
    assert (g["ending"] == g["starting"] + net[g.index + (len(net) - len(g))].to_numpy()).all()
    out = pd.DataFrame({"month": _labels(g["m"]), "starting_mrr": _money(g["starting"])})
    for c in _MOVE_MONEY:
        out[c] = _money(g[c])
    out["ending_mrr"] = _money(g["ending"])
    out["starting_customers"] = g["starting_customers"].astype("int64")
    for c in _MOVE_LOGOS:
        out[c] = g[c].astype("int64")
    out["ending_customers"] = g["ending_customers"].astype("int64")
    return out[cols]


def mrr_movements(data, *, period=None, as_of=None, months: int = 12) -> pd.DataFrame:
    """MRR movements of the last ``months`` complete months (the published ``mrr_movements`` and logo counts).

    Parameters
    ----------
    data : Source, Ibis table, pandas DataFrame or CustomerMRR
        See :func:`customer_mrr`.
    period, as_of
        The months end with the last complete month (:func:`last_complete_month`).
    months : int, default 12

    Returns
    -------
    DataFrame
        ``month`` (``YYYY-MM``), ``starting_mrr``, ``new``, ``expansion``,
        ``reactivation``, ``contraction``, ``churned`` (positive), ``ending_mrr``
        — ending = starting + new + expansion + reactivation − contraction −
        churned exactly (computed in cents) — then ``starting_customers``,
        ``new_logos``, ``expanded_logos``, ``reactivated_logos``,
        ``contracted_logos``, ``churned_logos``, ``ending_customers``.

    Examples
    --------
    >>> import pandas as pd
    >>> cm = pd.DataFrame({"customer_id": ["A", "A", "A"], "mrr": [100.0, 60.0, 90.0],
    ...                    "month": pd.to_datetime(["2026-01-01", "2026-02-01", "2026-04-01"])})
    >>> mrr_movements(cm, period="2026-04", months=4)[["month", "new", "reactivation", "contraction", "churned",
    ...                                                "ending_mrr"]]
         month    new  reactivation  contraction  churned  ending_mrr
    0  2026-01  100.0           0.0          0.0      0.0       100.0
    1  2026-02    0.0           0.0         40.0      0.0        60.0
    2  2026-03    0.0           0.0          0.0     60.0         0.0
    3  2026-04    0.0          90.0          0.0      0.0        90.0
    """
    months = _check_int(months, "months")
    cm = _prepare(data, period, as_of, None)
    return _movement_frame(_run(_movement_expr(cm)), cm.last_month, months)


def arr_bridge(movements: pd.DataFrame) -> pd.DataFrame:
    """ARR bridge over the months of a movements table: ARR = 12 × MRR.

    Returns
    -------
    DataFrame
        ``step`` (starting, new, expansion, reactivation, contraction, churned,
        ending), ``arr`` (contraction and churned negative), ``from_month``, ``to_month``.

    >>> mv = pd.DataFrame({"month": ["2026-01", "2026-02"], "starting_mrr": [0.0, 100.0], "new": [100.0, 0.0],
    ...                    "expansion": [0.0, 20.0], "reactivation": [0.0, 0.0], "contraction": [0.0, 0.0],
    ...                    "churned": [0.0, 10.0], "ending_mrr": [100.0, 110.0]})
    >>> arr_bridge(mv)[["step", "arr"]]
               step     arr
    0      starting     0.0
    1           new  1200.0
    2     expansion   240.0
    3  reactivation     0.0
    4   contraction     0.0
    5       churned  -120.0
    6        ending  1320.0
    """
    if movements.empty:
        return pd.DataFrame(columns=["step", "arr", "from_month", "to_month"])
    cents = {c: int((movements[c] * 100).round().astype("int64").sum()) for c in _MOVE_MONEY}
    start = int(round(movements["starting_mrr"].iloc[0] * 100))
    end = int(round(movements["ending_mrr"].iloc[-1] * 100))
    steps = [("starting", start), ("new", cents["new"]), ("expansion", cents["expansion"]),
             ("reactivation", cents["reactivation"]), ("contraction", -cents["contraction"]),
             ("churned", -cents["churned"]), ("ending", end)]
    return pd.DataFrame({"step": [s for s, _ in steps], "arr": [12 * v / 100.0 for _, v in steps],
                         "from_month": movements["month"].iloc[0], "to_month": movements["month"].iloc[-1]})


def monthly_kpis(movements: pd.DataFrame) -> pd.DataFrame:
    """Per-month customers, MRR, ARPA, churn rates and quick ratio from :func:`mrr_movements`.

    Returns
    -------
    DataFrame
        ``month``, ``customers`` (paying at month end), ``mrr``, ``arr``,
        ``arpa`` (MRR / customers), ``logo_churn_rate`` (churned customers /
        customers at the start), ``revenue_churn_rate`` ((churned + contraction)
        / starting MRR), ``net_mrr_growth`` (ending / starting − 1),
        ``quick_ratio`` ((new + expansion + reactivation) / (contraction + churned)).
        Undefined values are NaN.

    >>> mv = pd.DataFrame({"month": ["2026-02"], "starting_mrr": [100.0], "new": [10.0], "expansion": [5.0],
    ...                    "reactivation": [0.0], "contraction": [2.0], "churned": [8.0], "ending_mrr": [105.0],
    ...                    "starting_customers": [10], "churned_logos": [1], "ending_customers": [10]})
    >>> monthly_kpis(mv)[["month", "arpa", "logo_churn_rate", "revenue_churn_rate", "quick_ratio"]]
         month  arpa  logo_churn_rate  revenue_churn_rate  quick_ratio
    0  2026-02  10.5              0.1                 0.1          1.5
    """
    m = movements
    gain = m["new"] + m["expansion"] + m["reactivation"]
    loss = m["contraction"] + m["churned"]
    return pd.DataFrame({
        "month": m["month"],
        "customers": m["ending_customers"].astype("int64"),
        "mrr": m["ending_mrr"],
        "arr": m["ending_mrr"] * 12,
        "arpa": _ratio(m["ending_mrr"], m["ending_customers"]),
        "logo_churn_rate": _ratio(m["churned_logos"], m["starting_customers"]),
        "revenue_churn_rate": _ratio(loss, m["starting_mrr"]),
        "net_mrr_growth": _ratio(m["ending_mrr"], m["starting_mrr"]) - 1,
        "quick_ratio": _ratio(gain, loss),
    })


# ---------------------------------------------------------------------------
# Trailing-12-month retention
# ---------------------------------------------------------------------------


def trailing_retention(data, *, period=None, as_of=None, months: int = 12, lag: int = 12) -> pd.DataFrame:
    """Trailing NRR, GRR and logo retention at each of the last ``months`` complete months.

    At month *m* the base is the customers with MRR > 0 in *m − lag*.

    Parameters
    ----------
    data : Source, Ibis table, pandas DataFrame or CustomerMRR
    period, as_of
        The months end with the last complete month.
    months : int, default 12
        How many months to report.
    lag : int, default 12
        Months between the base and the measured month.

    Returns
    -------
    DataFrame
        ``month``, ``base_month``, ``base_customers``, ``retained_customers``,
        ``logo_retention``, ``base_mrr``, ``mrr`` (the base customers' MRR in
        ``month``), ``capped_mrr`` (each capped at its base MRR), ``nrr``, ``grr``.

    Examples
    --------
    >>> import pandas as pd
    >>> cm = pd.DataFrame({"customer_id": ["A", "A", "B"], "mrr": [100.0, 130.0, 50.0],
    ...                    "month": pd.to_datetime(["2025-01-01", "2026-01-01", "2025-01-01"])})
    >>> trailing_retention(cm, period="2026-01", months=1)[["month", "base_customers", "logo_retention", "nrr", "grr"]]
         month  base_customers  logo_retention       nrr       grr
    0  2026-01               2             0.5  0.866667  0.666667
    """
    months = _check_int(months, "months")
    lag = _check_int(lag, "lag")
    cm = _prepare(data, period, as_of, None)
    last = cm.last_month
    b0, b1 = last - months + 1 - lag, last - lag  # base months
    ch = cm.changes
    pos = ch.filter(ch.lvl > 0).select("customer_id", a=ch.m, e=ch.nxt, c=ch.lvl)
    s1 = pos.filter((pos.e > b0) & (pos.a <= b1))
    s2 = pos.filter(pos.e > b0 + lag).view()
    j = s1.join(s2, [s1.customer_id == s2.customer_id, s2.a < s1.e + lag, s2.e > s1.a + lag])
    j = j.select(c1=s1.c, c2=s2.c,
                 lo=ibis.greatest(s1.a, s2.a - lag, ibis.literal(b0)),
                 hi=ibis.least(s1.e, s2.e - lag, ibis.literal(b1 + 1)))
    j = j.filter(j.lo < j.hi)
    u = j.select(j.c1, j.c2, b=ibis.range(j.lo, j.hi).unnest())
    kept = u.group_by("b").aggregate(retained=u.count(), mrr=u.c2.sum(), capped=ibis.least(u.c1, u.c2).sum())
    raw = _run(kept)
    mv = _movement_frame(_run(_movement_expr(cm)), last, months + lag)
    base = pd.DataFrame({"b": np.arange(b0, b1 + 1, dtype="int64"),
                         "base_customers": mv["ending_customers"].to_numpy()[:months],
                         "base_cents": (mv["ending_mrr"].to_numpy()[:months] * 100).round().astype("int64")})
    raw = raw.astype("int64") if len(raw) else pd.DataFrame({c: pd.Series(dtype="int64")
                                                             for c in ("b", "retained", "mrr", "capped")})
    g = base.merge(raw, on="b", how="left").fillna(0)
    for c in ("retained", "mrr", "capped"):
        g[c] = g[c].astype("int64")
    return pd.DataFrame({
        "month": _labels(g["b"] + lag),
        "base_month": _labels(g["b"]),
        "base_customers": g["base_customers"].astype("int64"),
        "retained_customers": g["retained"],
        "logo_retention": _ratio(g["retained"], g["base_customers"]),
        "base_mrr": _money(g["base_cents"]),
        "mrr": _money(g["mrr"]),
        "capped_mrr": _money(g["capped"]),
        "nrr": _ratio(g["mrr"], g["base_cents"]),
        "grr": _ratio(g["capped"], g["base_cents"]),
    })


# ---------------------------------------------------------------------------
# Survival
# ---------------------------------------------------------------------------

SURVIVAL_GROUPS = (None, "cohort_year", "cohort_quarter")


def _durations(cm: CustomerMRR, group: str | None) -> pd.DataFrame:
    ch = cm.changes
    keys = {}
    if group == "by":
        keys = {"group": ch.group.min()}
    per = ch.group_by("customer_id").aggregate(
        cohort=ch.cohort.min(), churn=ibis.ifelse(ch.lvl == 0, ch.m, ibis.null(_INT)).min(), **keys)
    event = per.churn.notnull()
    dur = ibis.ifelse(event, per.churn - per.cohort, cm.last_month - per.cohort)
    extra = {"group": per.group} if group == "by" else {}
    q = per.select(**extra, cohort=per.cohort, duration=dur, event=event)
    agg = q.group_by([*extra, "cohort", "duration", "event"]).aggregate(n=q.count())
    return _run(agg)


def _km(durations: np.ndarray, events: np.ndarray, counts: np.ndarray, confidence: float) -> pd.DataFrame:
    from scipy import stats

    d = np.repeat(durations.astype("float64"), counts)
    e = np.repeat(events.astype(bool), counts)
    max_age = int(d.max())
    ages = np.arange(0, max_age + 1)
    at_risk = _at_risk(durations, counts, ages)
    churned = np.bincount(durations[events.astype(bool)].astype("int64"),
                          weights=counts[events.astype(bool)], minlength=max_age + 1)[: max_age + 1]
    if e.any():
        res = stats.ecdf(stats.CensoredData(uncensored=d[e], right=d[~e]))
    else:  # nobody churned: the curve stays at 1, the interval is a point
        res = None
    if res is None:
        surv = np.ones(len(ages))
        low = high = surv.copy()
    else:
        sf = res.sf
        surv = sf.evaluate(ages)
        with warnings.catch_warnings():  # undefined where the curve reaches 0: left NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            ci = sf.confidence_interval(confidence_level=confidence, method="linear")
        low, high = ci.low.evaluate(ages), ci.high.evaluate(ages)
        # before the first event the curve is exactly 1 with no uncertainty
        before = ages < sf.quantiles.min()
        low = np.where(before, 1.0, low)
        high = np.where(before, 1.0, high)
    return pd.DataFrame({"age": ages.astype("int64"), "at_risk": at_risk.astype("int64"),
                         "churned": churned.astype("int64"), "survival": surv, "ci_low": low, "ci_high": high})


def _at_risk(durations: np.ndarray, counts: np.ndarray, ages: np.ndarray) -> np.ndarray:
    tot = np.bincount(durations.astype("int64"), weights=counts, minlength=len(ages))[: len(ages)]
    return tot[::-1].cumsum()[::-1]


def survival(data, *, period=None, as_of=None, by: str | None = None, cohort_group: str | None = None,
             confidence_level: float = 0.95) -> pd.DataFrame:
    """Kaplan–Meier survival of customers: months from first paid month to first churn.

    Every customer whose first paid month is up to the last complete month is
    counted; one that churned (first month-end with MRR 0 after paying) has an
    event at that age, one still paying is censored at its age in the last
    complete month. ``survival`` at age k = share still paying without
    interruption k months after the first paid month.

    Parameters
    ----------
    data : Source, Ibis table, pandas DataFrame or CustomerMRR
    period, as_of
        See :func:`customer_mrr`.
    by : str, optional
        A customer attribute (e.g. ``'segment'``): one curve per value, after the ``all`` curve.
    cohort_group : {None, 'cohort_year', 'cohort_quarter'}
        Alternatively, one curve per calendar year or quarter of the cohort.
    confidence_level : float, default 0.95
        Greenwood interval, "linear" (S ± z·SE, clipped to [0, 1]) as in
        :meth:`scipy.stats.ecdf`'s ``sf.confidence_interval(method="linear")``.

    Returns
    -------
    DataFrame
        ``group`` (``all`` first), ``age`` (months, from 0 to the longest
        follow-up of the group), ``at_risk`` (customers followed at least that
        long), ``churned`` (first churns at that age), ``survival``, ``ci_low``, ``ci_high``
        (NaN where the Greenwood variance is undefined, i.e. once the curve reaches 0).

    Examples
    --------
    >>> import pandas as pd
    >>> cm = pd.DataFrame({"customer_id": ["A", "A", "B", "C", "C", "C"], "mrr": [10.0] * 6,
    ...                    "month": pd.to_datetime(["2026-01-01", "2026-02-01", "2026-01-01",
    ...                                             "2026-01-01", "2026-02-01", "2026-03-01"])})
    >>> survival(cm, period="2026-03")[["group", "age", "at_risk", "churned", "survival"]]
      group  age  at_risk  churned  survival
    0   all    0        3        0  1.000000
    1   all    1        3        1  0.666667
    2   all    2        2        1  0.333333
    """
    confidence_level = _check_fraction(confidence_level, "confidence_level")
    if cohort_group not in SURVIVAL_GROUPS:
        raise ParameterError(f"`cohort_group` must be one of None, 'cohort_year', 'cohort_quarter', "
                             f"not `{cohort_group!r}`.")
    if by is not None and cohort_group is not None:
        raise ParameterError("Give `by` or `cohort_group`, not both.")
    cm = _prepare(data, period, as_of, by)
    raw = _durations(cm, "by" if by is not None else None)
    cols = ["group", "age", "at_risk", "churned", "survival", "ci_low", "ci_high"]
    if raw.empty:
        return pd.DataFrame(columns=cols)
    raw["duration"] = raw["duration"].astype("int64")
    raw["n"] = raw["n"].astype("int64")
    raw["event"] = raw["event"].astype(bool)
    if cohort_group == "cohort_year":
        raw["group"] = (raw["cohort"].astype("int64") // 12).astype(str)
    elif cohort_group == "cohort_quarter":
        c = raw["cohort"].astype("int64")
        raw["group"] = (c // 12).astype(str) + "-Q" + ((c % 12) // 3 + 1).astype(str)
    frames = []
    groups = [(ALL, raw)]
    if "group" in raw.columns:
        groups += [(str(k), g) for k, g in raw.groupby("group", sort=True)]
    for name, g in groups:
        g = g.groupby(["duration", "event"], as_index=False)["n"].sum()
        km = _km(g["duration"].to_numpy(), g["event"].to_numpy(), g["n"].to_numpy(), confidence_level)
        km.insert(0, "group", name)
        frames.append(km)
    return pd.concat(frames, ignore_index=True)[cols]


# ---------------------------------------------------------------------------
# New customers, spend, unit economics
# ---------------------------------------------------------------------------


def _table(data, name: str) -> ir.Table:
    if isinstance(data, (ir.Table, pd.DataFrame)):
        return as_table(data, name)
    src = open_source(data)
    if not src.has(name):
        raise SourceError(f"Table `{name}` is absent from {src.description}.")
    return src.table(name)


def new_customers(opportunities, *, period, as_of=None) -> int:
    """KPI ``new_customers``: distinct accounts whose first won ``new_business`` opportunity closed in the period.

    An account counts in the period of the ``close_date`` of its first won
    new-business deal (closed before ``as_of``'s date); later wins of the same
    account do not count again. Deals without ``account_id`` are ignored.

    Parameters
    ----------
    opportunities : Source, Ibis table or pandas DataFrame
    period : str or Period
    as_of : str or Timestamp, optional

    Returns
    -------
    int

    >>> import pandas as pd, datetime as dt
    >>> o = pd.DataFrame({"opportunity_id": ["1", "2", "3"], "account_id": ["A", "A", "B"],
    ...                   "created_at": pd.to_datetime(["2026-08-01"] * 3), "is_closed": [True] * 3,
    ...                   "is_won": [True, True, True], "amount": [1.0] * 3, "type": ["new_business"] * 3,
    ...                   "close_date": [dt.date(2026, 9, 3), dt.date(2026, 10, 2), dt.date(2026, 10, 9)]})
    >>> new_customers(o, period="2026-10")
    1
    """
    if period is None:
        raise ParameterError("`period` is required for new_customers.")
    return int(new_customers_many(opportunities, [(period, as_of)]).iloc[0])


def _date_spans(windows: Sequence, what: str) -> list[tuple]:
    """``(period, as_of)`` windows (or bare periods) -> ``(label, first day, end day exclusive)``,
    the end at ``min(period end, as_of's date)``."""
    spans = []
    for w in windows:
        period, as_of = w if isinstance(w, tuple) else (w, None)
        p, cut = _window(period, as_of)
        if p is None:
            raise ParameterError(f"`period` is required for {what}.")
        spans.append((p.label, p.start_date, min(p.end_date, cut.date())))
    return spans


def new_customers_many(opportunities, windows: Sequence[tuple]) -> pd.Series:
    """:func:`new_customers` for several ``(period, as_of)`` windows in one query.

    An account's first win is the same whatever the cut-off, once it is before the cut-off: so it
    counts in a window when that first ``close_date`` falls in ``[start, min(end, as_of's date))``.

    Returns
    -------
    Series of int, indexed by period label, in the order given.
    """
    spans = _date_spans(windows, "new_customers")
    if not spans:
        return pd.Series([], dtype="int64", name="new_customers")
    o = _table(opportunities, "opportunities")
    last = max(hi for _, _, hi in spans)
    won = o.filter(o.is_won.fill_null(False) & (o.type == "new_business") & o.account_id.notnull()
                   & o.close_date.notnull() & (o.close_date < ibis.date(last)))
    first = won.group_by("account_id").aggregate(first=won.close_date.min())
    cal = date_windows([lo for _, lo, _ in spans], [hi for _, _, hi in spans])
    j = first.join(cal, (first.first >= cal.w_lo) & (first.first < cal.w_hi))
    got = to_pandas(j.group_by("w").aggregate(n=j.count()))
    found = dict(zip(got["w"].astype(int), got["n"]))
    return pd.Series([int(found.get(k, 0)) for k in range(len(spans))], index=[lab for lab, _, _ in spans],
                     dtype="int64", name="new_customers")


def marketing_spend_total(spend, *, period, as_of=None) -> float:
    """Σ ``marketing_spend.spend`` dated in the period and before ``as_of``'s date (all channels).

    >>> import pandas as pd, datetime as dt
    >>> s = pd.DataFrame({"date": [dt.date(2026, 10, 1), dt.date(2026, 11, 1)], "channel": ["sales", "sales"],
    ...                   "spend": [100.0, 50.0]})
    >>> marketing_spend_total(s, period="2026-10")
    100.0
    """
    if period is None:
        raise ParameterError("`period` is required for marketing_spend_total.")
    return float(marketing_spend_many(spend, [(period, as_of)]).iloc[0])


def marketing_spend_many(spend, windows: Sequence[tuple]) -> pd.Series:
    """:func:`marketing_spend_total` for several ``(period, as_of)`` windows in one query.

    Returns a Series of floats indexed by period label, in the order given.
    """
    spans = _date_spans(windows, "marketing_spend_total")
    if not spans:
        return pd.Series([], dtype="float64", name="marketing_spend")
    t = _table(spend, "marketing_spend")
    t = t.filter((t.date >= ibis.date(min(lo for _, lo, _ in spans))) & (t.date < ibis.date(max(hi for _, _, hi in spans))))
    cal = date_windows([lo for _, lo, _ in spans], [hi for _, _, hi in spans])
    j = t.join(cal, (t.date >= cal.w_lo) & (t.date < cal.w_hi))
    got = to_pandas(j.group_by("w").aggregate(s=j.spend.sum()))
    found = {int(w): v for w, v in zip(got["w"], got["s"])}
    vals = [found.get(k) for k in range(len(spans))]
    return pd.Series([0.0 if v is None or pd.isna(v) else float(v) for v in vals],
                     index=[lab for lab, _, _ in spans], dtype="float64", name="marketing_spend")


def unit_economics(data, *, period, as_of=None, gross_margin: float = 0.8, movements: pd.DataFrame | None = None,
                   opportunities=None, marketing_spend=None) -> pd.DataFrame:
    """ARPA, revenue churn, LTV, CAC, CAC payback and LTV:CAC for the period.

    Parameters
    ----------
    data : Source, Ibis table, pandas DataFrame or CustomerMRR
        The MRR data (see :func:`customer_mrr`); when it is a Source (or its
        CustomerMRR came from one), ``opportunities`` and ``marketing_spend``
        default to its tables.
    period : str or Period
    as_of : str or Timestamp, optional
    gross_margin : float, default 0.8
    movements : DataFrame, optional
        :func:`mrr_movements` output covering the period's months (computed when absent).
    opportunities, marketing_spend : optional
        Tables for CAC; CAC and payback are NaN when either is missing.

    Returns
    -------
    DataFrame
        One row: ``period``, ``months`` (the complete months used, ``first..last``),
        ``customers``, ``mrr``, ``arpa``, ``revenue_churn_rate``, ``gross_margin``,
        ``ltv``, ``spend``, ``new_customers`` (opportunities KPI), ``cac``,
        ``new_logos`` (first paid month in the period), ``new_mrr``,
        ``new_customer_arpa``, ``cac_payback_months``, ``ltv_to_cac``; for context
        ``revenue_churn_rate_12m`` (the same rate over the 12 months up to the
        last one, as many as ``movements`` holds), ``ltv_12m`` and ``ltv_12m_to_cac``.

    Examples
    --------
    >>> import pandas as pd
    >>> mv = pd.DataFrame({"month": ["2026-10"], "starting_mrr": [1000.0], "new": [100.0], "expansion": [0.0],
    ...                    "reactivation": [0.0], "contraction": [10.0], "churned": [40.0], "ending_mrr": [1050.0],
    ...                    "starting_customers": [10], "new_logos": [1], "churned_logos": [1],
    ...                    "ending_customers": [10]})
    >>> u = unit_economics(None, period="2026-10", movements=mv)
    >>> float(u.loc[0, "ltv"]), float(u.loc[0, "revenue_churn_rate"])
    (1680.0, 0.05)
    """
    gross_margin = _check_fraction(gross_margin, "gross_margin")
    p, cut = _window(period, as_of)
    if p is None:
        raise ParameterError("`period` is required for unit_economics.")
    src = None
    if data is not None:
        if isinstance(data, CustomerMRR):
            src = data.source
        elif not isinstance(data, (ir.Table, pd.DataFrame)):
            src = open_source(data)
    last = _last_month(p, cut) if not isinstance(data, CustomerMRR) else data.last_month
    months = _period_months(p, last)
    if movements is None:
        movements = mrr_movements(data, period=p, as_of=cut, months=max(12, last - months[0] + 1))
    labels = set(_labels(months))
    mv = movements[movements["month"].isin(labels)]
    if mv.empty:
        raise ParameterError(f"`movements` must cover the period's months {', '.join(sorted(labels))}.")
    end = mv.iloc[-1]

    def churn_rate(rows: pd.DataFrame) -> float:
        loss = float(rows["churned"].sum() + rows["contraction"].sum())
        start = float(rows["starting_mrr"].sum())
        return loss / start if start > 0 else math.nan

    def lifetime_value(rate: float) -> float:
        return arpa * gross_margin / rate if rate > 0 and not math.isnan(arpa) else math.nan

    rate = churn_rate(mv)
    arpa = float(end["ending_mrr"]) / end["ending_customers"] if end["ending_customers"] > 0 else math.nan
    ltv = lifetime_value(rate)
    last12 = movements[movements["month"] <= end["month"]].tail(12)
    rate12 = churn_rate(last12)
    opps = opportunities if opportunities is not None else (
        src if src is not None and src.has("opportunities") else None)
    spend_data = marketing_spend if marketing_spend is not None else (
        src if src is not None and src.has("marketing_spend") else None)
    n_new = new_customers(opps, period=p, as_of=cut) if opps is not None else None
    spend = marketing_spend_total(spend_data, period=p, as_of=cut) if spend_data is not None else math.nan
    cac = spend / n_new if n_new else math.nan
    new_logos = int(mv["new_logos"].sum())
    new_mrr = float(mv["new"].sum())
    new_arpa = new_mrr / new_logos if new_logos else math.nan
    payback = cac / (new_arpa * gross_margin) if new_arpa and not math.isnan(new_arpa) and new_arpa > 0 else math.nan
    return pd.DataFrame([{
        "period": p.label,
        "months": f"{_label(months[0])}..{_label(months[-1])}" if len(months) > 1 else _label(months[0]),
        "customers": int(end["ending_customers"]), "mrr": float(end["ending_mrr"]), "arpa": arpa,
        "revenue_churn_rate": rate, "gross_margin": gross_margin, "ltv": ltv, "spend": spend,
        "new_customers": n_new, "cac": cac, "new_logos": new_logos, "new_mrr": new_mrr,
        "new_customer_arpa": new_arpa, "cac_payback_months": payback,
        "ltv_to_cac": ltv / cac if cac and not math.isnan(cac) and cac > 0 else math.nan,
        "revenue_churn_rate_12m": rate12, "ltv_12m": lifetime_value(rate12),
        "ltv_12m_to_cac": lifetime_value(rate12) / cac if cac and not math.isnan(cac) and cac > 0 else math.nan,
    }])


# ---------------------------------------------------------------------------
# The report: everything the cohort_retention notebook shows, computed once
# ---------------------------------------------------------------------------


def _pct(x, decimals: int = 1) -> str:
    from revops_lib.plots import fmt_pct

    return fmt_pct(x, decimals) if x is not None and not (isinstance(x, float) and math.isnan(x)) else "—"


class RetentionReport:
    """Everything the ``cohort_retention`` report shows, computed once (see :func:`analyze`).

    Attributes hold the tables (pandas): ``cohorts`` (:func:`cohort_retention`),
    ``average`` (:func:`cohort_average`), ``quarterly``, ``movements``,
    ``bridge``, ``kpis``, ``trailing``, ``survival``, ``unit``. When the source
    has neither subscriptions nor transactions, ``available`` is False and every
    section says so instead of failing.
    """

    def __init__(self, *, period: Period, as_of: pd.Timestamp, currency: str = "USD", gross_margin: float = 0.8,
                 basis: str | None = None, last_month: str | None = None, cohorts=None, average=None,
                 quarterly=None, movements=None, bridge=None, kpis=None, trailing=None, survival=None,
                 survival_by: str | None = None, unit=None, min_cohort_size: int = 20, note: str = ""):
        self.period, self.as_of, self.currency, self.gross_margin = period, as_of, currency, gross_margin
        self.basis, self.last_month = basis, last_month
        self.cohorts, self.average, self.quarterly = cohorts, average, quarterly
        self.movements, self.bridge, self.kpis, self.trailing = movements, bridge, kpis, trailing
        self.survival, self.survival_by, self.unit = survival, survival_by, unit
        self.min_cohort_size = min_cohort_size
        self.note = note

    @property
    def available(self) -> bool:
        return self.cohorts is not None

    # -- helpers ------------------------------------------------------------
    def _money(self, x) -> str:
        from revops_lib.plots import fmt_money

        return fmt_money(x, self.currency) if x is not None and not (isinstance(x, float) and math.isnan(x)) else "—"

    def _missing(self):

        return md(f"*{self.note or 'No subscription or transaction data: this section is skipped.'}*")

    # -- findings -----------------------------------------------------------
    def findings(self):
        """The verdict in a few one-sentence bullets (Markdown), each computed from the tables."""
        if not self.available:
            return self._missing()
        bullets = [s for s in (self._finding_mrr(), self._finding_offset(), self._finding_nrr(),
                               self._finding_cohorts(), self._finding_trend(), self._finding_survival(),
                               self._finding_unit()) if s]
        if self.basis == "transactions":
            bullets.append("MRR here is payments per month (the source has no subscriptions): a customer is "
                           "active in a month when it paid in it.")
        return md("\n".join(f"- {b}" for b in bullets))

    def _finding_mrr(self) -> str:
        mv = self.movements
        if mv is None or mv.empty:
            return ""
        end = mv.iloc[-1]
        k = self.kpis.iloc[-1]
        start12 = mv["starting_mrr"].iloc[0]
        growth = (end["ending_mrr"] / start12 - 1) if start12 > 0 else math.nan
        since = (f", {'up' if growth >= 0 else 'down'} {_pct(abs(growth))} over the last {len(mv)} months"
                 if not math.isnan(growth) else "")
        return (f"MRR at the end of {end['month']} is **{self._money(end['ending_mrr'])}** "
                f"(ARR {self._money(12 * end['ending_mrr'])}) from {int(end['ending_customers']):,} paying "
                f"customers (ARPA {self._money(k['arpa'])}){since}.")

    def _finding_offset(self) -> str:
        mv = self.movements
        if mv is None or mv.empty:
            return ""
        gain = float(mv["expansion"].sum() + mv["reactivation"].sum())
        loss = float(mv["contraction"].sum() + mv["churned"].sum())
        if loss <= 0:
            return f"No MRR was lost to churn or contraction in the last {len(mv)} months."
        share = gain / loss
        verdict = ("more than offset" if share >= 1 else "offset most of" if share >= 0.5 else "offset only")
        return (f"Expansion and reactivation (+{self._money(gain)}) {verdict} the MRR lost to contraction and "
                f"churn (−{self._money(loss)}) over the last {len(mv)} months: {_pct(share, 0)} of the losses.")

    def _finding_nrr(self) -> str:
        tr = self.trailing
        if tr is None or tr.empty or pd.isna(tr["nrr"].iloc[-1]):
            return ""
        last = tr.iloc[-1]
        first = tr.dropna(subset=["nrr"]).iloc[0]
        move = ""
        if first["month"] != last["month"]:
            move = f" (from {_pct(first['nrr'])} and {_pct(first['grr'])} in {first['month']})"
        return (f"Trailing-12-month **NRR is {_pct(last['nrr'])}** and **GRR {_pct(last['grr'])}** in "
                f"{last['month']}{move}; {_pct(last['logo_retention'])} of the customers paying a year earlier "
                "still pay.")

    def _comparable(self, age: int) -> pd.DataFrame:
        c = self.cohorts
        return c[(c["age"] == age) & (c["cohort_size"] >= self.min_cohort_size)]

    def _finding_cohorts(self) -> str:
        c = self.cohorts
        if c is None or c.empty:
            return ""
        for age in (12, 6, 3):
            rows = self._comparable(age)
            if len(rows) >= 3:
                break
        else:
            return ""
        best = rows.loc[rows["retention"].idxmax()]
        worst = rows.loc[rows["retention"].idxmin()]
        avg = rows["active"].sum() / rows["cohort_size"].sum()
        return (f"At {age} months, cohort {best['cohort']} keeps the most customers ({_pct(best['retention'])}) "
                f"and {worst['cohort']} the fewest ({_pct(worst['retention'])}), against a size-weighted "
                f"{_pct(avg)} over the {len(rows)} cohorts that old.")

    def _finding_trend(self) -> str:
        for age in (6, 3):
            rows = self._comparable(age).sort_values("cohort")
            if len(rows) >= 6:
                break
        else:
            return ""
        n = min(6, len(rows) // 2)
        new, old = rows.iloc[-n:], rows.iloc[-2 * n:-n]
        r_new = new["active"].sum() / new["cohort_size"].sum()
        r_old = old["active"].sum() / old["cohort_size"].sum()
        diff = r_new - r_old
        word = "better" if diff > 0.005 else "worse" if diff < -0.005 else "about as well"
        detail = f" ({_pct(r_new)} vs {_pct(r_old)})"
        return (f"The latest {n} cohorts with {age} months of history retain {word} at {age} months than the "
                f"{n} before them{detail}.")

    def _finding_survival(self) -> str:
        s = self.survival
        if s is None or s.empty:
            return ""
        age = 12 if (s[s["group"] == ALL]["age"].max() or 0) >= 12 else int(s[s["group"] == ALL]["age"].max())
        if age < 1:
            return ""
        at = s[s["age"] == age].set_index("group")
        if ALL not in at.index:
            return ""
        a = at.loc[ALL]
        text = (f"{_pct(a['survival'])} of customers are still paying without interruption {age} "
                f"month{'s' if age != 1 else ''} after "
                f"their first payment (95% CI {_pct(a['ci_low'])}–{_pct(a['ci_high'])})")
        others = [g for g in at.index if g != ALL]
        if others and self.survival_by:
            label = self.survival_by.replace("_", " ")
            text += f"; by {label}: " + ", ".join(f"{g} {_pct(at.loc[g, 'survival'])}" for g in others)
        return text + "."

    def _finding_unit(self) -> str:
        u = self.unit
        if u is None or u.empty:
            return ""
        r = u.iloc[0]
        if pd.isna(r["ltv"]):
            return ""
        text = (f"LTV is {self._money(r['ltv'])} (ARPA {self._money(r['arpa'])} × gross margin "
                f"{_pct(r['gross_margin'], 0)} / revenue churn {_pct(r['revenue_churn_rate'], 2)} a month in "
                f"{r['months']}; {self._money(r['ltv_12m'])} at the 12-month average churn of "
                f"{_pct(r['revenue_churn_rate_12m'], 2)})")
        if not pd.isna(r["cac"]):
            at12 = "" if pd.isna(r["ltv_12m_to_cac"]) else f" ({r['ltv_12m_to_cac']:.1f} at the 12-month churn)"
            payback = ("" if pd.isna(r["cac_payback_months"])
                       else f", CAC paid back in {r['cac_payback_months']:.1f} months")
            text += f" against a CAC of {self._money(r['cac'])}: **LTV:CAC {r['ltv_to_cac']:.1f}**{at12}{payback}"
        else:
            text += "; CAC needs marketing_spend and opportunities"
        return text + "."

    # -- headlines ----------------------------------------------------------
    def record_headlines(self) -> None:
        """Headline numbers for ``reports/index.html``."""
        from revops_lib.report import headline

        if not self.available:
            headline("Retention", "no data")
            return
        if self.movements is not None and len(self.movements):
            headline("MRR", self._money(self.movements["ending_mrr"].iloc[-1]))
        if self.trailing is not None and len(self.trailing):
            headline("NRR 12m", _pct(self.trailing["nrr"].iloc[-1]))
            headline("GRR 12m", _pct(self.trailing["grr"].iloc[-1]))
        if self.unit is not None and not pd.isna(self.unit["ltv_to_cac"].iloc[0]):
            headline("LTV:CAC", f"{self.unit['ltv_to_cac'].iloc[0]:.1f}")

    # -- sections -----------------------------------------------------------
    def logo_heatmap(self):
        """Logo retention heatmap table (cohort × age) with the weighted-average row; publishes ``logo_retention``."""
        return self._heatmap(logo_retention, "logo_retention", "retention",
                             "Logo retention: share of each cohort's customers still paying")

    def revenue_heatmap(self):
        """NRR heatmap table (cohort × age) with the weighted-average row; publishes ``revenue_retention``."""
        return self._heatmap(revenue_retention, "revenue_retention", "nrr",
                             "Net revenue retention: cohort MRR vs its first month")

    def _heatmap(self, published, name: str, value: str, title: str):
        from revops_lib.plots import cohort_heatmap_table
        from revops_lib.report import publish

        if not self.available:
            return self._missing()
        publish(published(self.cohorts), name)
        return cohort_heatmap_table(self.cohorts, value=value, average=self.average, title=title)

    def retention_curves(self):
        """Average logo retention, NRR and GRR by age; publishes ``retention_average``."""
        from revops_lib.plots import plot_retention_curves
        from revops_lib.report import publish

        if not self.available:
            return self._missing()
        publish(self.average, "retention_average")
        return plot_retention_curves(self.average)

    def quarterly_table(self):
        """Quarterly cohorts: logo retention and NRR every 3 months of age; publishes ``quarterly_retention``."""
        from revops_lib.plots import style_table
        from revops_lib.report import publish

        if not self.available:
            return self._missing()
        publish(self.quarterly, "quarterly_retention")
        q = self.quarterly
        if q.empty:
            return md("No quarterly cohort yet.")
        ages = [a for a in range(0, int(q["age"].max()) + 1, 3)]
        q = q[q["age"].isin(ages)]
        logo = q.pivot(index="cohort", columns="age", values="retention")
        nrr = q.pivot(index="cohort", columns="age", values="nrr")
        sizes = q.groupby("cohort")["cohort_size"].first()
        out = pd.DataFrame({"cohort": logo.index, "customers": sizes.reindex(logo.index).to_numpy()})
        for a in ages:
            if a == 0:
                continue
            out[f"logo M{a}"] = logo[a].to_numpy() if a in logo else np.nan
        for a in ages:
            if a == 0:
                continue
            out[f"NRR M{a}"] = nrr[a].to_numpy() if a in nrr else np.nan
        fmts = {c: (lambda x: _pct(x, 0) if not pd.isna(x) else "—") for c in out.columns if " M" in c}
        fmts["customers"] = "{:,}"
        return style_table(out, fmts)

    def survival_chart(self):
        """Kaplan–Meier curves with 95% bands; publishes ``survival``."""
        from revops_lib.plots import plot_survival
        from revops_lib.report import publish

        if not self.available:
            return self._missing()
        publish(self.survival, "survival")
        return plot_survival(self.survival, by=self.survival_by)

    def survival_table(self):
        """Share still paying at 3, 6, 12, 24 months per group, with the 95% interval."""
        from revops_lib.plots import style_table

        if not self.available:
            return self._missing()
        s = self.survival
        rows = []
        for g, part in s.groupby("group", sort=False):
            part = part.set_index("age")
            row = {"group": g, "customers": int(part["at_risk"].iloc[0])}
            for a in (3, 6, 12, 24):
                if a in part.index:
                    r = part.loc[a]
                    row[f"{a} months"] = f"{_pct(r['survival'])} ({_pct(r['ci_low'], 0)}–{_pct(r['ci_high'], 0)})"
                else:
                    row[f"{a} months"] = None
            rows.append(row)
        return style_table(pd.DataFrame(rows), {"customers": "{:,}"})

    def movements_chart(self):
        """MRR movements per month (gains up, losses down, net change); publishes ``mrr_movements``."""
        from revops_lib.plots import plot_mrr_movements
        from revops_lib.report import publish

        if not self.available:
            return self._missing()
        publish(self.movements[MOVEMENT_COLUMNS], "mrr_movements")
        return plot_mrr_movements(self.movements, currency=self.currency)

    def movements_table(self):
        """The movements table, formatted (money), with the logo counts."""
        from revops_lib.plots import style_table

        if not self.available:
            return self._missing()
        mv = self.movements
        show = mv[MOVEMENT_COLUMNS + ["new_logos", "churned_logos", "ending_customers"]].rename(columns={
            "starting_mrr": "starting MRR", "ending_mrr": "ending MRR", "new_logos": "new customers",
            "churned_logos": "churned customers", "ending_customers": "customers"})
        money = ["starting MRR", "new", "expansion", "reactivation", "contraction", "churned", "ending MRR"]
        fm = {c: (lambda x: self._money(x)) for c in money}
        fm.update({c: "{:,}" for c in ("new customers", "churned customers", "customers")})
        return style_table(show, fm)

    def arr_bridge_chart(self):
        """ARR bridge over the movements' months (waterfall); publishes ``arr_bridge``."""
        from revops_lib.plots import plot_arr_bridge
        from revops_lib.report import publish

        if not self.available:
            return self._missing()
        publish(self.bridge, "arr_bridge")
        return plot_arr_bridge(self.bridge, currency=self.currency)

    def nrr_chart(self):
        """Trailing-12-month NRR, GRR and logo retention by month; publishes ``trailing_retention``."""
        from revops_lib.plots import plot_nrr_trend
        from revops_lib.report import publish

        if not self.available:
            return self._missing()
        publish(self.trailing, "trailing_retention")
        return plot_nrr_trend(self.trailing)

    def kpi_table(self):
        """Monthly customers, MRR, ARPA, churn rates and quick ratio; publishes ``monthly_kpis``."""
        from revops_lib.plots import style_table
        from revops_lib.report import publish

        if not self.available:
            return self._missing()
        k = self.kpis
        publish(k, "monthly_kpis")
        t = self.trailing[["month", "nrr", "grr"]].rename(columns={"nrr": "NRR 12m", "grr": "GRR 12m"})
        show = k.merge(t, on="month", how="left").drop(columns=["arr"]).rename(columns={
            "mrr": "MRR", "arpa": "ARPA", "logo_churn_rate": "logo churn", "revenue_churn_rate": "revenue churn",
            "net_mrr_growth": "MRR growth", "quick_ratio": "quick ratio"})
        fm = {"customers": "{:,}", "MRR": lambda x: self._money(x), "ARPA": lambda x: self._money(x),
              "logo churn": lambda x: _pct(x, 2), "revenue churn": lambda x: _pct(x, 2),
              "MRR growth": lambda x: _pct(x, 1), "quick ratio": lambda x: "—" if pd.isna(x) else f"{x:.1f}",
              "NRR 12m": lambda x: _pct(x), "GRR 12m": lambda x: _pct(x)}
        return style_table(show, fm)

    def unit_economics_table(self):
        """LTV, CAC, payback and LTV:CAC with their inputs and definitions; publishes ``unit_economics``."""
        from revops_lib.plots import style_table
        from revops_lib.report import publish

        if not self.available:
            return self._missing()
        publish(self.unit, "unit_economics")
        r = self.unit.iloc[0]
        num = lambda x, f: "—" if x is None or pd.isna(x) else f.format(x)  # noqa: E731
        rows = [
            ("ARPA", self._money(r["arpa"]), f"MRR / paying customers at the end of {self.last_month}"),
            ("Revenue churn rate (monthly)", _pct(r["revenue_churn_rate"], 2),
             f"(churned + contraction) / starting MRR, months {r['months']}"),
            ("Gross margin", _pct(r["gross_margin"], 0), "parameter gross_margin"),
            ("LTV", self._money(r["ltv"]), "ARPA × gross margin / revenue churn rate"),
            ("Sales and marketing spend", self._money(r["spend"]), f"Σ marketing_spend.spend in {self.period}"),
            ("New customers", num(r["new_customers"], "{:,.0f}"),
             "accounts with a first won new_business opportunity in the period"),
            ("CAC", self._money(r["cac"]), "spend / new customers"),
            ("ARPA of new customers", self._money(r["new_customer_arpa"]),
             f"new MRR / customers whose first paid month was in {r['months']}"),
            ("CAC payback", num(r["cac_payback_months"], "{:.1f} months"),
             "CAC / (ARPA of new customers × gross margin)"),
            ("LTV:CAC", num(r["ltv_to_cac"], "{:.1f}"), "LTV / CAC"),
            ("Revenue churn rate, 12-month average", _pct(r["revenue_churn_rate_12m"], 2),
             "Σ (churned + contraction) / Σ starting MRR over the last 12 months (context: one month is noisy)"),
            ("LTV at the 12-month churn rate", self._money(r["ltv_12m"]),
             "ARPA × gross margin / 12-month revenue churn rate"),
            ("LTV:CAC at the 12-month churn rate", num(r["ltv_12m_to_cac"], "{:.1f}"), "LTV (12-month churn) / CAC"),
        ]
        return style_table(pd.DataFrame(rows, columns=["metric", "value", "how it is computed"]))


def analyze(source, *, period, as_of=None, currency: str = "USD", gross_margin: float = 0.8, cohorts: int = 24,
            quarters: int = 8, movement_months: int = 12, survival_by: str | None = "segment",
            min_cohort_size: int = 20, fiscal_year_start_month: int | None = None) -> RetentionReport:
    """Compute every table of the ``cohort_retention`` report for one period.

    Parameters
    ----------
    source : Source or source spec
        Uses ``subscriptions`` (else ``transactions``), and ``opportunities`` and
        ``marketing_spend`` for CAC when present.
    period : str or Period
    as_of : str or Timestamp, optional
    currency : str
    gross_margin : float, default 0.8
    cohorts : int, default 24
        Monthly cohorts in the heatmaps and published tables.
    quarters : int, default 8
        Quarterly cohorts in the quarterly table.
    movement_months : int, default 12
        Months of MRR movements, KPIs and trailing NRR/GRR.
    survival_by : str, optional
        Survival curves per value of this subscriptions column (default
        ``segment``); without it (or from transactions), per cohort year.
    min_cohort_size : int, default 20
        Cohorts smaller than this are left out of the best/worst findings.

    Returns
    -------
    RetentionReport
    """
    gross_margin = _check_fraction(gross_margin, "gross_margin")
    min_cohort_size = _check_int(min_cohort_size, "min_cohort_size", 0)
    src = open_source(source)
    p = parse_period(period, fiscal_year_start_month=fiscal_year_start_month) if not isinstance(period, Period) \
        else period
    cut = resolve_as_of(p, as_of)
    if not (src.has("subscriptions") or src.has("transactions")):
        return RetentionReport(period=p, as_of=cut, currency=currency, gross_margin=gross_margin,
                               note=f"No `subscriptions` or `transactions` table in {src.description}: "
                                    "cohort retention cannot be computed.")
    basis = "subscriptions" if src.has("subscriptions") else "transactions"
    by = survival_by if basis == "subscriptions" and survival_by else None
    if by is not None and by not in src.table("subscriptions").columns:
        by = None
    cm = customer_mrr(src, period=p, as_of=cut, by=by, cache=True)
    try:
        table = cohort_retention(cm, cohorts=cohorts)
        average = cohort_average(table)
        quarterly = quarterly_retention(cm, quarters=quarters,
                                        fiscal_year_start_month=fiscal_year_start_month or p.fiscal_year_start_month)
        months = max(movement_months, cm.last_month - _period_months(p, cm.last_month)[0] + 1)
        movements_all = _movement_frame(_run(_movement_expr(cm)), cm.last_month, months)
        movements = movements_all.iloc[-movement_months:].reset_index(drop=True)
        bridge = arr_bridge(movements)
        kpis = monthly_kpis(movements)
        trailing = trailing_retention(cm, months=movement_months)
        if by is not None:
            surv = survival(cm, by=by)
            surv_by = by
        else:
            surv = survival(cm, cohort_group="cohort_year")
            surv_by = "cohort_year"
        unit = unit_economics(cm, period=p, as_of=cut, gross_margin=gross_margin, movements=movements_all)
    finally:
        cm.release()
    return RetentionReport(period=p, as_of=cut, currency=currency, gross_margin=gross_margin, basis=basis,
                           last_month=cm.last_month_label, cohorts=table, average=average, quarterly=quarterly,
                           movements=movements, bridge=bridge, kpis=kpis, trailing=trailing, survival=surv,
                           survival_by=surv_by, unit=unit, min_cohort_size=min_cohort_size)
