"""Period labels, bounds, fiscal quarters, ISO weeks and the default period."""

from __future__ import annotations

import datetime as dt
import doctest
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import revops_lib.periods as periods_module
from revops_lib.errors import PeriodError, RevOpsError
from revops_lib.periods import (
    Period,
    default_period,
    is_period_label,
    label_kind,
    parse_period,
    period_of,
    periods_between,
)

UTC = dt.timezone.utc
FORMS = (
    "use YYYY-MM (month, e.g. 2026-10), YYYY-Qn (quarter, e.g. 2026-Q4) "
    "or YYYY-Www (ISO week, e.g. 2026-W44)."
)


def utc(text):
    return pd.Timestamp(text, tz="UTC")


def labels(items):
    return [str(p) for p in items]


# -- labels and bounds ---------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "kind", "start", "end", "days"),
    [
        ("2026-10", "month", "2026-10-01", "2026-11-01", 31),
        ("2026-02", "month", "2026-02-01", "2026-03-01", 28),
        ("2024-02", "month", "2024-02-01", "2024-03-01", 29),
        ("2026-12", "month", "2026-12-01", "2027-01-01", 31),
        ("2026-Q1", "quarter", "2026-01-01", "2026-04-01", 90),
        ("2026-Q4", "quarter", "2026-10-01", "2027-01-01", 92),
        ("2026-W44", "week", "2026-10-26", "2026-11-02", 7),
        ("2026-W01", "week", "2025-12-29", "2026-01-05", 7),
        ("2025-W01", "week", "2024-12-30", "2025-01-06", 7),
        ("2020-W53", "week", "2020-12-28", "2021-01-04", 7),
        ("2026-W53", "week", "2026-12-28", "2027-01-04", 7),
    ],
)
def test_label_gives_utc_half_open_bounds(label, kind, start, end, days):
    result = parse_period(label)

    assert result.label == label
    assert result.kind == kind
    assert result.start == utc(start)
    assert result.end == utc(end)
    assert str(result.start.tz) == "UTC" and str(result.end.tz) == "UTC"
    assert result.start_naive == pd.Timestamp(start) and result.start_naive.tzinfo is None
    assert result.end_naive == pd.Timestamp(end) and result.end_naive.tzinfo is None
    assert result.start_date == dt.date.fromisoformat(start)
    assert result.end_date == dt.date.fromisoformat(end)
    assert result.last_day == dt.date.fromisoformat(end) - dt.timedelta(days=1)
    assert result.days == days
    assert str(result) == label
    assert f"{result}" == label


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-q4", "2026-Q4"),
        ("  2026-Q4\n", "2026-Q4"),
        ("2026-w05", "2026-W05"),
        (" 2026-10 ", "2026-10"),
        ("\t2026-W44", "2026-W44"),
    ],
)
def test_lowercase_and_whitespace_give_the_canonical_label(text, expected):
    result = parse_period(text)

    assert result.label == expected
    assert result == parse_period(expected)


@pytest.mark.parametrize(
    ("label", "reason"),
    [
        ("2026-13", " Months run from 01 to 12."),
        ("2026-00", " Months run from 01 to 12."),
        ("2026-Q5", " Quarters run from Q1 to Q4."),
        ("2026-Q0", " Quarters run from Q1 to Q4."),
        ("2026-W00", " ISO year 2026 has weeks W01 to W53."),
        ("2027-W53", " ISO year 2027 has weeks W01 to W52."),
        ("2025-W53", " ISO year 2025 has weeks W01 to W52."),
        ("0000-01", " Years run from 0001 to 9999."),
        ("26-10", ""),
        ("2026/10", ""),
        ("2026-1", ""),
        ("2026-W1", ""),
        ("2026-Q04", ""),
        ("2026-10-01", ""),
        ("2026-H1", ""),
        ("2026M10", ""),
        ("", ""),
        ("october", ""),
        ("２０２６-10", ""),  # full-width digits are not ASCII digits
    ],
)
def test_bad_label_names_the_label_and_the_accepted_forms(label, reason):
    expected = f"Cannot read period `{label}`: {FORMS}{reason}"

    with pytest.raises(PeriodError, match=f"^{re.escape(expected)}$"):
        parse_period(label)
    with pytest.raises(PeriodError, match=re.escape(expected)):
        label_kind(label)
    assert is_period_label(label) is False


def test_bad_label_message_matches_the_documented_example():
    expected = (
        "Cannot read period `2026-13`: use YYYY-MM (month, e.g. 2026-10), "
        "YYYY-Qn (quarter, e.g. 2026-Q4) or YYYY-Www (ISO week, e.g. 2026-W44)."
    )

    with pytest.raises(PeriodError, match=re.escape(expected)):
        parse_period("2026-13")


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (2016, "`2016` (int, not text)"),  # YAML 1.1 may read unquoted 2026-10 as a number
        (None, "`None` (NoneType, not text)"),
        (dt.date(2026, 10, 1), "`2026-10-01` (date, not text)"),
        (202610, "`202610` (int, not text)"),
        (2026.10, "`2026.1` (float, not text)"),
        (["2026-10"], "`['2026-10']` (list, not text)"),
    ],
)
def test_non_text_period_is_refused_with_a_yaml_quoting_hint(value, shown):
    expected = f"Cannot read period {shown}: {FORMS} Periods are text: in YAML, quote them"

    with pytest.raises(PeriodError, match=re.escape(expected)):
        parse_period(value)
    assert is_period_label(value) is False


