"""Time in deal stage and stuck deals (metrics/stage_time.py) on hand-computed histories; percentiles against
numpy and pandas; PostgreSQL."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from revops_lib.errors import ParameterError
from revops_lib.metrics import stage_time
from revops_lib.metrics.deals import DEFAULT_DEAL_STAGES
from revops_lib.sources import Source


def ts(*v):
    return pd.to_datetime(list(v))


def frames() -> dict[str, pd.DataFrame]:
    h = pd.DataFrame({
        "opportunity_id": ["A", "A", "A", "A", "B", "B", "B", "C", "C", "D", "E", "E"],
        "changed_at": ts("2026-10-01", "2026-10-03", "2026-10-05", "2026-10-20",  # A: an amount change on 10-03
                         "2026-09-20", "2026-10-10", "2026-10-12",
                         "2026-10-02", "2026-10-08",
                         "2026-09-01",
                         "2026-10-25", "2026-11-03"),  # E closes after the cut-off: still open at it
        "stage": ["qualification", "qualification", "proposal", "closed_won",
                  "qualification", "discovery", "closed_lost",
                  "qualification", "proposal",
                  "qualification",
                  "qualification", "closed_won"],
        "amount": [10.0, 12.0, 12.0, 12.0, 5.0, 5.0, 5.0, 7.0, 7.0, 9.0, 3.0, 3.0],
    })
    o = pd.DataFrame({
        "opportunity_id": ["A", "B", "C", "D", "E"],
        "created_at": ts("2026-10-01", "2026-09-20", "2026-10-02", "2026-09-01", "2026-10-25"),
        "close_date": [dt.date(2026, 10, 20), dt.date(2026, 10, 12), dt.date(2026, 12, 1), dt.date(2026, 11, 30),
                       dt.date(2026, 11, 3)],
        "is_closed": [True, True, False, False, True], "is_won": [True, False, False, False, True],
        "amount": [12.0, 5.0, 7.0, 9.0, 3.0], "owner": ["ana", "bo", "ana", "cy", "bo"],
        "team": ["smb", "smb", "ent", "ent", "smb"],
        "stage": ["closed_won", "closed_lost", "proposal", "qualification", "closed_won"],
    })
    return {"opportunity_history": h, "opportunities": o}


def test_time_in_stage_per_stage_and_outcome_as_computed_by_hand():
    got = stage_time.time_in_stage(frames(), period="2026-10", stages=DEFAULT_DEAL_STAGES)
    expected = pd.DataFrame([
        # qualification: A 4 days (the same-stage change on 10-03 does not end it), B 20 days (lost), C 6 (open)
        ("qualification", "won", 1, 4.0, 4.0), ("qualification", "lost", 1, 20.0, 20.0),
        ("qualification", "open", 1, 6.0, 6.0), ("qualification", "all", 3, 6.0, 6.0 + 0.8 * 14.0),
        ("discovery", "lost", 1, 2.0, 2.0), ("discovery", "all", 1, 2.0, 2.0),
        ("proposal", "won", 1, 15.0, 15.0), ("proposal", "all", 1, 15.0, 15.0),
    ], columns=stage_time.TIME_IN_STAGE_COLUMNS)
    pd.testing.assert_frame_equal(got, expected)
    # closed stages are never timed; a spell still running at the cut-off (C in proposal, D, E) is not in it
    assert not set(got["stage"]) & {"closed_won", "closed_lost"}


def test_a_cut_off_inside_the_period_counts_the_spells_ended_before_it_and_outcomes_then():
    got = stage_time.time_in_stage(frames(), period="2026-10", as_of="2026-10-11").set_index(["stage", "outcome"])
    # by 10-11: A (10-05), B (10-10) and C (10-08) left qualification, and all three were still open then
    assert got.loc[("qualification", "all"), "n"] == 3
    assert got.loc[("qualification", "open"), "n"] == 3 and ("qualification", "won") not in got.index
    assert ("proposal", "won") not in got.index  # A left proposal on 10-20


def test_stuck_deals_are_open_longer_than_their_stages_p90():
    got = stage_time.stuck_deals(frames(), period="2026-10")
    assert got["opportunity_id"].tolist() == ["D", "C"]  # E: 7 days in qualification, under its p90
    d, c = got.iloc[0], got.iloc[1]
    assert d["stage"] == "qualification" and d["days_in_stage"] == 61.0 and d["stage_p90_days"] == pytest.approx(17.2)
    assert c["stage"] == "proposal" and c["days_in_stage"] == 24.0 and c["stage_p90_days"] == 15.0
    assert d["times_p90"] == pytest.approx(61 / 17.2) and (d["owner"], d["team"], d["amount"]) == ("cy", "ent", 9.0)
    assert [pd.Timestamp(x["close_date"]) for x in (c, d)] == [pd.Timestamp("2026-12-01"), pd.Timestamp("2026-11-30")]
    none = stage_time.stuck_deals({"opportunity_history": frames()["opportunity_history"]}, period="2026-08")
    assert none.empty and none.columns.tolist() == got.columns.tolist()
    f = frames()  # p90s of October, but A and B closed and no open deal: nobody is stuck
    f["opportunity_history"] = f["opportunity_history"][f["opportunity_history"]["opportunity_id"].isin(["A", "B"])]
    calm = stage_time.stuck_deals(f, period="2026-10")
    assert calm.empty and calm.columns.tolist() == got.columns.tolist()


def test_percentiles_are_numpys_linear_interpolation():
    rng = np.random.default_rng(3)
    n = 57
    start = pd.Timestamp("2026-09-01") + pd.to_timedelta(rng.integers(0, 30 * 24 * 60, n), unit="min")
    length = rng.gamma(2.0, 5.0, n)
    end = start + pd.to_timedelta(np.round(length * 86400), unit="s")
    end = end.where(end >= pd.Timestamp("2026-10-01"), pd.Timestamp("2026-10-01") + (end - start))
    h = pd.DataFrame({"opportunity_id": np.repeat([f"O{i}" for i in range(n)], 2),
                      "changed_at": np.ravel(np.column_stack([start, end])),
                      "stage": ["qualification", "proposal"] * n})
    got = stage_time.time_in_stage({"opportunity_history": h}, period="2026-10").set_index(["stage", "outcome"])
    days = ((end - start) / pd.Timedelta(days=1)).to_numpy()
    row = got.loc[("qualification", "all")]
    assert row["n"] == n
    assert row["median_days"] == pytest.approx(np.quantile(days, 0.5, method="linear"), rel=1e-9)
    assert row["p90_days"] == pytest.approx(np.quantile(days, 0.9, method="linear"), rel=1e-9)
    assert row["p90_days"] == pytest.approx(pd.Series(days).quantile(0.9), rel=1e-9)


def test_time_in_stage_by_team():
    got = stage_time.time_in_stage(frames(), period="2026-10", by="team")
    assert list(got.columns) == ["team"] + stage_time.TIME_IN_STAGE_COLUMNS
    q = got[(got["stage"] == "qualification") & (got["outcome"] == "all")].set_index("team")
    assert q.loc["smb", "n"] == 2 and q.loc["ent", "n"] == 1 and q.loc["ent", "median_days"] == 6.0


@pytest.mark.parametrize("by", ["team", "segment", "owner", "type", "source", "product"])
def test_time_in_stage_by_each_slice_column_of_the_deals(by):
    """Each column the reports split deals by; A and B share a value, C (and D, E) another."""
    f = frames()
    f["opportunities"][by] = ["x", "x", "y", "y", "y"]
    got = stage_time.time_in_stage(f, period="2026-10", by=by)
    assert list(got.columns) == [by] + stage_time.TIME_IN_STAGE_COLUMNS
    q = got[(got["stage"] == "qualification") & (got["outcome"] == "all")].set_index(by)
    assert q["n"].to_dict() == {"x": 2, "y": 1} and q.loc["y", "median_days"] == 6.0


def test_time_in_stage_by_another_column_is_refused():
    with pytest.raises(ParameterError, match="`by` must be a column of `opportunities`"):
        stage_time.time_in_stage(frames(), period="2026-10", by="stage")


@pytest.mark.parametrize("stage, won", [("parked", False), ("signed", True)])
def test_stuck_deals_use_the_won_and_lost_stages_given_over_the_inferred_ones(stage, won):
    """The CRM closed P2 as lost in a stage `parked` (or as won in `signed`), so that stage is inferred a lost (won)
    stage; given the stages — the won ones as well as the lost — it is open: P1 spent 3 days there in October (its
    p90) and P2 has sat in it since August (stuck)."""
    h = pd.DataFrame({"opportunity_id": ["P1", "P1", "P1", "P2"],
                      "changed_at": ts("2026-10-01", "2026-10-02", "2026-10-05", "2026-08-01"),
                      "stage": ["discovery", stage, "qualification", stage]})
    o = pd.DataFrame({"opportunity_id": ["P1", "P2"], "created_at": ts("2026-10-01", "2026-08-01"),
                      "close_date": [dt.date(2026, 12, 1), dt.date(2026, 8, 2)], "is_closed": [False, True],
                      "is_won": [False, won], "amount": [1.0, 2.0], "stage": ["qualification", stage]})
    f = {"opportunity_history": h, "opportunities": o}
    assert stage_time.stuck_deals(f, period="2026-10").empty  # inferred closed: P2 is a closed deal
    stages = dict(won_stages=["closed_won"], lost_stages=["closed_lost"])
    got = stage_time.stuck_deals(f, period="2026-10", **stages)
    assert got[["opportunity_id", "stage", "days_in_stage", "stage_p90_days"]].values.tolist() == [
        ["P2", stage, 92.0, 3.0]]
    times, stuck = stage_time.stage_time_tables(f, period="2026-10", **stages)
    pd.testing.assert_frame_equal(stuck, got)
    assert (stage, "all") in set(zip(times["stage"], times["outcome"]))


def test_no_spell_in_the_period_gives_an_empty_table_with_the_columns():
    got = stage_time.time_in_stage(frames(), period="2026-06")
    assert got.empty and list(got.columns) == stage_time.TIME_IN_STAGE_COLUMNS
    full = stage_time.time_in_stage(frames(), period="2026-10")
    numbers = ["n", "median_days", "p90_days"]  # n a whole number, the days decimals, as when there are rows
    assert [str(got[c].dtype) for c in numbers] == [str(full[c].dtype) for c in numbers] == ["int64"] + ["float64"] * 2
    assert (got.attrs, full.attrs) == ({"period": "2026-06", "as_of": pd.Timestamp("2026-07-01")},
                                       {"period": "2026-10", "as_of": pd.Timestamp("2026-11-01")})


@pytest.mark.postgres
def test_time_in_stage_and_stuck_deals_are_the_same_on_postgresql(pg_url):
    from revops_lib.sources import open_source

    from conftest import load_postgres

    f = frames()
    pg_frames = {k: v.assign(**{c: v[c].dt.tz_localize("UTC") for c in v.columns
                                if pd.api.types.is_datetime64_any_dtype(v[c])}) for k, v in f.items()}
    pg = open_source(load_postgres(pg_url, pg_frames, "stage_time_portability"))
    duck = Source.from_frames(f)
    for kw in ({}, {"by": "team"}, {"as_of": "2026-10-11"}):
        pd.testing.assert_frame_equal(stage_time.time_in_stage(pg, period="2026-10", **kw),
                                      stage_time.time_in_stage(duck, period="2026-10", **kw))
    pd.testing.assert_frame_equal(stage_time.stuck_deals(pg, period="2026-10"),
                                  stage_time.stuck_deals(duck, period="2026-10"), check_dtype=False)


@pytest.mark.parametrize("as_of", [None, "2026-10-11"])
def test_stage_time_tables_share_one_computation_of_the_spells_and_equal_the_separate_calls(as_of):
    src = Source.from_frames(frames())
    times, stuck = stage_time.stage_time_tables(src, period="2026-10", as_of=as_of, stages=DEFAULT_DEAL_STAGES)
    pd.testing.assert_frame_equal(times, stage_time.time_in_stage(src, period="2026-10", as_of=as_of,
                                                                  stages=DEFAULT_DEAL_STAGES))
    pd.testing.assert_frame_equal(stuck, stage_time.stuck_deals(src, period="2026-10", as_of=as_of))
    assert not times.empty and (as_of is not None or not stuck.empty)
    # the spells were materialized once and dropped afterwards: no table of the kit's is left in the engine
    assert not [t for t in src.con.list_tables() if t.startswith("ibis_cache")]


def test_stage_time_tables_materializes_the_spells_once(monkeypatch):
    import ibis.expr.types.relations as rel

    calls = []
    original = rel.Table.cache
    monkeypatch.setattr(rel.Table, "cache", lambda self: calls.append(1) or original(self))
    stage_time.stage_time_tables(Source.from_frames(frames()), period="2026-10")
    assert len(calls) == 1


def test_the_legend_of_the_time_in_stage_chart_hides_no_tick():
    """The 90th-percentile ticks reach the right edge: a legend inside the axes (lower right) hid them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from revops_lib.present.charts.sales import plot_time_in_stage

    times = pd.DataFrame({"stage": ["qualification"] * 3 + ["proposal"] * 3,
                          "outcome": ["won", "lost", "all"] * 2, "n": [3, 2, 5] * 2,
                          "median_days": [5.0, 20.0, 9.0, 8.0, 10.0, 9.0], "p90_days": [30.0, 73.0, 60.0] * 2})
    ax = plot_time_in_stage(times)
    fig = ax.figure
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    box = ax.get_legend().get_window_extent(r)
    assert box.x0 >= ax.get_window_extent(r).x1  # beside the plot, over no bar and no tick
    plt.close(fig)
