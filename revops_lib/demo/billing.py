"""Billing in the demo company: the month-by-month life of each new customer (churn, contraction,
renewals, expansion, reactivation) and the ``subscriptions`` and ``transactions`` (invoices) it leaves,
with the month-end MRR aggregates the targets use (active customers, NRR).

Each function takes the company ``co`` (:class:`revops_lib.demo.company._Company`), draws from the
random stream it is given, writes its tables with ``co.w`` and adds to ``co``'s aggregates.
"""

from __future__ import annotations

import math

import numpy as np

from revops_lib.demo.calendar import DAY, HOUR, MONTH_DAYS, _month_of_day, _month_start, _tod
from revops_lib.demo.draws import _lognormal, _round_to
from revops_lib.demo.truth import (
    EXPANSION_MONTHLY,
    EXPANSION_SIZE_MEDIAN,
    EXPANSION_WIN,
    NONRENEWAL,
    PRODUCTS,
    REACTIVATION,
    RENEWAL_SHRINK_P,
    RENEWAL_UPLIFT_P,
    SEGMENTS,
    SMB_CONTRACTION,
    SMB_HAZARD,
    SOURCES,
)
from revops_lib.demo.writer import _cat, _dates, _ids, _ts

# --------------------------------------------------------------------------- customers' lives

