"""revops_lib.metrics.lead_funnel and .deals: hand-computed frames, independent references (statsmodels, scipy, numpy, pandas),
property tests, the demo's true rates, and the same numbers on PostgreSQL."""

from __future__ import annotations

import math
import re

import ibis
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from revops_lib import stats
from revops_lib.errors import ParameterError, SourceError
from revops_lib.metrics import deals, lead_funnel
from revops_lib.periods import parse_period
from revops_lib.present.sections import funnel as funnel_section
from revops_lib.sources import Source, open_source

STAGES = list(lead_funnel.DEFAULT_STAGES)
PAIRS = list(zip(STAGES[:-1], STAGES[1:]))


def T(s):
    return None if s is None else pd.Timestamp(s)


def leads_frame(rows):
    """rows: (lead_id, source, created, mql, sql, opp, customer) with 'MM-DD HH:MM' times in 2026."""
    recs = []
    for lid, src, *times in rows:
        rec = {"lead_id": lid, "source": src}
        for col, v in zip(STAGES, times):
            rec[col] = T(None if v is None else f"2026-{v}")
        recs.append(rec)
    df = pd.DataFrame(recs)
    for col in STAGES:
        df[col] = pd.to_datetime(df[col])
    return df


# The hand-made cohort (period 2026-10, as_of = 2026-11-01):
#   L2 skips MQL, L5 skips SQL, L3's opportunity and L8's MQL fall after as_of, L5's MQL ties its creation,
#   L9's SQL comes before its MQL (out of order), L6 and L7 are created just outside the month.
HAND = leads_frame([
    ("L1", "web", "10-01 09:00", "10-02 09:00", "10-04 09:00", "10-10 09:00", "10-20 09:00"),
    ("L2", "web", "10-03 09:00", None, "10-05 09:00", None, None),
    ("L3", "web", "10-05 09:00", "10-06 09:00", "10-20 09:00", "11-03 09:00", None),
    ("L4", "web", "10-31 23:59:59", None, None, None, None),
    ("L5", "event", "10-10 09:00", "10-10 09:00", None, "10-15 09:00", None),
    ("L6", "event", "09-30 23:59:59", "10-01 09:00", None, None, None),
    ("L7", "event", "11-01 00:00", None, None, None, None),
    ("L8", "partner", "10-07 09:00", "11-02 09:00", None, None, None),
    ("L9", "web", "10-08 09:00", "10-09 09:00", "10-08 21:00", None, None),
])


def expected_conversion(rows):
    """rows: (source, pair index, entered, converted) -> the contract columns with rate and Wilson interval."""
    df = pd.DataFrame([(s, PAIRS[i][0], PAIRS[i][1], e, c) for s, i, e, c in rows],
                      columns=["source", "from_stage", "to_stage", "entered", "converted"])
    df["rate"] = df["converted"] / df["entered"]
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(df["converted"], df["entered"], alpha=0.05, method="wilson")
    df["ci_low"], df["ci_high"] = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    return df


CONTRACT = ["source", "from_stage", "to_stage", "entered", "converted", "rate", "ci_low", "ci_high"]


# ---------------------------------------------------------------------------
# Statistics against independent references
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("k,n", [(0, 1), (1, 1), (0, 30), (30, 30), (7, 19), (300, 1000), (1, 2), (49, 50)])
def test_wilson_interval_matches_statsmodels(k, n):
    from statsmodels.stats.proportion import proportion_confint

    for conf in (0.8, 0.95, 0.99):
        expected = proportion_confint(k, n, alpha=1 - conf, method="wilson")
        result = stats.wilson_interval(k, n, confidence=conf)
        np.testing.assert_allclose(result, expected, rtol=0, atol=1e-12)


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 10**6), frac=st.floats(0, 1), conf=st.floats(0.5, 0.999))
def test_wilson_interval_matches_statsmodels_everywhere(n, frac, conf):
    from statsmodels.stats.proportion import proportion_confint

    k = int(round(frac * n))
    low, high = stats.wilson_interval(k, n, confidence=conf)
    exp_low, exp_high = proportion_confint(k, n, alpha=1 - conf, method="wilson")
    assert low == pytest.approx(max(exp_low, 0.0), abs=1e-9) and high == pytest.approx(min(exp_high, 1.0), abs=1e-9)
    assert 0 <= low <= k / n <= high <= 1


def test_wilson_interval_is_nan_without_trials_and_rejects_bad_confidence():
    low, high = stats.wilson_interval([0, 3], [0, 10])
    assert math.isnan(low[0]) and math.isnan(high[0]) and 0 < low[1] < 0.3 < high[1]
    with pytest.raises(ParameterError, match="`confidence`"):
        stats.wilson_interval(1, 2, confidence=95)


def test_chi_square_across_sources_matches_statsmodels_and_a_hand_computed_table():
    from statsmodels.stats.contingency_tables import Table

    conv = pd.DataFrame({"source": ["all", "a", "b", "c"], "from_stage": ["x"] * 4, "to_stage": ["y"] * 4,
                         "entered": [300, 100, 120, 80], "converted": [90, 20, 40, 30]})
    result = lead_funnel.source_differences(conv).iloc[0]
    table = np.array([[20, 80], [40, 80], [30, 50]])
    ref = Table(table).test_nominal_association()
    # by hand: expected = row total x column total / n
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / table.sum()
    chi2 = ((table - expected) ** 2 / expected).sum()
    assert result["chi2"] == pytest.approx(chi2) == pytest.approx(ref.statistic)
    assert result["p_value"] == pytest.approx(ref.pvalue)
    assert result["dof"] == ref.df == 2 and result["groups"] == 3
    assert result["min_expected"] == pytest.approx(expected.min())
    assert result["differ"] == (ref.pvalue < 0.05)
    assert (result["highest"], result["lowest"]) == ("c", "a")


def test_chi_square_is_nan_when_it_cannot_be_computed():
    conv = pd.DataFrame({"source": ["a", "b", "c"], "from_stage": ["x", "x", "y"], "to_stage": ["y", "y", "z"],
                         "entered": [10, 10, 5], "converted": [0, 0, 1]})
    result = lead_funnel.source_differences(conv)
    assert result["p_value"].isna().all() and not result["differ"].any()


def test_compare_rates_tests_the_change_between_two_cohorts():
    from scipy.stats import chi2_contingency

    cur = pd.DataFrame({"source": ["all"], "from_stage": ["a"], "to_stage": ["b"], "entered": [200],
                        "converted": [80], "rate": [0.4]})
    prev = cur.assign(entered=[250], converted=[70], rate=[0.28])
    result = lead_funnel.compare_rates(cur, prev).iloc[0]
    expected_p = chi2_contingency([[80, 120], [70, 180]], correction=False).pvalue
    assert result["change"] == pytest.approx(0.12) and result["p_value"] == pytest.approx(expected_p)
    assert bool(result["beyond_noise"]) == (expected_p < 0.05)


def test_compare_rates_lists_a_pair_missing_from_one_cohort_with_zero_counts():
    cur = pd.DataFrame({"source": ["all", "all"], "from_stage": ["a", "b"], "to_stage": ["b", "c"],
                        "entered": [10, 4], "converted": [4, 1], "rate": [0.4, 0.25]})
    prev = pd.DataFrame({"source": ["all", "all"], "from_stage": ["a", "c"], "to_stage": ["b", "d"],
                         "entered": [20, 5], "converted": [5, 2], "rate": [0.25, 0.4]})
    result = lead_funnel.compare_rates(cur, prev)
    # the current pairs in their order, then the previous-only pair c->d; a side without the pair counts 0 and 0
    assert list(zip(result["from_stage"], result["to_stage"])) == [("a", "b"), ("b", "c"), ("c", "d")]
    assert result[["entered", "converted", "prior_entered", "prior_converted"]].values.tolist() == [
        [10, 4, 20, 5], [4, 1, 0, 0], [0, 0, 5, 2]]
    assert result["change"].tolist()[0] == pytest.approx(0.4 - 0.25) and result["change"][1:].isna().all()


