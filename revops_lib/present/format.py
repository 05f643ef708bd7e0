"""Numbers and names for people: one formatter per kind, used by tables, charts, prose and the index.

========== =========================== ===========================================
kind       function                    examples
========== =========================== ===========================================
money      :func:`fmt_money`           ``$1.23M``, ``$12.0k``, ``$950``, ``€4.50M``
percent    :func:`fmt_pct`             ``12.3%`` (a rate given as a fraction)
points     :func:`fmt_points`          ``+2.1 pp`` (a change of a rate)
count      :func:`fmt_int`             ``12,345``
days       :func:`fmt_days`            ``12.5 days``, ``1.0 day``
hours      :func:`fmt_hours`           ``3.2 h``
p-value    :func:`fmt_pval`            ``p = 0.012``, ``p < 0.001``
interval   :func:`fmt_interval`        ``21.9% – 39.6%``
stage      :func:`stage_label`         ``mql_at`` → ``MQL``; :func:`pair_label` ``MQL → SQL``
KPI value  :func:`fmt_value`           by the KPI's unit (currency, rate, count, days, hours, score)
========== =========================== ===========================================

Every formatter shows a missing value (None, NaN) as ``—`` and a negative number with the ASCII minus
(``-$12.0k``, ``-5.0%``, ``-0.1 pp``: one sign on every page, and a number copied into a spreadsheet stays a
number). A signed change that rounds to zero reads ``±`` (``±0.0 pp``, ``±0.0%``, ``±$0``): neither a rise nor a
fall. Published CSVs keep raw values; these are for what a person reads.
"""

from __future__ import annotations

import math

__all__ = ["MISSING", "CURRENCY", "currency_symbol", "fmt_money", "fmt_pct", "fmt_points", "fmt_int",
           "fmt_days", "fmt_hours", "fmt_pval", "fmt_interval", "fmt_value", "fmt_change", "stage_label",
           "pair_label", "is_missing"]

#: What a missing value shows as.
MISSING = "—"

CURRENCY = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}


def is_missing(x) -> bool:
    """None, NaN, NaT or pandas NA."""
    if x is None:
        return True
    try:
        return bool(x != x)  # NaN, NaT, NA  (pd.NA != pd.NA is NA: bool() raises)
    except TypeError:
        return True


def currency_symbol(currency: str = "USD") -> str:
    """``$`` for USD, ``€`` for EUR, … else the code and a space (``CHF ``)."""
    return CURRENCY.get(currency, f"{currency} ")


def _unsigned_zero(v: float, decimals: int) -> float:
    """``v``, or 0.0 when it rounds to zero at ``decimals``: a tiny negative shows ``0.0``, never ``-0.0``."""
    return 0.0 if round(v, decimals) == 0 else v


def fmt_money(x, currency: str = "USD", *, decimals: int | None = None) -> str:
    """``1234567 -> '$1.23M'``, ``12000 -> '$12.0k'``, ``950 -> '$950'``."""
    if is_missing(x):
        return MISSING
    sym = currency_symbol(currency)
    a = abs(float(x))
    for limit, suffix, default in ((1e9, "B", 2), (1e6, "M", 2), (1e3, "k", 1)):
        if a >= limit:
            return f"{'-' if x < 0 else ''}{sym}{a / limit:.{default if decimals is None else decimals}f}{suffix}"
    d = 0 if decimals is None else decimals
    return f"{'-' if x < 0 and round(a, d) else ''}{sym}{a:,.{d}f}"


def fmt_pct(x, decimals: int = 1, *, signed: bool = False) -> str:
    """``0.1234 -> '12.3%'`` (``signed``: ``+12.3%``; one that rounds to zero: ``0.0%``, signed ``±0.0%``)."""
    if is_missing(x):
        return MISSING
    v = _unsigned_zero(100 * float(x), decimals)
    if signed and v == 0:
        return f"±{0:.{decimals}f}%"
    return f"{v:{'+' if signed else ''}.{decimals}f}%"


