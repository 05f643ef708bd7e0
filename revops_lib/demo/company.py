"""The generator's state and loop: ``_Company`` holds what every table is drawn from and runs the build.

The tables are draws from shared state: each lead's future decides its deal, the deal its
subscription, the subscriptions the invoices and support tickets, and the forecasts and targets
follow the actuals. ``_Company`` keeps that state (the calendar, id counters, sales reps, the
writers and small daily and monthly aggregates) and streams the lead cohorts month by month, to keep
memory flat at scale 100; the modules of this package draw and write each concern from it:

- :mod:`~revops_lib.demo.crm` — leads, new-business deals, opportunities, their history, activities;
- :mod:`~revops_lib.demo.billing` — the life of each customer, subscriptions and invoices;
- :mod:`~revops_lib.demo.support` — support tickets and reviews;
- :mod:`~revops_lib.demo.marketing` — email campaigns, web traffic, marketing spend;
- :mod:`~revops_lib.demo.forecasts` and :mod:`~revops_lib.demo.targets` — what the company expects
  of itself.
"""

from __future__ import annotations

import numpy as np

from revops_lib.demo import billing, crm, forecasts, marketing, support, targets
from revops_lib.demo.calendar import DAY, _add_months, _day, _month_label, _month_of_day, _month_start, plan_calendar
from revops_lib.demo.draws import _rng
from revops_lib.demo.truth import REPS_PER_TEAM, SOURCES
from revops_lib.demo.writer import _W, _Writers