# ---------------------------------------------------------------------------
# The cohort funnel on hand-computed frames
# ---------------------------------------------------------------------------


def test_reached_view_counts_skipped_stages_and_ignores_timestamps_after_as_of():
    result = lead_funnel.stage_conversion(HAND, period="2026-10")
    expected = expected_conversion([
        ("all", 0, 7, 5), ("all", 1, 5, 5), ("all", 2, 5, 2), ("all", 3, 2, 1),
        ("web", 0, 5, 4), ("web", 1, 4, 4), ("web", 2, 4, 1), ("web", 3, 1, 1),
        ("event", 0, 1, 1), ("event", 1, 1, 1), ("event", 2, 1, 1), ("event", 3, 1, 0),
        ("partner", 0, 1, 0),
    ])
    pd.testing.assert_frame_equal(result[CONTRACT], expected, check_exact=False, rtol=1e-12, atol=1e-12)
    assert result["cumulative_rate"].tolist()[:4] == pytest.approx([5 / 7, 5 / 7, 2 / 7, 1 / 7])
    assert result["small_sample"].all()


def test_strict_view_requires_every_earlier_stage_in_order():
    result = lead_funnel.stage_conversion(HAND, period="2026-10", funnel_mode="strict")
    expected = expected_conversion([
        ("all", 0, 7, 4), ("all", 1, 4, 2), ("all", 2, 2, 1), ("all", 3, 1, 1),
        ("web", 0, 5, 3), ("web", 1, 3, 2), ("web", 2, 2, 1), ("web", 3, 1, 1),
        ("event", 0, 1, 1), ("event", 1, 1, 0),
        ("partner", 0, 1, 0),
    ])
    pd.testing.assert_frame_equal(result[CONTRACT], expected, check_exact=False, rtol=1e-12, atol=1e-12)


def test_conversion_window_counts_only_conversions_within_the_window():
    result = lead_funnel.stage_conversion(HAND, period="2026-10", conversion_window_days=1.5, by=None)
    # created->mql within 1.5 days: L1, L3, L5, L9 (L2 took 2 days); mql->sql: L2 (0 days), L9 (-0.5 days)
    assert result["entered"].tolist() == [7, 5, 5, 2]
    assert result["converted"].tolist() == [4, 2, 1, 0]


def test_as_of_inside_the_period_cuts_the_cohort_and_the_stages():
    result = lead_funnel.stage_conversion(HAND, period="2026-10", as_of="2026-10-06", by=None)
    # cohort: L1, L2, L3 (created before Oct 6); L3's MQL on Oct 6 09:00 is too late
    assert result[["entered", "converted"]].values.tolist() == [[3, 2], [2, 2], [2, 0]]


def test_stage_timing_uses_reach_times_and_linear_interpolation():
    result = lead_funnel.stage_timing(HAND, period="2026-10")
    days = {  # hand-derived from HAND: a skipped stage is reached at the next stage's time
        "all": [[1, 2, 1, 0, 1], [2, 0, 14, 5, -0.5], [6, 0], [10]],
        "web": [[1, 2, 1, 1], [2, 0, 14, -0.5], [6], [10]],
        "event": [[0], [5], [0], []],
        "partner": [[]],
    }
    rows = []
    for src, lists in days.items():
        for i, d in enumerate(lists):
            rows.append((src, PAIRS[i][0], PAIRS[i][1], len(d),
                         float(np.percentile(d, 50)) if d else math.nan,
                         float(np.percentile(d, 90)) if d else math.nan))
    expected = pd.DataFrame(rows, columns=["source", "from_stage", "to_stage", "n", "median_days", "p90_days"])
    pd.testing.assert_frame_equal(result, expected, check_exact=False, rtol=1e-9, atol=1e-9)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.floats(0, 400, allow_nan=False), min_size=1, max_size=40))
def test_engine_percentiles_equal_numpy_linear_interpolation(days):
    base = pd.Timestamp("2026-10-01")
    df = pd.DataFrame({"lead_id": [f"L{i}" for i in range(len(days))], "source": "x",
                       "created_at": base, "mql_at": [base + pd.Timedelta(seconds=round(d * 86400)) for d in days]})
    secs = np.array([round(d * 86400) for d in days]) / 86400
    result = lead_funnel.stage_timing(df, period="2026-10", stages=["created_at", "mql_at"], by=None,
                                 as_of="2028-01-01").iloc[0]
    assert result["n"] == len(days)
    assert result["median_days"] == pytest.approx(np.percentile(secs, 50), abs=1e-9)
    assert result["p90_days"] == pytest.approx(np.percentile(secs, 90), abs=1e-9)


def test_sources_without_leads_entering_a_stage_get_no_row_and_an_empty_cohort_gives_empty_frames():
    ft = lead_funnel.funnel_tables(HAND, period="2026-10")
    partner = ft.conversion[ft.conversion["source"] == "partner"]
    assert partner["from_stage"].tolist() == ["created_at"]
    assert set(ft.timing["source"]) == {"all", "web", "event", "partner"}
    empty = lead_funnel.funnel_tables(HAND, period="2025-01")
    assert empty.conversion.empty and empty.timing.empty
    assert list(empty.conversion.columns)[:8] == CONTRACT
    assert list(empty.timing.columns) == ["source", "from_stage", "to_stage", "n", "median_days", "p90_days"]


def test_an_empty_cohort_without_the_total_rows_still_gives_the_contract_columns():
    # by source without the `all` rows, nobody created in 2025-01: the engine returns no group at all
    empty = lead_funnel.funnel_tables(HAND, period="2025-01", include_total=False)
    assert empty.conversion.empty and empty.timing.empty
    assert list(empty.conversion.columns) == CONTRACT + ["cumulative_rate", "small_sample"]
    assert list(empty.timing.columns) == ["source", "from_stage", "to_stage", "n", "median_days", "p90_days"]


def test_missing_dimension_values_are_grouped_as_unknown_and_segment_works_too():
    df = HAND.assign(segment=["smb", None, "smb", None, "ent", "smb", "ent", None, "ent"])
    result = lead_funnel.stage_conversion(df, period="2026-10", by="segment", include_total=False)
    first = result[result["from_stage"] == "created_at"].set_index("segment")["entered"]
    assert first.to_dict() == {"unknown": 3, "smb": 2, "ent": 2}


def test_inputs_may_be_a_source_an_ibis_table_a_dataframe_or_a_csv_folder(tmp_path):
    from conftest import valid_frames, write_folder

    base = lead_funnel.funnel_tables(HAND, period="2026-10")
    as_ibis = lead_funnel.funnel_tables(ibis.memtable(HAND), period="2026-10")
    src = Source.from_frames({"leads": HAND})
    as_source = lead_funnel.funnel_tables(src, period="2026-10")
    frames = valid_frames()
    frames["leads"] = HAND.assign(**{c: HAND[c].dt.tz_localize("UTC") for c in STAGES})
    folder = write_folder(frames, tmp_path / "csv", fmt="csv")
    as_csv = lead_funnel.funnel_tables(str(folder), period="2026-10")
    for other in (as_ibis, as_source, as_csv):
        pd.testing.assert_frame_equal(other.conversion, base.conversion)
        pd.testing.assert_frame_equal(other.timing, base.timing)