def simulate_customers(co, rng, cu: dict) -> dict:
    """Month-by-month life of each new customer (vectorised over customers): the subscription intervals
    (``"subs"``) and the expansion and renewal deals (``"deals"``) of the customers ``cu``."""
    C = len(cu["acc"])
    end_day, end_us = co.end_day, co.end_us
    subs = {k: [] for k in ("cust", "start", "end", "mrr", "product", "main")}
    deals = {k: [] for k in ("created", "decide", "won", "amount", "seg", "owner", "acc", "typ",
                             "product", "src")}
    if C == 0:
        return {"subs": {k: np.zeros(0) for k in subs}, "deals": {k: np.zeros(0, dtype=np.int64)
                                                                  for k in deals}}
    seg = cu["seg"]
    d0 = cu["start"].astype(np.int64)
    state = np.zeros(C, dtype=np.int64)  # 0 active, 1 churned (will return), 2 churned
    anchor_step = np.zeros(C, dtype=np.int64)
    anchor_day = d0.copy()
    react_step = np.full(C, -1, dtype=np.int64)
    main_mrr = cu["mrr"].astype(float).copy()
    main_start = d0.copy()
    main_prod = cu["product"].astype(np.int64).copy()
    add_open = np.zeros(C, dtype=bool)
    add_mrr = np.zeros(C)
    add_start = np.zeros(C, dtype=np.int64)
    add_prod = np.zeros(C, dtype=np.int64)
    cidx = np.arange(C)
    hz_edges = np.array([e for e, _ in SMB_HAZARD])
    hz_vals = np.array([h for _, h in SMB_HAZARD])
    nonren = np.array(NONRENEWAL)

    def rec_sub(mask, start, end, mrr, prod, main):
        k = int(mask.sum())
        if k:
            for key, val in (("cust", cidx[mask]), ("start", start[mask]), ("end", np.broadcast_to(end, (C,))[mask]),
                             ("mrr", mrr[mask]), ("product", prod[mask]), ("main", np.full(k, main))):
                subs[key].append(val)

    def rec_deal(mask, created, decide, won, amount, typ, product):
        k = int(mask.sum())
        if k:
            for key, val in (("created", created), ("decide", decide), ("won", won), ("amount", amount),
                             ("seg", seg), ("owner", cu["owner"]), ("acc", cu["acc"]), ("product", product)):
                deals[key].append(np.asarray(val)[mask])
            deals["typ"].append(np.full(k, typ))
            deals["src"].append(np.full(k, len(SOURCES)))

    def churn(mask, day, t, u):
        rec_sub(mask, main_start, day, main_mrr, main_prod, True)
        rec_sub(mask & add_open, add_start, day, add_mrr, add_prod, False)
        add_open[mask] = False
        back = mask & (u < np.take(REACTIVATION, seg))
        state[mask] = 2
        state[back] = 1
        react_step[back] = t + 2 + (rng.random(C)[back] * 12).astype(np.int64)

    def replace_main(mask, day, new_mrr):
        rec_sub(mask, main_start, day, main_mrr, main_prod, True)
        main_start[mask] = day[mask]
        main_mrr[mask] = new_mrr[mask]

    t_max = int(math.ceil((end_day + 100 - d0.min()) / MONTH_DAYS)) + 1
    for t in range(1, t_max + 1):
        lo = d0 + int(math.floor(MONTH_DAYS * (t - 1))) + 1
        hi = d0 + int(math.floor(MONTH_DAYS * t))
        if lo.min() >= end_day + 100:
            break
        e = lo + (rng.random(C) * (hi - lo + 1)).astype(np.int64)
        u = rng.random((C, 8))
        tod = _tod(rng, C)
        ten = t - anchor_step
        live = state == 0
        inside = e < end_day
        arr_before = (main_mrr + np.where(add_open, add_mrr, 0.0)) * 12
        # renewals of annual contracts (mid_market, enterprise)
        ren = live & (seg > 0) & (ten > 0) & (ten % 12 == 0)
        if ren.any():
            k = np.clip(ten // 12, 1, 3) - 1
            lost = ren & (u[:, 0] < nonren[seg, k])
            uplift = ren & ~lost & (u[:, 1] < RENEWAL_UPLIFT_P)
            shrink = ren & ~lost & (u[:, 1] >= RENEWAL_UPLIFT_P) & (u[:, 1] < RENEWAL_UPLIFT_P + RENEWAL_SHRINK_P)
            factor = np.where(uplift, 1.03 + 0.07 * u[:, 2], np.where(shrink, 0.7 + 0.2 * u[:, 2], 1.0))
            new_main = np.round(main_mrr * factor, 2)
            arr_after = (new_main + np.where(add_open, add_mrr, 0.0)) * 12
            amount = np.round(np.where(lost, arr_before, arr_after), 2)
            decide = hi * DAY + tod
            created = hi * DAY - ((60 + 30 * u[:, 3]) * DAY).astype(np.int64)
            rec_deal(ren & (created < end_us), created, decide, ~lost, amount, 2, main_prod)
            now = hi < end_day
            churn(lost & now, hi, t, u[:, 4])
            replace_main((uplift | shrink) & now, hi, new_main)
        # smb: monthly churn and contraction
        smb_live = live & (seg == 0) & inside
        hz = hz_vals[np.searchsorted(hz_edges, ten)]
        ch = smb_live & (u[:, 0] < hz)
        con = smb_live & ~ch & (u[:, 1] < SMB_CONTRACTION)
        churn(ch, e, t, u[:, 4])
        replace_main(con, e, np.round(main_mrr * (0.6 + 0.3 * u[:, 2]), 2))
        # expansion deals decided this month
        ex = live & ~ren & ~ch & ~con & (u[:, 5] < np.take(EXPANSION_MONTHLY, seg))
        if ex.any():
            decide = e * DAY + tod
            lag = (_lognormal(rng, 30.0, 0.5, C) * DAY).astype(np.int64)
            created = np.maximum(decide - lag, anchor_day * DAY + HOUR)
            won = u[:, 6] < EXPANSION_WIN
            amount = np.maximum(_round_to(arr_before * _lognormal(rng, EXPANSION_SIZE_MEDIAN, 0.45, C), 100), 100.0)
            addon = ~add_open & (u[:, 7] < 0.5)
            other = (main_prod + 1 + (u[:, 7] * 4).astype(np.int64) % 2) % 3
            product = np.where(addon, other, main_prod)
            rec_deal(ex & (created < end_us), created, decide, won, amount, 1, product)
            apply = ex & won & inside
            new_add = apply & addon
            add_open[new_add] = True
            add_mrr[new_add] = np.round(amount[new_add] / 12, 2)
            add_start[new_add] = e[new_add]
            add_prod[new_add] = other[new_add]
            up = apply & ~addon
            replace_main(up, e, np.round(main_mrr + amount / 12, 2))
        # reactivations
        re = (state == 1) & (react_step == t) & inside
        if re.any():
            main_start[re] = e[re]
            main_mrr[re] = np.round(main_mrr[re] * (0.8 + 0.3 * u[re, 3]), 2)
            state[re] = 0
            anchor_step[re] = t
            anchor_day[re] = e[re]
    # still open at `end`
    live = state == 0
    rec_sub(live, main_start, np.int64(-1), main_mrr, main_prod, True)
    rec_sub(live & add_open, add_start, np.int64(-1), add_mrr, add_prod, False)
    cat = {k: (np.concatenate(v) if v else np.zeros(0, dtype=np.int64)) for k, v in subs.items()}
    dl = {k: (np.concatenate(v) if v else np.zeros(0, dtype=np.int64)) for k, v in deals.items()}
    dl["won"] = dl["won"].astype(bool)
    dl["amount"] = dl["amount"].astype(float)
    return {"subs": cat, "deals": dl}


# --------------------------------------------------------------------------- subscriptions and invoices

def write_customers(co, rng, cu: dict, sim: dict) -> dict | None:
    """Write the ``subscriptions`` and ``transactions`` of the customers ``cu`` from their simulated lives
    ``sim``, add their month-end MRR to the NRR and active-customer aggregates, and return the billed
    customer-months of main subscriptions (customer index, first and end day) for the support tables;
    ``None`` when there is no subscription."""
    s = sim["subs"]
    ns = len(s["cust"])
    if ns == 0:
        return None
    cust = s["cust"].astype(np.int64)
    start = s["start"].astype(np.int64)
    end = s["end"].astype(np.int64)
    mrr = s["mrr"].astype(float)
    prod = s["product"].astype(np.int64)
    main = s["main"].astype(bool)
    order = np.lexsort((cust, start))
    cust, start, end, mrr, prod, main = (a[order] for a in (cust, start, end, mrr, prod, main))
    acc = cu["acc"][cust]
    seg = cu["seg"][cust]
    sid = co.take_ids("S", ns)
    co.w.write("subscriptions", {
        "customer_id": _ids("A", acc),
        "start_date": _dates(start),
        "mrr": mrr,
        "end_date": _dates(np.maximum(end, 0), end < 0),
        "subscription_id": _ids("S", sid),
        "product": _cat(PRODUCTS, prod),
        "segment": _cat(SEGMENTS, seg),
    })
    # invoices: one per subscription per month in which it is active on the last day
    end_month_cap = int(_month_of_day(co.end_day))  # months before it are complete
    m_first = _month_of_day(start)
    m_end = np.where(end < 0, end_month_cap, np.minimum(_month_of_day(np.maximum(end, 0)), end_month_cap))
    cnt = np.maximum(m_end - m_first, 0)
    r = np.repeat(np.arange(ns), cnt)
    k = np.arange(len(r)) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    month = m_first[r] + k
    bill_dom = np.minimum(start - _month_start(m_first) + 1, 28)[r]
    bill_day = np.where(k == 0, start[r], _month_start(month) + bill_dom - 1)
    occurred = bill_day * DAY + (rng.uniform(5, 9, len(r)) * HOUR).astype(np.int64)
    order = np.lexsort((r, occurred))
    r_o, occ_o = r[order], occurred[order]
    tid = co.take_ids("T", len(r))
    co.w.write("transactions", {
        "customer_id": _ids("A", acc[r_o]),
        "occurred_at": _ts(occ_o),
        "amount": mrr[r_o],
        "transaction_id": _ids("T", tid),
    })
    # month-end MRR per customer: NRR numerators/denominators, active customers
    C = len(cu["acc"])
    mo = month - co.m0
    okm = (mo >= 0) & (mo < co.n_months)
    mat = np.bincount(cust[r][okm] * co.n_months + mo[okm], weights=mrr[r][okm],
                      minlength=C * co.n_months).reshape(C, co.n_months)
    co.active_customers += (mat > 0).sum(axis=0)
    co.mrr_total += mat.sum(axis=0)
    if co.n_months > 12:
        prev, cur = mat[:, :-12], mat[:, 12:]
        co.nrr_den[12:] += prev.sum(axis=0)
        co.nrr_num[12:] += np.where(prev > 0, cur, 0.0).sum(axis=0)
    # customer-months (main subscriptions), for tickets and reviews
    cm = main[r]
    c_cust = cust[r][cm]
    c_month = month[cm]
    c_lo = np.maximum(_month_start(c_month), start[r][cm])
    c_hi = _month_start(c_month + 1)
    return {"cust": c_cust, "lo": c_lo, "hi": c_hi}
