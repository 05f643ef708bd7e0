"""Reporting periods: months, quarters and ISO weeks, from their labels.

This module is the only place in revops-kit where a period label is parsed.
Everything else receives a :class:`Period` (or passes a label through
:func:`parse_period`).

Labels
------
========= ============ ====================================================
kind      label        span
========= ============ ====================================================
month     ``2026-10``  the calendar month, 2026-10-01 to 2026-11-01
quarter   ``2026-Q4``  three months of a fiscal year (see below)
week      ``2026-W44`` the ISO 8601 week, Monday 2026-10-26 to 2026-11-02
========= ============ ====================================================

Input is forgiving about case and surrounding whitespace (``' 2026-q4 '``);
the canonical label is upper case with a two-digit month or week
(``2026-Q4``, ``2026-W05``). Anything else raises
:class:`~revops_lib.errors.PeriodError`.

Conventions
-----------
- **UTC, half-open.** ``Period.start`` and ``Period.end`` are tz-aware UTC
  timestamps; a period is ``[start, end)``: the start instant belongs to it,
  the end instant is the start of the next period. ``start_naive`` /
  ``end_naive`` give the same instants without a timezone, to compare with the
  naive-UTC timestamp columns of the data contract. Naive input times are
  read as UTC.
- **ISO weeks** start on Monday 00:00 UTC and belong to the ISO year that
  holds their Thursday, so ``2026-W01`` starts on 2025-12-29 and ``2020-W53``
  exists (ISO years have 52 or 53 weeks; a week label must exist in its year).
- **Fiscal quarters.** ``fiscal_year_start_month`` (1 = January, the default,
  to 12) shifts quarters only; months and weeks are never shifted. Q1 begins
  on the first day of that month. **A fiscal year is named by the calendar
  year in which it ends**: with ``fiscal_year_start_month=2``, FY2027 runs
  from 2026-02-01 to 2027-02-01, so ``2027-Q1`` is 2026-02-01 to 2026-05-01
  and ``2027-Q4`` is 2026-11-01 to 2027-02-01. With the default of 1 the
  fiscal year is the calendar year.
- **The default period** is the last *complete* period before now: the month
  before the current one (on 2026-11-25, and also at 2026-11-01T00:00Z, it is
  ``2026-10``).
- **YAML**: write periods quoted (``period: "2026-10"``). Unquoted values may be
  read as numbers or dates, which are refused with a message saying so.

Examples
--------
>>> p = parse_period("2026-Q4")
>>> p.start_date, p.end_date, p.days
(datetime.date(2026, 10, 1), datetime.date(2027, 1, 1), 92)
>>> [str(m) for m in p.months()]
['2026-10', '2026-11', '2026-12']
>>> str(parse_period("2027-Q1", fiscal_year_start_month=2).start_date)
'2026-02-01'
"""

from __future__ import annotations

import datetime as _dt
import functools
import numbers
import operator
import re
from dataclasses import dataclass, field

import pandas as pd

from revops_lib.errors import ParameterError, PeriodError

__all__ = [
    "KINDS",
    "Period",
    "parse_period",
    "default_period",
    "period_of",
    "periods_between",
    "label_kind",
    "is_period_label",
    "resolve_as_of",
    "window",
    "Span",
    "same_period_last_year",
    "periods_to_date",
    "year_to_date",
]

#: The kinds of period, shortest first.
KINDS: tuple[str, ...] = ("week", "month", "quarter")

_FORMS = (
    "use YYYY-MM (month, e.g. 2026-10), YYYY-Qn (quarter, e.g. 2026-Q4) "
    "or YYYY-Www (ISO week, e.g. 2026-W44)."
)
_YAML_HINT = (
    ' Periods are text: in YAML, quote them (period: "2026-10"); '
    "unquoted, YAML may read them as a number or a date."
)
_LABEL_RE = re.compile(
    r"(?P<year>[0-9]{4})-(?:(?P<month>[0-9]{2})|[Qq](?P<quarter>[0-9])|[Ww](?P<week>[0-9]{2}))",
    re.ASCII,
)
_MIN_YEAR, _MAX_YEAR = _dt.MINYEAR, _dt.MAXYEAR