def test_offsets_in_text_timestamps_are_honoured():
    df = pd.DataFrame({"lead_id": ["L1", "L2"], "source": ["x", "x"],
                       "created_at": ["2026-10-31T23:30:00-02:00", "2026-10-01T00:30:00+01:00"]})
    # 2026-11-01 01:30 UTC (November) and 2026-09-30 23:30 UTC (September): neither is in October
    result = lead_funnel.stage_conversion(df, period="2026-10", stages=["created_at", "mql_at"], by=None)
    assert result.empty


@pytest.mark.parametrize("kwargs,match", [
    (dict(stages=["created_at"]), "`stages`"),
    (dict(stages=["created_at", "nope_at"]), "`stages` names column `nope_at`"),
    (dict(stages=["created_at", "created_at"]), "twice"),
    (dict(funnel_mode="hubspot"), "`funnel_mode`"),
    (dict(by="colour"), "`by` names column `colour`"),
    (dict(conversion_window_days=-3), "`conversion_window_days`"),
    (dict(min_sample=-1), "`min_sample`"),
    (dict(confidence=1.5), "`confidence`"),
])
def test_bad_parameters_name_the_parameter_and_what_is_allowed(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        lead_funnel.stage_conversion(HAND, period="2026-10", **kwargs)


def test_an_absent_leads_table_is_a_clear_error():
    with pytest.raises(SourceError, match="`leads` is absent"):
        lead_funnel.stage_conversion(Source.from_frames({"reviews": pd.DataFrame({"review_id": ["R1"]})}),
                                period="2026-10")


# ---------------------------------------------------------------------------
# Property tests against a straightforward pandas reference
# ---------------------------------------------------------------------------


def reference_funnel(leads, stages, start, end, as_of, mode="reached", window_days=None, by="source"):
    """The METRICS.md definitions written the obvious way in pandas (the independent reference)."""
    cols = [by, "from_stage", "to_stage", "entered", "converted", "median_days", "p90_days"]
    if leads.empty:
        return pd.DataFrame(columns=cols)
    df = leads.copy()
    times = pd.DataFrame({s: pd.to_datetime(df[s]).astype("datetime64[us]") for s in stages}, index=df.index)
    times = times.where(times < as_of)
    if mode == "reached":
        reach = times.bfill(axis=1)
    else:
        reach = times.copy()
        for i in range(1, len(stages)):
            prev, cur = reach[stages[i - 1]], times[stages[i]]
            reach[stages[i]] = cur.where(prev.notna() & (cur >= prev))
    keep = (reach[stages[0]] >= start) & (reach[stages[0]] < min(end, as_of))
    reach, groups = reach[keep], df.loc[keep, by].fillna("unknown")
    rows = []
    for name, idx in [("all", reach.index)] + [(g, reach.index[groups == g]) for g in sorted(groups.unique())]:
        r = reach.loc[idx]
        for a, b in zip(stages[:-1], stages[1:]):
            entered = int(r[a].notna().sum())
            days = (r[b] - r[a]).dt.total_seconds() / 86400
            conv = r[b].notna() & (days <= window_days if window_days else True)
            d = days[conv].to_numpy()
            if entered:
                rows.append((name, a, b, entered, int(conv.sum()),
                             np.percentile(d, 50) if len(d) else np.nan, np.percentile(d, 90) if len(d) else np.nan))
    return pd.DataFrame(rows, columns=cols)


def _compare_with_reference(result: lead_funnel.FunnelTables, ref: pd.DataFrame, by="source"):
    merged = result.conversion.merge(result.timing, on=[by, "from_stage", "to_stage"])
    key = [by, "from_stage", "to_stage"]
    got = merged[key + ["entered", "converted", "median_days", "p90_days"]].sort_values(key, ignore_index=True)
    exp = ref.sort_values(key, ignore_index=True)
    if exp.empty:
        assert got.empty
        return
    pd.testing.assert_frame_equal(got, exp, check_exact=False, rtol=1e-9, atol=1e-9, check_dtype=False)


random_leads = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c"]),
              *[st.one_of(st.none(), st.integers(0, 24 * 90)) for _ in STAGES]),
    min_size=0, max_size=40)


def _frame_from(rows):
    base = pd.Timestamp("2026-09-01")
    recs = [{"lead_id": f"L{i}", "source": src,
             **{s: (base + pd.Timedelta(hours=h) if h is not None else pd.NaT) for s, h in zip(STAGES, hours)}}
            for i, (src, *hours) in enumerate(rows)]
    df = pd.DataFrame(recs, columns=["lead_id", "source", *STAGES])
    for s in STAGES:
        df[s] = pd.to_datetime(df[s])
    return df


@pytest.mark.slow
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=random_leads, mode=st.sampled_from(["reached", "strict"]),
       window=st.sampled_from([None, 3.0]), as_of_day=st.integers(20, 95))
def test_funnel_matches_pandas_reference_and_its_invariants_hold(rows, mode, window, as_of_day):
    df = _frame_from(rows)
    as_of = pd.Timestamp("2026-09-01") + pd.Timedelta(days=as_of_day)
    result = lead_funnel.funnel_tables(df, period="2026-09", as_of=as_of, funnel_mode=mode,
                                  conversion_window_days=window)
    ref = reference_funnel(df, STAGES, pd.Timestamp("2026-09-01"), pd.Timestamp("2026-10-01"), as_of, mode, window)
    _compare_with_reference(result, ref)
    conv = result.conversion
    assert ((conv["rate"] >= 0) & (conv["rate"] <= 1)).all()
    assert (conv["converted"] <= conv["entered"]).all()
    assert ((conv["ci_low"] <= conv["rate"]) & (conv["rate"] <= conv["ci_high"])).all()
    for _, g in conv.groupby("source"):
        assert g["entered"].is_monotonic_decreasing  # the cumulative view never grows down the funnel
        if window is None:
            assert g["cumulative_rate"].is_monotonic_decreasing
        if window is None and mode == "reached":
            assert (g["entered"].to_numpy()[1:] == g["converted"].to_numpy()[:-1]).all()
    if mode == "reached":  # the strict view never counts more than the cumulative one
        strict = lead_funnel.stage_conversion(df, period="2026-09", as_of=as_of, funnel_mode="strict",
                                         conversion_window_days=window)
        both = conv.merge(strict, on=["source", "from_stage", "to_stage"], how="left", suffixes=("", "_s"))
        assert (both["entered_s"].fillna(0) <= both["entered"]).all()


def test_funnel_matches_pandas_reference_on_demo_data(demo_dir):
    src = open_source(demo_dir)
    leads = src.to_pandas("leads")
    for period, mode, window in [("2026-Q3", "reached", None), ("2026-10", "strict", 10)]:
        p = parse_period(period)
        result = lead_funnel.funnel_tables(src, period=period, funnel_mode=mode, conversion_window_days=window)
        ref = reference_funnel(leads, STAGES, p.start_naive, p.end_naive, p.end_naive, mode, window)
        _compare_with_reference(result, ref)
    seg = lead_funnel.funnel_tables(src, period="2026-Q2", by="segment", as_of="2026-10-15")
    ref = reference_funnel(leads, STAGES, pd.Timestamp("2026-04-01"), pd.Timestamp("2026-07-01"),
                           pd.Timestamp("2026-10-15"), by="segment")
    _compare_with_reference(seg, ref, by="segment")


