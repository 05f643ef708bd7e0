"""The CRM side of the demo company: leads and the futures they draw, new-business deals, and the
opportunities, opportunity history and sales activities of every deal (new business, expansion,
renewal).

Each function takes the company ``co`` (:class:`revops_lib.demo.company._Company`), draws from the
random stream it is given, writes its tables with ``co.w`` and adds to ``co``'s aggregates.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from revops_lib.demo.calendar import DAY, HOUR, MONTH_DAYS, SECOND, _business, _month_of_day, _month_start, _tod
from revops_lib.demo.draws import _choice_rows, _lognormal, _round_to
from revops_lib.demo.truth import (
    _DAILY,
    _DAILY_IDX,
    _SRC,
    ACTIVITY_TYPES,
    ACV_MEDIAN,
    ACV_SIGMA,
    AMOUNT_CHANGE_P,
    CYCLE_MEDIAN_DAYS,
    CYCLE_SIGMA,
    DEAL_STAGES,
    LAG_MEDIAN_DAYS,
    LAG_SEGMENT_FACTOR,
    LAG_SIGMA,
    LOST_CYCLE_FACTOR,
    LOST_STAGE_P,
    OPP_SOURCES,
    OPP_TYPES,
    PRODUCT_MIX,
    PRODUCTS,
    PULL_IN_P,
    PULL_IN_P_Q4,
    PUSH_P,
    SEGMENT_MIX,
    SEGMENT_NULL_IF_NOT_MQL,
    SEGMENTS,
    SKIP_MQL,
    SKIP_SQL,
    SOURCES,
    STAGE_CATEGORY,
    STAGE_CONVERSION,
    STAGE_SKIP_WON,
    STALE_P,
    TEAMS,
    WEBINAR_LEADS_PER_MONTH,
    WIN_RATE,
)
from revops_lib.demo.writer import _cat, _dates, _ids, _ts

# --------------------------------------------------------------------------- leads

def draw_leads(co, rng, mi: int, lo: int, hi: int) -> dict:
    """The leads created on days ``lo``..``hi - 1`` of month ``mi``, each with its whole future drawn (stages
    reached, segment, lags); the deals of those reaching the opportunity stage before ``end`` under ``"_nb"``
    and the outbound leads (for prospecting activities) under ``"_outbound"``. The leads table is written
    by :func:`new_business`, once the deals are decided."""
    end_us = co.end_us
    d0, d1 = lo - co.start_day, hi - co.start_day
    # daily sources
    counts = rng.poisson(co.lam_daily[:, d0:d1])
    src_parts, t_parts, camp_parts = [], [], []
    n_by = counts.sum(axis=1)
    day_rep = np.repeat(np.tile(np.arange(lo, hi), len(_DAILY)), counts.ravel())
    src_rep = np.repeat(_DAILY_IDX, n_by)
    t_parts.append(day_rep * DAY + _tod(rng, len(day_rep)))
    src_parts.append(src_rep)
    camp_parts.append(np.full(len(day_rep), -1))
    # events: the month's expected volume arrives on its event days (+0-3 days badge-scan import)
    ev_days = co.event_days.get(mi, np.zeros(0, dtype=np.int64))
    n_ev = rng.poisson(co.lam_events[d0:d1].sum()) if len(ev_days) else 0
    ev_day = ev_days[rng.integers(0, max(1, len(ev_days)), n_ev)] if n_ev else np.zeros(0, dtype=np.int64)
    t_parts.append(ev_day * DAY + (rng.uniform(9, 18, n_ev) * HOUR).astype(np.int64)
                   + (rng.uniform(0, 3, n_ev) * DAY).astype(np.int64))
    src_parts.append(np.full(n_ev, _SRC["events"]))
    camp_parts.append(np.full(n_ev, -1))
    # webinar: a handful of leads on the webinar day
    wday = co.webinar_day.get(mi, -1)
    n_web = rng.poisson(WEBINAR_LEADS_PER_MONTH * co.scale * (hi - lo) / MONTH_DAYS) if wday >= 0 else 0
    t_parts.append(wday * DAY + (rng.uniform(16, 19, n_web) * HOUR).astype(np.int64))
    src_parts.append(np.full(n_web, _SRC["webinar"]))
    camp_parts.append(np.full(n_web, -1))
    # email: leads from this month's prospect sends, hours after the send
    s = co.sends
    idx = np.nonzero((s["day"] >= lo) & (s["day"] < hi) & (s["aud"] == 0))[0]
    n_em = rng.binomial(s["clicks"][idx], s["p_lead"])
    camp = np.repeat(idx, n_em)
    t_parts.append(s["send_us"][camp] + (rng.exponential(18.0, len(camp)) * HOUR).astype(np.int64))
    src_parts.append(np.full(len(camp), _SRC["email"]))
    camp_parts.append(camp)

    created = np.concatenate(t_parts).astype(np.int64)
    src = np.concatenate(src_parts).astype(np.int64)
    camp = np.concatenate(camp_parts).astype(np.int64)
    order = np.argsort(created, kind="stable")
    created, src, camp = created[order], src[order], camp[order]
    keep = created < end_us
    created, src, camp = created[keep], src[keep], camp[keep]
    n = len(created)
    if len(camp[camp >= 0]):
        s["leads"] += np.bincount(camp[camp >= 0], minlength=len(s["day"]))

    # the lead's whole future
    conv = np.array([STAGE_CONVERSION[x] for x in SOURCES])[src]  # (n, 3)
    seg = _choice_rows(rng, np.array([SEGMENT_MIX[x] for x in SOURCES])[src])
    u = rng.random((n, 6))
    r_mql = u[:, 0] < conv[:, 0]
    r_sql = r_mql & (u[:, 1] < conv[:, 1])
    r_opp = r_sql & (u[:, 2] < conv[:, 2])
    fseg = np.take(LAG_SEGMENT_FACTOR, seg)
    t_mql = created + (_lognormal(rng, LAG_MEDIAN_DAYS[0], LAG_SIGMA[0], n) * DAY).astype(np.int64)
    t_sql = t_mql + (_lognormal(rng, LAG_MEDIAN_DAYS[1], LAG_SIGMA[1], n) * fseg * DAY).astype(np.int64)
    t_opp = t_sql + (_lognormal(rng, LAG_MEDIAN_DAYS[2], LAG_SIGMA[2], n) * fseg * DAY).astype(np.int64)
    # people accept SQLs and open opportunities in working hours (MQL scoring is automatic)
    t_sql = np.maximum(_business(t_sql), t_mql)
    t_opp = np.maximum(_business(t_opp), t_sql)
    skip_sql = r_opp & (u[:, 3] < SKIP_SQL)
    skip_mql = r_sql & ~skip_sql & (u[:, 4] < SKIP_MQL)
    seg_null = ~r_mql & (u[:, 5] < SEGMENT_NULL_IF_NOT_MQL)
    has_opp = r_opp & (t_opp < end_us)
    has_mql = r_mql & ~skip_mql & (t_mql < end_us)
    has_sql = r_sql & ~skip_sql & (t_sql < end_us)

    lead_num = co.take_ids("L", n)
    n_opp = int(has_opp.sum())
    oid = co.take_ids("O", n_opp)
    acc = co.take_ids("A", n_opp)
    opp_of_lead = np.full(n, -1)
    opp_of_lead[has_opp] = np.arange(n_opp)
    nb = {
        "lead": np.nonzero(has_opp)[0], "created": t_opp[has_opp], "seg": seg[has_opp],
        "src": src[has_opp], "oid": oid, "acc": acc,
    }
    # the lead table is written after the deals are decided (customer_at)
    leads = {
        "lead_id": _ids("L", lead_num), "created": created, "src": src, "seg": seg, "seg_null": seg_null,
        "mql": (t_mql, has_mql), "sql": (t_sql, has_sql), "opp": (t_opp, has_opp),
        "opp_idx": opp_of_lead, "_nb": nb,
        "_outbound": {"created": created[src == _SRC["outbound"]], "seg": np.where(
            seg_null, 0, seg)[src == _SRC["outbound"]]},
    }
    # activity counts for targets and web conversions
    co.add_daily("leads", created)
    di = co.day_index(created)
    np.add.at(co.leads_src_day, (src, di), 1)
    return leads


def write_leads(co, leads: dict, nb: dict, cust_at: np.ndarray, has_cust: np.ndarray) -> None:
    """Write the cohort's ``leads`` rows (``customer_at`` from the decided deals) and count MQLs and SQLs
    entered per day."""
    t_mql, has_mql = leads["mql"]
    t_sql, has_sql = leads["sql"]
    t_opp, has_opp = leads["opp"]
    oi = leads["opp_idx"]
    acc = np.where(oi >= 0, nb["acc"][np.maximum(oi, 0)] if len(nb["acc"]) else 0, 0)
    oid = np.where(oi >= 0, nb["oid"][np.maximum(oi, 0)] if len(nb["oid"]) else 0, 0)
    co.w.write("leads", {
        "lead_id": leads["lead_id"],
        "created_at": _ts(leads["created"]),
        "source": _cat(SOURCES, leads["src"]),
        "segment": _cat(SEGMENTS, leads["seg"], leads["seg_null"]),
        "mql_at": _ts(t_mql, ~has_mql),
        "sql_at": _ts(t_sql, ~has_sql),
        "opportunity_at": _ts(t_opp, ~has_opp),
        "customer_at": _ts(cust_at, ~has_cust),
        "account_id": pc.if_else(pa.array(oi >= 0), _ids("A", acc), pa.nulls(len(oi), pa.string())),
        "opportunity_id": pc.if_else(pa.array(oi >= 0), _ids("O", oid), pa.nulls(len(oi), pa.string())),
    })
    # entered-stage counts (a skipped stage is entered at the time of the next stage reached)
    big = np.iinfo(np.int64).max
    stack = [np.where(has_mql, t_mql, big), np.where(has_sql, t_sql, big),
             np.where(has_opp, t_opp, big), np.where(has_cust, cust_at, big)]
    mql_in = np.minimum.reduce(stack)
    sql_in = np.minimum.reduce(stack[1:])
    co.add_daily("mqls", mql_in[mql_in < big])
    co.add_daily("sqls", sql_in[sql_in < big])


# --------------------------------------------------------------------------- new-business deals

def new_business(co, rng, nb: dict, leads: dict) -> tuple[dict, dict]:
    """Decide the new-business deals ``nb`` of the cohort ``leads`` (outcome, cycle with quarter-end
    pull-ins, ACV, product, owner), write the cohort's leads table, and return the new customers (won
    before ``end``) and the deals."""
    n = len(nb["created"])
    seg = nb["seg"]
    won = rng.random(n) < np.take(WIN_RATE, seg)
    med = np.take(CYCLE_MEDIAN_DAYS, seg) * np.where(won, 1.0, LOST_CYCLE_FACTOR)
    cycle = np.maximum(_lognormal(rng, med, CYCLE_SIGMA, n), 5.0)
    decide = nb["created"] + (cycle * DAY).astype(np.int64)
    # quarter-end pull-in of won deals due early in a quarter
    dday = decide // DAY
    dmo = _month_of_day(dday)
    qstart = _month_start(dmo - dmo % 3)
    early = won & (dmo % 3 == 0) & (dday - qstart < 20)
    p = np.where(dmo % 12 == 0, PULL_IN_P_Q4, PULL_IN_P)
    pulled = (qstart * DAY) - (rng.uniform(0.3, 6.0, n) * DAY).astype(np.int64)
    ok = early & (rng.random(n) < p) & (pulled > nb["created"] + 5 * DAY)
    decide = _business(np.where(ok, pulled, decide))
    acv = np.maximum(_round_to(_lognormal(rng, np.take(ACV_MEDIAN, seg), np.take(ACV_SIGMA, seg), n), 100), 500.0)
    product = _choice_rows(rng, np.array(PRODUCT_MIX)[seg])
    owner = co.draw_owner(rng, seg)
    deals = {
        "created": nb["created"], "decide": decide, "won": won, "amount": acv, "seg": seg,
        "owner": owner, "acc": nb["acc"], "typ": np.zeros(n, dtype=np.int64), "product": product,
        "src": nb["src"],
    }
    is_cust = won & (decide < co.end_us)
    cust_at = np.zeros(len(leads["created"]), dtype=np.int64)
    has_cust = np.zeros(len(leads["created"]), dtype=bool)
    cust_at[nb["lead"][is_cust]] = decide[is_cust]
    has_cust[nb["lead"][is_cust]] = True
    write_leads(co, leads, nb, cust_at, has_cust)
    customers = {
        "acc": nb["acc"][is_cust], "seg": seg[is_cust], "owner": owner[is_cust],
        "product": product[is_cust], "start": decide[is_cust] // DAY,
        "mrr": np.round(acv[is_cust] / 12.0, 2),
    }
    co.add_daily("new_customers", decide[is_cust])
    return customers, deals


# --------------------------------------------------------------------------- opportunities, history, activities

def write_deals(co, rng, d: dict, outbound: dict) -> None:
    """Write ``opportunities``, ``opportunity_history`` and ``activities`` for the cohort's deals ``d`` (new
    business, expansion, renewal) and the prospecting touches on its ``outbound`` leads; add the eventual
    wins to the forecast actuals and the daily opportunity, win, loss and activity counts."""
    end_us, end_day = co.end_us, co.end_day
    n = len(d["created"])
    created = d["created"].astype(np.int64)
    decide = d["decide"].astype(np.int64)
    won = d["won"].astype(bool)
    amount = d["amount"].astype(float)
    seg = d["seg"].astype(np.int64)
    # all eventual wins (also those after `end`) feed the forecast actuals
    wm = _month_of_day(decide[won] // DAY) - co.m0
    okm = (wm >= 0) & (wm < len(co.won_month_team))
    np.add.at(co.won_month_team, (wm[okm], seg[won][okm]), amount[won][okm])
    dur = (decide - created).astype(float)
    # --- stage path
    M = np.ones((n, 4), dtype=bool)
    lost_at = rng.choice(4, size=n, p=LOST_STAGE_P)
    M[~won] = np.arange(4)[None, :] <= lost_at[~won][:, None]
    us = rng.random(n)
    M[won & (us < STAGE_SKIP_WON), 1] = False
    M[won & (us >= STAGE_SKIP_WON) & (us < 2 * STAGE_SKIP_WON), 3] = False
    L = M.sum(axis=1) + 1  # entries including the close
    E = rng.exponential(size=(n, 4))
    E[np.arange(4)[None, :] >= (L - 1)[:, None]] = 0.0
    Cs = np.cumsum(E, axis=1)
    total = Cs[np.arange(n), L - 2] if n else np.zeros(0)
    F = np.zeros((n, 5))
    F[:, 1:] = np.clip(Cs / np.maximum(total, 1e-12)[:, None], 0.002, 0.995)
    S = np.full((n, 5), -1, dtype=np.int64)
    rows, cols = np.nonzero(M)
    pos = (np.cumsum(M, axis=1) - 1)[rows, cols]
    S[rows, pos] = cols
    S[np.arange(n), L - 1] = np.where(won, 4, 5)
    valid = np.arange(5)[None, :] < L[:, None]
    T = created[:, None] + (F * dur[:, None]).astype(np.int64)
    T = np.clip(_business(T), created[:, None] + SECOND, decide[:, None] - 30 * SECOND)
    T[:, 0] = created
    T[np.arange(n), L - 1] = decide
    er, ej = np.nonzero(valid)
    ev_opp = er
    ev_t = T[er, ej]
    ev_stage = S[er, ej]
    ev_is_close = ej == (L - 1)[er]
    ev_is_first = ej == 0
    # --- planned close dates and pushes
    is_open = decide >= end_us
    n_push = rng.choice(4, size=n, p=PUSH_P)
    n_push[dur < 20 * DAY] = 0
    c_day = created // DAY
    stale = is_open & (created < end_us - 45 * DAY) & (rng.random(n) < STALE_P)
    n_push[stale] = 0
    final_plan = np.maximum(decide // DAY + np.round(rng.normal(0, 4, n)).astype(np.int64), c_day + 1)
    stale_plan = np.clip(c_day + rng.integers(14, 46, n), c_day + 1, end_day - 1)
    P0 = np.where(n_push > 0, (created + dur / (n_push + 1)).astype(np.int64) // DAY,
                  np.where(stale, stale_plan, final_plan))
    P0 = np.maximum(P0, c_day + 1)
    pr = np.repeat(np.arange(n), n_push)
    pi = (np.arange(len(pr)) - np.repeat(np.cumsum(n_push) - n_push, n_push)) + 1  # 1..n_push
    npp = n_push[pr]
    push_t = created[pr] + (dur[pr] * (pi / (npp + 1)) * rng.uniform(0.93, 0.99, len(pr))).astype(np.int64)
    push_t = np.clip(_business(push_t), created[pr] + SECOND, decide[pr] - 30 * SECOND)
    push_val = np.where(pi == npp, final_plan[pr],
                        (created[pr] + dur[pr] * (pi + 1) / (npp + 1)).astype(np.int64) // DAY)
    push_val = np.maximum(push_val, c_day[pr] + 1)
    # --- amount change
    chg = rng.random(n) < AMOUNT_CHANGE_P
    init_amount = np.where(chg, np.maximum(_round_to(amount * rng.uniform(0.75, 1.3, n), 100), 100.0), amount)
    ar = np.nonzero(chg)[0]
    amt_t = created[ar] + (dur[ar] * rng.uniform(0.15, 0.85, len(ar))).astype(np.int64)
    amt_t = np.clip(_business(amt_t), created[ar] + SECOND, decide[ar] - 30 * SECOND)
    # --- event table
    k2, k3 = len(pr), len(ar)
    e_opp = np.concatenate([ev_opp, pr, ar])
    e_t = np.concatenate([ev_t, push_t, amt_t])
    e_stage = np.concatenate([ev_stage, np.full(k2 + k3, -1)])
    e_close = np.concatenate([np.where(ev_is_first, P0[ev_opp], np.where(ev_is_close, decide[ev_opp] // DAY, -1)),
                              push_val, np.full(k3, -1)])
    e_amt = np.concatenate([np.where(ev_is_first, init_amount[ev_opp], np.nan), np.full(k2, np.nan), amount[ar]])
    e_fixed = np.concatenate([ev_is_close, np.zeros(k2 + k3, dtype=bool)])
    order = np.lexsort((e_t, e_opp))
    e_opp, e_t, e_stage, e_close, e_amt, e_fixed = (
        a[order] for a in (e_opp, e_t, e_stage, e_close, e_amt, e_fixed))
    m = len(e_opp)
    first = np.ones(m, dtype=bool)
    first[1:] = e_opp[1:] != e_opp[:-1]
    grp_start = np.maximum.accumulate(np.where(first, np.arange(m), 0))
    posn = np.arange(m) - grp_start
    # unique (opportunity, changed_at) at whole seconds: events are >= 1 s apart
    e_t = np.where(e_fixed | (posn == 0), e_t, e_t + posn * SECOND)
    keep = e_t < end_us
    e_opp, e_t, e_stage, e_close, e_amt = (a[keep] for a in (e_opp, e_t, e_stage, e_close, e_amt))
    m = len(e_opp)
    idx = np.arange(m)
    st = e_stage[np.maximum.accumulate(np.where(e_stage >= 0, idx, 0))] if m else e_stage
    cl = e_close[np.maximum.accumulate(np.where(e_close >= 0, idx, 0))] if m else e_close
    am = e_amt[np.maximum.accumulate(np.where(~np.isnan(e_amt), idx, 0))] if m else e_amt
    same = np.zeros(m, dtype=bool)
    if m > 1:
        same[1:] = (e_opp[1:] == e_opp[:-1]) & (st[1:] == st[:-1]) & (cl[1:] == cl[:-1]) & (am[1:] == am[:-1])
    h = ~same
    h_opp, h_t, h_st, h_cl, h_am = e_opp[h], e_t[h], st[h], cl[h], am[h]
    oid = d["oid"]
    co.w.write("opportunity_history", {
        "opportunity_id": _ids("O", oid[h_opp]),
        "changed_at": _ts(h_t),
        "stage": _cat(DEAL_STAGES, h_st),
        "amount": h_am,
        "close_date": _dates(h_cl),
        "forecast_category": _cat(STAGE_CATEGORY, h_st),
    })
    # --- opportunities: the last state
    hm = len(h_opp)
    last = np.ones(hm, dtype=bool)
    if hm > 1:
        last[:-1] = h_opp[:-1] != h_opp[1:]
    lo_ = h_opp[last]
    f_st = np.full(n, 0)
    f_cl = np.zeros(n, dtype=np.int64)
    f_am = amount.copy()
    f_st[lo_], f_cl[lo_], f_am[lo_] = h_st[last], h_cl[last], h_am[last]
    assert len(lo_) == n, "every deal has a history"
    closed = f_st >= 4
    is_won = f_st == 4
    co.w.write("opportunities", {
        "opportunity_id": _ids("O", oid),
        "created_at": _ts(created),
        "close_date": _dates(f_cl),
        "is_closed": pa.array(closed),
        "is_won": pa.array(is_won),
        "amount": f_am,
        "account_id": _ids("A", d["acc"]),
        "owner": _cat(co.rep_names, d["owner"]),
        "team": _cat(TEAMS, seg),
        "segment": _cat(SEGMENTS, seg),
        "source": _cat(OPP_SOURCES, d["src"]),
        "type": _cat(OPP_TYPES, d["typ"]),
        "stage": _cat(DEAL_STAGES, f_st),
        "forecast_category": _cat(STAGE_CATEGORY, f_st),
        "product": _cat(PRODUCTS, d["product"]),
    })
    co.add_daily("opps", created)
    cday_us = f_cl * DAY
    co.add_daily("won_amount", cday_us[is_won], f_am[is_won])
    co.add_daily("won_count", cday_us[is_won])
    co.add_daily("lost_count", cday_us[closed & ~is_won])
    # --- activities
    stop = np.minimum(decide, end_us)
    typ = d["typ"]
    fm = (typ < 2)
    fm_t = np.maximum(_business(created + (rng.uniform(1, 96, n) * HOUR).astype(np.int64)), created + 60 * SECOND)
    fm = fm & (fm_t < stop - HOUR)
    pm = (e_stage == 2) & ~same
    prop_opp, prop_t = e_opp[pm], e_t[pm]
    open_days = np.maximum(stop - created, 0) / DAY
    n_act = rng.poisson(open_days * np.take((0.10, 0.12, 0.15), seg))
    ar_ = np.repeat(np.arange(n), n_act)
    act_t = created[ar_] + (rng.random(len(ar_)) * (stop - created)[ar_]).astype(np.int64)
    act_t = np.clip(_business(act_t), created[ar_] + SECOND, stop[ar_] - SECOND)
    act_ty = rng.choice((1, 2, 3), size=len(ar_), p=(0.2, 0.35, 0.45))
    # prospecting touches on outbound leads (no deal yet)
    ob_t = outbound["created"] + (rng.uniform(0.5, 48, len(outbound["created"])) * HOUR).astype(np.int64)
    ob_t = np.maximum(_business(ob_t), outbound["created"] + 60 * SECOND)
    ob_ok = ob_t < end_us
    ob_t = ob_t[ob_ok]
    ob_seg = outbound["seg"][ob_ok]
    ob_ty = np.where(rng.random(len(ob_t)) < 0.6, 2, 3)
    ob_owner = co.draw_owner(rng, ob_seg)
    a_opp = np.concatenate([np.nonzero(fm)[0], prop_opp, ar_, np.full(len(ob_t), -1)])
    a_t = np.concatenate([fm_t[fm], prop_t, act_t, ob_t])
    a_ty = np.concatenate([np.zeros(int(fm.sum()), dtype=np.int64), np.full(len(prop_t), 4), act_ty, ob_ty])
    a_owner = np.concatenate([d["owner"][a_opp[: len(a_opp) - len(ob_t)]], ob_owner])
    order = np.lexsort((a_opp, a_t))
    a_opp, a_t, a_ty, a_owner = a_opp[order], a_t[order], a_ty[order], a_owner[order]
    has = a_opp >= 0
    safe = np.maximum(a_opp, 0)
    nid = co.take_ids("AC", len(a_t))
    null = pa.nulls(len(a_t), pa.string())
    co.w.write("activities", {
        "activity_id": _ids("AC", nid),
        "occurred_at": _ts(a_t),
        "type": _cat(ACTIVITY_TYPES, a_ty),
        "owner": _cat(co.rep_names, a_owner),
        "opportunity_id": pc.if_else(pa.array(has), _ids("O", oid[safe] if n else np.zeros(len(safe))), null),
        "account_id": pc.if_else(pa.array(has), _ids("A", d["acc"][safe] if n else np.zeros(len(safe))), null),
    })
    co.add_daily("first_meetings", a_t[a_ty == 0])
    co.add_daily("proposals", a_t[a_ty == 4])