# --------------------------------------------------------------------------
# Small helpers: validation, errors and calendar arithmetic
# --------------------------------------------------------------------------


def _bad_label(label: object, reason: str = "") -> PeriodError:
    if isinstance(label, str):
        return PeriodError(f"Cannot read period `{label}`: {_FORMS}{reason}")
    kind = type(label).__name__
    return PeriodError(f"Cannot read period `{label}` ({kind}, not text): {_FORMS}{_YAML_HINT}")


def _check_fiscal(value: object) -> int:
    """Return ``fiscal_year_start_month`` as an int in 1..12 or raise PeriodError."""
    try:
        if isinstance(value, bool):
            raise TypeError
        month = operator.index(value)
    except TypeError:
        month = None
    if month is None or not 1 <= month <= 12:
        raise PeriodError(
            f"`fiscal_year_start_month` must be a whole number from 1 (January) "
            f"to 12 (December), not `{value!r}`."
        )
    return month


def _check_kind(kind: object) -> str:
    name = kind.strip().lower() if isinstance(kind, str) else None
    if name not in KINDS:
        raise PeriodError(f"`kind` must be 'month', 'quarter' or 'week', not `{kind!r}`.")
    return name


def _check_count(n: object, name: str, *, minimum: int | None = None) -> int:
    try:
        if isinstance(n, bool):
            raise TypeError
        count = operator.index(n)
    except TypeError:
        count = None
    if count is None or (minimum is not None and count < minimum):
        allowed = "a whole number" if minimum is None else f"a whole number >= {minimum}"
        raise PeriodError(f"`{name}` must be {allowed}, not `{n!r}`.")
    return count


def _iso_weeks_in_year(year: int) -> int:
    # 28 December is always in the last ISO week of its year.
    return _dt.date(year, 12, 28).isocalendar()[1]


def _parse_parts(label: object) -> tuple[str, int, int]:
    """Split a label into ``(kind, year, number)`` or raise PeriodError."""
    if not isinstance(label, str):
        raise _bad_label(label)
    match = _LABEL_RE.fullmatch(label.strip())
    if match is None:
        raise _bad_label(label)
    year = int(match["year"])
    if year < _MIN_YEAR:
        raise _bad_label(label, f" Years run from {_MIN_YEAR:04d} to {_MAX_YEAR}.")
    if match["month"] is not None:
        month = int(match["month"])
        if not 1 <= month <= 12:
            raise _bad_label(label, " Months run from 01 to 12.")
        return "month", year, month
    if match["quarter"] is not None:
        quarter = int(match["quarter"])
        if not 1 <= quarter <= 4:
            raise _bad_label(label, " Quarters run from Q1 to Q4.")
        return "quarter", year, quarter
    week = int(match["week"])
    last = _iso_weeks_in_year(year)
    if not 1 <= week <= last:
        raise _bad_label(label, f" ISO year {year} has weeks W01 to W{last}.")
    return "week", year, week


def _label(kind: str, year: int, number: int) -> str:
    if kind == "month":
        return f"{year:04d}-{number:02d}"
    if kind == "quarter":
        return f"{year:04d}-Q{number}"
    return f"{year:04d}-W{number:02d}"


def _month_start(month_index: int) -> _dt.date:
    """First day of the month ``month_index = year * 12 + (month - 1)``."""
    year, month0 = divmod(month_index, 12)
    return _dt.date(year, month0 + 1, 1)


def _quarter_first_month(year: int, quarter: int, fiscal: int) -> int:
    """Month index of the first month of fiscal quarter ``year-Qquarter``."""
    fiscal_start_year = year - 1 if fiscal > 1 else year
    return fiscal_start_year * 12 + (fiscal - 1) + 3 * (quarter - 1)


def _bounds(kind: str, year: int, number: int, fiscal: int, label: str) -> tuple[_dt.date, _dt.date]:
    """``(first day, first day after)`` of a period; PeriodError if out of range."""
    try:
        if kind == "month":
            index = year * 12 + number - 1
            return _month_start(index), _month_start(index + 1)
        if kind == "quarter":
            index = _quarter_first_month(year, number, fiscal)
            return _month_start(index), _month_start(index + 3)
        start = _dt.date.fromisocalendar(year, number, 1)
        return start, start + _dt.timedelta(days=7)
    except (ValueError, OverflowError):
        raise PeriodError(
            f"Period `{label}` falls outside the supported calendar "
            f"(years {_MIN_YEAR:04d} to {_MAX_YEAR})."
        ) from None