def test_true_generating_rates_lie_inside_the_intervals_for_large_sources(demo_dir):
    from revops_lib.demo import TRUE_RATES

    # cohorts of four quarters, observed to the end of the data (16+ months later): mature for every stage
    checks = []
    for quarter in ("2024-Q3", "2024-Q4", "2025-Q1", "2025-Q2"):
        conv = lead_funnel.stage_conversion(demo_dir, period=quarter, as_of="2026-11-01")
        conv = conv[(conv["source"] != "all") & (conv["entered"] >= 30)]
        for r in conv.itertuples():
            truth = TRUE_RATES["stage_conversion"][r.source][f"{r.from_stage}->{r.to_stage}"]
            checks.append((quarter, r.source, r.from_stage, r.entered, r.ci_low <= truth <= r.ci_high))
    checks = pd.DataFrame(checks, columns=["quarter", "source", "from_stage", "entered", "inside"])
    large = checks[checks["entered"] >= 100]
    assert len(large) >= 10 and large["inside"].all(), large[~large["inside"]]
    # over every rate with 30+ leads, a 95% interval misses the truth about 1 time in 20
    assert len(checks) >= 40 and (~checks["inside"]).mean() <= 0.10, checks[~checks["inside"]]


# ---------------------------------------------------------------------------
# Cohort trend, activity counts, time to convert
# ---------------------------------------------------------------------------


def test_cohort_trend_counts_conversions_within_the_window_and_marks_immature_cells():
    trend = lead_funnel.cohort_trend(HAND, period="2026-10", cohorts=2, window_days=3)
    assert trend["cohort"].unique().tolist() == ["2026-09", "2026-10"]
    sep = trend[trend["cohort"] == "2026-09"]
    assert sep[["entered", "converted", "mature"]].values.tolist() == [[1, 1, True], [1, 0, True]]
    oct_ = trend[trend["cohort"] == "2026-10"].set_index("from_stage")
    # within 3 days: created->mql L1, L2, L3, L5, L9; mql->sql L1, L2, L9; sql->opp L5; opp->customer none
    assert oct_["entered"].tolist() == [7, 5, 5, 2] and oct_["converted"].tolist() == [5, 3, 1, 0]
    # L4 was created 10-31 23:59:59 (under 3 days before as_of); the MQLs entered by 10-10
    # mature once (almost) every lead that entered from_stage has had 3 days: created->mql waits for L4
    assert oct_["pending"].tolist() == [1, 0, 0, 0] and str(trend["pending"].dtype) == "int64"
    assert oct_["mature"].tolist() == [False, True, True, True]
    # a cohort whose period is not over yet is never mature
    mid = lead_funnel.cohort_trend(HAND, period="2026-10", as_of="2026-10-20", cohorts=1, window_days=3)
    assert not mid["mature"].any()
    assert trend.attrs["window_days"] == 3
    assert str(trend["cohort_start"].iloc[0]) == "2026-09-01"


@pytest.mark.parametrize("period, start, window", [("2026-W40", "2026-09-28", 14), ("2026-09", "2026-09-01", 30),
                                                   ("2026-Q3", "2026-07-01", 90)])
def test_cohort_trend_default_window_counts_conversions_up_to_14_30_or_90_days(period, start, window):
    s = pd.Timestamp(start)
    day = pd.Timedelta(days=1)
    created = [s + pd.Timedelta(hours=h) for h in (9, 10, 11, 12)]
    df = pd.DataFrame({
        "lead_id": ["a", "b", "c", "d"], "source": "web", "created_at": created,
        # a: half a day inside the window; b: half a day beyond it; c: exactly on it (within); d: never
        "mql_at": [created[0] + (window - 0.5) * day, created[1] + (window + 0.5) * day, created[2] + window * day,
                   pd.NaT],
    })
    for col in STAGES[2:]:
        df[col] = pd.NaT
    for col in STAGES:
        df[col] = pd.to_datetime(df[col])
    trend = lead_funnel.cohort_trend(df, period=period, cohorts=1, as_of="2027-06-01")
    assert trend.attrs["window_days"] == window
    assert trend[["cohort", "from_stage", "entered", "converted"]].values.tolist() == [
        [period, "created_at", 4, 2],   # a and c
        [period, "mql_at", 3, 0],       # a, b and c reached MQL (b outside the window still counts as reached)
    ]
    assert trend["rate"].tolist() == [0.5, 0.0] and trend["mature"].all()


def test_cohort_trend_window_defaults_by_cadence_and_covers_the_last_cohorts(demo_dir):
    trend = lead_funnel.cohort_trend(demo_dir, period="2026-W40")
    assert trend.attrs["window_days"] == 14
    assert trend["cohort"].unique().tolist() == [f"2026-W{w:02d}" for w in range(29, 41)]
    assert not trend.loc[trend["cohort"] == "2026-W40", "mature"].any()
    assert trend.loc[trend["cohort"] == "2026-W29", "mature"].all()
    # every cell against the pandas reference: the week's cohort, conversions within 14 days, seen by 2026-10-05
    leads = open_source(demo_dir).to_pandas("leads")
    as_of = pd.Timestamp("2026-10-05")
    for k, cohort in enumerate(trend["cohort"].unique()):
        start = pd.Timestamp("2026-07-13") + pd.Timedelta(weeks=k)  # W29 starts on Monday 2026-07-13
        ref = reference_funnel(leads, STAGES, start, start + pd.Timedelta(weeks=1), as_of, window_days=14)
        ref = ref[ref["source"] == "all"]
        got = trend[trend["cohort"] == cohort]
        assert got["from_stage"].tolist() == ref["from_stage"].tolist(), cohort
        assert got["entered"].tolist() == ref["entered"].tolist(), cohort
        assert got["converted"].tolist() == ref["converted"].tolist(), cohort
    assert trend["converted"].sum() > 0


def test_cohort_trend_by_source_orders_each_cohort_by_group_size_then_stage():
    # 2026-09: only L6 (event). 2026-10: web L1 L2 L3 L4 L9 (5 leads) first, then event (L5) and
    # partner (L8) with one lead each, by name; inside a group the stage pairs in funnel order.
    trend = lead_funnel.cohort_trend(HAND, period="2026-10", cohorts=2, window_days=3, by="source",
                                     min_sample=0)
    got = list(zip(trend["cohort"], trend["source"], trend["from_stage"]))
    assert got == [("2026-09", "event", "created_at"), ("2026-09", "event", "mql_at"),
                   ("2026-10", "web", "created_at"), ("2026-10", "web", "mql_at"), ("2026-10", "web", "sql_at"),
                   ("2026-10", "web", "opportunity_at"),
                   ("2026-10", "event", "created_at"), ("2026-10", "event", "mql_at"),
                   ("2026-10", "event", "sql_at"), ("2026-10", "event", "opportunity_at"),
                   ("2026-10", "partner", "created_at")]


def test_an_empty_funnel_keeps_text_stage_columns():
    for include_total in (True, False):
        empty = lead_funnel.funnel_tables(HAND, period="2025-01", include_total=include_total).conversion
        assert empty.empty
        for c in ("source", "from_stage", "to_stage"):
            assert not pd.api.types.is_numeric_dtype(empty[c]), (include_total, c)


def test_cohort_trend_of_cohorts_without_leads_is_an_empty_table_with_the_contract_columns():
    trend = lead_funnel.cohort_trend(HAND, period="2025-01", cohorts=2)  # HAND's leads are all from 2026
    assert trend.empty
    assert list(trend.columns) == ["cohort", "cohort_start", "from_stage", "to_stage", "entered", "converted",
                                   "rate", "ci_low", "ci_high", "small_sample", "pending", "mature"]
    assert trend.attrs["cohorts"] == ["2024-12", "2025-01"]


