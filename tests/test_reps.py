"""Rep and team performance (metrics/reps.py) and quotas (metrics/targets.py) on hand-computed frames; Wilson
intervals against statsmodels; owners add up to teams and teams to the company (a property); masked names;
PostgreSQL."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from statsmodels.stats.proportion import proportion_confint

from revops_lib.metrics import reps
from revops_lib.metrics.targets import quota_table, quotas, target_conflicts, targets
from revops_lib.periods import parse_period
from revops_lib.sources import Source
from revops_lib.validation import validate


def ts(*v):
    return pd.to_datetime(list(v))


def days(*v):
    return [None if x is None else dt.date.fromisoformat(x) for x in v]


def frames() -> dict[str, pd.DataFrame]:
    opps = pd.DataFrame({
        "opportunity_id": ["O1", "O2", "O3", "O4", "O5", "O6", "O7"],
        "created_at": ts("2026-09-01", "2026-10-03", "2026-09-10", "2026-10-02", "2026-10-04", "2026-10-25",
                         "2026-08-01"),
        "close_date": days("2026-10-05", "2026-10-20", "2026-10-02", "2026-11-15", "2026-10-10", "2026-11-20",
                           "2026-09-15"),
        "is_closed": [True, True, True, False, True, False, True],
        "is_won": [True, False, True, False, False, False, True],
        "amount": [100.0, 300.0, 50.0, 1000.0, 200.0, 400.0, 900.0],
        "owner": ["ana", "ana", "bo", "cy", None, "ana", "dee"],
        "team": ["smb", "smb", "smb", "ent", "ent", "smb", "ent"],
        "stage": ["closed_won", "closed_lost", "closed_won", "proposal", "closed_lost", "qualification",
                  "closed_won"],
    })
    targets_ = pd.DataFrame({
        "period": ["2026-10", "2026-11", "2026-10", "2026-10", "2026-10", "2026-10", "2026-11", "2026-11", "2026-11"],
        "metric": ["revenue_won"] * 9,
        "target": [500.0, 600.0, 200.0, 120.0, 80.0, 50.0, 150.0, 500.0, 700.0],
        "owner": [None, None, None, "ana", "bo", "dee", "ana", "cy", None],
        "team": [None, None, "smb", "smb", "smb", "ent", "smb", None, "ent"],
    })
    acts = pd.DataFrame({
        "activity_id": ["X1", "X2", "X3", "X4", "X5"],
        "occurred_at": ts("2026-10-05", "2026-10-15", "2026-10-20", "2026-09-30", "2026-10-07"),
        "type": ["first_meeting", "proposal", "first_meeting", "proposal", "first_meeting"],
        "owner": ["ana", "ana", "bo", "cy", None],
        "opportunity_id": ["O1", "O1", None, None, "O4"],
    })
    return {"opportunities": opps, "targets": targets_, "activities": acts}


ACCURACY = pd.DataFrame({
    "forecast_period": ["2026-10"] * 5, "scope": ["smb", "smb", "company", "ana", "smb"],
    "category": ["commit", "commit", "commit", "commit", "best_case"], "forecast": [180.0, 160.0, 140.0, 100.0, 999.0],
    "actual": [150.0, 150.0, 150.0, 100.0, 150.0]}).assign(
    error=lambda d: d["forecast"] - d["actual"],
    accuracy=lambda d: np.maximum(0, 1 - (d["forecast"] - d["actual"]).abs() / d["actual"]))


def perf(f=None, **kw) -> pd.DataFrame:
    return reps.rep_performance(f if f is not None else frames(), period="2026-10", **kw)


def test_owner_team_and_company_rows_as_computed_by_hand():
    got = perf(accuracy=ACCURACY)
    assert got[["owner", "team"]].values.tolist() == [
        ["cy", "ent"], ["dee", "ent"], ["unassigned", "ent"], ["all", "ent"],
        ["ana", "smb"], ["bo", "smb"], ["all", "smb"], ["all", "all"]]
    g = got.set_index(["owner", "team"])
    cols = ["quota", "revenue_won", "won", "lost", "pipeline_created", "cycle_days", "open_pipeline_next",
            "next_quota", "first_meetings", "proposals", "opportunities_created"]
    expected = pd.DataFrame([
        (np.nan, 0.0, 0, 0, 1000.0, np.nan, 1000.0, 500.0, 0.0, 0.0, 1),   # cy: a quota for November only
        (50.0, 0.0, 0, 0, 0.0, np.nan, 0.0, np.nan, 0.0, 0.0, 0),          # dee: a quota and nothing else
        (np.nan, 0.0, 0, 1, 200.0, np.nan, 0.0, np.nan, 1.0, 0.0, 1),      # O5 without an owner
        (np.nan, 0.0, 0, 1, 1200.0, np.nan, 1000.0, 700.0, 1.0, 0.0, 2),   # ent: no October team quota
        (120.0, 100.0, 1, 1, 700.0, 34.0, 400.0, 150.0, 1.0, 1.0, 2),     # O1 won after 34 days; O6 open, due Nov
        (80.0, 50.0, 1, 0, 0.0, 22.0, 0.0, np.nan, 1.0, 0.0, 0),
        (200.0, 150.0, 2, 1, 700.0, 28.0, 400.0, np.nan, 2.0, 1.0, 2),    # median of 34 and 22
        (500.0, 150.0, 2, 2, 1900.0, 28.0, 1400.0, 600.0, 3.0, 1.0, 4),
    ], columns=cols, index=g.index)
    pd.testing.assert_frame_equal(g[cols], expected, check_dtype=False)
    assert g.loc[("ana", "smb"), "attainment"] == pytest.approx(100 / 120)
    assert g.loc[("dee", "ent"), "attainment"] == 0.0 and g.loc[("all", "all"), "attainment"] == pytest.approx(0.3)
    assert g.loc[("cy", "ent"), "coverage"] == 2.0 and g.loc[("all", "ent"), "coverage"] == pytest.approx(1000 / 700)
    assert g.loc[("ana", "smb"), "win_rate"] == 0.5 and g.loc[("bo", "smb"), "avg_deal_size"] == 50.0
    assert np.isnan(g.loc[("cy", "ent"), "win_rate"])  # nothing closed: no rate, no interval
    assert g["small_sample"].all()  # fewer than 30 closed deals everywhere
    # forecasts of the period in its call category: mean accuracy, bias = Σ error / Σ actual
    assert g.loc[("all", "smb"), "forecast_accuracy"] == pytest.approx((0.8 + 1 - 10 / 150) / 2)
    assert g.loc[("all", "smb"), "forecast_bias"] == pytest.approx(40 / 300)
    assert g.loc[("all", "all"), "forecast_bias"] == pytest.approx(-10 / 150)
    assert g.loc[("ana", "smb"), "forecast_accuracy"] == 1.0 and np.isnan(g.loc[("bo", "smb"), "forecast_bias"])
    assert list(got.columns[:13]) == reps.REP_COLUMNS
    # what the report's finding and table read back: the cut-off, the next period, the sample rule
    assert got.attrs["period"] == "2026-10" and got.attrs["next_period"] == "2026-11"
    assert got.attrs["as_of"] == pd.Timestamp("2026-11-01") and got.attrs["min_sample"] == 30
    assert perf(min_sample=2).attrs["min_sample"] == 2


def test_period_edges_and_the_order_of_teams():
    """A deal created at the period's first instant is the period's; one due on the first day after the next
    period is not next period's pipeline; teams in name order, deals without a team last (after `west`)."""
    f = frames()
    o = f["opportunities"]
    o.loc[o["opportunity_id"] == "O2", "created_at"] = pd.Timestamp("2026-10-01")
    o.loc[o["opportunity_id"] == "O4", "close_date"] = dt.date(2026, 12, 1)
    o.loc[o["opportunity_id"] == "O7", "team"] = "west"
    o.loc[o["opportunity_id"] == "O5", "team"] = None
    g = perf(f)
    rows = g.set_index(["owner", "team"])
    assert (rows.loc[("ana", "smb"), "opportunities_created"], rows.loc[("ana", "smb"), "pipeline_created"]) == (2, 700)
    assert rows.loc[("cy", "ent"), "open_pipeline_next"] == 0.0
    assert g.loc[g["owner"] == "all", "team"].tolist() == ["ent", "smb", "west", "unassigned", "all"]