def _utc(day: _dt.date) -> pd.Timestamp:
    return pd.Timestamp(_dt.datetime(day.year, day.month, day.day, tzinfo=_dt.timezone.utc))


def _make(kind: str, year: int, number: int, fiscal: int) -> Period:
    label = _label(kind, year, number)
    start, end = _bounds(kind, year, number, fiscal, label)
    return Period(label, kind, _utc(start), _utc(end), fiscal)


def _to_utc(value: object, name: str) -> pd.Timestamp | None:
    """Read a time as a tz-aware UTC Timestamp (naive = UTC); None when missing."""
    if value is None:
        return None
    if isinstance(value, pd.Timestamp) and value.tzinfo is not None and str(value.tzinfo) == "UTC":
        return value  # the common case (Period bounds), without a conversion
    message = (
        f"Cannot read `{name}` value `{value!r}` as a time: use a date, a datetime, "
        "a pandas Timestamp or ISO text such as 2026-10-15 or 2026-10-15T08:30Z."
    )
    if isinstance(value, numbers.Number):  # bare numbers are ambiguous (epoch? year?)
        if isinstance(value, float) and value != value:  # NaN: missing
            return None
        raise PeriodError(message)
    try:
        ts = pd.Timestamp(value.strip() if isinstance(value, str) else value)
    except (ValueError, TypeError, OverflowError):
        raise PeriodError(message) from None
    if pd.isna(ts):
        return None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _parts_of(ts: pd.Timestamp, kind: str, fiscal: int) -> tuple[int, int]:
    """``(label year, number)`` of the period of ``kind`` holding UTC time ``ts``."""
    day = ts.date()
    if kind == "month":
        return day.year, day.month
    if kind == "week":
        iso = day.isocalendar()
        return iso[0], iso[1]
    offset = day.year * 12 + day.month - 1 - (fiscal - 1)
    fiscal_start_year, month_in_year = divmod(offset, 12)
    return fiscal_start_year + (1 if fiscal > 1 else 0), month_in_year // 3 + 1


# --------------------------------------------------------------------------
# Period
# --------------------------------------------------------------------------


class _Bounds:
    """The bounds derived from ``start`` and ``end`` (tz-aware UTC, ``[start, end)``), shared by
    :class:`Period` and :class:`Span`."""

    start: pd.Timestamp
    end: pd.Timestamp

    @property
    def start_naive(self) -> pd.Timestamp:
        """``start`` without timezone (UTC wall time), for naive-UTC columns."""
        return self.start.tz_localize(None)

    @property
    def end_naive(self) -> pd.Timestamp:
        """``end`` without timezone (UTC wall time), for naive-UTC columns."""
        return self.end.tz_localize(None)

    @property
    def start_date(self) -> _dt.date:
        """First calendar day of the period."""
        return self.start.date()

    @property
    def end_date(self) -> _dt.date:
        """First calendar day *after* the period (exclusive, like ``end``)."""
        return self.end.date()

    @property
    def last_day(self) -> _dt.date:
        """Last calendar day of the period (``end_date`` minus one day)."""
        return self.end_date - _dt.timedelta(days=1)

    @property
    def days(self) -> int:
        """Number of calendar days in the period."""
        return (self.end_date - self.start_date).days


