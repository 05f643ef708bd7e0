"""Cohort retention and survival (METRICS.md, "Cohort retention"): logo and revenue retention by cohort
and age, the average cohort, quarterly cohorts, Kaplan–Meier survival.

Built on the month-end MRR change points of :mod:`revops_lib.metrics.mrr` (whose docstring holds the
definitions and how they run).
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from revops_lib.errors import ParameterError
from revops_lib.metrics.common import (
    UNKNOWN,
    check_fraction,
    check_int,
    money,
    ratio,
    run,
)
from revops_lib.metrics.mrr import (
    ALL,
    INT,
    CustomerMRR,
    attribute,
    customer_mrr,
    first_day,
    last_month,
    month_index,
    month_label,
    month_of,
    month_rows,
    mrr_input,
    prepared_mrr,
)
from revops_lib.periods import period_of, window
from revops_lib.stats import kaplan_meier

#: Columns of the published tables (DESIGN.md, "Published tables").
LOGO_COLUMNS = ["cohort", "age", "cohort_size", "active", "retention"]


REVENUE_COLUMNS = ["cohort", "age", "starting_mrr", "mrr", "nrr", "grr"]


AVERAGE = "average"



def _retention_columns(g: pd.DataFrame) -> dict:
    """Sizes, logo retention and revenue retention of aggregated cohort cells (``cohort_size``, ``active``,
    ``_s`` starting MRR, ``_m`` MRR, ``_c`` capped MRR), as the cohort tables publish them."""
    return {
        "cohort_size": g["cohort_size"].astype("int64"),
        "active": g["active"].astype("int64"),
        "retention": ratio(g["active"], g["cohort_size"]),
        "starting_mrr": money(g["_s"]),
        "mrr": money(g["_m"]),
        "nrr": ratio(g["_m"], g["_s"]),
        "grr": ratio(g["_c"], g["_s"]),
        "capped_mrr": money(g["_c"]),
    }

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
    labels = {m: month_label(m) for m in np.unique(row_cohort)}
    result = pd.DataFrame({
        **({"group": np.asarray(names, dtype=object)[row_code]} if grouped else {}),
        "cohort": [labels[m] for m in row_cohort],
        "age": row_age.astype("int64"),
        "cohort_size": size0,
        "active": active,
        "retention": ratio(active, size0),
        "starting_mrr": money(start),
        "mrr": money(mrr),
        "nrr": ratio(mrr, start),
        "grr": ratio(capped, start),
        "capped_mrr": money(capped),
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
    cohorts = check_int(cohorts, "cohorts")
    if isinstance(data, CustomerMRR):
        cm = prepared_mrr(data, period, as_of, by)
        last = cm.last_month
        first = last - cohorts + 1
        grouped = by is not None
        expr = _cells_from_changes(cm, first, grouped)
    else:
        basis, t, _ = mrr_input(data)
        if basis == "customer_months":
            p, cut = window(period, as_of)
            last = last_month(p, cut)
            first = last - cohorts + 1
            months = month_rows(t, last)
            attr = attribute(t, by, "month", "customer-months")
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
    return _cohort_frame(run(expr), first_cohort=first, last=last, grouped=grouped)


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
        **_retention_columns(g),
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
    quarters = check_int(quarters, "quarters")
    if isinstance(data, CustomerMRR):
        p, last = data.period, data.last_month
    else:
        p, cut = window(period, as_of)
        last = last_month(p, cut)
    fiscal = fiscal_year_start_month or (p.fiscal_year_start_month if p is not None else 1)
    cm_or_data = data
    q_last = period_of(first_day(last), "quarter", fiscal_year_start_month=fiscal)
    q_first = q_last.previous(quarters - 1)
    first = month_of(q_first.start_date)
    monthly = cohort_retention(cm_or_data, period=period, as_of=as_of, cohorts=last - first + 1, by=by)
    keys = ["group"] if "group" in monthly.columns else []
    cols = [*keys, "cohort", "age", "cohort_size", "active", "retention", "starting_mrr", "mrr", "nrr", "grr",
            "capped_mrr"]
    if monthly.empty:
        return pd.DataFrame(columns=cols)
    mi = monthly["cohort"].map(lambda s: month_index(int(s[:4]), int(s[5:7])))
    qlab = {m: period_of(first_day(m), "quarter", fiscal_year_start_month=fiscal) for m in sorted(set(mi))}
    t = monthly.assign(quarter=mi.map(lambda m: qlab[m].label),
                       q_end=mi.map(lambda m: min(month_of(qlab[m].end_date) - 1, last)),
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
        **_retention_columns(g),
    })[cols]


SURVIVAL_GROUPS = (None, "cohort_year", "cohort_quarter")


def _durations(cm: CustomerMRR, group: str | None) -> pd.DataFrame:
    ch = cm.changes
    keys = {}
    if group == "by":
        keys = {"group": ch.group.min()}
    per = ch.group_by("customer_id").aggregate(
        cohort=ch.cohort.min(), churn=ibis.ifelse(ch.lvl == 0, ch.m, ibis.null(INT)).min(), **keys)
    event = per.churn.notnull()
    dur = ibis.ifelse(event, per.churn - per.cohort, cm.last_month - per.cohort)
    extra = {"group": per.group} if group == "by" else {}
    q = per.select(**extra, cohort=per.cohort, duration=dur, event=event)
    agg = q.group_by([*extra, "cohort", "duration", "event"]).aggregate(n=q.count())
    return run(agg)


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
    confidence_level = check_fraction(confidence_level, "confidence_level")
    if cohort_group not in SURVIVAL_GROUPS:
        raise ParameterError(f"`cohort_group` must be one of None, 'cohort_year', 'cohort_quarter', "
                             f"not `{cohort_group!r}`.")
    if by is not None and cohort_group is not None:
        raise ParameterError("Give `by` or `cohort_group`, not both.")
    cm = prepared_mrr(data, period, as_of, by)
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
        km = kaplan_meier(g["duration"].to_numpy(), g["event"].to_numpy(), g["n"].to_numpy(),
                          confidence=confidence_level)
        km.insert(0, "group", name)
        frames.append(km)
    return pd.concat(frames, ignore_index=True)[cols]