def test_quotas_come_from_the_target_metric_asked_for():
    """Quotas set as `bookings` targets: read with target_metric="bookings", none under the default."""
    f = frames()
    f["targets"] = f["targets"].assign(metric="bookings")
    want = perf().set_index(["owner", "team"])["quota"]
    got = perf(f, target_metric="bookings").set_index(["owner", "team"])["quota"]
    pd.testing.assert_series_equal(got, want)
    assert perf(f)["quota"].isna().all()


def test_win_rate_intervals_are_statsmodels_wilson():
    got = perf(confidence=0.9)
    n = got["won"] + got["lost"]
    ok = n > 0
    low, high = proportion_confint(got.loc[ok, "won"], n[ok], alpha=0.1, method="wilson")
    np.testing.assert_allclose(got.loc[ok, "ci_low"], low, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got.loc[ok, "ci_high"], high, rtol=1e-9, atol=1e-12)
    assert got.loc[~ok, ["ci_low", "ci_high"]].isna().all().all()
    assert not perf(min_sample=2).set_index(["owner", "team"]).loc[("ana", "smb"), "small_sample"]


def test_quotas_are_read_by_owner_and_team_and_never_count_as_company_targets():
    f = frames()
    assert targets(f, "2026-10") == {"revenue_won": 500.0}  # the owner and team rows are not the company's
    assert quotas(f, "2026-10") == {"ana": 120.0, "bo": 80.0, "dee": 50.0}
    assert quotas(f, "2026-10", by="team") == {"smb": 200.0}
    assert quota_table(f, ["2026-11"])["2026-11"] == {"owner": {"ana": 150.0, "cy": 500.0}, "team": {"ent": 700.0},
                                                      "company": 600.0, "owner_team": {"ana": "smb"}}
    # without company rows, quota rows still do not make a company target
    only = {"targets": f["targets"][f["targets"]["owner"].notna() | f["targets"]["team"].notna()]}
    assert targets(only, "2026-10") == {}
    # a month quota from weekly rows (weighted by their days in the month), as company targets are
    weeks = ["2026-W40", "2026-W41", "2026-W42", "2026-W43", "2026-W44"]
    wk = pd.DataFrame({"period": weeks, "metric": ["revenue_won"] * 5, "target": [70.0] * 5, "owner": ["ana"] * 5})
    assert quotas({"targets": wk}, "2026-10") == {"ana": pytest.approx(70 * (4 + 7 + 7 + 7 + 6) / 7)}
    assert target_conflicts(f).empty