@functools.total_ordering
@dataclass(frozen=True)
class Period(_Bounds):
    """One reporting period: a month, a fiscal quarter or an ISO week.

    Build periods with :func:`parse_period`, :func:`period_of` or
    :func:`default_period` rather than by hand; the constructor checks that
    the fields agree with the label and raises
    :class:`~revops_lib.errors.PeriodError` when they do not.

    Parameters
    ----------
    label : str
        Canonical label: ``'2026-10'`` (month), ``'2026-Q4'`` (quarter) or
        ``'2026-W44'`` (ISO week).
    kind : {'month', 'quarter', 'week'}
    start : pandas.Timestamp
        First instant of the period, tz-aware UTC (inclusive).
    end : pandas.Timestamp
        First instant after the period, tz-aware UTC (exclusive).
    fiscal_year_start_month : int, default 1
        Month (1-12) in which the fiscal year starts; it shifts quarters only.
        It is carried along by :meth:`previous`, :meth:`next` and friends, but
        is not part of equality: two periods are equal when they have the same
        label and the same span of time.

    Notes
    -----
    Periods are hashable and sort by ``start`` (then ``end``, then label), so
    a mixed list of weeks and months sorts chronologically.

    Examples
    --------
    >>> p = parse_period("2026-10")
    >>> p.kind, str(p.start), str(p.end)
    ('month', '2026-10-01 00:00:00+00:00', '2026-11-01 00:00:00+00:00')
    >>> p.contains("2026-10-31T23:59:59"), p.contains("2026-11-01")
    (True, False)
    >>> str(p.previous()), str(p.next(3))
    ('2026-09', '2027-01')
    """

    label: str
    kind: str
    start: pd.Timestamp
    end: pd.Timestamp
    fiscal_year_start_month: int = field(default=1, compare=False)

    def __post_init__(self) -> None:
        fiscal = _check_fiscal(self.fiscal_year_start_month)
        kind, year, number = _parse_parts(self.label)
        label = _label(kind, year, number)
        start, end = _bounds(kind, year, number, fiscal, label)
        given_start = _to_utc(self.start, "start")
        given_end = _to_utc(self.end, "end")
        if (self.kind, given_start, given_end) != (kind, _utc(start), _utc(end)):
            raise PeriodError(
                f"Period `{label}` (fiscal_year_start_month={fiscal}) is a {kind} from "
                f"{start} to {end}, not a {self.kind!r} from `{self.start}` to `{self.end}`: "
                "build periods with parse_period() instead of by hand."
            )
        object.__setattr__(self, "label", label)
        object.__setattr__(self, "start", given_start)
        object.__setattr__(self, "end", given_end)
        object.__setattr__(self, "fiscal_year_start_month", fiscal)

    # -- display and ordering ---------------------------------------------

    def __str__(self) -> str:
        return self.label

    def __repr__(self) -> str:
        fiscal = (
            f", fiscal_year_start_month={self.fiscal_year_start_month}"
            if self.fiscal_year_start_month != 1
            else ""
        )
        return f"<Period {self.label} ({self.kind}) [{self.start_date}, {self.end_date}){fiscal}>"

    def _sort_key(self) -> tuple:
        return (self.start, self.end, self.label)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Period):
            return NotImplemented
        return self._sort_key() < other._sort_key()

    # -- arithmetic ----------------------------------------------------------

    def _parts(self) -> tuple[int, int]:
        _, year, number = _parse_parts(self.label)
        return year, number

    def _shift(self, steps: int) -> Period:
        fiscal = self.fiscal_year_start_month
        year, number = self._parts()
        if self.kind == "month":
            new_year, month0 = divmod(year * 12 + number - 1 + steps, 12)
            if not _MIN_YEAR <= new_year <= _MAX_YEAR:
                raise PeriodError(f"Period `{self.label}` shifted by {steps} leaves years 0001-9999.")
            return _make("month", new_year, month0 + 1, fiscal)
        if self.kind == "quarter":
            new_year, quarter0 = divmod(year * 4 + number - 1 + steps, 4)
            if not _MIN_YEAR <= new_year <= _MAX_YEAR:
                raise PeriodError(f"Period `{self.label}` shifted by {steps} leaves years 0001-9999.")
            return _make("quarter", new_year, quarter0 + 1, fiscal)
        try:
            monday = self.start_date + _dt.timedelta(weeks=steps)
        except OverflowError:
            raise PeriodError(f"Period `{self.label}` shifted by {steps} leaves years 0001-9999.") from None
        iso = monday.isocalendar()
        return _make("week", iso[0], iso[1], fiscal)

    def previous(self, n: int = 1) -> Period:
        """The period ``n`` periods earlier, of the same kind and fiscal setting.

        Examples
        --------
        >>> str(parse_period("2026-Q1").previous())
        '2025-Q4'
        >>> str(parse_period("2026-W01").previous())
        '2025-W52'
        """
        return self._shift(-_check_count(n, "n"))

    def next(self, n: int = 1) -> Period:
        """The period ``n`` periods later, of the same kind and fiscal setting.

        Examples
        --------
        >>> str(parse_period("2026-12").next())
        '2027-01'
        >>> str(parse_period("2026-W53").next())
        '2027-W01'
        """
        return self._shift(_check_count(n, "n"))

    def trailing(self, n: int) -> list[Period]:
        """The ``n`` periods ending with (and including) this one, oldest first.

        Examples
        --------
        >>> [str(p) for p in parse_period("2026-02").trailing(3)]
        ['2025-12', '2026-01', '2026-02']
        """
        count = _check_count(n, "n", minimum=1)
        return [self._shift(-k) for k in range(count - 1, -1, -1)]

    def _overlapping(self, kind: str) -> list[Period]:
        fiscal = self.fiscal_year_start_month
        current = _make(kind, *_parts_of(self.start, kind, fiscal), fiscal)
        result = []
        while current.start < self.end:
            result.append(current)
            current = current.next()
        return result

    def weeks(self) -> list[Period]:
        """ISO weeks that overlap this period, oldest first.

        The first and last week may run over the period's edges.

        Examples
        --------
        >>> [str(w) for w in parse_period("2026-02").weeks()]
        ['2026-W05', '2026-W06', '2026-W07', '2026-W08', '2026-W09']
        """
        return self._overlapping("week")

    def months(self) -> list[Period]:
        """Calendar months that overlap this period, oldest first.

        A week that straddles a month end gives two months.

        Examples
        --------
        >>> [str(m) for m in parse_period("2026-W05").months()]
        ['2026-01', '2026-02']
        """
        return self._overlapping("month")

    def contains(self, ts: object) -> bool:
        """Whether time ``ts`` falls in ``[start, end)``.

        Parameters
        ----------
        ts : date, datetime, str, numpy.datetime64 or pandas.Timestamp
            Naive times are read as UTC; a date means its midnight UTC. A
            missing value (``None``, ``NaT``) is in no period.

        Examples
        --------
        >>> p = parse_period("2026-10")
        >>> p.contains("2026-10-01"), p.contains("2026-11-01T00:00:00Z")
        (True, False)
        >>> p.contains("2026-11-01T00:30:00+01:00")  # 2026-10-31T23:30Z
        True
        """
        when = _to_utc(ts, "ts")
        if when is None:
            return False
        return bool(self.start <= when < self.end)