def test_period_error_is_a_value_error_under_the_common_base():
    with pytest.raises(ValueError):
        parse_period("2026-13")
    with pytest.raises(RevOpsError):
        parse_period("2026-13")


@pytest.mark.parametrize(
    ("label", "expected"),
    [("2026-10", "month"), ("2026-Q4", "quarter"), ("2026-W44", "week"), ("2026-q1", "quarter")],
)
def test_label_kind_names_the_kind(label, expected):
    assert label_kind(label) == expected
    assert is_period_label(label) is True


def test_is_period_label_never_raises_on_odd_input():
    class Weird:
        def __str__(self):
            raise RuntimeError("boom")

    for value in [Weird(), object(), b"2026-10", float("nan"), pd.NaT, 1.5, {}]:
        assert is_period_label(value) is False


def test_parse_period_returns_a_period_unchanged():
    quarter = parse_period("2027-Q1", fiscal_year_start_month=2)

    assert parse_period(quarter) is quarter
    assert parse_period(quarter, fiscal_year_start_month=2) is quarter


def test_parse_period_refuses_to_reinterpret_a_quarter_under_another_fiscal_year():
    quarter = parse_period("2027-Q1", fiscal_year_start_month=2)

    with pytest.raises(PeriodError, match=r"Quarter `2027-Q1` was read with fiscal_year_start_month=2, not `fiscal_year_start_month`=4"):
        parse_period(quarter, fiscal_year_start_month=4)


def test_parse_period_moves_a_month_to_another_fiscal_setting_without_changing_it():
    month = parse_period("2026-10")

    result = parse_period(month, fiscal_year_start_month=4)

    assert result == month
    assert result.fiscal_year_start_month == 4
    assert result.previous(3).fiscal_year_start_month == 4


@pytest.mark.parametrize("value", [0, 13, -1, 2.0, "2", True])
def test_bad_fiscal_year_start_month_is_named(value):
    with pytest.raises(PeriodError, match=r"`fiscal_year_start_month` must be a whole number from 1 \(January\) to 12 \(December\)"):
        parse_period("2026-Q1", fiscal_year_start_month=value)
    with pytest.raises(PeriodError, match="`fiscal_year_start_month`"):
        period_of("2026-10-15", "quarter", fiscal_year_start_month=value)


def test_parse_period_reads_labels_with_calendar_quarters_by_default():
    assert parse_period("2026-Q1", fiscal_year_start_month=None) == parse_period("2026-Q1")
    assert parse_period("2026-Q1").fiscal_year_start_month == 1
    with pytest.raises(PeriodError, match="`fiscal_year_start_month`"):
        period_of("2026-10-15", "quarter", fiscal_year_start_month=None)


def test_fiscal_year_start_month_accepts_numpy_integers():
    result = parse_period("2027-Q1", fiscal_year_start_month=np.int64(2))

    assert result.start_date == dt.date(2026, 2, 1)
    assert type(result.fiscal_year_start_month) is int


def test_period_at_the_edge_of_the_calendar_is_refused():
    with pytest.raises(PeriodError, match=r"Period `9999-12` falls outside the supported calendar"):
        parse_period("9999-12")
    with pytest.raises(PeriodError, match=r"leaves years 0001-9999"):
        parse_period("0001-01").previous()


# -- Period as a value ------------------------------------------------------------


def test_periods_are_hashable_and_equal_by_label_and_span():
    a = parse_period("2026-10")
    b = parse_period(" 2026-10")
    month_with_fiscal_setting = parse_period("2026-10", fiscal_year_start_month=4)

    assert a == b and hash(a) == hash(b)
    assert a == month_with_fiscal_setting  # months are never shifted
    assert len({a, b, month_with_fiscal_setting, parse_period("2026-11")}) == 2
    assert parse_period("2026-Q1") != parse_period("2026-Q1", fiscal_year_start_month=4)


def test_periods_sort_by_start():
    items = [parse_period(x) for x in ["2026-Q4", "2026-11", "2026-W40", "2025-12", "2026-10"]]

    result = sorted(items)

    assert labels(result) == ["2025-12", "2026-W40", "2026-10", "2026-Q4", "2026-11"]
    assert parse_period("2026-10") < parse_period("2026-11") <= parse_period("2026-11")
    assert max(items) == parse_period("2026-11")


def test_period_cannot_be_compared_with_text():
    with pytest.raises(TypeError):
        parse_period("2026-10") < "2026-11"  # noqa: B015


def test_period_is_frozen():
    period = parse_period("2026-10")

    with pytest.raises(AttributeError):
        period.label = "2026-11"