def test_a_quota_for_an_owner_no_deal_has_is_an_orphan_warning():
    f = frames()
    f["targets"] = pd.concat([f["targets"], pd.DataFrame({"period": ["2026-10"], "metric": ["revenue_won"],
                                                          "target": [10.0], "owner": ["anna"], "team": ["smb"]})])
    found = [p for p in validate(f).problems if p.check == "orphan_key" and p.table == "targets"]
    assert [(p.column, p.count) for p in found] == [("owner", 1)]
    assert "no deal has it" in found[0].message
    # the report still shows the quota, on the team its quota row names (no deal gives `anna` a team)
    got = perf(f)
    row = got.set_index(["owner", "team"]).loc[("anna", "smb")]
    assert row["quota"] == 10.0 and row["won"] == 0 and row["attainment"] == 0.0
    assert got[got["team"] == "smb"]["owner"].tolist() == ["ana", "anna", "bo", "all"]
    # its team's row is unchanged: the team's own quota, the sums of its owners
    assert got.set_index(["owner", "team"]).loc[("all", "smb"), ["quota", "revenue_won"]].tolist() == [200.0, 150.0]


@pytest.mark.parametrize("rows, team", [
    ({"period": ["2026-10", "2026-10"], "team": ["smb", "ent"]}, "unassigned"),  # two teams: none is its own
    ({"period": ["2026-10"], "team": [None]}, "unassigned"),  # no team named
    ({"period": ["2026-11"], "team": ["ent"]}, "ent"),  # only a quota for the next period
    ({"period": ["2026-10", "2026-11"], "team": ["smb", "ent"]}, "smb"),  # this period's team first
    ({"period": [f"2026-W{w}" for w in range(40, 45)], "team": ["west"] * 5}, "west"),  # the month's weeks
])
def test_an_owner_without_deals_sits_on_the_one_team_its_quota_rows_name(rows, team):
    f = frames()
    n = len(rows["period"])
    extra = pd.DataFrame({**rows, "metric": ["revenue_won"] * n, "target": [10.0] * n, "owner": ["anna"] * n})
    f["targets"] = pd.concat([f["targets"], extra], ignore_index=True)
    got = perf(f)
    assert got.loc[got["owner"] == "anna", "team"].tolist() == [team]
    assert got.loc[got["owner"] == "anna", "won"].tolist() == [0]