class _Company:
    """The demo company being built into ``folder``: its state, and :meth:`run` to write every table."""

    def __init__(self, folder, seed, scale, end_date, months, progress):
        self.folder = folder
        self.seed = seed
        self.scale = scale
        self.progress = progress or (lambda msg: None)
        self.end_date = end_date
        self.start_date = _add_months(end_date, -months)
        self.start_day = _day(self.start_date)
        self.end_day = _day(end_date)
        self.end_us = self.end_day * DAY
        self.n_days = self.end_day - self.start_day
        self.m0 = int(_month_of_day(self.start_day))
        self.m_last = int(_month_of_day(self.end_day - 1))
        self.n_months = self.m_last - self.m0 + 1
        # counters for ids
        self.next = {k: 1 for k in _W}
        # reps
        n_reps = [max(1, int(round(b * scale))) for b in REPS_PER_TEAM]
        self.rep_offset = np.concatenate([[0], np.cumsum(n_reps)[:-1]]).astype(np.int64)
        self.rep_count = np.array(n_reps, dtype=np.int64)
        self.rep_names = _rep_names(int(sum(n_reps)))
        # aggregates across cohorts (small)
        nd = self.n_days
        self.agg = {
            k: np.zeros(nd) for k in (
                "leads", "mqls", "sqls", "opps", "first_meetings", "proposals", "won_amount",
                "won_count", "lost_count", "new_customers", "csat_rated", "csat_pos")
        }
        self.leads_src_day = np.zeros((len(SOURCES), nd))
        self.won_month_team = np.zeros((self.n_months + 72, 3))  # includes deals won after `end`
        self.nrr_num = np.zeros(self.n_months)
        self.nrr_den = np.zeros(self.n_months)
        self.active_customers = np.zeros(self.n_months)
        self.mrr_total = np.zeros(self.n_months)
        rng = _rng(self.seed, 0)  # one stream for the calendar and the email sends, in this order
        plan_calendar(self, rng)
        marketing.plan_sends(self, rng)

    # ------------------------------------------------------------------ ids, reps, daily counts
    def take_ids(self, prefix: str, n: int) -> np.ndarray:
        """The next ``n`` id numbers of the table whose ids start with ``prefix``."""
        start = self.next[prefix]
        self.next[prefix] = start + n
        return np.arange(start, start + n, dtype=np.int64)

    def draw_owner(self, rng, seg):
        """A sales rep of each segment's team (indices into ``rep_names``)."""
        seg = np.asarray(seg, dtype=np.int64)
        return self.rep_offset[seg] + (rng.random(len(seg)) * self.rep_count[seg]).astype(np.int64)

    def day_index(self, us):
        """Days since the start of the data of microsecond timestamps."""
        return (np.asarray(us, dtype=np.int64) // DAY) - self.start_day

    def add_daily(self, key, us, weights=None):
        """Count (or sum ``weights`` of) events at timestamps ``us`` into the daily aggregate ``agg[key]``."""
        if len(us):
            self.agg[key] += np.bincount(self.day_index(us), weights=weights, minlength=self.n_days)[: self.n_days]

    # ------------------------------------------------------------------ main loop
    def run(self) -> dict[str, int]:
        self.w = _Writers(self.folder)
        try:
            n_chunks = self.n_months
            self.progress(
                f"Building the demo company: {self.start_date} to {self.end_date} (exclusive), "
                f"seed {self.seed}, scale {self.scale:g}"
            )
            for i, mi in enumerate(range(self.m0, self.m_last + 1)):
                stats = self._cohort(mi)
                self.progress(
                    f"  cohort {_month_label(mi)} ({i + 1}/{n_chunks}): {stats[0]:,} leads -> "
                    f"{stats[1]:,} opportunities, {stats[2]:,} customers so far"
                )
            self.progress("  marketing, web, email, forecasts and targets")
            marketing.write_email_campaigns(self)
            marketing.write_web_traffic(self)
            marketing.write_marketing_spend(self)
            forecasts.write_forecast_snapshots(self)
            targets.write_targets(self)
        finally:
            self.w.close()
        return dict(self.w.counts)

    # ------------------------------------------------------------------ one lead cohort
    def _cohort(self, mi: int):
        rng_leads, rng_deals, rng_cust, rng_act, rng_tix = (_rng(self.seed, 1, mi, k) for k in range(5))
        lo = max(self.start_day, int(_month_start(mi)))
        hi = min(self.end_day, int(_month_start(mi + 1)))
        leads = crm.draw_leads(self, rng_leads, mi, lo, hi)
        nb = leads.pop("_nb")
        customers, deals = crm.new_business(self, rng_deals, nb, leads)
        sim = billing.simulate_customers(self, rng_cust, customers)
        all_deals = _concat_dicts([deals, sim["deals"]])
        all_deals["oid"] = np.concatenate([nb["oid"], self.take_ids("O", len(sim["deals"]["created"]))])
        crm.write_deals(self, rng_act, all_deals, leads["_outbound"])
        customer_months = billing.write_customers(self, rng_tix, customers, sim)
        if customer_months is not None:  # invoices, tickets, then reviews: one stream, in this order
            support.write_support_tickets(self, rng_tix, customers, customer_months)
            support.write_reviews(self, rng_tix, customers, customer_months)
        return len(leads["lead_id"]), len(all_deals["created"]), len(customers["acc"])


# --------------------------------------------------------------------------- sales reps and small helpers

_FIRST = ("Ava", "Ben", "Chloe", "Diego", "Emma", "Farid", "Grace", "Hugo", "Isla", "Jonas", "Kai", "Lena",
          "Mateo", "Nora", "Omar", "Priya", "Quinn", "Rosa", "Sam", "Tara", "Umar", "Vera", "Will", "Xin",
          "Yara", "Zoe", "Aron", "Bea", "Caleb", "Dana")
_LAST = ("Garcia", "Novak", "Okafor", "Schmidt", "Tanaka", "Rossi", "Kowalski", "Silva", "Murphy", "Dubois",
         "Jensen", "Haddad", "Ivanova", "Chen", "Larsen", "Moreno", "Patel", "Quinlan", "Reyes", "Sato",
         "Berg", "Costa", "Duarte", "Eriksen", "Fischer", "Gomez", "Horvat", "Iqbal", "Jovanovic", "Keller")


def _rep_names(n: int) -> list[str]:
    names = []
    for i in range(n):
        name = f"{_FIRST[i % 30]} {_LAST[(7 * i + i // 30) % 30]}"
        names.append(name if i < 900 else f"{name} {i // 900 + 1}")
    return names


def _concat_dicts(parts):
    keys = parts[0].keys()
    return {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in keys}