def test_cohort_trend_accepts_a_min_sample_of_zero_and_rejects_a_negative_one():
    from revops_lib.errors import ImmatureWarning

    with pytest.warns(ImmatureWarning):  # October's created->mql still waits for L4 (see above)
        trend = lead_funnel.cohort_trend(HAND, period="2026-10", cohorts=2, window_days=3, min_sample=0)
    with pytest.warns(ImmatureWarning):
        two = lead_funnel.cohort_trend(HAND, period="2026-10", cohorts=2, window_days=3, min_sample=2)
    # entered >= 1 on every row, so no row is below 0 (nor below 1); with min_sample=2 only the single
    # September lead (L6, entered 1 on both of its rows) is a small sample
    assert len(trend) == 6 and not trend["small_sample"].any()
    assert two["small_sample"].tolist() == [True, True, False, False, False, False]
    with pytest.raises(ParameterError, match="`min_sample`"):
        lead_funnel.cohort_trend(HAND, period="2026-10", cohorts=2, window_days=3, min_sample=-1)


def test_activity_counts_enter_a_skipped_stage_at_the_next_stage_time():
    result = lead_funnel.activity_counts(HAND, period="2026-10")
    expected = pd.DataFrame({"stage": STAGES, "leads": [7, 6, 5, 2, 1]})
    pd.testing.assert_frame_equal(result, expected)
    by_source = lead_funnel.activity_counts(HAND, period="2026-10", by="source")
    assert by_source.groupby("stage", sort=False)["leads"].sum().tolist() == [7, 6, 5, 2, 1]
    assert lead_funnel.stage_entries(HAND, "mql_at", period="2026-10") == 6
    assert lead_funnel.stage_entries(HAND, "sql_at", period="2026-10", as_of="2026-10-06") == 2
    with pytest.raises(ParameterError, match="`stage`"):
        lead_funnel.stage_entries(HAND, "won_at", period="2026-10")


def reference_reach(leads, stages, as_of, mode):
    """Reach times at ``as_of`` written the obvious way in pandas (see reference_funnel)."""
    times = pd.DataFrame({s: pd.to_datetime(leads[s]).astype("datetime64[us]") for s in stages}, index=leads.index)
    times = times.where(times < as_of)
    if mode == "reached":
        return times.bfill(axis=1)
    reach = times.copy()
    for i in range(1, len(stages)):
        prev, cur = reach[stages[i - 1]], times[stages[i]]
        reach[stages[i]] = cur.where(prev.notna() & (cur >= prev))
    return reach


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=random_leads, mode=st.sampled_from(["reached", "strict"]),
       cuts=st.lists(st.one_of(st.none(), st.integers(0, 24 * 100)), min_size=1, max_size=4),
       subset=st.sets(st.sampled_from(STAGES), min_size=1))
def test_activity_counts_many_equals_each_window_counted_on_its_own(rows, mode, cuts, subset):
    # weekly windows from 2026-09-01, each with its own as_of (None = the week's end, or an instant
    # that may fall before, inside or after the week): out-of-order and skipped stages included
    df = _frame_from(rows)
    weeks = parse_period("2026-W36").trailing(len(cuts) + 1)[1:]
    windows = [(w, None if h is None else pd.Timestamp("2026-09-01") + pd.Timedelta(hours=h))
               for w, h in zip(weeks, cuts)]
    got = lead_funnel.activity_counts_many(df, windows, funnel_mode=mode)
    rows_exp = []
    for w, as_of in windows:
        cut = w.end_naive if as_of is None else as_of
        reach = reference_reach(df, STAGES, cut, mode) if len(df) else pd.DataFrame(columns=STAGES)
        hi = min(w.end_naive, cut)
        for s in STAGES:
            rows_exp.append((w.label, s, int(((reach[s] >= w.start_naive) & (reach[s] < hi)).sum())))
    exp = pd.DataFrame(rows_exp, columns=["period", "stage", "leads"])
    pd.testing.assert_frame_equal(got, exp, check_dtype=False)
    # counting only some stages (pairing fewer leads with the windows) gives those stages' same counts
    some = lead_funnel.activity_counts_many(df, windows, funnel_mode=mode, count=[s for s in STAGES if s in subset])
    pd.testing.assert_frame_equal(some, exp[exp["stage"].isin(subset)].reset_index(drop=True), check_dtype=False)


def test_activity_counts_many_by_group_lists_every_group_with_zeros():
    got = lead_funnel.activity_counts_many(HAND, ["2026-09", ("2026-10", "2026-10-06")], by="source")
    assert got["period"].unique().tolist() == ["2026-09", "2026-10"]
    sep = got[got["period"] == "2026-09"]
    assert sorted(sep["source"].unique()) == ["event", "partner", "web"]
    assert sep.groupby("stage", sort=False)["leads"].sum().tolist() == [1, 0, 0, 0, 0]  # L6, created 09-30
    early = got[got["period"] == "2026-10"].groupby("stage", sort=False)["leads"].sum()
    assert early.tolist() == lead_funnel.activity_counts(HAND, period="2026-10", as_of="2026-10-06")["leads"].tolist()
    # by 10-06 00:00: created L1, L2, L3; MQL L1, L6 (created in September), L2 (skipped: at its SQL
    # time); SQL L1, L2 — L3's MQL comes after as_of
    assert early.tolist() == [3, 3, 2, 0, 0]
    assert lead_funnel.activity_counts_many(HAND, []).empty
    some = lead_funnel.activity_counts_many(HAND, ["2026-09", ("2026-10", "2026-10-06")], by="source",
                                            count=["sql_at", "mql_at"])
    pd.testing.assert_frame_equal(some, got[got["stage"].isin(["mql_at", "sql_at"])].reset_index(drop=True))
    for bad in (["closed_at"], []):
        with pytest.raises(ParameterError, match="`count`"):
            lead_funnel.activity_counts_many(HAND, ["2026-09"], count=bad)


def test_time_to_convert_is_a_cumulative_count_of_conversions_by_whole_days():
    dist = lead_funnel.time_to_convert(HAND, period="2026-10", max_days=20)
    mql_sql = dist[dist["from_stage"] == "mql_at"].set_index("days")["leads"]
    # mql->sql days: 2, 0, 14, 5, -0.5 (negative counts as day 0)
    assert [mql_sql[d] for d in (0, 1, 2, 5, 13, 14, 20)] == [2, 2, 3, 4, 4, 5, 5]
    assert dist.groupby("from_stage")["share"].max().max() == 1.0


def test_time_to_convert_counts_a_lead_created_at_the_very_start_of_the_period():
    df = pd.DataFrame({"lead_id": ["a", "b", "c"], "source": "web",
                       "created_at": pd.to_datetime(["2026-10-01 00:00:00", "2026-09-30 23:59:59",
                                                     "2026-11-01 00:00:00"]),
                       "mql_at": pd.to_datetime(["2026-10-03 12:00:00", "2026-10-01 00:00:00",
                                                 "2026-11-01 06:00:00"])})
    dist = lead_funnel.time_to_convert(df, period="2026-10", stages=["created_at", "mql_at"], max_days=4,
                                       as_of="2026-12-01")
    # only a is in the October cohort (b is created a second before it, c on the next period's start);
    # a takes 2.5 days, counted from whole day 3 on
    assert dist["days"].tolist() == [0, 1, 2, 3, 4]
    assert dist["leads"].tolist() == [0, 0, 0, 1, 1]
    assert dist["share"].tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]