def test_masked_privacy_shows_pseudonyms_and_keeps_quotas_matched():
    names = perf()
    masked = reps.rep_performance(Source.from_frames(frames()).with_privacy("masked"), period="2026-10")
    owners = masked.loc[~masked["owner"].isin(["all", "unassigned"]), "owner"]
    assert owners.str.fullmatch(r"Rep [0-9a-f]{6}").all() and not set(owners) & {"ana", "bo", "cy", "dee"}
    assert masked["team"].isin(["all"]).sum() == 1 and masked.loc[masked["team"] != "all", "team"].str.startswith(
        "Team ").all()
    key = ["revenue_won", "won", "lost", "quota", "attainment", "pipeline_created"]
    pd.testing.assert_frame_equal(
        masked[key].sort_values(key, ignore_index=True), names[key].sort_values(key, ignore_index=True))


def test_without_activities_or_targets_the_rows_stay_and_those_columns_are_blank():
    f = frames()
    got = perf({"opportunities": f["opportunities"]})
    assert got[["quota", "attainment", "next_quota", "coverage"]].isna().all().all()
    assert (got[["first_meetings", "proposals"]].fillna(0) == 0).all().all()
    assert got.set_index(["owner", "team"]).loc[("all", "all"), "revenue_won"] == 150.0


ADDITIVE = ["revenue_won", "won", "lost", "pipeline_created", "opportunities_created", "open_pipeline_next",
            "first_meetings", "proposals"]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_owners_add_up_to_teams_and_teams_to_the_company_and_rates_are_fractions(data):
    rng = np.random.default_rng(data.draw(st.integers(0, 10_000)))
    m = data.draw(st.integers(1, 40))
    base = pd.Timestamp("2026-09-01")
    closed = rng.random(m) < 0.7
    opps = pd.DataFrame({
        "opportunity_id": [f"O{i}" for i in range(m)],
        "created_at": base + pd.to_timedelta(rng.integers(0, 60 * 24, m), unit="h"),
        "close_date": [(base + pd.Timedelta(days=int(d))).date() for d in rng.integers(20, 100, m)],
        "is_closed": closed, "is_won": closed & (rng.random(m) < 0.5), "amount": rng.integers(1, 90, m) * 100.0,
        "owner": rng.choice(np.array(["ana", "bo", "cy", None], dtype=object), m),
        "team": rng.choice(np.array(["smb", "ent", None], dtype=object), m),
        "stage": "proposal"})
    acts = pd.DataFrame({"activity_id": [f"X{i}" for i in range(20)],
                         "occurred_at": base + pd.to_timedelta(rng.integers(0, 60 * 24, 20), unit="h"),
                         "type": rng.choice(np.array(["first_meeting", "proposal", "call"], dtype=object), 20),
                         "owner": rng.choice(np.array(["ana", "bo", "eve", None], dtype=object), 20),
                         "opportunity_id": rng.choice(np.array([f"O{i}" for i in range(m)] + [None], dtype=object), 20)})
    got = reps.rep_performance({"opportunities": opps, "activities": acts}, period="2026-10")
    owners, teams = got[got["owner"] != "all"], got[(got["owner"] == "all") & (got["team"] != "all")]
    company = got[got["team"] == "all"].iloc[0]
    for c in ADDITIVE:
        per_team = owners.groupby("team")[c].sum()
        assert np.allclose(per_team.reindex(teams["team"]).to_numpy(), teams[c].to_numpy()), c
        assert teams[c].sum() == pytest.approx(company[c]), c
    r = got.dropna(subset=["win_rate"])
    assert r["win_rate"].between(0, 1).all() and r["ci_low"].between(0, 1).all() and r["ci_high"].between(0, 1).all()
    assert (r["ci_low"] <= r["win_rate"] + 1e-12).all() and (r["win_rate"] <= r["ci_high"] + 1e-12).all()