# --------------------------------------------------------------------------
# Span: a stretch of time that is not one reporting period (year to date)
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Span(_Bounds):
    """A labelled stretch of time ``[start, end)`` that is not one reporting period, such as the year to date.

    It has the bounds of a :class:`Period` (``start``/``end`` tz-aware UTC, ``start_naive``, ``end_naive``,
    ``start_date``, ``end_date``, ``days``) and ``kind`` ``"span"``, so the metrics that take a period and a
    cut-off (:func:`window`) take a span too. Build one with :func:`year_to_date`.

    >>> s = year_to_date(parse_period("2026-10"))
    >>> s.label, str(s.start_date), str(s.end_date), s.days
    ('2026-10 YTD', '2026-01-01', '2026-11-01', 304)
    """

    label: str
    start: pd.Timestamp
    end: pd.Timestamp
    fiscal_year_start_month: int = 1
    kind: str = field(default="span", init=False)

    def __post_init__(self) -> None:
        start, end = _to_utc(self.start, "start"), _to_utc(self.end, "end")
        if start is None or end is None or not start < end:
            raise PeriodError(f"Span `{self.label}` needs a start before its end, not `{self.start}` to `{self.end}`.")
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)

    def __str__(self) -> str:
        return self.label


def same_period_last_year(period: str | Period) -> Period:
    """The same period a year earlier: 12 months or 4 quarters back, or 52 ISO weeks back for a week.

    >>> [str(same_period_last_year(p)) for p in ("2026-10", "2026-Q4", "2026-W44")]
    ['2025-10', '2025-Q4', '2025-W44']
    """
    p = parse_period(period)
    return p.previous({"month": 12, "quarter": 4, "week": 52}[p.kind])