# ---------------------------------------------------------------------------
# Deal stages and sales metrics
# ---------------------------------------------------------------------------

OPPS = pd.DataFrame({
    "opportunity_id": ["O1", "O2", "O3", "O4", "O5", "O6"],
    "created_at": pd.to_datetime(["2026-10-02", "2026-10-03", "2026-10-04", "2026-10-05", "2026-09-28",
                                  "2026-10-06"]),
    "close_date": pd.to_datetime(["2026-10-20", "2026-10-08", "2026-12-01", "2026-12-01", "2026-10-03",
                                  "2026-12-01"]).date,
    "is_closed": [True, True, False, False, True, False],
    "is_won": [True, False, False, False, True, False],
    "amount": [100.0, 50.0, 70.0, 80.0, 40.0, 10.0],
    "stage": ["closed_won", "closed_lost", "proposal", "negotiation", "closed_won", "qualification"],
})
HISTORY = pd.DataFrame({
    "opportunity_id": ["O1", "O1", "O1", "O1", "O2", "O2", "O2", "O3", "O3", "O3", "O5", "O5", "O6"],
    "changed_at": pd.to_datetime(["2026-10-02", "2026-10-05", "2026-10-09", "2026-10-20", "2026-10-03",
                                  "2026-10-04", "2026-10-08", "2026-10-04", "2026-10-06", "2026-11-05",
                                  "2026-09-28", "2026-10-03", "2026-10-06"]),
    "stage": ["qualification", "proposal", "negotiation", "closed_won", "qualification", "discovery",
              "closed_lost", "qualification", "discovery", "proposal", "qualification", "closed_won",
              "qualification"],
})


def test_deal_stage_funnel_uses_the_reached_rule_by_stage_order():
    result = deals.deal_stage_conversion(HISTORY, OPPS, period="2026-10")
    # O1 skips discovery (reached), O2's closed_lost is ignored, O3's proposal comes after as_of,
    # O4 has no history (falls back to its stage, negotiation), O5 was created in September
    expected = pd.DataFrame({
        "from_stage": ["qualification", "discovery", "proposal", "negotiation"],
        "to_stage": ["discovery", "proposal", "negotiation", "closed_won"],
        "entered": [5, 4, 2, 2], "converted": [4, 2, 2, 1], "rate": [0.8, 0.5, 1.0, 0.5],
    })
    pd.testing.assert_frame_equal(result[expected.columns.tolist()], expected)
    assert result.attrs["deals"] == 5
    assert result["cumulative_rate"].tolist() == pytest.approx([0.8, 0.4, 0.4, 0.2])


def test_deal_stage_funnel_from_a_source_and_without_opportunities():
    src = Source.from_frames({"opportunities": OPPS, "opportunity_history": HISTORY})
    from_source = deals.deal_stage_conversion(src, period="2026-10")
    pd.testing.assert_frame_equal(from_source, deals.deal_stage_conversion(HISTORY, OPPS, period="2026-10"))
    # without opportunities: the cohort is the deals whose first history row is in the period (O4 unknown)
    alone = deals.deal_stage_conversion(HISTORY, period="2026-10", as_of="2026-11-06")
    assert alone["entered"].tolist() == [4, 3, 2, 1] and alone.attrs["deals"] == 4
    with pytest.raises(ParameterError, match="`deal_stages`|`stages`"):
        deals.deal_stage_conversion(HISTORY, period="2026-10", stages=["qualification"])


SALES = pd.DataFrame({
    "opportunity_id": list("ABCDEF"),
    "created_at": pd.to_datetime(["2026-09-01 23:30", "2026-09-10 10:00", "2026-10-01 08:00", "2026-08-01 00:00",
                                  "2026-10-10 00:00", "2026-09-15 00:00"]),
    "close_date": pd.to_datetime(["2026-10-05", "2026-10-20", "2026-10-31", "2026-11-02", "2026-12-01",
                                  "2026-09-30"]).date,
    "is_closed": [True, True, True, True, False, True],
    "is_won": [True, False, True, True, False, False],
    "amount": [100.0, 300.0, 50.0, 1000.0, 500.0, 200.0],
})


def test_win_rate_deal_size_and_cycle_over_deals_closed_in_the_period():
    assert deals.win_rate(SALES, period="2026-10") == pytest.approx(2 / 3)
    assert deals.win_rate(SALES, period="2026-10", weight="amount") == pytest.approx(150 / 450)
    assert deals.average_deal_size(SALES, period="2026-10") == pytest.approx(75.0)
    assert deals.sales_cycle_days(SALES, period="2026-10") == pytest.approx(32.0)  # median of 34 and 30
    # as_of inside the period: only deals closed before its date count
    assert deals.win_rate(SALES, period="2026-10", as_of="2026-10-20") == 1.0
    assert math.isnan(deals.win_rate(SALES, period="2026-07"))
    with pytest.raises(ParameterError, match="`weight`"):
        deals.win_rate(SALES, period="2026-10", weight="deals")


def test_deal_stats_and_open_deals_for_several_windows_in_one_query():
    import datetime as dt

    d = dt.date
    windows = [(d(2026, 9, 1), d(2026, 10, 1), pd.Timestamp("2026-10-01")),  # F lost
               (d(2026, 10, 1), d(2026, 11, 1), pd.Timestamp("2026-11-01")),  # A, B, C
               (d(2026, 10, 1), d(2026, 11, 1), pd.Timestamp("2026-10-20 12:00")),  # A only: B closes that day
               (d(2026, 11, 1), d(2026, 12, 1), pd.Timestamp("2026-12-01")),  # D
               (d(2026, 7, 1), d(2026, 8, 1), pd.Timestamp("2026-08-01"))]  # nothing
    stats = deals.closed_deal_stats_many(SALES, windows)
    assert stats[["closed", "won", "lost"]].values.tolist() == [[1, 0, 1], [3, 2, 1], [1, 1, 0], [1, 1, 0], [0, 0, 0]]
    assert stats["won_amount"].tolist() == [0.0, 150.0, 100.0, 1000.0, 0.0]
    assert stats["closed_amount"].tolist() == [200.0, 450.0, 100.0, 1000.0, 0.0]
    # cycle: UTC date of created_at to close_date of the won deals (A 34 d, C 30 d, D 93 d)
    assert stats["sales_cycle_days"].tolist()[1:4] == [32.0, 34.0, 93.0] and math.isnan(stats["sales_cycle_days"][0])
    assert math.isnan(stats["avg_deal_size"][4])
    # each row equals the single-window call, types included
    for w, row in zip(windows, stats.to_dict("records")):
        single = deals.closed_deal_stats(SALES, start=w[0], end=w[1], as_of=w[2])
        assert single.keys() == row.keys() and isinstance(single["closed"], int)
        assert all(single[k] == row[k] or (math.isnan(single[k]) and math.isnan(row[k])) for k in row)
    assert deals.closed_deal_stats_many(SALES, []).empty
    # with squares: Σ amount² of the won (A 100, C 50; A alone; D 1,000) and of the lost deals (F 200; B 300)
    sq = deals.closed_deal_stats_many(SALES, windows, squares=True)
    assert sq["won_amount_sq"].tolist() == [0.0, 100.0 ** 2 + 50.0 ** 2, 100.0 ** 2, 1000.0 ** 2, 0.0]
    assert sq["lost_amount_sq"].tolist() == [200.0 ** 2, 300.0 ** 2, 0.0, 0.0, 0.0]
    pd.testing.assert_frame_equal(sq.drop(columns=["won_amount_sq", "lost_amount_sq"]), stats)
    assert list(deals.closed_deal_stats_many(SALES, [], squares=True).columns)[-2:] == ["won_amount_sq",
                                                                                         "lost_amount_sq"]
    # open at each instant: created before it and not closed before its date
    opened = deals.open_opportunities_many(SALES, ["2026-09-01", "2026-10-01", "2026-11-01", "2026-11-03",
                                                   "2027-01-01"])
    # 09-01: D (A is created later that day); 10-01: A, B, D (F closed 09-30; C created 10-01 08:00);
    # 11-01: D (closes 11-02) and E; 11-03 and later: E, never closed
    assert opened["count"].tolist() == [1, 3, 2, 1, 1]
    assert opened["amount"].tolist() == [1000.0, 1400.0, 1500.0, 500.0, 500.0]
    assert deals.open_opportunities(SALES, as_of="2026-10-01") == {"count": 3, "amount": 1400.0}
    # an aware time is the same instant in UTC
    assert deals.open_opportunities(SALES, as_of="2026-10-01T02:00+02:00") == {"count": 3, "amount": 1400.0}