def test_hand_built_period_must_agree_with_its_label():
    good = Period("2026-10", "month", utc("2026-10-01"), utc("2026-11-01"))
    naive_input = Period("2026-q4", "quarter", pd.Timestamp("2026-10-01"), dt.datetime(2027, 1, 1))

    assert good == parse_period("2026-10")
    assert naive_input == parse_period("2026-Q4")
    assert str(naive_input.start.tz) == "UTC"
    with pytest.raises(PeriodError, match=r"Period `2026-10` .* build periods with parse_period\(\)"):
        Period("2026-10", "month", utc("2026-10-01"), utc("2026-10-31"))
    with pytest.raises(PeriodError, match="Cannot read period `2026-13`"):
        Period("2026-13", "month", utc("2026-12-01"), utc("2027-01-01"))


# -- fiscal quarters -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("fiscal", "label", "start", "end"),
    [
        (1, "2026-Q1", "2026-01-01", "2026-04-01"),
        # start month 2: FY2027 = 2026-02-01 .. 2027-02-01 (named by the year it ends in)
        (2, "2027-Q1", "2026-02-01", "2026-05-01"),
        (2, "2027-Q2", "2026-05-01", "2026-08-01"),
        (2, "2027-Q4", "2026-11-01", "2027-02-01"),
        (2, "2026-Q4", "2025-11-01", "2026-02-01"),
        # start month 4: FY2027 = 2026-04-01 .. 2027-04-01
        (4, "2027-Q1", "2026-04-01", "2026-07-01"),
        (4, "2027-Q3", "2026-10-01", "2027-01-01"),
        (4, "2027-Q4", "2027-01-01", "2027-04-01"),
        # start month 7: FY2027 = 2026-07-01 .. 2027-07-01
        (7, "2027-Q1", "2026-07-01", "2026-10-01"),
        (7, "2027-Q2", "2026-10-01", "2027-01-01"),
        (7, "2026-Q4", "2026-04-01", "2026-07-01"),
        # start month 10: FY2027 = 2026-10-01 .. 2027-10-01 (US federal style)
        (10, "2027-Q1", "2026-10-01", "2027-01-01"),
        (10, "2027-Q4", "2027-07-01", "2027-10-01"),
        (12, "2027-Q1", "2026-12-01", "2027-03-01"),
    ],
)
def test_fiscal_year_start_month_shifts_quarters(fiscal, label, start, end):
    result = parse_period(label, fiscal_year_start_month=fiscal)

    assert (result.start, result.end) == (utc(start), utc(end))
    assert result.fiscal_year_start_month == fiscal
    assert [m.start_date for m in result.months()] == [
        d.date() for d in pd.date_range(start, periods=3, freq="MS")
    ]


@pytest.mark.parametrize("fiscal", [2, 4, 7, 10])
def test_fiscal_year_has_four_quarters_that_tile_it(fiscal):
    quarters = [parse_period(f"2027-Q{q}", fiscal_year_start_month=fiscal) for q in range(1, 5)]

    assert quarters[0].start == utc(f"2026-{fiscal:02d}-01")
    assert quarters[-1].end == utc(f"2027-{fiscal:02d}-01")
    assert all(a.end == b.start for a, b in zip(quarters, quarters[1:]))


@pytest.mark.parametrize(
    ("fiscal", "label", "previous", "next_"),
    [
        (1, "2026-Q1", "2025-Q4", "2026-Q2"),
        (1, "2026-Q4", "2026-Q3", "2027-Q1"),
        (2, "2027-Q1", "2026-Q4", "2027-Q2"),
        (4, "2027-Q4", "2027-Q3", "2028-Q1"),
        (7, "2027-Q1", "2026-Q4", "2027-Q2"),
        (10, "2027-Q4", "2027-Q3", "2028-Q1"),
    ],
)
def test_fiscal_quarter_previous_and_next_keep_the_fiscal_setting(fiscal, label, previous, next_):
    quarter = parse_period(label, fiscal_year_start_month=fiscal)

    before, after = quarter.previous(), quarter.next()

    assert (before.label, after.label) == (previous, next_)
    assert before.fiscal_year_start_month == after.fiscal_year_start_month == fiscal
    assert before.end == quarter.start and after.start == quarter.end


@pytest.mark.parametrize(
    ("fiscal", "when", "expected_label", "expected_start"),
    [
        (1, "2026-01-15", "2026-Q1", "2026-01-01"),
        (2, "2026-01-31T23:59:59", "2026-Q4", "2025-11-01"),
        (2, "2026-02-01", "2027-Q1", "2026-02-01"),
        (4, "2026-03-31", "2026-Q4", "2026-01-01"),
        (4, "2026-04-01", "2027-Q1", "2026-04-01"),
        (7, "2026-11-15", "2027-Q2", "2026-10-01"),
        (10, "2026-09-30", "2026-Q4", "2026-07-01"),
        (10, "2026-10-01", "2027-Q1", "2026-10-01"),
    ],
)
def test_period_of_finds_the_fiscal_quarter(fiscal, when, expected_label, expected_start):
    result = period_of(when, "quarter", fiscal_year_start_month=fiscal)

    assert result.label == expected_label
    assert result.start == utc(expected_start)
    assert result == parse_period(expected_label, fiscal_year_start_month=fiscal)


