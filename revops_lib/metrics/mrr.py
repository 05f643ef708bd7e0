"""Monthly recurring revenue: month-end MRR per customer, MRR movements, trailing NRR / GRR.


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
from dataclasses import dataclass
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from revops_lib.errors import ParameterError, SchemaError, SourceError
from revops_lib.metrics.common import (
    UNKNOWN,
    backend_name,
    caches,
    cents,
    check_int,
    money,
    ratio,
    run,
)
from revops_lib.periods import Period, window
from revops_lib.sources import Source, as_table, open_source

MOVEMENT_COLUMNS = ["month", "starting_mrr", "new", "expansion", "reactivation", "contraction", "churned",
                    "ending_mrr"]


ALL = "all"


INT = dt.int64


#: Amounts below half a cent round to 0 cents: such subscriptions and customer-months are not paying.
HALF_CENT = 0.005


def month_index(year: int, month: int) -> int:
    """Month index: months since year 0 (``year * 12 + month - 1``)."""
    return year * 12 + month - 1


def month_of(day: _dt.date) -> int:
    return month_index(day.year, day.month)


def month_label(mi: int) -> str:
    """``YYYY-MM`` of a month index."""
    y, m0 = divmod(int(mi), 12)
    return f"{y:04d}-{m0 + 1:02d}"


def month_labels(values) -> list[str]:
    return [month_label(v) for v in values]


def first_day(mi: int) -> _dt.date:
    y, m0 = divmod(int(mi), 12)
    return _dt.date(y, m0 + 1, 1)


MONTH_ZERO = 1900 * 12  # month index of 1900-01


def month_expr(col: ir.Value) -> ir.IntegerValue:
    """Month index of a date or timestamp expression (from 1900 on).

    Calendar months since 1900-01 (DuckDB's ``date_diff('month', …)``,
    PostgreSQL's ``age``), cheaper to compute than ``year * 12 + month``.
    """
    if col.type().is_timestamp():
        ref = ibis.timestamp(_dt.datetime(1900, 1, 1))
        col = col.cast(dt.Timestamp()) if col.type().timezone is not None else col
    else:
        ref = ibis.date(1900, 1, 1)
    return col.delta(ref, unit="month").cast(INT) + MONTH_ZERO


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
    return month_label(last_month(*window(period, as_of)))


def last_month(p: Period | None, cut: pd.Timestamp) -> int:
    limit = cut.date()
    if p is not None:
        limit = min(limit, p.end_date)
    # months whose first day of the next month is on or before `limit`
    return month_of(limit) - 1


def period_months(p: Period | None, last: int) -> list[int]:
    """Complete months (<= last) that end inside the period; the last complete month if none does."""
    if p is None:
        return [last]
    first = month_of(p.start_date)
    # a month ends inside [start, end) when its last day is >= start: months from the start month on
    months = [m for m in range(first, last + 1) if first_day(m + 1) > p.start_date]
    return months or [last]


CUSTOMER_MONTH_COLUMNS = ("customer_id", "month", "mrr")


def mrr_input(data: Any) -> tuple[str, ir.Table, Source | None]:
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


def attribute(t: ir.Table, by: str | None, order_col: str, basis: str) -> ir.Table | None:
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
        return month_label(self.last_month)

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
        """Materialize the change points in the engine with Ibis's own ``Table.cache()`` (until :meth:`release`);
        never hand-written DDL, so every backend drops what it made in its own dialect. Nothing where the kit
        does not cache (:func:`revops_lib.metrics.common.caches`: on Spark, a plan Spark cannot find again)."""
        if self._temp is None and caches(self.changes):
            self.changes = self.changes.cache()
            self._temp = (self.changes, self.changes.get_name())
        return self

    def release(self) -> None:
        """Drop the table made by :meth:`cache` (the change points cannot be used afterwards)."""
        if self._temp is not None:
            cached, _ = self._temp
            self._temp = None
            cached.release()

    def __enter__(self) -> "CustomerMRR":
        return self.cache()

    def __exit__(self, *exc) -> None:
        self.release()

    def __repr__(self) -> str:
        by = f", by {self.by}" if self.by else ""
        return f"<CustomerMRR from {self.basis}, months up to {self.last_month_label}{by}>"


def _subscription_deltas(t: ir.Table, last: int) -> ir.Table:
    # filter on stored columns (pushed into the scan); a cents filter on a computed column is much slower
    t = t.filter(t.customer_id.notnull(), t.start_date.notnull(), t.mrr >= HALF_CENT,
                 t.start_date < ibis.date(first_day(last + 1)))
    c = cents(t.mrr, backend_name(t))
    m0 = month_expr(t.start_date)
    m1 = ibis.ifelse(t.end_date.isnull(), last, ibis.least(month_expr(t.end_date) - 1, last))
    s = t.select("customer_id", c=c, m0=m0, m1=m1)
    s = s.filter(s.m1 >= s.m0)
    plus = s.select("customer_id", m=s.m0, d=s.c)
    minus = s.filter(s.m1 < last).select("customer_id", m=s.m1 + 1, d=-s.c)
    return plus.union(minus)


def _transaction_months(t: ir.Table, last: int, cut: pd.Timestamp) -> ir.Table:
    """``customer_id, m, c``: payments per customer and complete month, in cents (positive sums only)."""
    t = t.filter(t.customer_id.notnull() & t.occurred_at.notnull()
                 & (t.occurred_at < ibis.timestamp(cut.to_pydatetime())))
    t = t.select("customer_id", m=month_expr(t.occurred_at), c=cents(t.amount.fill_null(0), backend_name(t)))
    t = t.filter(t.m <= last)
    g = t.group_by(["customer_id", "m"]).aggregate(c=t.c.sum())
    return g.filter(g.c > 0)


def month_rows(t: ir.Table, last: int) -> ir.Table:
    """``customer_id, m, c`` from a customer-months table (month: a date or timestamp; mrr in currency).

    Customer-months hold one row per customer and month (as :func:`customer_months`
    returns them); rows with MRR below half a cent (0 once rounded) are dropped.
    """
    if t.month.type().is_string():
        t = t.mutate(month=t.month.try_cast(dt.date))
    # filters on the stored columns first: the engine pushes them into the scan
    end = first_day(last + 1)
    limit = ibis.timestamp(_dt.datetime(end.year, end.month, 1)) if t.month.type().is_timestamp() else ibis.date(end)
    t = t.filter(t.customer_id.notnull(), t.month.notnull(), t.month < limit, t.mrr >= HALF_CENT)
    return t.select("customer_id", m=month_expr(t.month), c=cents(t.mrr, backend_name(t)))


def month_deltas(cm: ir.Table, last: int) -> ir.Table:
    plus = cm.select("customer_id", "m", d=cm.c)
    minus = cm.filter(cm.m < last).select("customer_id", m=cm.m + 1, d=-cm.c)
    return plus.union(minus)


def change_points(deltas: ir.Table, last: int) -> ir.Table:
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
    >>> run(cm.months().order_by("month"))
      customer_id      month    mrr
    0           A 2026-01-01  100.0
    1           A 2026-02-01   50.0
    2           A 2026-03-01   50.0
    """
    if isinstance(data, CustomerMRR):
        return data
    p, cut = window(period, as_of)
    last = last_month(p, cut)
    basis, t, src = mrr_input(data)
    months = None
    if basis == "subscriptions":
        attr = attribute(t, by, "start_date", basis)
        deltas = _subscription_deltas(t, last)
    elif basis == "transactions":
        attr = attribute(t, by, "occurred_at", basis)
        months = _transaction_months(t, last, cut)
        deltas = month_deltas(months, last)
    else:
        attr = attribute(t, by, "month", "customer-months")
        months = month_rows(t, last)
        deltas = month_deltas(months, last)
    ch = change_points(deltas, last)
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
    >>> run(customer_months(tx, period="2026-01"))
      customer_id      month   mrr
    0           A 2026-01-01  15.0
    """
    return customer_mrr(data, period=period, as_of=as_of, by=by).months()


def prepared_mrr(data, period, as_of, by) -> CustomerMRR:
    if isinstance(data, CustomerMRR):
        if by is not None and data.by != by:
            raise ParameterError(f"`by`={by!r} differs from the CustomerMRR's `by`={data.by!r}: "
                                 "compute it with customer_mrr(..., by=...) first.")
        return data
    return customer_mrr(data, period=period, as_of=as_of, by=by)


def movement_kinds(ch: ir.Table) -> dict[str, tuple[ir.BooleanValue, ir.IntegerValue]]:
    """The movements of change-point rows (:attr:`CustomerMRR.changes`): ``{movement: (condition, amount in
    cents)}`` for new, expansion, reactivation, contraction and churned, in that order. At most one condition
    holds on a row, and its amount is the row's absolute change. The one definition behind
    :func:`mrr_movements` and the records behind it (:func:`revops_lib.metrics.records.mrr_movement_records`)."""
    prev = ch.lvl - ch.d
    first = ch.m == ch.cohort
    return {
        "new": ((prev == 0) & first, ch.lvl),
        "expansion": ((prev > 0) & (ch.d > 0), ch.d),
        "reactivation": ((prev == 0) & ~first, ch.lvl),
        "contraction": ((prev > 0) & (ch.lvl > 0) & (ch.d < 0), -ch.d),
        "churned": ((prev > 0) & (ch.lvl == 0), prev),
    }


def _movement_expr(cm: CustomerMRR) -> ir.Table:
    ch = cm.changes
    zero = ibis.literal(0, type=INT)

    def when(cond, value):
        return ibis.ifelse(cond, value, zero)

    aggs = {}
    for (name, (cond, amount)), logos in zip(movement_kinds(ch).items(), _MOVE_LOGOS):
        aggs[name] = when(cond, amount).sum()
        aggs[logos] = when(cond, 1).sum()
    return ch.group_by("m").aggregate(**aggs)


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
    out = pd.DataFrame({"month": month_labels(g["m"]), "starting_mrr": money(g["starting"])})
    for c in _MOVE_MONEY:
        out[c] = money(g[c])
    out["ending_mrr"] = money(g["ending"])
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
    months = check_int(months, "months")
    cm = prepared_mrr(data, period, as_of, None)
    return _movement_frame(run(_movement_expr(cm)), cm.last_month, months)


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
    in_cents = {c: int((movements[c] * 100).round().astype("int64").sum()) for c in _MOVE_MONEY}
    start = int(round(movements["starting_mrr"].iloc[0] * 100))
    end = int(round(movements["ending_mrr"].iloc[-1] * 100))
    steps = [("starting", start), ("new", in_cents["new"]), ("expansion", in_cents["expansion"]),
             ("reactivation", in_cents["reactivation"]), ("contraction", -in_cents["contraction"]),
             ("churned", -in_cents["churned"]), ("ending", end)]
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
        "arpa": ratio(m["ending_mrr"], m["ending_customers"]),
        "logo_churn_rate": ratio(m["churned_logos"], m["starting_customers"]),
        "revenue_churn_rate": ratio(loss, m["starting_mrr"]),
        "net_mrr_growth": ratio(m["ending_mrr"], m["starting_mrr"]) - 1,
        "quick_ratio": ratio(gain, loss),
    })


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
    months = check_int(months, "months")
    lag = check_int(lag, "lag")
    cm = prepared_mrr(data, period, as_of, None)
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
    raw = run(kept)
    mv = _movement_frame(run(_movement_expr(cm)), last, months + lag)
    base = pd.DataFrame({"b": np.arange(b0, b1 + 1, dtype="int64"),
                         "base_customers": mv["ending_customers"].to_numpy()[:months],
                         "base_cents": (mv["ending_mrr"].to_numpy()[:months] * 100).round().astype("int64")})
    raw = raw.astype("int64") if len(raw) else pd.DataFrame({c: pd.Series(dtype="int64")
                                                             for c in ("b", "retained", "mrr", "capped")})
    g = base.merge(raw, on="b", how="left").fillna(0)
    for c in ("retained", "mrr", "capped"):
        g[c] = g[c].astype("int64")
    return pd.DataFrame({
        "month": month_labels(g["b"] + lag),
        "base_month": month_labels(g["b"]),
        "base_customers": g["base_customers"].astype("int64"),
        "retained_customers": g["retained"],
        "logo_retention": ratio(g["retained"], g["base_customers"]),
        "base_mrr": money(g["base_cents"]),
        "mrr": money(g["mrr"]),
        "capped_mrr": money(g["capped"]),
        "nrr": ratio(g["mrr"], g["base_cents"]),
        "grr": ratio(g["capped"], g["base_cents"]),
    })