def test_pipeline_velocity_uses_open_deals_and_the_trailing_four_quarters():
    v = deals.pipeline_velocity(SALES, period="2026-10").iloc[0]
    # open at 2026-11-01: D (closes 11-02) and E; trailing window 2025-11-01..2026-11-01: A, B, C, F closed
    assert v["open_opportunities"] == 2
    assert v["win_rate"] == pytest.approx(0.5) and v["avg_deal_size"] == pytest.approx(75.0)
    assert v["sales_cycle_days"] == pytest.approx(32.0)
    assert v["velocity_per_day"] == pytest.approx(2 * 0.5 * 75 / 32)
    assert str(v["lookback_start"]) == "2025-11-01" and str(v["lookback_end"]) == "2026-11-01"
    row = deals.sales_metrics(SALES, period="2026-10").iloc[0]
    assert (row["closed"], row["won"], row["lost"]) == (3, 2, 1)
    assert row["won_amount"] == 150.0 and row["closed_amount"] == 450.0
    assert row["velocity_per_day"] == pytest.approx(v["velocity_per_day"])
    assert row["open_amount"] == 1500.0


def test_sales_metrics_has_every_documented_column_and_counts_the_open_deals():
    row = deals.sales_metrics(SALES, period="2026-10")
    assert list(row.columns) == ["period", "closed", "won", "lost", "win_rate", "won_amount", "closed_amount",
                                 "win_rate_amount", "avg_deal_size", "sales_cycle_days", "open_opportunities",
                                 "open_amount", "velocity_per_day", "velocity_win_rate", "velocity_avg_deal_size",
                                 "velocity_cycle_days"]
    # open at 2026-11-01: D (closes 11-02, 1000) and E (never closed, 500)
    assert row["open_opportunities"].iloc[0] == 2 and row["open_amount"].iloc[0] == 1500.0


@pytest.mark.parametrize("call", [lambda s: deals.win_rate(s, period="2026-10"),
                                  lambda s: deals.open_opportunities(s, as_of="2026-10-01")])
def test_sales_metrics_without_an_opportunities_table_name_it(call):
    with pytest.raises(SourceError, match=r"Table `opportunities` is absent from .*; the funnel needs it\."):
        call(Source.from_frames({"leads": HAND}))


# ---------------------------------------------------------------------------
# Report helpers
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("label,expected", [("2026-W40", "2026-10"), ("2026-W44", "2026-10"),
                                            ("2026-02", "2026-Q1"), ("2026-Q3", "")])
def test_a_longer_period_is_suggested_for_small_samples(label, expected):
    assert lead_funnel.longer_period(parse_period(label)) == expected


def test_the_previous_period_is_measured_at_the_same_age():
    p = parse_period("2026-10")
    prev = p.previous()
    assert lead_funnel.same_age_as_of(p, pd.Timestamp("2026-11-01"), prev) == pd.Timestamp("2026-10-01")
    assert lead_funnel.same_age_as_of(p, pd.Timestamp("2026-11-05"), prev) == pd.Timestamp("2026-10-05")
    assert lead_funnel.same_age_as_of(p, pd.Timestamp("2026-10-15"), prev) == pd.Timestamp("2026-09-15")


def test_analyze_flags_small_samples_and_suggests_a_longer_period(demo_dir):
    fr = funnel_section.analyze(demo_dir, period="2026-W40")
    note = fr.small_sample_note()
    assert "fewer than 30 leads" in note and "2026-10" in note
    text = fr.findings().data
    assert "leads** were created in 2026-W40" in text and "too few" in text.lower()
    assert fr.deals is not None and fr.sales is not None and len(fr.trend)
    # the latest mature weekly cohort reached Customer at 0.00% within 14-day steps: said as such, with where
    # to read it instead (it read "the latest mature one (2026-W32) reached Customer at 0.00%")
    assert re.search(r"the latest mature one \(2026-W\d\d\) reached Customer at 0\.00% \(each stage within 14 days "
                     r"of the one before\); leads take longer than that to become Customer: read Lead → Customer in "
                     r"a month's or quarter's report\.", text), text
    name, value = fr.lead_to_last_headline()
    assert re.fullmatch(r"Lead → Customer \(2026-W\d\d cohort, the latest mature, each stage within 14 days\)", name)
    assert value == "0.00%"
    q = funnel_section.analyze(demo_dir, period="2026-Q3")
    name, value = q.lead_to_last_headline()
    assert re.fullmatch(r"Lead → Customer \(20\d\d-Q\d cohort, the latest mature, each stage within 90 days\)", name)
    assert value != "0.00%" and "in a month's or quarter's report" not in q.findings().data


