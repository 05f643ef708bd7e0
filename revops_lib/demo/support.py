"""Customer support in the demo company: ``support_tickets`` (with first response, resolution, CSAT and
CES) and online ``reviews``, drawn from the customer-months that :func:`revops_lib.demo.billing.write_customers`
bills.

Each function takes the company ``co`` (:class:`revops_lib.demo.company._Company`), draws from the
random stream it is given, writes its tables with ``co.w`` and adds to ``co``'s aggregates.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from revops_lib.demo.calendar import DAY, HOUR
from revops_lib.demo.draws import _choice_rows, _lognormal
from revops_lib.demo.truth import PLATFORMS, REVIEWS_PER_CUSTOMER_MONTH, TICKETS_PER_MONTH
from revops_lib.demo.writer import _cat, _ids, _ts


def write_support_tickets(co, rng, cu: dict, months: dict) -> None:
    """Write the ``support_tickets`` of the customers ``cu`` over their billed customer-months ``months``
    (customer index ``"cust"``, first day ``"lo"``, end day ``"hi"``); count rated and satisfied tickets
    per day."""
    c_cust, c_lo, c_hi = months["cust"], months["lo"], months["hi"]
    c_seg = cu["seg"][c_cust]
    nt = rng.poisson(np.take(TICKETS_PER_MONTH, c_seg))
    tr = np.repeat(np.arange(len(c_cust)), nt)
    span = (c_hi - c_lo)[tr] * DAY
    t_created = c_lo[tr] * DAY + (rng.random(len(tr)) * span).astype(np.int64)
    t_created = np.minimum(t_created, co.end_us - HOUR)
    nt_ = len(tr)
    resp_h = _lognormal(rng, 3.0, 1.0, nt_)
    t_resp = t_created + (resp_h * HOUR).astype(np.int64)
    has_resp = (rng.random(nt_) >= 0.04) & (t_resp < co.end_us)
    t_res = t_created + ((resp_h + _lognormal(rng, 18.0, 1.2, nt_)) * HOUR).astype(np.int64)
    has_res = (rng.random(nt_) >= 0.03) & (t_res < co.end_us)
    slow = resp_h > 8
    p_csat = np.where(slow[:, None], (0.08, 0.10, 0.17, 0.35, 0.30), (0.03, 0.04, 0.08, 0.30, 0.55))
    csat = _choice_rows(rng, p_csat) + 1
    rated = has_res & (rng.random(nt_) < 0.30)
    ces = _choice_rows(rng, np.tile((0.03, 0.04, 0.07, 0.12, 0.24, 0.30, 0.20), (nt_, 1))) + 1
    ces_rated = has_res & (rng.random(nt_) < 0.20)
    order = np.argsort(t_created, kind="stable")
    tkid = co.take_ids("TK", nt_)
    t_cust = c_cust[tr][order]
    co.w.write("support_tickets", {
        "ticket_id": _ids("TK", tkid),
        "created_at": _ts(t_created[order]),
        "customer_id": _ids("A", cu["acc"][t_cust]),
        "first_response_at": _ts(t_resp[order], ~has_resp[order]),
        "resolved_at": _ts(t_res[order], ~has_res[order]),
        "csat": pa.array(csat[order].astype(np.int64), mask=~rated[order]),
        "ces": pa.array(ces[order].astype(np.int64), mask=~ces_rated[order]),
    })
    co.add_daily("csat_rated", t_created[rated])
    co.add_daily("csat_pos", t_created[rated & (csat >= 4)])


def write_reviews(co, rng, cu: dict, months: dict) -> None:
    """Write the online ``reviews`` of the customers ``cu``: a few of their billed customer-months ``months``
    (as for :func:`write_support_tickets`) bring one, a quarter of them anonymous."""
    c_cust, c_lo, c_hi = months["cust"], months["lo"], months["hi"]
    rv = rng.random(len(c_cust)) < REVIEWS_PER_CUSTOMER_MONTH
    nrv = int(rv.sum())
    rv_t = c_lo[rv] * DAY + (rng.random(nrv) * (c_hi - c_lo)[rv] * DAY).astype(np.int64)
    rv_t = np.minimum(rv_t, co.end_us - HOUR)
    rating = rng.choice(5, size=nrv, p=(0.03, 0.05, 0.12, 0.35, 0.45)) + 1
    platform = rng.choice(3, size=nrv, p=(0.55, 0.30, 0.15))
    anon = rng.random(nrv) < 0.25
    order = np.argsort(rv_t, kind="stable")
    rid = co.take_ids("R", nrv)
    co.w.write("reviews", {
        "review_id": _ids("R", rid),
        "posted_at": _ts(rv_t[order]),
        "rating": rating[order].astype(np.int64),
        "platform": _cat(PLATFORMS, platform[order]),
        "customer_id": pc.if_else(pa.array(~anon[order]), _ids("A", cu["acc"][c_cust[rv]][order]),
                                  pa.nulls(nrv, pa.string())),
    })