@pytest.mark.postgres
def test_rep_performance_is_the_same_on_postgresql(pg_url):
    from revops_lib.sources import open_source

    from conftest import load_postgres

    f = frames()
    pg_frames = {k: v.assign(**{c: v[c].dt.tz_localize("UTC") for c in v.columns
                                if pd.api.types.is_datetime64_any_dtype(v[c])}) for k, v in f.items()}
    pg = open_source(load_postgres(pg_url, pg_frames, "reps_portability"))
    pd.testing.assert_frame_equal(reps.rep_performance(pg, period="2026-10", accuracy=ACCURACY),
                                  reps.rep_performance(Source.from_frames(f), period="2026-10", accuracy=ACCURACY),
                                  check_dtype=False)


def test_the_team_legend_of_the_rep_chart_covers_no_bar_and_no_name():
    """The attainment bars run past 100 %: a legend inside the axes covered the longest (it sat at lower right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from revops_lib.present.charts.sales import plot_rep_performance

    got = perf()
    axes = plot_rep_performance(got)
    fig = axes[0].figure
    fig.canvas.draw()
    legend = axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["ent", "smb"]  # top to bottom, as the bars
    r = fig.canvas.get_renderer()
    box = legend.get_window_extent(r)
    assert box.y1 <= axes[0].get_window_extent(r).y0  # below the bars
    assert not box.overlaps(axes[0].xaxis.get_tightbbox(r))  # and below the percent ticks
    assert not any(box.overlaps(t.get_window_extent(r)) for t in axes[0].get_yticklabels())
    plt.close(fig)


def _owner_teams_by_hand(t: pd.DataFrame, label: str, weeks: list[str]) -> dict[str, str]:
    """Owner by owner: the teams its quota rows of the period name (else those of the period's weeks)."""
    out = {}
    rows = t[t["owner"].notna() & t["target"].notna() & (t["metric"] == "revenue_won")]
    for owner in set(rows["owner"]):
        mine = rows[rows["owner"] == owner]
        own = mine[mine["period"] == label]
        use = own if len(own) else mine[mine["period"].isin(weeks)]
        teams = {str(x) for x in use["team"] if isinstance(x, str)}
        if len(teams) == 1:
            out[owner] = teams.pop()
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["2026-10", "2026-W41", "2026-W44", "2026-09"]),
                          st.sampled_from(["ana", "bo", "cy", None]), st.sampled_from(["smb", "ent", None]),
                          st.sampled_from(["revenue_won", "bookings"]), st.sampled_from([10.0, None])),
                max_size=14))
def test_owner_team_is_the_one_team_an_owners_quota_rows_name(rows):
    """``owner_team``: an owner's rows of the month decide; without any, those of its weeks; one team or none."""
    t = pd.DataFrame(rows, columns=["period", "owner", "team", "metric", "target"]).astype(
        {"period": object, "owner": object, "team": object, "metric": object, "target": float})
    weeks = [w.label for w in parse_period("2026-10").weeks()]
    got = quota_table({"targets": t}, ["2026-10"])["2026-10"]["owner_team"]
    assert got == _owner_teams_by_hand(t, "2026-10", weeks)