def _fiscal_year_first_day(ts: pd.Timestamp, fiscal: int) -> _dt.date:
    """First day of the fiscal year holding UTC time ``ts``."""
    q = period_of(ts, "quarter", fiscal_year_start_month=fiscal)
    year, _ = q._parts()
    return _make("quarter", year, 1, fiscal).start_date


def periods_to_date(period: str | Period) -> list[Period]:
    """The periods of ``period``'s kind from the start of its fiscal year up to and including it, oldest first.

    A month or quarter belongs to the fiscal year holding its first day; an ISO week to the fiscal year
    holding its Thursday, and the year's weeks start with the first week whose Thursday is in it (with
    January fiscal years: the ISO year's weeks, from ``W01``).

    >>> [str(p) for p in periods_to_date("2026-03")]
    ['2026-01', '2026-02', '2026-03']
    >>> [str(p) for p in periods_to_date(parse_period("2026-Q3", fiscal_year_start_month=2))]
    ['2026-Q1', '2026-Q2', '2026-Q3']
    >>> [str(p) for p in periods_to_date("2026-W02")]
    ['2026-W01', '2026-W02']
    """
    p = parse_period(period)
    fiscal = p.fiscal_year_start_month
    if p.kind == "week":
        first_day = _fiscal_year_first_day(p.start + pd.Timedelta(days=3), fiscal)
        first = period_of(pd.Timestamp(first_day) + pd.Timedelta(days=3), "week", fiscal_year_start_month=fiscal)
    else:
        first = period_of(pd.Timestamp(_fiscal_year_first_day(p.start, fiscal)), p.kind,
                          fiscal_year_start_month=fiscal)
    return periods_between(first, p)


def year_to_date(period: str | Period) -> Span:
    """The year to date of a period: from the first day of :func:`periods_to_date`'s first period to the period's
    end, labelled ``<period> YTD``.

    >>> s = year_to_date(parse_period("2026-Q2", fiscal_year_start_month=11))
    >>> s.label, str(s.start_date), str(s.end_date)
    ('2026-Q2 YTD', '2025-11-01', '2026-05-01')
    """
    p = parse_period(period)
    first = periods_to_date(p)[0]
    return Span(f"{p.label} YTD", first.start, p.end, p.fiscal_year_start_month)


# --------------------------------------------------------------------------
# Public functions
# --------------------------------------------------------------------------


def parse_period(label: str | Period, *, fiscal_year_start_month: int | None = None) -> Period:
    """Read a period label.

    Parameters
    ----------
    label : str or Period
        ``YYYY-MM`` (month), ``YYYY-Qn`` (quarter, n in 1-4) or ``YYYY-Www``
        (ISO week that exists in that ISO year). Case and surrounding
        whitespace are ignored. A :class:`Period` is returned as it is.
    fiscal_year_start_month : int, optional
        Month (1-12) in which the fiscal year starts; shifts quarters only.
        Default 1 for a label, and the period's own setting for a
        :class:`Period`. Giving a different setting for a quarter that was
        already read is an error (it would change what the quarter means).

    Returns
    -------
    Period

    Raises
    ------
    PeriodError
        For anything else: other text, numbers, dates, ``None``.

    Examples
    --------
    >>> p = parse_period(" 2026-q4 ")
    >>> p.label, p.kind, str(p.start_date), str(p.last_day)
    ('2026-Q4', 'quarter', '2026-10-01', '2026-12-31')
    >>> q = parse_period("2027-Q1", fiscal_year_start_month=2)
    >>> str(q.start_date), str(q.end_date)
    ('2026-02-01', '2026-05-01')
    >>> parse_period("2026-13")
    Traceback (most recent call last):
    ...
    revops_lib.errors.PeriodError: Cannot read period `2026-13`: use YYYY-MM (month, e.g. 2026-10), YYYY-Qn (quarter, e.g. 2026-Q4) or YYYY-Www (ISO week, e.g. 2026-W44). Months run from 01 to 12.
    """
    if isinstance(label, Period):
        if fiscal_year_start_month is None:
            return label
        fiscal = _check_fiscal(fiscal_year_start_month)
        if fiscal == label.fiscal_year_start_month:
            return label
        if label.kind == "quarter":
            raise PeriodError(
                f"Quarter `{label.label}` was read with fiscal_year_start_month="
                f"{label.fiscal_year_start_month}, not `fiscal_year_start_month`={fiscal}: "
                "parse its label again with the fiscal setting you mean."
            )
        kind, year, number = _parse_parts(label.label)
        return _make(kind, year, number, fiscal)
    fiscal = _check_fiscal(1 if fiscal_year_start_month is None else fiscal_year_start_month)
    kind, year, number = _parse_parts(label)
    return _make(kind, year, number, fiscal)