def test_fiscal_setting_never_shifts_months_or_weeks():
    for label in ["2026-10", "2026-W44"]:
        assert parse_period(label, fiscal_year_start_month=7) == parse_period(label)
    assert period_of("2026-10-15", "month", fiscal_year_start_month=7).label == "2026-10"


# -- ISO weeks across New Year ------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "previous", "next_"),
    [
        ("2026-W01", "2025-W52", "2026-W02"),  # 2025 has 52 ISO weeks
        ("2021-W01", "2020-W53", "2021-W02"),  # 2020 has 53
        ("2020-W53", "2020-W52", "2021-W01"),
        ("2026-W53", "2026-W52", "2027-W01"),
        ("2025-W01", "2024-W52", "2025-W02"),
    ],
)
def test_week_previous_and_next_cross_new_year(label, previous, next_):
    week = parse_period(label)

    assert (week.previous().label, week.next().label) == (previous, next_)
    assert week.previous().end == week.start
    assert week.next().start == week.end


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("2025-12-29", "2026-W01"),  # Monday, still calendar 2025
        ("2025-12-28T23:59:59", "2025-W52"),
        ("2021-01-03", "2020-W53"),  # Sunday, already calendar 2021
        ("2024-12-30", "2025-W01"),
        ("2027-01-03", "2026-W53"),
    ],
)
def test_period_of_finds_the_iso_week_across_new_year(when, expected):
    assert period_of(when, "week").label == expected


def test_weeks_start_on_monday_midnight_utc():
    week = parse_period("2026-W44")

    assert week.start.weekday() == 0
    assert week.start == utc("2026-10-26T00:00")
    assert week.contains("2026-10-26T00:00:00Z")
    assert not week.contains("2026-10-25T23:59:59.999999Z")


# -- previous, next, trailing ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "n", "previous", "next_"),
    [
        ("2026-01", 1, "2025-12", "2026-02"),
        ("2026-12", 1, "2026-11", "2027-01"),
        ("2026-10", 13, "2025-09", "2027-11"),
        ("2026-10", 0, "2026-10", "2026-10"),
        ("2026-10", -1, "2026-11", "2026-09"),
        ("2026-Q1", 5, "2024-Q4", "2027-Q2"),
        ("2026-W01", 53, "2024-W52", "2027-W01"),  # 2025 has 52 weeks, 2026 has 53
        ("2026-W01", 52, "2025-W01", "2026-W53"),
    ],
)
def test_previous_and_next_move_n_periods(label, n, previous, next_):
    period = parse_period(label)

    assert period.previous(n).label == previous
    assert period.next(n).label == next_


@pytest.mark.parametrize("n", [1.5, "2", None, True])
def test_previous_and_next_want_a_whole_number(n):
    period = parse_period("2026-10")

    with pytest.raises(PeriodError, match=r"`n` must be a whole number"):
        period.previous(n)
    with pytest.raises(PeriodError, match=r"`n` must be a whole number"):
        period.next(n)


@pytest.mark.parametrize(
    ("label", "n", "expected"),
    [
        ("2026-02", 3, ["2025-12", "2026-01", "2026-02"]),
        ("2026-10", 1, ["2026-10"]),
        ("2026-Q1", 4, ["2025-Q2", "2025-Q3", "2025-Q4", "2026-Q1"]),
        ("2026-W02", 3, ["2025-W52", "2026-W01", "2026-W02"]),
    ],
)
def test_trailing_lists_n_periods_ending_with_self_oldest_first(label, n, expected):
    assert labels(parse_period(label).trailing(n)) == expected


@pytest.mark.parametrize("n", [0, -3, 2.5])
def test_trailing_wants_at_least_one_period(n):
    with pytest.raises(PeriodError, match=r"`n` must be a whole number >= 1"):
        parse_period("2026-10").trailing(n)


def test_trailing_fiscal_quarters_keep_the_fiscal_setting():
    result = parse_period("2027-Q1", fiscal_year_start_month=2).trailing(2)

    assert labels(result) == ["2026-Q4", "2027-Q1"]
    assert result[0].start == utc("2025-11-01")


# -- weeks() and months() -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("2026-02", ["2026-W05", "2026-W06", "2026-W07", "2026-W08", "2026-W09"]),
        # 2026-06-01 is a Monday, so the first week starts with the month; W27 holds 29-30 June
        ("2026-06", ["2026-W23", "2026-W24", "2026-W25", "2026-W26", "2026-W27"]),
        ("2021-01", ["2020-W53", "2021-W01", "2021-W02", "2021-W03", "2021-W04"]),
        ("2026-W44", ["2026-W44"]),
    ],
)
def test_weeks_lists_iso_weeks_overlapping_the_period(label, expected):
    result = parse_period(label).weeks()

    assert labels(result) == expected
    period = parse_period(label)
    assert result[0].start <= period.start and result[-1].end >= period.end