def test_the_small_sample_note_writes_counts_with_thousands_separators():
    """1,200 small source x stage rates of 2,400 (a company with many sources): read as numbers, not digit runs."""
    from types import SimpleNamespace

    n = 2400
    conv = pd.DataFrame({"source": [f"s{i}" for i in range(n)] + [lead_funnel.TOTAL],
                         "from_stage": "lead", "to_stage": "mql", "entered": [5, 5000] * (n // 2) + [10**6]})
    fake = SimpleNamespace(conversion=conv, min_sample=1000, period=parse_period("2026-10"))
    fake.small_rows = lambda: conv[conv["entered"] < fake.min_sample]
    note = funnel_section.FunnelReport.small_sample_note(fake)
    assert "1,200 of 2,400 source × stage rates rest on fewer than 1,000 leads" in note
    assert ": 1,200 sources)" in note


# ---------------------------------------------------------------------------
# Portability: the same numbers on PostgreSQL
# ---------------------------------------------------------------------------


@pytest.mark.postgres
def test_funnel_and_deal_stages_give_the_same_numbers_on_postgres(pg_url):
    from conftest import load_postgres

    leads = HAND.assign(**{c: HAND[c].dt.tz_localize("UTC") for c in STAGES})
    pg = open_source(load_postgres(pg_url, {"leads": leads, "opportunities": OPPS, "opportunity_history": HISTORY},
                                   "funnel_portability"))
    duck = Source.from_frames({"leads": HAND, "opportunities": OPPS, "opportunity_history": HISTORY})
    for mode in ("reached", "strict"):
        a = lead_funnel.funnel_tables(pg, period="2026-10", funnel_mode=mode)
        b = lead_funnel.funnel_tables(duck, period="2026-10", funnel_mode=mode)
        pd.testing.assert_frame_equal(a.conversion, b.conversion)
        pd.testing.assert_frame_equal(a.timing, b.timing)
    pd.testing.assert_frame_equal(lead_funnel.cohort_trend(pg, period="2026-10", cohorts=2, window_days=3),
                                  lead_funnel.cohort_trend(duck, period="2026-10", cohorts=2, window_days=3))
    pd.testing.assert_frame_equal(deals.deal_stage_conversion(pg, period="2026-10"),
                                  deals.deal_stage_conversion(duck, period="2026-10"))
    pd.testing.assert_frame_equal(deals.sales_metrics(pg, period="2026-10"),
                                  deals.sales_metrics(duck, period="2026-10"))
    pd.testing.assert_frame_equal(lead_funnel.activity_counts(pg, period="2026-10"),
                                  lead_funnel.activity_counts(duck, period="2026-10"))
    windows = ["2026-09", ("2026-10", "2026-10-06"), "2026-10", "2026-W41"]
    for by in (None, "source"):
        pd.testing.assert_frame_equal(lead_funnel.activity_counts_many(pg, windows, by=by),
                                      lead_funnel.activity_counts_many(duck, windows, by=by))
    import datetime as dt

    spans = [(dt.date(2026, 10, 1), dt.date(2026, 11, 1), pd.Timestamp("2026-11-01")),
             (dt.date(2026, 9, 1), dt.date(2026, 10, 1), pd.Timestamp("2026-10-01"))]
    pd.testing.assert_frame_equal(deals.closed_deal_stats_many(pg, spans), deals.closed_deal_stats_many(duck, spans))
    cuts = ["2026-10-01", "2026-10-10 12:00", "2026-11-01"]
    pd.testing.assert_frame_equal(deals.open_opportunities_many(pg, cuts), deals.open_opportunities_many(duck, cuts))


@pytest.mark.parametrize("call", [deals.win_rate, deals.average_deal_size, deals.sales_cycle_days])
def test_deal_metrics_need_a_period(call):
    """A period-scoped metric never guesses a period: a blank one is a ParameterError naming `period`."""
    with pytest.raises(ParameterError, match="`period`"):
        call(SALES, period="")


@pytest.mark.parametrize("call", [deals.win_rate, deals.average_deal_size, deals.sales_cycle_days])
def test_deal_metrics_need_a_period_even_when_as_of_is_given(call):
    """``as_of`` alone does not make a period: the metric still asks for `period` rather than guessing one."""
    with pytest.raises(ParameterError, match="`period` is required"):
        call(SALES, period="", as_of="2026-11-01")


def test_the_funnel_by_source_chart_names_sources_as_the_tables_do():
    """Its legend read ``organic_search (555)`` while the heat map and tables beside it read ``Organic search``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from revops_lib.present.charts.funnel import plot_funnel_by_source

    rows = [(f"A{i}", "organic_search", "10-01 09:00", "10-02 09:00", None, None, None) for i in range(3)]
    rows += [(f"B{i}", "paid_social", "10-01 09:00", None, None, None, None) for i in range(2)]
    rows += [("C1", "trade_show", "10-01 09:00", None, None, None, None)]
    conv = lead_funnel.stage_conversion({"leads": leads_frame(rows)}, period="2026-10")
    ax = plot_funnel_by_source(conv, min_sample=2)
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["Organic search (3)", "Paid social (2)", "all sources"]
    assert legend.get_title().get_text().endswith("< 2 leads:\nTrade show")
    plt.close(ax.figure)


def test_best_and_worst_source_of_a_stage_with_one_large_source_is_named_once():
    """With one source above the minimum sample the table read ``Organic search / Organic search``."""
    from types import SimpleNamespace

    t = pd.DataFrame({"from_stage": ["created_at", "mql_at", "sql_at"],
                      "to_stage": ["mql_at", "sql_at", "opportunity_at"],
                      "groups": [3, 3, 3], "chi2": [9.0, 1.0, np.nan], "p_value": [0.01, 0.6, np.nan],
                      "min_expected": [6.0, 2.0, np.nan], "differ": [True, False, False],
                      "highest": ["referral", "organic_search", None], "lowest": ["paid_social", "organic_search", None]})
    shown = funnel_section.FunnelReport._test_table(SimpleNamespace(min_sample=30), t, "sources").data
    assert shown["Best / worst (30+ leads)"].tolist() == [
        "Referral / Paid social", "Organic search (the only one)", "—"]


def test_the_test_across_segments_can_leave_out_the_leads_without_one():
    """Leads get a segment as they become MQLs: the "unknown" group's first rate is near zero by construction,
    and with it in, "segments differ" (and "worst: Unknown") at Created → MQL said how the CRM fills the field."""
    conv = pd.DataFrame({"segment": ["ent", "smb", "unknown", "all"], "from_stage": ["created_at"] * 4,
                         "to_stage": ["mql_at"] * 4, "entered": [100, 100, 100, 300], "converted": [40, 36, 0, 76]})
    with_all = lead_funnel.source_differences(conv, by="segment")
    assert with_all["differ"].iloc[0] and with_all["lowest"].iloc[0] == "unknown" and with_all["groups"].iloc[0] == 3
    got = lead_funnel.source_differences(conv, by="segment", exclude=["unknown"])
    from scipy.stats import chi2_contingency

    chi2, p, _, _ = chi2_contingency(np.array([[40, 60], [36, 64]]), correction=False)  # the kit's test: no correction
    assert got["groups"].iloc[0] == 2 and got["chi2"].iloc[0] == pytest.approx(chi2)
    assert not got["differ"].iloc[0] and got["p_value"].iloc[0] == pytest.approx(p)
    assert (got["highest"].iloc[0], got["lowest"].iloc[0]) == ("ent", "smb")


def test_lead_to_last_is_read_from_the_latest_mature_cohort_by_hand():
    """The headline's Lead → Customer: the period's own cohort when it is mature, else the product of the stage
    rates of the latest cohort whose every stage is mature, else none — on a hand-made trend."""
    stages = ["lead", "mql", "customer"]

    def trend(mature):  # two cohorts × two steps; `mature` per cohort
        cohorts = (("2026-01", mature[0], (0.5, 0.2)), ("2026-02", mature[1], (0.4, 0.1)))
        rows = [(c, a, b, r, m) for c, m, rates in cohorts
                for (a, b), r in zip([("lead", "mql"), ("mql", "customer")], rates)]
        t = pd.DataFrame(rows, columns=["cohort", "from_stage", "to_stage", "rate", "mature"])
        t.attrs["window_days"] = 30
        return t

    fr = object.__new__(funnel_section.FunnelReport)
    fr.stages = stages
    fr.conversion = pd.DataFrame({"source": funnel_section.TOTAL, "from_stage": ["lead", "mql"],
                                  "to_stage": ["mql", "customer"], "cumulative_rate": [0.4, 0.04]})
    fr.trend = trend([True, True])  # the period's own (last) cohort is mature: its own rate
    assert fr._lead_to_last_source() == (None, 0.04)
    assert fr.lead_to_last_headline() == ("Lead → Customer", "4.00%")
    fr.trend = trend([True, False])  # only 2026-01 is: 0.5 × 0.2
    cohort, rate = fr._lead_to_last_source()
    assert cohort == "2026-01" and rate == pytest.approx(0.1)
    assert fr.lead_to_last_headline() == ("Lead → Customer (2026-01 cohort, the latest mature, each stage within 30 "
                                          "days)", "10.00%")
    fr.trend = trend([False, False])
    assert fr._lead_to_last_source() == ("", None)
    assert fr.lead_to_last_headline() == ("Lead → Customer (no mature cohort yet)", "—")
    fr.trend = None  # no trend: the period's own
    assert fr._lead_to_last_source() == (None, 0.04)