def period_of(ts: object, kind: str, *, fiscal_year_start_month: int = 1) -> Period:
    """The period of ``kind`` that contains time ``ts``.

    Parameters
    ----------
    ts : date, datetime, str, numpy.datetime64 or pandas.Timestamp
        Naive times are read as UTC; aware times are converted to UTC first.
    kind : {'month', 'quarter', 'week'}
    fiscal_year_start_month : int, default 1
        Month (1-12) in which the fiscal year starts; shifts quarters only.

    Returns
    -------
    Period

    Examples
    --------
    >>> str(period_of("2026-10-15T08:30", "week"))
    '2026-W42'
    >>> str(period_of("2026-01-15", "quarter", fiscal_year_start_month=2))
    '2026-Q4'
    >>> str(period_of("2026-11-01T00:30:00+01:00", "month"))  # still October in UTC
    '2026-10'
    """
    name = _check_kind(kind)
    fiscal = _check_fiscal(fiscal_year_start_month)
    when = _to_utc(ts, "ts")
    if when is None:
        raise PeriodError(f"`ts` is missing (`{ts!r}`): a missing time is in no period.")
    return _make(name, *_parts_of(when, name, fiscal), fiscal)


def default_period(*, now: object = None, kind: str = "month", fiscal_year_start_month: int = 1) -> Period:
    """The last complete period of ``kind`` before ``now``.

    Parameters
    ----------
    now : date, datetime, str or pandas.Timestamp, optional
        The clock (naive = UTC); default the current time in UTC. Inject it
        in tests and backfills.
    kind : {'month', 'quarter', 'week'}, default 'month'
    fiscal_year_start_month : int, default 1
        Month (1-12) in which the fiscal year starts; shifts quarters only.

    Returns
    -------
    Period
        The period before the one containing ``now``. A period that starts
        exactly at ``now`` has not happened yet, so at 2026-11-01T00:00Z the
        last complete month is ``2026-10``.

    Examples
    --------
    >>> str(default_period(now="2026-11-25"))
    '2026-10'
    >>> str(default_period(now="2026-11-25", kind="quarter"))
    '2026-Q3'
    >>> str(default_period(now="2026-11-25", kind="week"))  # Wednesday of W48
    '2026-W47'
    """
    if now is None:
        now = _dt.datetime.now(_dt.timezone.utc)
    when = _to_utc(now, "now")
    if when is None:
        raise PeriodError(f"`now` is missing (`{now!r}`): give a time or leave it out for the current time.")
    return period_of(when, kind, fiscal_year_start_month=fiscal_year_start_month).previous()


def periods_between(
    first: str | Period,
    last: str | Period,
    *,
    fiscal_year_start_month: int | None = None,
) -> list[Period]:
    """Every period from ``first`` to ``last``, both included, oldest first.

    Parameters
    ----------
    first, last : str or Period
        Labels or periods of the same kind, ``first`` not after ``last``.
    fiscal_year_start_month : int, optional
        Fiscal setting for labels (quarters only). Default: the setting of
        whichever end is a :class:`Period`, else 1.

    Returns
    -------
    list of Period

    Raises
    ------
    PeriodError
        If a label cannot be read, the kinds differ, the two ends are quarters
        of different fiscal settings, or ``first`` comes after ``last``.

    Examples
    --------
    >>> [str(p) for p in periods_between("2026-11", "2027-02")]
    ['2026-11', '2026-12', '2027-01', '2027-02']
    >>> [str(p) for p in periods_between("2026-W52", "2027-W01")]
    ['2026-W52', '2026-W53', '2027-W01']
    """
    fiscal = fiscal_year_start_month
    if fiscal is None:
        for end in (first, last):
            if isinstance(end, Period):
                fiscal = end.fiscal_year_start_month
                break
    start_period = parse_period(first, fiscal_year_start_month=fiscal)
    end_period = parse_period(last, fiscal_year_start_month=fiscal)
    if start_period.kind != end_period.kind:
        raise PeriodError(
            f"Cannot list periods from `{start_period}` ({start_period.kind}) to "
            f"`{end_period}` ({end_period.kind}): `first` and `last` must be the same kind."
        )
    if end_period.start < start_period.start:
        raise PeriodError(
            f"`first` period `{start_period}` comes after `last` period `{end_period}`: "
            "give the earlier period first."
        )
    result = [start_period]
    while result[-1].start < end_period.start:
        result.append(result[-1].next())
    return result