def test_weeks_of_a_quarter_cover_it_without_gaps():
    quarter = parse_period("2026-Q4")

    result = quarter.weeks()

    assert labels(result[:1] + result[-1:]) == ["2026-W40", "2026-W53"]
    assert len(result) == 14
    assert all(a.end == b.start for a, b in zip(result, result[1:]))


@pytest.mark.parametrize(
    ("label", "fiscal", "expected"),
    [
        ("2026-Q4", 1, ["2026-10", "2026-11", "2026-12"]),
        ("2027-Q4", 2, ["2026-11", "2026-12", "2027-01"]),
        ("2026-W05", 1, ["2026-01", "2026-02"]),  # Mon 26 Jan .. Sun 1 Feb
        ("2026-W53", 1, ["2026-12", "2027-01"]),
        ("2026-W44", 1, ["2026-10", "2026-11"]),
        ("2026-W45", 1, ["2026-11"]),
        ("2026-10", 1, ["2026-10"]),
    ],
)
def test_months_lists_calendar_months_overlapping_the_period(label, fiscal, expected):
    assert labels(parse_period(label, fiscal_year_start_month=fiscal).months()) == expected


# -- contains ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-10-01", True),  # start is included
        ("2026-10-01T00:00:00Z", True),
        ("2026-11-01", False),  # end is excluded
        ("2026-11-01T00:00:00Z", False),
        ("2026-10-31T23:59:59.999999", True),
        ("2026-09-30T23:59:59.999999", False),
        (dt.date(2026, 10, 1), True),
        (dt.date(2026, 11, 1), False),
        (dt.date(2026, 10, 31), True),
        (dt.datetime(2026, 10, 15, 12, 0), True),  # naive = UTC
        (dt.datetime(2026, 11, 1, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=1))), True),  # 23:30Z
        (dt.datetime(2026, 9, 30, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-1))), True),  # 00:30Z
        (pd.Timestamp("2026-11-01", tz="UTC"), False),
        (pd.Timestamp("2026-10-31 23:00"), True),
        (pd.Timestamp("2026-11-01 00:30", tz="Europe/Paris"), True),
        (np.datetime64("2026-10-05T10:00"), True),
        (None, False),
        (pd.NaT, False),
    ],
)
def test_contains_includes_start_and_excludes_end(value, expected):
    assert parse_period("2026-10").contains(value) is expected


@pytest.mark.parametrize("value", ["not a date", 1_700_000_000, True, [2026, 10]])
def test_contains_refuses_values_that_are_not_times(value):
    with pytest.raises(PeriodError, match=r"Cannot read `ts` value .* as a time: use a date, a datetime"):
        parse_period("2026-10").contains(value)


# -- period_of ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "kind", "expected"),
    [
        ("2026-10-15T08:30", "month", "2026-10"),
        ("2026-10-15T08:30", "quarter", "2026-Q4"),
        ("2026-10-15T08:30", "week", "2026-W42"),
        ("2026-11-01T00:30:00+01:00", "month", "2026-10"),  # 23:30 UTC on 31 October
        (dt.date(2026, 12, 31), "quarter", "2026-Q4"),
        (pd.Timestamp("2027-01-01", tz="UTC"), "quarter", "2027-Q1"),
        ("2026-10-15", " Month ", "2026-10"),
    ],
)
def test_period_of_finds_the_period_containing_a_time(value, kind, expected):
    result = period_of(value, kind)

    assert result.label == expected
    assert result.contains(value)


def test_period_of_names_a_bad_kind():
    with pytest.raises(PeriodError, match=r"`kind` must be 'month', 'quarter' or 'week', not `'day'`"):
        period_of("2026-10-15", "day")


def test_period_of_refuses_a_missing_time():
    with pytest.raises(PeriodError, match=r"`ts` is missing"):
        period_of(pd.NaT, "month")


# -- default_period ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "kind", "expected"),
    [
        (dt.datetime(2026, 11, 25, 12, 0, tzinfo=UTC), "month", "2026-10"),  # mid-month
        (dt.datetime(2026, 11, 1, 0, 0, tzinfo=UTC), "month", "2026-10"),  # first instant of a month
        (dt.datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC), "month", "2026-09"),  # October not complete yet
        (dt.datetime(2026, 1, 10, tzinfo=UTC), "month", "2025-12"),  # January -> previous December
        ("2026-01-01T00:00:00Z", "month", "2025-12"),
        (dt.datetime(2026, 11, 25, tzinfo=UTC), "quarter", "2026-Q3"),
        (dt.datetime(2026, 10, 1, tzinfo=UTC), "quarter", "2026-Q3"),
        (dt.datetime(2026, 2, 14, tzinfo=UTC), "quarter", "2025-Q4"),
        (dt.datetime(2026, 11, 25, tzinfo=UTC), "week", "2026-W47"),  # Wednesday of W48
        (dt.datetime(2026, 11, 23, 0, 0, tzinfo=UTC), "week", "2026-W47"),  # Monday 00:00 of W48
        (dt.datetime(2026, 11, 22, 23, 59, tzinfo=UTC), "week", "2026-W46"),  # Sunday: W47 not over yet
        (dt.datetime(2026, 1, 2, tzinfo=UTC), "week", "2025-W52"),
        (dt.datetime(2021, 1, 6, tzinfo=UTC), "week", "2020-W53"),
        ("2026-11-01T00:30:00+01:00", "month", "2026-09"),  # 31 Oct 23:30 UTC
        (dt.date(2026, 11, 1), "month", "2026-10"),
        (pd.Timestamp("2026-11-25"), "month", "2026-10"),
    ],
)
def test_default_period_is_the_last_complete_period_before_now(now, kind, expected):
    result = default_period(now=now, kind=kind)

    assert result.label == expected
    clock = pd.Timestamp(now)
    clock = clock.tz_localize("UTC") if clock.tzinfo is None else clock.tz_convert("UTC")
    assert result.end <= clock < result.next().end


