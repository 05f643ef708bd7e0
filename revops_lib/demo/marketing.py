"""Marketing in the demo company: the email send schedule (planned with the calendar: prospect sends
bring the email leads), and the ``email_campaigns``, ``web_traffic`` and ``marketing_spend`` tables,
written after all lead cohorts from the leads and customers they brought.

Each function takes the company ``co`` (:class:`revops_lib.demo.company._Company`), draws from the
random stream it is given (or its own, seeded from ``co.seed``) and writes its table with ``co.w``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from revops_lib.demo.calendar import DAY, HOUR, _month_of_day, _weekday
from revops_lib.demo.draws import _lognormal, _rng
from revops_lib.demo.truth import (
    _DAILY,
    _SRC,
    GROWTH_PER_YEAR,
    LEAD_SHARE,
    REPS_PER_TEAM,
    SPEND_CHANNELS,
    WEB_CONVERSION,
    WEB_SOURCES,
)
from revops_lib.demo.writer import _cat, _dates, _ids


def plan_sends(co, rng) -> None:
    """The email sends (2-4 a week, 70 % to prospects) with their prospect list sizes, opens and clicks, on
    ``co.sends``: the email leads of each cohort come from them. Continues the calendar's stream ``rng``
    (after :func:`revops_lib.demo.calendar.plan_calendar`)."""
    total = co.total_leads
    first_monday = co.start_day - int(_weekday(co.start_day))
    sends_day, sends_aud = [], []
    for monday in range(first_monday, co.end_day, 7):
        n = rng.choice((2, 3, 4), p=(0.3, 0.45, 0.25))
        wds = rng.choice(5, size=n, replace=False, p=(0.1, 0.3, 0.3, 0.25, 0.05))
        for w in np.sort(wds):
            d = monday + int(w)
            aud = int(rng.random() >= 0.7)  # 0 prospects, 1 customers
            if co.start_day <= d < co.end_day:
                sends_day.append(d)
                sends_aud.append(aud)
    sd = np.array(sends_day, dtype=np.int64)
    aud = np.array(sends_aud, dtype=np.int64)
    n = len(sd)
    g = (1 + GROWTH_PER_YEAR) ** ((sd - co.start_day) / 365.25)
    p_open_p, p_click_p, p_lead = 0.22, 0.12, 0.03
    pros = aud == 0
    per_list = 0.925 * p_open_p * p_click_p * p_lead
    l0 = LEAD_SHARE["email"] * total / max(1e-9, (g[pros] * per_list).sum())
    delivered = np.where(pros, np.round(l0 * g * rng.uniform(0.85, 1.0, n)), 0).astype(np.int64)
    p_open = np.clip(rng.normal(p_open_p, 0.03, n), 0.05, 0.6)
    opens = rng.binomial(delivered, p_open)
    p_click = np.clip(rng.normal(p_click_p, 0.02, n), 0.02, 0.4)
    clicks = rng.binomial(opens, p_click)
    co.sends = {
        "day": sd, "aud": aud, "delivered": delivered, "opens": opens, "clicks": clicks,
        "send_us": sd * DAY + (rng.uniform(13, 16, n) * HOUR).astype(np.int64),
        "leads": np.zeros(n, dtype=np.int64), "p_lead": p_lead,
        "u_customers": rng.random((n, 3)),
    }


def write_email_campaigns(co) -> None:
    """Write ``email_campaigns``: the prospect sends with the leads they generated, the customer sends to
    about 3 contacts per active customer."""
    s = co.sends
    rng = _rng(co.seed, 2)
    mo = _month_of_day(s["day"]) - co.m0
    contacts = np.round(co.active_customers[np.clip(mo, 0, co.n_months - 1)] * 3.0
                        * (0.9 + 0.1 * s["u_customers"][:, 0]))
    cust = s["aud"] == 1
    delivered = np.where(cust, contacts, s["delivered"]).astype(np.int64)
    opens = np.where(cust, rng.binomial(delivered, 0.38), s["opens"])
    clicks = np.where(cust, rng.binomial(opens, 0.08), s["clicks"])
    keep = delivered > 0
    ids = np.cumsum(keep)  # campaign numbers in send order
    co.w.write("email_campaigns", {
        "campaign_id": _ids("C", ids[keep]),
        "sent_date": _dates(s["day"][keep]),
        "delivered": delivered[keep],
        "opens": opens[keep],
        "clicks": clicks[keep],
        "leads_generated": pa.array(s["leads"][keep], type=pa.int64(), mask=cust[keep]),
        "audience": _cat(("prospects", "customers"), s["aud"][keep]),
    })
    co._email_clicks = (s["day"][keep], clicks[keep])


def write_web_traffic(co) -> None:
    """Write ``web_traffic``: daily sessions, visitors and conversions per web source (a lead source's
    conversions are its leads of the day); keep the daily sessions for the targets."""
    rng = _rng(co.seed, 3)
    nd = co.n_days
    rows_s, rows_v, rows_c = [], [], []
    org_sessions = None
    for ws in WEB_SOURCES:
        if ws in WEB_CONVERSION:
            lam = co.lam_daily[_DAILY.index(ws)]
            conv = co.leads_src_day[_SRC[ws]].astype(np.int64)
            sess = rng.poisson(lam / WEB_CONVERSION[ws] * _lognormal(rng, 1.0, 0.08, nd))
            if ws == "organic_search":
                org_sessions = lam / WEB_CONVERSION[ws]
        elif ws == "email":
            conv = co.leads_src_day[_SRC["email"]].astype(np.int64)
            cd, ck = co._email_clicks
            clicks = np.bincount(cd - co.start_day, weights=ck, minlength=nd)[:nd]
            nxt = np.concatenate([[0.0], clicks[:-1]])
            sess = np.round(0.8 * clicks + 0.2 * nxt).astype(np.int64) + rng.poisson(20 * co.scale, nd)
        else:  # direct
            sess = rng.poisson(0.35 * org_sessions * _lognormal(rng, 1.0, 0.08, nd))
            conv = rng.binomial(sess, 0.002)
        sess = np.maximum(sess, conv)
        vis = np.minimum(np.maximum(rng.binomial(sess, 0.78), conv), sess)
        rows_s.append(sess)
        rows_v.append(vis)
        rows_c.append(conv)
    k = len(WEB_SOURCES)
    co.sessions_day = np.sum(rows_s, axis=0).astype(float)
    co.w.write("web_traffic", {
        "date": _dates(np.repeat(co.days, k)),
        "source": _cat(WEB_SOURCES, np.tile(np.arange(k), nd)),
        "sessions": np.stack(rows_s, axis=1).ravel().astype(np.int64),
        "visitors": np.stack(rows_v, axis=1).ravel().astype(np.int64),
        "conversions": np.stack(rows_c, axis=1).ravel().astype(np.int64),
    })


def write_marketing_spend(co) -> None:
    """Write ``marketing_spend``: daily paid search, paid social, content and sales cost, events on event
    days, partner commissions on the first day of each month."""
    rng = _rng(co.seed, 4)
    nd = co.n_days
    days = co.days
    ch_idx = {c: i for i, c in enumerate(SPEND_CHANNELS)}
    parts = []  # (day, channel, spend)
    ps = co.lam_daily[_DAILY.index("paid_search")] * 260.0 * _lognormal(rng, 1.0, 0.15, nd)
    so = co.lam_daily[_DAILY.index("paid_social")] * 180.0 * _lognormal(rng, 1.0, 0.20, nd)
    weekday = np.where(_weekday(days) < 5, 1.0, 0.3)
    content = 2000.0 * co.scale * co.growth * weekday * _lognormal(rng, 1.0, 0.1, nd)
    for mi, wd in co.webinar_day.items():
        if wd >= 0:
            content[wd - co.start_day] += 1500.0 * co.scale
    sales = sum(REPS_PER_TEAM) * co.scale * 19_000.0 * 12 / 365.25 * np.ones(nd)
    sales = sales * (1 + 0.15 * (days - co.start_day) / 365.25)  # the team grows
    for ch, v in (("paid_search", ps), ("paid_social", so), ("content", content), ("sales", sales)):
        parts.append((days, np.full(nd, ch_idx[ch]), v))
    ev_d, ev_v, pa_d, pa_v = [], [], [], []
    mo = _month_of_day(days)
    for mi in range(co.m0, co.m_last + 1):
        in_m = mo == mi
        edays = co.event_days.get(mi, [])
        if len(edays):
            total = co.lam_events[in_m].sum() * 600.0
            for d in edays:
                ev_d.append(d)
                ev_v.append(total / len(edays) * _lognormal(rng, 1.0, 0.2))
        first = int(days[in_m][0])
        prev = (mo == mi - 1) if mi > co.m0 else in_m
        pa_d.append(first)
        pa_v.append(co.lam_daily[_DAILY.index("partner")][prev].sum() * 400.0)
    parts.append((np.array(ev_d, dtype=np.int64), np.full(len(ev_d), ch_idx["events"]), np.array(ev_v)))
    parts.append((np.array(pa_d, dtype=np.int64), np.full(len(pa_d), ch_idx["partner"]), np.array(pa_v)))
    d = np.concatenate([p[0] for p in parts])
    c = np.concatenate([p[1] for p in parts])
    v = np.round(np.concatenate([p[2] for p in parts]).astype(float), 2)
    order = np.lexsort((c, d))
    co.spend_day = np.bincount(d - co.start_day, weights=v, minlength=nd)[:nd]
    co.w.write("marketing_spend", {
        "date": _dates(d[order]),
        "channel": _cat(SPEND_CHANNELS, c[order]),
        "spend": v[order],
    })