def label_kind(label: str) -> str:
    """The kind of a period label: ``'month'``, ``'quarter'`` or ``'week'``.

    Raises
    ------
    PeriodError
        If ``label`` is not a valid period label.

    Examples
    --------
    >>> label_kind("2026-10"), label_kind("2026-Q4"), label_kind("2026-W44")
    ('month', 'quarter', 'week')
    """
    kind, _, _ = _parse_parts(label)
    return kind


def is_period_label(label: object) -> bool:
    """Whether ``label`` is a valid period label (text); never raises.

    Examples
    --------
    >>> is_period_label("2026-W53"), is_period_label("2027-W53"), is_period_label(202610)
    (True, False, False)
    """
    try:
        _parse_parts(label)
    except Exception:
        return False
    return True


def resolve_as_of(period: "str | Period | None", as_of: object = None) -> pd.Timestamp:
    """The report's cut-off instant, as a naive UTC timestamp.

    ``as_of`` empty or None means the period's end (so the whole period counts).
    A date (``"2026-11-05"``) means that day's start, 00:00 UTC; a time with an
    offset is converted to UTC. The cut-off is exclusive: a row counts when its
    time is before it.

    >>> resolve_as_of("2026-10")
    Timestamp('2026-11-01 00:00:00')
    >>> resolve_as_of("2026-10", "2026-10-15")
    Timestamp('2026-10-15 00:00:00')
    """
    if as_of is None or (isinstance(as_of, str) and not as_of.strip()):
        if period is None:
            raise PeriodError("Give `period` or `as_of`: the cut-off defaults to the period's end.")
        return period.end_naive if isinstance(period, Span) else parse_period(period).end_naive
    ts = _to_utc(as_of, "as_of")
    if ts is None:
        raise PeriodError(f"Cannot read `as_of` {as_of!r}: use a date such as 2026-11-05 or an ISO time.")
    return ts.tz_localize(None)


def _blank(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def window(period=None, as_of=None, *, fiscal_year_start_month: int | None = None,
           period_required: bool = False) -> tuple[Period | None, pd.Timestamp]:
    """The one cut-off resolver: ``(period, cut-off)`` for every metric.

    ``period`` (a label, a :class:`Period` or a :class:`Span`) may be empty when ``as_of`` is given; ``as_of`` empty
    means the period's end. The cut-off is a naive UTC timestamp (an aware ``as_of`` is converted
    to UTC, a date is its day's start) and exclusive: a row counts when its time is before it.

    >>> window("2026-10")[1]
    Timestamp('2026-11-01 00:00:00')
    >>> window(None, "2026-10-15T02:00:00+02:00")
    (None, Timestamp('2026-10-15 00:00:00'))

    Raises
    ------
    ParameterError
        When both are empty (or ``period`` is, with ``period_required``).
    PeriodError
        When either cannot be read.
    """
    if period_required and _blank(period):
        raise ParameterError("`period` is required: give a label such as 2026-10, 2026-Q4 or 2026-W44.")
    if isinstance(period, (Period, Span)):
        p = period
    else:
        p = None if _blank(period) else parse_period(period, fiscal_year_start_month=fiscal_year_start_month)
    if p is None and _blank(as_of):
        raise ParameterError("Give `period` (e.g. '2026-10') or `as_of` (e.g. '2026-11-01'): the cut-off defaults "
                             "to the period's end.")
    return p, resolve_as_of(p, as_of)