def test_default_period_uses_the_fiscal_setting_for_quarters():
    result = default_period(now="2026-02-14", kind="quarter", fiscal_year_start_month=2)

    assert result.label == "2026-Q4"
    assert (result.start_date, result.end_date) == (dt.date(2025, 11, 1), dt.date(2026, 2, 1))


def test_default_period_without_a_clock_is_the_month_before_the_current_one():
    result = default_period()

    current = period_of(dt.datetime.now(dt.timezone.utc), "month")
    assert result in (current.previous(), current.previous(2))  # tolerate a month boundary mid-test
    assert result.kind == "month"


def test_default_period_refuses_a_bad_clock():
    with pytest.raises(PeriodError, match=r"Cannot read `now` value `'soon'` as a time"):
        default_period(now="soon")
    with pytest.raises(PeriodError, match=r"`now` is missing"):
        default_period(now=pd.NaT)


# -- periods_between -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "last", "expected"),
    [
        ("2026-11", "2027-02", ["2026-11", "2026-12", "2027-01", "2027-02"]),
        ("2026-10", "2026-10", ["2026-10"]),
        ("2025-Q4", "2026-Q2", ["2025-Q4", "2026-Q1", "2026-Q2"]),
        ("2020-W52", "2021-W02", ["2020-W52", "2020-W53", "2021-W01", "2021-W02"]),
        (" 2026-w52", "2027-W01", ["2026-W52", "2026-W53", "2027-W01"]),
    ],
)
def test_periods_between_lists_the_inclusive_range(first, last, expected):
    assert labels(periods_between(first, last)) == expected
    assert labels(periods_between(parse_period(first), parse_period(last))) == expected


def test_periods_between_keeps_the_fiscal_setting_of_a_period_end():
    first = parse_period("2027-Q1", fiscal_year_start_month=4)

    result = periods_between(first, "2027-Q3")

    assert labels(result) == ["2027-Q1", "2027-Q2", "2027-Q3"]
    assert result[-1].start == utc("2026-10-01")
    by_keyword = periods_between("2027-Q1", "2027-Q3", fiscal_year_start_month=4)
    assert by_keyword == result


def test_periods_between_refuses_mixed_kinds():
    with pytest.raises(PeriodError, match=r"from `2026-10` \(month\) to `2026-Q4` \(quarter\): `first` and `last` must be the same kind"):
        periods_between("2026-10", "2026-Q4")


def test_periods_between_refuses_a_reversed_range():
    with pytest.raises(PeriodError, match=r"`first` period `2026-12` comes after `last` period `2026-10`"):
        periods_between("2026-12", "2026-10")


def test_periods_between_refuses_quarters_of_different_fiscal_years():
    first = parse_period("2027-Q1", fiscal_year_start_month=4)
    last = parse_period("2027-Q2", fiscal_year_start_month=7)

    with pytest.raises(PeriodError, match=r"Quarter `2027-Q2` was read with fiscal_year_start_month=7"):
        periods_between(first, last)


def test_periods_between_names_a_bad_label():
    with pytest.raises(PeriodError, match=re.escape(f"Cannot read period `2026-13`: {FORMS}")):
        periods_between("2026-10", "2026-13")


# -- properties ----------------------------------------------------------------------------------

times = st.datetimes(
    min_value=dt.datetime(1900, 1, 1),
    max_value=dt.datetime(2200, 12, 31, 23, 59, 59),
    timezones=st.sampled_from([None, UTC, dt.timezone(dt.timedelta(hours=5, minutes=30)), dt.timezone(dt.timedelta(hours=-8))]),
)
kinds = st.sampled_from(["month", "quarter", "week"])
fiscal_months = st.integers(min_value=1, max_value=12)


@settings(max_examples=300, deadline=None)
@given(when=times, kind=kinds, fiscal=fiscal_months)
def test_period_of_contains_its_time_and_tiles_time(when, kind, fiscal):
    period = period_of(when, kind, fiscal_year_start_month=fiscal)

    assert period.contains(when)
    assert period.kind == kind
    assert period.next().previous() == period
    assert period.previous().next() == period
    assert period.end == period.next().start
    assert period.previous().end == period.start
    assert not period.next().contains(when) and not period.previous().contains(when)
    assert parse_period(period.label, fiscal_year_start_month=fiscal) == period
    assert label_kind(period.label) == kind
    assert period.start.hour == 0 and period.start.minute == 0
    if kind == "week":
        assert period.start.weekday() == 0 and period.days == 7
    elif kind == "month":
        assert period.start.day == 1 and 28 <= period.days <= 31
    else:
        assert period.start.day == 1 and (period.start.month - fiscal) % 3 == 0
        assert 89 <= period.days <= 92