def fmt_points(x, decimals: int = 1) -> str:
    """A change of a rate in percentage points: ``0.021 -> '+2.1 pp'`` (one that rounds to zero: ``±0.0 pp``)."""
    if is_missing(x):
        return MISSING
    v = _unsigned_zero(100 * float(x), decimals)
    return f"±{0:.{decimals}f} pp" if v == 0 else f"{v:+.{decimals}f} pp"


def fmt_int(x) -> str:
    """``12345.0 -> '12,345'``."""
    if is_missing(x):
        return MISSING
    return f"{int(round(float(x))):,}"


def fmt_days(x) -> str:
    """``12.46 -> '12.5 days'``."""
    if is_missing(x):
        return MISSING
    v = _unsigned_zero(float(x), 1)
    return f"{v:,.1f} day{'' if v == 1 else 's'}"


def fmt_hours(x) -> str:
    """``3.21 -> '3.2 h'``."""
    if is_missing(x):
        return MISSING
    return f"{_unsigned_zero(float(x), 1):,.1f} h"


def fmt_pval(p) -> str:
    """``0.0123 -> 'p = 0.012'``, ``0.0001 -> 'p < 0.001'``."""
    if is_missing(p):
        return MISSING
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def fmt_interval(low, high, decimals: int = 1) -> str:
    """An interval of rates: ``'21.9% – 39.6%'``."""
    if is_missing(low) or is_missing(high):
        return MISSING
    return f"{fmt_pct(low, decimals)} – {fmt_pct(high, decimals)}"


def fmt_value(value, unit: str, currency: str = "USD") -> str:
    """A KPI value by its unit: ``currency``, ``rate``, ``count``, ``days``, ``hours`` or ``score``."""
    try:
        v = math.nan if value is None else float(value)
    except (TypeError, ValueError):
        v = math.nan
    if math.isnan(v):
        return MISSING
    if unit == "currency":
        return fmt_money(v, currency)
    if unit == "rate":
        return fmt_pct(v)
    if unit == "count":
        return fmt_int(v)
    if unit == "days":
        return fmt_days(v)
    if unit == "hours":
        return fmt_hours(v)
    return f"{v:,.2f}"


def fmt_change(change, unit: str, currency: str = "USD") -> str:
    """A KPI's change by its unit: points for rates, a signed value otherwise (``+$12.0k``, ``-3``)."""
    try:
        v = math.nan if change is None else float(change)
    except (TypeError, ValueError):
        v = math.nan
    if math.isnan(v):
        return MISSING
    if unit == "rate":
        return fmt_points(v)
    body = fmt_value(abs(v), unit, currency)
    if not any(c in "123456789" for c in body):  # zero, or rounds to zero: ±$0, never -$0
        return "±" + body
    return ("+" if v > 0 else "-") + body


_STAGE_LABELS = {"created_at": "Created", "mql_at": "MQL", "sql_at": "SQL", "opportunity_at": "Opportunity",
                 "customer_at": "Customer"}


def stage_label(stage: str) -> str:
    """A reader's name for a stage column: ``mql_at`` -> ``MQL``, ``opportunity_at`` -> ``Opportunity``.

    >>> stage_label("sql_at"), stage_label("closed_won"), stage_label("demo_booked_at")
    ('SQL', 'Closed won', 'Demo booked')
    """
    if stage in _STAGE_LABELS:
        return _STAGE_LABELS[stage]
    name = stage[:-3] if stage.endswith("_at") else stage
    name = name.replace("_", " ")
    return name.upper() if len(name) <= 3 else name[:1].upper() + name[1:]


def pair_label(a: str, b: str) -> str:
    """``('mql_at', 'sql_at')`` -> ``'MQL → SQL'``."""
    return f"{stage_label(a)} → {stage_label(b)}"