@settings(max_examples=100, deadline=None)
@given(when=times, kind=kinds, fiscal=fiscal_months, n=st.integers(min_value=-120, max_value=120))
def test_shifting_by_n_is_n_single_steps(when, kind, fiscal, n):
    period = period_of(when, kind, fiscal_year_start_month=fiscal)

    shifted = period.next(n)

    assert shifted.previous(n) == period
    assert period.previous(-n) == shifted
    if n >= 0:
        assert len(periods_between(period, shifted)) == n + 1


@settings(max_examples=100, deadline=None)
@given(when=times, kind=kinds, fiscal=fiscal_months)
def test_weeks_and_months_cover_the_period(when, kind, fiscal):
    period = period_of(when, kind, fiscal_year_start_month=fiscal)

    for parts in (period.weeks(), period.months()):
        assert parts[0].start <= period.start < parts[0].end
        assert parts[-1].start < period.end <= parts[-1].end
        assert all(a.end == b.start for a, b in zip(parts, parts[1:]))


def test_docstring_examples_run():
    result = doctest.testmod(periods_module, optionflags=doctest.ELLIPSIS)

    assert result.attempted > 10
    assert result.failed == 0


# --- edges found by mutation testing (2026-12-02): each test fails on a changed line of periods.py ------------

def test_a_span_needs_a_readable_start_before_its_end_and_keeps_utc_bounds():
    from revops_lib.periods import Span

    s = Span("launch", "2026-10-01", "2026-10-05T02:00+02:00")
    assert (s.start, s.end) == (utc("2026-10-01"), utc("2026-10-05"))  # text read, an offset converted to UTC
    assert s.days == 4 and s.kind == "span"
    with pytest.raises(PeriodError, match=r"Span `x` needs a start before its end, not `2026-10-01` to `2026-10-01`"):
        Span("x", "2026-10-01", "2026-10-01")  # an empty stretch of time
    for start, end in ((None, "2026-10-01"), ("2026-10-01", None), (float("nan"), "2026-10-01")):
        with pytest.raises(PeriodError, match="needs a start before its end"):
            Span("x", start, end)
    with pytest.raises(PeriodError, match=r"Cannot read `start` value `'soon'` as a time"):
        Span("x", "soon", "2026-10-01")
    with pytest.raises(PeriodError, match=r"Cannot read `end` value `'later'` as a time"):
        Span("x", "2026-10-01", "later")


def test_a_period_built_by_hand_names_the_bound_it_cannot_read():
    with pytest.raises(PeriodError, match=r"Cannot read `start` value `'soon'`"):
        Period("2026-10", "month", "soon", "2026-11-01")
    with pytest.raises(PeriodError, match=r"Cannot read `end` value `'later'`"):
        Period("2026-10", "month", "2026-10-01", "later")
    with pytest.raises(PeriodError, match=r"Cannot read `ts` value `'soon'`"):
        period_of("soon", "month")
    p = Period("2026-10", "month", "2026-10-01", "2026-11-01", np.int64(4))
    assert p.fiscal_year_start_month == 4 and type(p.fiscal_year_start_month) is int  # normalised as checked


def test_a_bare_number_is_not_a_time_and_nan_is_missing():
    from revops_lib.periods import resolve_as_of

    with pytest.raises(PeriodError) as e:
        resolve_as_of(None, 2026.0)  # a year? an epoch? ambiguous, so refused
    assert str(e.value) == ("Cannot read `as_of` value `2026.0` as a time: use a date, a datetime, a pandas Timestamp "
                            "or ISO text such as 2026-10-15 or 2026-10-15T08:30Z.")
    with pytest.raises(PeriodError, match=r"Cannot read `as_of` value `20261015` as a time"):
        resolve_as_of(None, 20261015)
    with pytest.raises(PeriodError, match=r"Cannot read `as_of` nan: use a date such as 2026-11-05"):
        resolve_as_of(None, float("nan"))  # missing, and as_of is required without a period
    assert resolve_as_of(None, " 2026-10-15 ") == pd.Timestamp("2026-10-15")


def test_the_cut_off_of_a_span_and_the_errors_without_one():
    from revops_lib.periods import resolve_as_of, window, year_to_date

    ytd = year_to_date("2026-10")
    assert resolve_as_of(ytd, None) == pd.Timestamp("2026-11-01") == window(ytd)[1]
    with pytest.raises(PeriodError, match=r"^Give `period` or `as_of`: the cut-off defaults to the period's end\.$"):
        resolve_as_of(None, None)
    with pytest.raises(PeriodError, match=r"Cannot read `as_of` value `'soon'` as a time"):
        resolve_as_of("2026-10", "soon")
    with pytest.raises(RevOpsError, match=r"^Give `period` \(e\.g\. '2026-10'\) or `as_of` \(e\.g\. '2026-11-01'\): "
                                          r"the cut-off defaults to the period's end\.$"):
        window(None, "")
    with pytest.raises(RevOpsError, match=r"^`period` is required: give a label such as 2026-10, 2026-Q4 or 2026-W44"):
        window("", "2026-11-01", period_required=True)


def test_window_reads_the_period_with_the_fiscal_year_asked_for():
    from revops_lib.periods import window

    p, cut = window("2026-Q1", fiscal_year_start_month=4)
    assert (p.fiscal_year_start_month, p.start, cut) == (4, utc("2025-04-01"), pd.Timestamp("2025-07-01"))
    assert window("2026-Q1")[1] == pd.Timestamp("2026-04-01")


def test_periods_sort_strictly():
    a, b = parse_period("2026-10"), parse_period("2026-11")
    assert a < b and not b < a and not a < a  # a period is not before itself
    assert sorted([b, parse_period("2026-W44"), a]) == [a, parse_period("2026-W44"), b]


def test_shifting_to_the_first_and_last_supported_years():
    assert str(parse_period("0001-02").previous()) == "0001-01"
    assert str(parse_period("0001-Q2").previous()) == "0001-Q1"
    assert str(parse_period("9999-10").next()) == "9999-11" and str(parse_period("9999-Q2").next()) == "9999-Q3"
    for label in ("0001-01", "0001-Q1", "0001-W01"):
        with pytest.raises(PeriodError, match=rf"^Period `{label}` shifted by -1 leaves years 0001-9999\.$"):
            parse_period(label).previous()
    with pytest.raises(PeriodError, match=r"Period `0001-Q1` falls outside the supported calendar"):
        parse_period("0001-Q1", fiscal_year_start_month=2)  # its fiscal quarter would start in year 0


def test_weeks_to_date_start_with_the_first_week_whose_thursday_is_in_the_fiscal_year():
    from revops_lib.periods import periods_to_date

    assert labels(periods_to_date("2026-W01")) == ["2026-W01"]  # Monday 2025-12-29, Thursday 2026-01-01
    assert labels(periods_to_date("2024-W02")) == ["2024-W01", "2024-W02"]  # the year starts on a Monday
    w53 = periods_to_date("2020-W53")  # Thursday 2020-12-31, Friday already in 2021
    assert (str(w53[0]), str(w53[-1]), len(w53)) == ("2020-W01", "2020-W53", 53)
    april = periods_to_date(parse_period("2026-W15", fiscal_year_start_month=4))
    assert labels(april) == ["2026-W14", "2026-W15"]  # 2026-04-01 is a Wednesday: its week (W14) is the first


def test_the_year_to_date_carries_the_fiscal_year():
    from revops_lib.periods import year_to_date

    s = year_to_date(parse_period("2026-Q2", fiscal_year_start_month=11))
    assert s.fiscal_year_start_month == 11 and s.start == utc("2025-11-01")


def test_messages_of_counts_kinds_and_period_order():
    p = parse_period("2026-10")
    with pytest.raises(PeriodError, match=r"^`n` must be a whole number, not `'x'`\.$"):
        p.previous("x")
    with pytest.raises(PeriodError, match=r"^`n` must be a whole number >= 1, not `0`\.$"):
        p.trailing(0)
    with pytest.raises(PeriodError, match=r"^`kind` must be 'month', 'quarter' or 'week', not `5`\.$"):
        period_of("2026-10-01", 5)
    with pytest.raises(PeriodError, match=r"comes after `last` period `2026-09`: give the earlier period first\.$"):
        periods_between("2026-10", "2026-09")
    with pytest.raises(PeriodError, match=r"parse its label again with the fiscal setting you mean\.$"):
        parse_period(parse_period("2026-Q1", fiscal_year_start_month=4), fiscal_year_start_month=1)


def test_repr_names_a_fiscal_year_other_than_january():
    assert repr(parse_period("2026-Q1", fiscal_year_start_month=4)) == (
        "<Period 2026-Q1 (quarter) [2025-04-01, 2025-07-01), fiscal_year_start_month=4>")
    assert repr(parse_period("2026-Q1")) == "<Period 2026-Q1 (quarter) [2026-01-01, 2026-04-01)>"
    assert repr(parse_period("2026-10", fiscal_year_start_month=2)).endswith(", fiscal_year_start_month=2>")


def test_the_default_period_is_read_on_the_utc_clock(monkeypatch):
    """At 2026-11-30 23:30 UTC it is already December in Tokyo and still November in UTC: the default
    period (the last complete month) follows UTC, whatever the machine's time zone."""
    class Clock(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            t = dt.datetime(2026, 11, 30, 23, 30, tzinfo=UTC)
            return t.astimezone(tz) if tz is not None else t.astimezone(dt.timezone(dt.timedelta(hours=9))).replace(
                tzinfo=None)  # a machine in Tokyo: naive local time

    monkeypatch.setattr(periods_module._dt, "datetime", Clock)
    assert str(default_period()) == "2026-10"
