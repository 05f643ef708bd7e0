"""The demo company: a realistic synthetic B2B SaaS business, all 13 contract tables.

``build(out)`` writes one Parquet file per table of the data contract
(:data:`revops_lib.schema.TABLES`) into the folder ``out``: 36 complete months
of a young SaaS company that launched its go-to-market at the start of the
window, ending with the last complete month (UTC) before ``end``. The same
``seed``, ``scale``, ``months`` and ``end`` give byte-identical files; ``scale``
multiplies every volume (1 = about 50,000 leads, 5,800 opportunities, 1,800
customers; 100 streams ~17 million rows in well under a minute).

>>> from revops_lib import demo
>>> counts = demo.build("data/demo", seed=42, end="2026-11-01")   # doctest: +SKIP
>>> counts["leads"], counts["opportunities"]                      # doctest: +SKIP
(50243, 5805)

Sample data is API: the tables, their sizes and the *true* generating
parameters below (all of them also in :data:`TRUE_RATES`) are documented so
that an analysis can be checked against the truth: an estimate from the data
should recover the rate that generated it.

The company
-----------
- **Lead sources** (``leads.source``) with different volumes and conversion:
  organic_search, paid_search, paid_social, referral, events (trade shows:
  leads arrive in bursts on 1-2 event days a month), outbound (weekdays only),
  partner, email (leads come from prospect email sends, see
  ``email_campaigns.leads_generated``) and a quiet ``webinar`` source (one
  webinar a month, about 4 leads each at scale 1).
- **Segments** smb / mid_market / enterprise: enterprise deals are ~15x larger
  and take ~4x longer than smb deals. Each segment is sold by its own team
  (``smb_sales``, ``mid_market_sales``, ``enterprise_sales``; 10, 8 and 6
  reps at scale 1); account owners keep their customers.
- **Products**: ``core``, ``analytics``, ``platform``.
- **Seasonality and growth**: lead volume grows 20 % a year, dips in July,
  August and December and peaks in October; weekends bring a third of a
  weekday's web leads; events cluster in spring and autumn. Won deals bunch up
  at quarter ends (30 % of won deals due in the first 20 days of a quarter are
  pulled into its last days before; 55 % into December: the Q4 push). People
  work 08:00-19:00 UTC: SQL acceptance, opportunity creation, stage changes,
  deal closes and sales activities happen then; leads, MQL scoring and
  support tickets come around the clock.
- **Ramp-up**: there are no customers or pipeline before the first month, so
  revenue ramps up over the first ~6 months; forecast submissions start with
  the first calendar quarter that begins at least 6 months into the data.

The generating process (honest, so that estimates recover it)
-------------------------------------------------------------
Each lead draws its whole future when it is created: whether it reaches each
lifecycle stage (``P(reach next | reached this)`` depends on the source only),
its segment (a per-source mix, independent of the conversion draws), the lags
between stages, its deal's outcome (win probability depends on the segment
only) and sales cycle. Then everything at or after ``end`` is cut off:
timestamps that would fall after ``end`` are null (recent leads have not
reached their later stages *yet*) and deals decided after ``end`` are open. So
over cohorts old enough to have matured (6 months for created→mql, 15 months
for opportunity→customer of enterprise deals) the observed stage-to-stage rates
of METRICS.md's cumulative funnel estimate the true ones below.

CRM wrinkles that do not change the truth: 4 % of leads that reach the
opportunity stage have no ``sql_at`` (skipped in the CRM) and 2 % of the
others that reach SQL have no ``mql_at``; under the cumulative "reached" rule
they still count as having passed the skipped stage. 15 % of leads that never
become MQLs have no ``segment``.

True stage-to-stage conversion by source (``TRUE_RATES["stage_conversion"]``;
opportunity→customer is the new-business win probability averaged over the
source's segment mix; ``share`` is ``TRUE_RATES["lead_share"]``)::

    source          share  created→mql  mql→sql  sql→opp  opp→customer
    organic_search   0.28         0.30     0.45     0.60         0.450
    paid_search      0.17         0.36     0.42     0.55         0.453
    paid_social      0.14         0.22     0.32     0.50         0.467
    referral         0.06         0.62     0.60     0.72         0.425
    events           0.08         0.42     0.36     0.55         0.400
    outbound         0.11         0.28     0.52     0.65         0.380
    partner          0.06         0.55     0.56     0.68         0.410
    email            0.10         0.26     0.38     0.55         0.442
    webinar         ~4/mo         0.50     0.48     0.60         0.420

Segment mix by source (smb / mid_market / enterprise; ``TRUE_RATES["segment_mix"]``)::

    organic_search .60/.30/.10  paid_search .62/.29/.09  paid_social .72/.23/.05
    referral       .45/.35/.20  events      .30/.40/.30  outbound    .20/.40/.40
    partner        .35/.40/.25  email       .55/.32/.13  webinar     .40/.40/.20

Stage lags are log-normal (``TRUE_RATES["stage_lag_median_days"]``, medians in
days): created→mql 2 (sigma 1.0, all segments); mql→sql 5 / 7 / 10 (sigma
0.8) and sql→opportunity 8 / 11.2 / 16 (sigma 0.7) for smb / mid_market /
enterprise, before SQLs and opportunities are moved into working hours.

Deals (``TRUE_RATES["win_rate"]``, ``["sales_cycle_median_days"]``, ``["acv_median"]``)::

    segment      win rate  median cycle (won)  median ACV   team
    smb              0.50             28 days       8,500   smb_sales
    mid_market       0.40             55 days      32,000   mid_market_sales
    enterprise       0.30            110 days     125,000   enterprise_sales

The cycle (``created_at`` to the decision) is log-normal with sigma 0.5; lost
deals are decided faster (median x0.8); ACVs are log-normal (sigma 0.45 /
0.45 / 0.55) rounded to 100. Quarter-end pull-ins and censoring make the
observed median cycle of won deals a few percent shorter. Lost deals stop after
qualification / discovery / proposal / negotiation with probabilities
.35 / .30 / .20 / .15; 12 % of won deals skip discovery or negotiation. 20 %
of deals with a cycle of 20+ days have their close date pushed 1-3 times, 30 %
have their amount changed once, and 25 % of open deals older than 45 days are
stale (planned close date already in the past).

Customers (``TRUE_RATES["churn"]``, ``["expansion"]``, ``["reactivation"]``):

- smb subscriptions are monthly: churn hazard per month of tenure 0.032
  (months 1-3), 0.022 (4-12), 0.015 (13-24), 0.010 (25+); 0.6 % of smb
  customers a month contract (mrr x0.6-0.9).
- mid_market and enterprise sign annual contracts: a ``renewal`` opportunity
  (amount = ARR) is opened 60-90 days before each anniversary and lost (=
  churn on the anniversary) with probability mid_market .13 / .10 / .07 and
  enterprise .09 / .06 / .04 at the 1st / 2nd / 3rd+ renewal; renewed
  contracts get a 3-10 % uplift (25 %) or shrink to 70-90 % (10 %).
- ``expansion`` opportunities are decided for 1.2 % / 3.0 % / 4.0 % of
  customers a month (smb / mid_market / enterprise) and won 65 % of the time;
  the amount (ARR added, median 35 % of current ARR) becomes an add-on
  subscription of another product or an upgrade (the main subscription is
  replaced at a higher mrr: old ``end_date`` = new ``start_date``).
- Churned customers come back (reactivation, self-serve, no opportunity) with
  probability .12 / .06 / .04 after 2-13 months, with a new subscription.

Forecasts (``TRUE_RATES["forecast_bias"]``, ``["forecast_noise"]``): every
Monday each team submits ``commit`` and ``best_case`` for the current month and
the current quarter::

    commit    = actual * (1 + (bias + 0.10 * z_period + 0.03 * z_week) * sqrt(remaining))
    best_case = actual * (1 + (bias + 0.22 + 0.10 * z'_period + 0.03 * z'_week) * sqrt(remaining)), >= commit

``actual`` is the amount the team eventually wins with close date in the
period (for the period in progress at ``end``, including deals that will close
after ``end``), ``remaining`` the fraction of the period still ahead on the
snapshot date (1 on the first day, towards 0 at the end: the forecast converges
to the actual), z standard normal, and the bias smb_sales +0.18 (optimistic),
mid_market_sales +0.02, enterprise_sales -0.12 (sandbagging). The ``company``
scope is the sum of the teams with a +-2 % management adjustment.

The tables (sizes at scale 1 with ``end=2026-11-01``; examples shortened)
------------------------------------------------------------------------
**leads** -- one lead; ~50,000 rows. ``account_id`` / ``opportunity_id`` are
set once the lead becomes an opportunity (a new account per converted lead);
``customer_at`` is the close time of its won new-business deal::

    lead_id    created_at        source          segment     mql_at            sql_at            opportunity_at    customer_at       account_id  opportunity_id
    L00000020  2023-11-01 16:44  referral        mid_market  2023-11-02 08:46  2023-11-05 11:17  2023-12-03 12:51  2023-12-27 18:56  A0000001    O0000001
    L00000001  2023-11-01 09:14  organic_search  smb         NaT               NaT               NaT               NaT               None        None

**opportunities** -- one deal: new_business from leads (same source and
segment, ``created_at`` = the lead's ``opportunity_at``), expansion and
renewal on customers (``source`` = ``existing_customer``); ~5,800 rows.
``amount`` is the ACV (ARR for renewals); ``close_date`` is the actual close
date of closed deals and the planned one of open deals::

    opportunity_id  created_at        close_date  is_closed  is_won  amount    account_id  owner        team              segment     source             type          stage        forecast_category  product
    O0000001        2023-12-03 12:51  2023-12-27  True       True     17800.0  A0000001    Rosa Keller  mid_market_sales  mid_market  referral           new_business  closed_won   closed             analytics
    O0004653        2026-05-18 18:34  2026-11-08  False      False   227800.0  A0003401    Will Tanaka  enterprise_sales  enterprise  partner            new_business  proposal     best_case          core
    O0000143        2024-10-17 09:57  2024-12-26  True       False    17799.96 A0000001    Rosa Keller  mid_market_sales  mid_market  existing_customer  renewal       closed_lost  omitted            analytics

**opportunity_history** -- one change of a deal (stage, amount or close
date), valid until the deal's next row; the first row is at ``created_at``,
the last equals the deal's current state; stages only move forward; ~26,000
rows. Stages: qualification, discovery, proposal, negotiation, closed_won,
closed_lost; ``forecast_category`` follows the stage (pipeline, pipeline,
best_case, commit, closed, omitted)::

    opportunity_id  changed_at        stage          amount   close_date  forecast_category
    O0000001        2023-12-03 12:51  qualification  20900.0  2023-12-21  pipeline
    O0000001        2023-12-04 08:57  proposal       20900.0  2023-12-21  best_case
    O0000001        2023-12-14 11:31  negotiation    17800.0  2023-12-21  commit
    O0000001        2023-12-27 18:56  closed_won     17800.0  2023-12-27  closed

**forecast_snapshots** -- one submitted forecast; ~2,000 rows (the count does
not scale)::

    snapshot_date  forecast_period  scope             category  amount
    2024-07-01     2024-07          company           commit    2240100.0
    2024-07-01     2024-07          enterprise_sales  commit    1392400.0
    2024-07-01     2024-Q3          company           commit    6254400.0

**subscriptions** -- one subscription interval (``end_date`` null = active;
a customer's MRR in a month is the sum over the intervals active on its last
day); ~2,500 rows. Every customer starts on its won close date at
mrr = amount / 12::

    customer_id  start_date  mrr      end_date    subscription_id  product    segment
    A0000001     2023-12-27  1483.33  2024-12-26  S0000008         analytics  mid_market

**transactions** -- one monthly invoice per subscription active at the end of
a month (so payments per customer-month equal the month-end MRR); only
complete months are billed; ~27,000 rows::

    customer_id  occurred_at       amount   transaction_id
    A0000001     2023-12-27 07:37  1483.33  T000000009

**marketing_spend** -- daily spend per channel: paid_search, paid_social,
content and ``sales`` (the sales team's fully loaded cost, so CAC = all spend /
new customers) every day, events on event days, partner commissions on the
first day of each month; ~4,500 rows::

    date        channel      spend
    2023-11-01  paid_search  2067.94

**web_traffic** -- daily sessions per source (organic_search, paid_search,
paid_social, referral, email, direct); ``conversions`` are form fills: for a
lead source, exactly the leads created that day from it; ~6,600 rows::

    date        source          sessions  visitors  conversions
    2023-11-01  organic_search      1122       873            8

**email_campaigns** -- one send, 2-4 a week: 70 % to ``prospects`` (with
``leads_generated``, the email leads it produced) and 30 % to ``customers``
(about 3 contacts per active customer; ``leads_generated`` null); ~480 rows
(the count does not scale)::

    campaign_id  sent_date   delivered  opens  clicks  leads_generated  audience
    C00001       2023-11-01      14691   3455     247                9  prospects
    C00025       2024-01-02        113     42       6             None  customers

**activities** -- one sales activity: first_meeting (one per new-business or
expansion deal, within days of its creation), proposal (when a deal reaches the
proposal stage), meeting / call / email while a deal is open, and prospecting
touches on outbound leads (no opportunity or account); ~50,000 rows::

    activity_id  occurred_at       type           owner          opportunity_id  account_id
    AC000000215  2023-12-03 15:39  first_meeting  Rosa Keller    O0000001        A0000001
    AC000000001  2023-11-02 08:20  email          Jonas Schmidt  None            None

**support_tickets** -- one ticket; Poisson(0.25 / 0.6 / 1.3) per customer and
paying month by segment; first response after a median 3 hours (4 % never
answered); CSAT (1-5) on ~30 % of resolved tickets, mostly 4-5 and worse after
slow responses; CES (1-7) on ~20 %; ~13,000 rows::

    ticket_id   created_at        customer_id  first_response_at  resolved_at       csat  ces
    TK00000007  2024-01-12 16:00  A0000026     2024-01-12 23:14   2024-01-13 14:08  4     4

**reviews** -- one online review (g2, capterra, trustradius), a few a month,
rating mostly 4-5, a quarter anonymous (``customer_id`` null); ~160 rows::

    review_id  posted_at         rating  platform  customer_id
    R0000002   2024-02-17 21:30  5       capterra  A0000025

**targets** -- one goal per period and KPI key of METRICS.md (``segment``,
``owner`` and ``team`` null): months and quarters for revenue_won, new_customers, leads, mqls, sqls,
opportunities_created, sessions, first_meetings, proposals, win_rate, csat,
nrr_12m; ISO weeks for leads, mqls, sqls, opportunities_created,
first_meetings. Complete periods are set near their eventual actual
(x lognormal, median +3 %, sd 10 %: some hit, more narrowly missed); periods
not complete at ``end`` (the month and quarter after it, its ISO weeks) extend
the average of the last three complete periods (counts and revenue +5 %, rates
+0.02). Revenue quotas follow for every month and quarter: each team's share
of the company ``revenue_won`` target (in proportion to what the team won in
the three months before) and each rep's even share of the team's quota, rounded to 100 with the
last team and rep taking the rounding, so the teams add up to the company target
and the reps to their team's quota; quarters are the sums of their months.
~2,650 rows at scale 1::

    period    metric       target     segment  owner        team
    2026-10   revenue_won  5400000.0  None     None         None
    2026-W44  leads        496.0      None     None         None
    2026-10   revenue_won  235300.0   None     None         smb_sales
    2026-10   revenue_won  23500.0    None     Ava Garcia   smb_sales

Exact row counts are returned by :func:`build`.

Why one module of this size
---------------------------
About a fifth of this file is the documentation above (sample data is API: its truth is written
down here, next to the code that draws it). The rest is one generator, ``_Company``, whose tables
are draws from shared state — each lead's future decides its deal, the deal its subscription, the
subscriptions the support tickets and the targets follow the actuals — streamed month by month to
keep memory flat at scale 100. Split into modules, every piece would need that state passed around;
kept together, one reader can follow a lead from its first touch to its renewal.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from revops_lib.errors import OutputError, ParameterError
from revops_lib.outdirs import check_demo_folder, move_into_place as _move_into_place, remove_built as _remove, write_demo_marker
from revops_lib.schema import TABLES

__all__ = ["build", "TRUE_RATES", "SOURCES", "SEGMENTS", "TEAMS", "PRODUCTS"]

# --------------------------------------------------------------------------- constants

SOURCES = (
    "organic_search", "paid_search", "paid_social", "referral", "events",
    "outbound", "partner", "email", "webinar",
)
OPP_SOURCES = SOURCES + ("existing_customer",)
SEGMENTS = ("smb", "mid_market", "enterprise")
TEAMS = ("smb_sales", "mid_market_sales", "enterprise_sales")  # team i sells segment i
PRODUCTS = ("core", "analytics", "platform")
OPP_TYPES = ("new_business", "expansion", "renewal")
DEAL_STAGES = ("qualification", "discovery", "proposal", "negotiation", "closed_won", "closed_lost")
STAGE_CATEGORY = ("pipeline", "pipeline", "best_case", "commit", "closed", "omitted")
FORECAST_CATEGORIES = ("pipeline", "best_case", "commit", "closed", "omitted")
ACTIVITY_TYPES = ("first_meeting", "meeting", "call", "email", "proposal")
WEB_SOURCES = ("organic_search", "paid_search", "paid_social", "referral", "email", "direct")
SPEND_CHANNELS = ("paid_search", "paid_social", "events", "content", "partner", "sales")
PLATFORMS = ("g2", "capterra", "trustradius")

_SRC = {s: i for i, s in enumerate(SOURCES)}
_DAILY = ("organic_search", "paid_search", "paid_social", "referral", "outbound", "partner")
_DAILY_IDX = np.array([_SRC[s] for s in _DAILY])

# Leads per 36 months at scale 1 (webinar leads come on top).
LEADS_PER_36_MONTHS = 50_000
LEAD_SHARE = {
    "organic_search": 0.28, "paid_search": 0.17, "paid_social": 0.14, "referral": 0.06,
    "events": 0.08, "outbound": 0.11, "partner": 0.06, "email": 0.10,
}
WEBINAR_LEADS_PER_MONTH = 4.0
# P(reach next | reached this): created->mql, mql->sql, sql->opportunity
STAGE_CONVERSION = {
    "organic_search": (0.30, 0.45, 0.60),
    "paid_search": (0.36, 0.42, 0.55),
    "paid_social": (0.22, 0.32, 0.50),
    "referral": (0.62, 0.60, 0.72),
    "events": (0.42, 0.36, 0.55),
    "outbound": (0.28, 0.52, 0.65),
    "partner": (0.55, 0.56, 0.68),
    "email": (0.26, 0.38, 0.55),
    "webinar": (0.50, 0.48, 0.60),
}
SEGMENT_MIX = {
    "organic_search": (0.60, 0.30, 0.10),
    "paid_search": (0.62, 0.29, 0.09),
    "paid_social": (0.72, 0.23, 0.05),
    "referral": (0.45, 0.35, 0.20),
    "events": (0.30, 0.40, 0.30),
    "outbound": (0.20, 0.40, 0.40),
    "partner": (0.35, 0.40, 0.25),
    "email": (0.55, 0.32, 0.13),
    "webinar": (0.40, 0.40, 0.20),
}
SEGMENT_NULL_IF_NOT_MQL = 0.15
SKIP_SQL = 0.04  # of leads reaching opportunity: sql_at missing
SKIP_MQL = 0.02  # of leads reaching sql (and not skipping sql): mql_at missing
LAG_MEDIAN_DAYS = (2.0, 5.0, 8.0)  # created->mql, mql->sql, sql->opp (smb)
LAG_SIGMA = (1.0, 0.8, 0.7)
LAG_SEGMENT_FACTOR = (1.0, 1.4, 2.0)  # applies to mql->sql and sql->opp
WIN_RATE = (0.50, 0.40, 0.30)
CYCLE_MEDIAN_DAYS = (28.0, 55.0, 110.0)
CYCLE_SIGMA = 0.5
LOST_CYCLE_FACTOR = 0.8
ACV_MEDIAN = (8_500.0, 32_000.0, 125_000.0)
ACV_SIGMA = (0.45, 0.45, 0.55)
PRODUCT_MIX = ((0.70, 0.30, 0.00), (0.45, 0.40, 0.15), (0.20, 0.30, 0.50))
REPS_PER_TEAM = (10, 8, 6)
LOST_STAGE_P = (0.35, 0.30, 0.20, 0.15)
STAGE_SKIP_WON = 0.06  # each of: skip discovery, skip negotiation
PUSH_P = (0.80, 0.11, 0.06, 0.03)  # 0, 1, 2, 3 close-date pushes
AMOUNT_CHANGE_P = 0.30
STALE_P = 0.25
PULL_IN_P = 0.30  # won deals due in the first 20 days of a quarter pulled into the previous one
PULL_IN_P_Q4 = 0.55
# customers
SMB_HAZARD = ((3, 0.032), (12, 0.022), (24, 0.015), (10**6, 0.010))  # (last tenure month, hazard)
NONRENEWAL = ((0.0, 0.0, 0.0), (0.13, 0.10, 0.07), (0.09, 0.06, 0.04))
RENEWAL_UPLIFT_P, RENEWAL_SHRINK_P = 0.25, 0.10
SMB_CONTRACTION = 0.006
EXPANSION_MONTHLY = (0.012, 0.030, 0.040)
EXPANSION_WIN = 0.65
EXPANSION_SIZE_MEDIAN = 0.35  # of current ARR
REACTIVATION = (0.12, 0.06, 0.04)
TICKETS_PER_MONTH = (0.25, 0.6, 1.3)
REVIEWS_PER_CUSTOMER_MONTH = 0.006
FORECAST_BIAS = {"smb_sales": 0.18, "mid_market_sales": 0.02, "enterprise_sales": -0.12}
FORECAST_NOISE = 0.10
BEST_CASE_UPLIFT = 0.22
# calendar effects
GROWTH_PER_YEAR = 0.20
SEASON = (1.05, 1.00, 1.08, 1.00, 1.00, 0.95, 0.82, 0.80, 1.05, 1.12, 1.08, 0.85)  # Jan..Dec
EVENT_SEASON = (0.7, 0.9, 1.3, 1.3, 1.2, 1.0, 0.4, 0.3, 1.3, 1.5, 1.3, 0.5)
WEEKDAY = (1.10, 1.15, 1.12, 1.05, 0.90, 0.35, 0.33)  # Mon..Sun, web sources
WEEKDAY_OUTBOUND = (1.2, 1.2, 1.2, 1.2, 1.1, 0.05, 0.05)
WEB_CONVERSION = {"organic_search": 0.012, "paid_search": 0.025, "paid_social": 0.008, "referral": 0.03}


def _opp_to_customer(src: str) -> float:
    return float(sum(m * w for m, w in zip(SEGMENT_MIX[src], WIN_RATE)))


TRUE_RATES: dict = {
    "stage_pairs": ["created_at->mql_at", "mql_at->sql_at", "sql_at->opportunity_at",
                    "opportunity_at->customer_at"],
    "stage_conversion": {
        s: {
            "created_at->mql_at": STAGE_CONVERSION[s][0],
            "mql_at->sql_at": STAGE_CONVERSION[s][1],
            "sql_at->opportunity_at": STAGE_CONVERSION[s][2],
            "opportunity_at->customer_at": round(_opp_to_customer(s), 6),
        }
        for s in SOURCES
    },
    "lead_share": dict(LEAD_SHARE),
    "leads_per_36_months": LEADS_PER_36_MONTHS,
    "webinar_leads_per_month": WEBINAR_LEADS_PER_MONTH,
    "segment_mix": {s: dict(zip(SEGMENTS, SEGMENT_MIX[s])) for s in SOURCES},
    "segment_null_if_not_mql": SEGMENT_NULL_IF_NOT_MQL,
    "skip_rate": {"sql_at": SKIP_SQL, "mql_at": SKIP_MQL},
    "stage_lag_median_days": {
        "created_at->mql_at": {g: LAG_MEDIAN_DAYS[0] for g in SEGMENTS},
        "mql_at->sql_at": {g: LAG_MEDIAN_DAYS[1] * f for g, f in zip(SEGMENTS, LAG_SEGMENT_FACTOR)},
        "sql_at->opportunity_at": {g: LAG_MEDIAN_DAYS[2] * f for g, f in zip(SEGMENTS, LAG_SEGMENT_FACTOR)},
    },
    "win_rate": dict(zip(SEGMENTS, WIN_RATE)),
    "sales_cycle_median_days": dict(zip(SEGMENTS, CYCLE_MEDIAN_DAYS)),
    "lost_cycle_factor": LOST_CYCLE_FACTOR,
    "acv_median": dict(zip(SEGMENTS, ACV_MEDIAN)),
    "teams": dict(zip(SEGMENTS, TEAMS)),
    "reps_per_team": dict(zip(TEAMS, REPS_PER_TEAM)),
    "churn": {
        "smb_monthly_hazard": {"1-3": 0.032, "4-12": 0.022, "13-24": 0.015, "25+": 0.010},
        "mid_market_nonrenewal": {"1": NONRENEWAL[1][0], "2": NONRENEWAL[1][1], "3+": NONRENEWAL[1][2]},
        "enterprise_nonrenewal": {"1": NONRENEWAL[2][0], "2": NONRENEWAL[2][1], "3+": NONRENEWAL[2][2]},
        "smb_monthly_contraction": SMB_CONTRACTION,
    },
    "expansion": {"monthly_probability": dict(zip(SEGMENTS, EXPANSION_MONTHLY)),
                  "win_rate": EXPANSION_WIN, "size_median_of_arr": EXPANSION_SIZE_MEDIAN},
    "reactivation": dict(zip(SEGMENTS, REACTIVATION)),
    "forecast_bias": dict(FORECAST_BIAS),
    "forecast_noise": FORECAST_NOISE,
    "tickets_per_customer_month": dict(zip(SEGMENTS, TICKETS_PER_MONTH)),
    "reviews_per_customer_month": REVIEWS_PER_CUSTOMER_MONTH,
    "growth_per_year": GROWTH_PER_YEAR,
}

# --------------------------------------------------------------------------- time helpers

DAY = 86_400_000_000  # microseconds
HOUR = 3_600_000_000
SECOND = 1_000_000
MONTH_DAYS = 30.4375
_EPOCH = _dt.date(1970, 1, 1)

# id widths: enough for scale 100 with a wide margin
_W = {"L": 8, "O": 7, "A": 7, "S": 7, "T": 9, "AC": 9, "TK": 8, "R": 7, "C": 5}

_PA_TYPES = {
    "string": pa.string(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "date": pa.date32(),
    "float": pa.float64(),
    "int": pa.int64(),
    "bool": pa.bool_(),
}


def _day(d: _dt.date) -> int:
    return (d - _EPOCH).days


def _date(day: int) -> _dt.date:
    return _EPOCH + _dt.timedelta(days=int(day))


def _month_of_day(days) -> np.ndarray:
    """Months since 1970-01 of day numbers."""
    return np.asarray(days, dtype="int64").astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)


def _month_start(months) -> np.ndarray:
    return np.asarray(months, dtype="int64").astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)


def _add_months(d: _dt.date, k: int) -> _dt.date:
    m = d.year * 12 + d.month - 1 + k
    y, mo = divmod(m, 12)
    first_next = _dt.date(y + (mo + 1) // 12, (mo + 1) % 12 + 1, 1)
    last = (first_next - _dt.timedelta(days=1)).day
    return _dt.date(y, mo + 1, min(d.day, last))


def _month_label(mi: int) -> str:
    y, m = divmod(int(mi), 12)
    return f"{y + 1970}-{m + 1:02d}"


def _quarter_label(mi: int) -> str:
    y, m = divmod(int(mi), 12)
    return f"{y + 1970}-Q{m // 3 + 1}"


def _week_label(day: int) -> str:
    y, w, _ = _date(day).isocalendar()
    return f"{y}-W{w:02d}"


def _weekday(days) -> np.ndarray:
    return (np.asarray(days, dtype=np.int64) + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0


def _to_date(value, name: str) -> _dt.date:
    if isinstance(value, _dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(_dt.timezone.utc)
        return value.date()
    if isinstance(value, _dt.date):
        return value
    if hasattr(value, "to_pydatetime"):  # pandas Timestamp
        return _to_date(value.to_pydatetime(), name)
    if isinstance(value, str):
        try:
            return _dt.date.fromisoformat(value.strip()[:10])
        except ValueError:
            pass
    raise ParameterError(f"`{name}` must be a date such as '2026-11-01', got {value!r}.")


# --------------------------------------------------------------------------- random helpers

def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=tuple(key))))


def _lognormal(rng, median, sigma, size=None):
    return np.exp(np.log(median) + sigma * rng.standard_normal(size))


def _tod(rng, n, mean_h=14.5, sd_h=3.0) -> np.ndarray:
    """Time of day in microseconds, business hours around ``mean_h`` UTC."""
    h = np.clip(rng.normal(mean_h, sd_h, n), 0.0, 23.999)
    return (h * HOUR).astype(np.int64)


def _business(us) -> np.ndarray:
    """Squeeze each day's 24 hours into 08:00-19:00 UTC (order-preserving): when people work."""
    us = np.asarray(us, dtype=np.int64)
    day = us // DAY
    return day * DAY + 8 * HOUR + ((us - day * DAY) * (11 / 24)).astype(np.int64)


def _choice_rows(rng, probs: np.ndarray) -> np.ndarray:
    """One category per row of a (n, k) matrix of probabilities."""
    if len(probs) == 0:
        return np.zeros(0, dtype=np.int64)
    cum = np.cumsum(probs, axis=1)
    u = rng.random(len(probs))[:, None] * cum[:, -1:]
    return (u >= cum).sum(axis=1).astype(np.int64)


def _round_to(x, step):
    return np.round(np.asarray(x, dtype=float) / step) * step


def _sig3(x: float) -> float:
    if x <= 0 or not math.isfinite(x):
        return float(x)
    digits = 2 - int(math.floor(math.log10(x)))
    return float(round(x, digits))


# --------------------------------------------------------------------------- arrow helpers

def _ids(prefix: str, nums) -> pa.Array:
    s = pc.utf8_lpad(pc.cast(pa.array(np.asarray(nums, dtype=np.int64)), pa.string()), _W[prefix], padding="0")
    return pc.binary_join_element_wise(prefix, s, "")


def _cat(names, codes, mask=None) -> pa.Array:
    codes = np.asarray(codes, dtype=np.int32)
    return pc.take(pa.array(list(names), pa.string()), pa.array(codes, mask=mask))


def _ts(us, mask=None) -> pa.Array:
    """Timestamps at whole seconds (as CRMs export them)."""
    us = np.asarray(us, dtype=np.int64)
    return pa.array(us - us % SECOND, type=_PA_TYPES["timestamp"], mask=mask)


def _dates(days, mask=None) -> pa.Array:
    return pa.array(np.asarray(days, dtype=np.int32), type=pa.date32(), mask=mask)


def _schema(name: str) -> pa.Schema:
    return pa.schema([pa.field(c.name, _PA_TYPES[c.kind]) for c in TABLES[name].columns])


class _Writers:
    """One ParquetWriter per table; each ``write`` call appends a row group."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.schemas = {name: _schema(name) for name in TABLES}
        self.writers = {
            name: pq.ParquetWriter(folder / f"{name}.parquet", schema, compression="zstd")
            for name, schema in self.schemas.items()
        }
        self.counts = {name: 0 for name in TABLES}

    def write(self, name: str, columns: dict) -> None:
        schema = self.schemas[name]
        assert list(columns) == schema.names, (name, list(columns))
        arrays = [pa.array(columns[f.name], type=f.type) if not isinstance(columns[f.name], pa.Array)
                  else columns[f.name].cast(f.type) for f in schema]
        table = pa.Table.from_arrays(arrays, schema=schema)
        if table.num_rows:
            self.writers[name].write_table(table)
            self.counts[name] += table.num_rows

    def close(self) -> None:
        for w in self.writers.values():
            w.close()


# --------------------------------------------------------------------------- the build

def build(out, *, seed: int = 42, scale: float = 1.0, end=None, months: int = 36,
          progress: Callable[[str], None] | None = None) -> dict[str, int]:
    """Write the demo company's 13 tables as ``<out>/<table>.parquet``.

    Parameters
    ----------
    out : str or Path
        Folder to write: one that does not exist, an empty folder, or a folder
        an earlier build made (its marker file ``.revops-demo`` says so; see
        :func:`revops_lib.outdirs.check_demo_folder`). Anything else, and the
        current folder, its ancestors, the home folder and ``/``, is refused
        before anything is written. The data are built in a temporary sibling
        folder and renamed into place at the end (an earlier demo folder is
        replaced), so a failed or interrupted build leaves neither a
        half-written folder nor a temporary one behind.
    seed : int, default 42
        Random seed: the same seed, scale, months and ``end`` give
        byte-identical files.
    scale : float, default 1.0
        Volume multiplier (1 = about 50k leads, 5.8k opportunities, 1.8k
        customers; 0.05 for fast tests; 100 streams ~17 million rows).
    end : date or str, optional
        Exclusive end of the data. Default: the first day of the current UTC
        month, so the data covers the ``months`` complete months before it. No
        event happens on or after ``end``; planned dates (close dates of open
        deals, forecast and target periods) may lie beyond it. Must not be
        later than today (UTC).
    months : int, default 36
        Length of the history.
    progress : callable, optional
        Called with one-line progress messages.

    Returns
    -------
    dict
        Rows written per table, in the order of ``schema.TABLES``.

    Raises
    ------
    ParameterError
        For a bad ``seed``, ``scale``, ``end`` or ``months``.
    OutputError
        When ``out`` may not or cannot be written (see ``out``).
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ParameterError(f"`seed` must be a non-negative integer, got {seed!r}.")
    try:
        scale = float(scale)
    except (TypeError, ValueError):
        raise ParameterError(f"`scale` must be a positive number, got {scale!r}.") from None
    if not (math.isfinite(scale) and 0 < scale <= 1000):
        raise ParameterError(f"`scale` must be a positive number up to 1000, got {scale!r}.")
    if not isinstance(months, (int, np.integer)) or isinstance(months, bool) or not 1 <= months <= 240:
        raise ParameterError(f"`months` must be an integer from 1 to 240, got {months!r}.")
    today = _dt.datetime.now(_dt.timezone.utc).date()
    end_date = today.replace(day=1) if end is None else _to_date(end, "end")
    if end_date > today:
        raise ParameterError(
            f"`end` {end_date.isoformat()} is in the future (today is {today.isoformat()} UTC): "
            "the demo data must not hold events that have not happened yet; pass a date up to today."
        )
    out = check_demo_folder(out)  # before anything is written: never over data demo-data did not make
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"`{out.parent}` cannot be created ({exc.strerror or exc}): give a folder you can write to.") from None
    # a sibling: the final rename stays on one file system; permissions follow the umask
    tmp = out.parent / f".{out.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.partial"
    try:
        try:
            tmp.mkdir()
        except OSError as exc:
            raise OutputError(f"`{out.parent}` cannot be written ({exc.strerror or exc}): give a folder you can write to.") from None
        try:
            counts = _Company(tmp, int(seed), scale, end_date, int(months), progress).run()
            write_demo_marker(tmp, seed=int(seed), scale=scale, end=end_date.isoformat(), months=int(months))
            check_demo_folder(out)  # again: files may have landed there during the build
            _move_into_place(tmp, out)
        except OSError as exc:  # disk full, a folder that cannot be renamed (a mount point), …
            raise OutputError(
                f"Writing the demo data to `{out}` failed ({exc.strerror or exc}); nothing was changed there."
            ) from exc
    finally:  # any failure, Ctrl-C included: no temporary folder outlives the build
        if tmp.exists():
            _remove(tmp)
    return counts


class _Company:
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
        self._calendar()

    # ------------------------------------------------------------------ calendar
    def _calendar(self):
        rng = _rng(self.seed, 0)
        days = np.arange(self.start_day, self.end_day, dtype=np.int64)
        self.days = days
        month = _month_of_day(days) % 12
        wd = _weekday(days)
        growth = (1 + GROWTH_PER_YEAR) ** ((days - self.start_day) / 365.25)
        self.growth = growth
        total = LEADS_PER_36_MONTHS * self.scale * self.n_days / (36 * MONTH_DAYS)
        self.total_leads = total
        prof_web = growth * np.take(SEASON, month) * np.take(WEEKDAY, wd)
        prof_out = growth * np.take(SEASON, month) * np.take(WEEKDAY_OUTBOUND, wd)
        lam = np.zeros((len(_DAILY), self.n_days))
        for i, s in enumerate(_DAILY):
            prof = prof_out if s == "outbound" else prof_web
            lam[i] = LEAD_SHARE[s] * total * prof / prof.sum()
        self.lam_daily = lam
        prof_ev = growth * np.take(EVENT_SEASON, month)
        self.lam_events = LEAD_SHARE["events"] * total * prof_ev / prof_ev.sum()
        # event days (1-2 per month, Tue-Thu) and one webinar (Wed/Thu) per month
        self.event_days: dict[int, np.ndarray] = {}
        self.webinar_day: dict[int, int] = {}
        mo = _month_of_day(days)
        for mi in range(self.m0, self.m_last + 1):
            md = days[(mo == mi)]
            mid_week = md[np.isin(_weekday(md), (1, 2, 3))]
            k = 1 + int(rng.random() < 0.5)
            if len(mid_week):
                self.event_days[mi] = np.sort(rng.choice(mid_week, size=min(k, len(mid_week)), replace=False))
            else:
                self.event_days[mi] = np.zeros(0, dtype=np.int64)
            web = md[np.isin(_weekday(md), (2, 3))]
            self.webinar_day[mi] = int(web[rng.integers(len(web))]) if len(web) else -1
        # email sends: 2-4 a week, 70 % to prospects
        first_monday = self.start_day - int(_weekday(self.start_day))
        sends_day, sends_aud = [], []
        for monday in range(first_monday, self.end_day, 7):
            n = rng.choice((2, 3, 4), p=(0.3, 0.45, 0.25))
            wds = rng.choice(5, size=n, replace=False, p=(0.1, 0.3, 0.3, 0.25, 0.05))
            for w in np.sort(wds):
                d = monday + int(w)
                aud = int(rng.random() >= 0.7)  # 0 prospects, 1 customers
                if self.start_day <= d < self.end_day:
                    sends_day.append(d)
                    sends_aud.append(aud)
        sd = np.array(sends_day, dtype=np.int64)
        aud = np.array(sends_aud, dtype=np.int64)
        n = len(sd)
        g = (1 + GROWTH_PER_YEAR) ** ((sd - self.start_day) / 365.25)
        p_open_p, p_click_p, p_lead = 0.22, 0.12, 0.03
        pros = aud == 0
        per_list = 0.925 * p_open_p * p_click_p * p_lead
        l0 = LEAD_SHARE["email"] * total / max(1e-9, (g[pros] * per_list).sum())
        delivered = np.where(pros, np.round(l0 * g * rng.uniform(0.85, 1.0, n)), 0).astype(np.int64)
        p_open = np.clip(rng.normal(p_open_p, 0.03, n), 0.05, 0.6)
        opens = rng.binomial(delivered, p_open)
        p_click = np.clip(rng.normal(p_click_p, 0.02, n), 0.02, 0.4)
        clicks = rng.binomial(opens, p_click)
        self.sends = {
            "day": sd, "aud": aud, "delivered": delivered, "opens": opens, "clicks": clicks,
            "send_us": sd * DAY + (rng.uniform(13, 16, n) * HOUR).astype(np.int64),
            "leads": np.zeros(n, dtype=np.int64), "p_lead": p_lead,
            "u_customers": rng.random((n, 3)),
        }

    # ------------------------------------------------------------------ ids
    def _take_ids(self, prefix: str, n: int) -> np.ndarray:
        start = self.next[prefix]
        self.next[prefix] = start + n
        return np.arange(start, start + n, dtype=np.int64)

    def _owner(self, rng, seg):
        seg = np.asarray(seg, dtype=np.int64)
        return self.rep_offset[seg] + (rng.random(len(seg)) * self.rep_count[seg]).astype(np.int64)

    def _dayidx(self, us):
        return (np.asarray(us, dtype=np.int64) // DAY) - self.start_day

    def _add_daily(self, key, us, weights=None):
        if len(us):
            self.agg[key] += np.bincount(self._dayidx(us), weights=weights, minlength=self.n_days)[: self.n_days]

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
            self._email_campaigns()
            self._web_traffic()
            self._marketing_spend()
            self._forecasts()
            self._targets()
        finally:
            self.w.close()
        return dict(self.w.counts)

    # ------------------------------------------------------------------ one lead cohort
    def _cohort(self, mi: int):
        rng_leads, rng_deals, rng_cust, rng_act, rng_tix = (_rng(self.seed, 1, mi, k) for k in range(5))
        lo = max(self.start_day, int(_month_start(mi)))
        hi = min(self.end_day, int(_month_start(mi + 1)))
        leads = self._leads(rng_leads, mi, lo, hi)
        nb = leads.pop("_nb")
        customers, deals = self._new_business(rng_deals, nb)
        sim = self._simulate_customers(rng_cust, customers)
        all_deals = _concat_dicts([deals, sim["deals"]])
        all_deals["oid"] = np.concatenate([nb["oid"], self._take_ids("O", len(sim["deals"]["created"]))])
        self._write_deals(rng_act, all_deals, leads["_outbound"])
        self._write_customers(rng_tix, customers, sim)
        return len(leads["lead_id"]), len(all_deals["created"]), len(customers["acc"])

    def _leads(self, rng, mi, lo, hi):
        end_us = self.end_us
        d0, d1 = lo - self.start_day, hi - self.start_day
        # daily sources
        counts = rng.poisson(self.lam_daily[:, d0:d1])
        src_parts, t_parts, camp_parts = [], [], []
        n_by = counts.sum(axis=1)
        day_rep = np.repeat(np.tile(np.arange(lo, hi), len(_DAILY)), counts.ravel())
        src_rep = np.repeat(_DAILY_IDX, n_by)
        t_parts.append(day_rep * DAY + _tod(rng, len(day_rep)))
        src_parts.append(src_rep)
        camp_parts.append(np.full(len(day_rep), -1))
        # events: the month's expected volume arrives on its event days (+0-3 days badge-scan import)
        ev_days = self.event_days.get(mi, np.zeros(0, dtype=np.int64))
        n_ev = rng.poisson(self.lam_events[d0:d1].sum()) if len(ev_days) else 0
        ev_day = ev_days[rng.integers(0, max(1, len(ev_days)), n_ev)] if n_ev else np.zeros(0, dtype=np.int64)
        t_parts.append(ev_day * DAY + (rng.uniform(9, 18, n_ev) * HOUR).astype(np.int64)
                       + (rng.uniform(0, 3, n_ev) * DAY).astype(np.int64))
        src_parts.append(np.full(n_ev, _SRC["events"]))
        camp_parts.append(np.full(n_ev, -1))
        # webinar: a handful of leads on the webinar day
        wday = self.webinar_day.get(mi, -1)
        n_web = rng.poisson(WEBINAR_LEADS_PER_MONTH * self.scale * (hi - lo) / MONTH_DAYS) if wday >= 0 else 0
        t_parts.append(wday * DAY + (rng.uniform(16, 19, n_web) * HOUR).astype(np.int64))
        src_parts.append(np.full(n_web, _SRC["webinar"]))
        camp_parts.append(np.full(n_web, -1))
        # email: leads from this month's prospect sends, hours after the send
        s = self.sends
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

        lead_num = self._take_ids("L", n)
        n_opp = int(has_opp.sum())
        oid = self._take_ids("O", n_opp)
        acc = self._take_ids("A", n_opp)
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
        self._pending_leads = leads
        # activity counts for targets and web conversions
        self._add_daily("leads", created)
        di = self._dayidx(created)
        np.add.at(self.leads_src_day, (src, di), 1)
        return leads

    # ------------------------------------------------------------------ new-business deals
    def _new_business(self, rng, nb):
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
        owner = self._owner(rng, seg)
        deals = {
            "created": nb["created"], "decide": decide, "won": won, "amount": acv, "seg": seg,
            "owner": owner, "acc": nb["acc"], "typ": np.zeros(n, dtype=np.int64), "product": product,
            "src": nb["src"],
        }
        is_cust = won & (decide < self.end_us)
        leads = self._pending_leads
        cust_at = np.zeros(len(leads["created"]), dtype=np.int64)
        has_cust = np.zeros(len(leads["created"]), dtype=bool)
        cust_at[nb["lead"][is_cust]] = decide[is_cust]
        has_cust[nb["lead"][is_cust]] = True
        self._write_leads(leads, nb, cust_at, has_cust)
        customers = {
            "acc": nb["acc"][is_cust], "seg": seg[is_cust], "owner": owner[is_cust],
            "product": product[is_cust], "start": decide[is_cust] // DAY,
            "mrr": np.round(acv[is_cust] / 12.0, 2),
        }
        self._add_daily("new_customers", decide[is_cust])
        return customers, deals

    def _write_leads(self, leads, nb, cust_at, has_cust):
        t_mql, has_mql = leads["mql"]
        t_sql, has_sql = leads["sql"]
        t_opp, has_opp = leads["opp"]
        oi = leads["opp_idx"]
        acc = np.where(oi >= 0, nb["acc"][np.maximum(oi, 0)] if len(nb["acc"]) else 0, 0)
        oid = np.where(oi >= 0, nb["oid"][np.maximum(oi, 0)] if len(nb["oid"]) else 0, 0)
        self.w.write("leads", {
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
        self._add_daily("mqls", mql_in[mql_in < big])
        self._add_daily("sqls", sql_in[sql_in < big])

    # ------------------------------------------------------------------ customers
    def _simulate_customers(self, rng, cu):
        """Month-by-month life of each new customer (vectorised over customers)."""
        C = len(cu["acc"])
        end_day, end_us = self.end_day, self.end_us
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
                subs["cust"].append(cidx[mask]); subs["start"].append(start[mask])
                subs["end"].append(np.broadcast_to(end, (C,))[mask]); subs["mrr"].append(mrr[mask])
                subs["product"].append(prod[mask]); subs["main"].append(np.full(k, main))

        def rec_deal(mask, created, decide, won, amount, typ, product):
            k = int(mask.sum())
            if k:
                for key, val in (("created", created), ("decide", decide), ("won", won), ("amount", amount),
                                 ("seg", seg), ("owner", cu["owner"]), ("acc", cu["acc"]), ("product", product)):
                    deals[key].append(np.asarray(val)[mask])
                deals["typ"].append(np.full(k, typ)); deals["src"].append(np.full(k, len(SOURCES)))

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

    # ------------------------------------------------------------------ deals -> opportunities, history, activities
    def _write_deals(self, rng, d, outbound):
        end_us, end_day = self.end_us, self.end_day
        n = len(d["created"])
        created = d["created"].astype(np.int64)
        decide = d["decide"].astype(np.int64)
        won = d["won"].astype(bool)
        amount = d["amount"].astype(float)
        seg = d["seg"].astype(np.int64)
        # all eventual wins (also those after `end`) feed the forecast actuals
        wm = _month_of_day(decide[won] // DAY) - self.m0
        okm = (wm >= 0) & (wm < len(self.won_month_team))
        np.add.at(self.won_month_team, (wm[okm], seg[won][okm]), amount[won][okm])
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
        self.w.write("opportunity_history", {
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
        self.w.write("opportunities", {
            "opportunity_id": _ids("O", oid),
            "created_at": _ts(created),
            "close_date": _dates(f_cl),
            "is_closed": pa.array(closed),
            "is_won": pa.array(is_won),
            "amount": f_am,
            "account_id": _ids("A", d["acc"]),
            "owner": _cat(self.rep_names, d["owner"]),
            "team": _cat(TEAMS, seg),
            "segment": _cat(SEGMENTS, seg),
            "source": _cat(OPP_SOURCES, d["src"]),
            "type": _cat(OPP_TYPES, d["typ"]),
            "stage": _cat(DEAL_STAGES, f_st),
            "forecast_category": _cat(STAGE_CATEGORY, f_st),
            "product": _cat(PRODUCTS, d["product"]),
        })
        self._add_daily("opps", created)
        cday_us = f_cl * DAY
        self._add_daily("won_amount", cday_us[is_won], f_am[is_won])
        self._add_daily("won_count", cday_us[is_won])
        self._add_daily("lost_count", cday_us[closed & ~is_won])
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
        ob_owner = self._owner(rng, ob_seg)
        a_opp = np.concatenate([np.nonzero(fm)[0], prop_opp, ar_, np.full(len(ob_t), -1)])
        a_t = np.concatenate([fm_t[fm], prop_t, act_t, ob_t])
        a_ty = np.concatenate([np.zeros(int(fm.sum()), dtype=np.int64), np.full(len(prop_t), 4), act_ty, ob_ty])
        a_owner = np.concatenate([d["owner"][a_opp[: len(a_opp) - len(ob_t)]], ob_owner])
        order = np.lexsort((a_opp, a_t))
        a_opp, a_t, a_ty, a_owner = a_opp[order], a_t[order], a_ty[order], a_owner[order]
        has = a_opp >= 0
        safe = np.maximum(a_opp, 0)
        nid = self._take_ids("AC", len(a_t))
        null = pa.nulls(len(a_t), pa.string())
        self.w.write("activities", {
            "activity_id": _ids("AC", nid),
            "occurred_at": _ts(a_t),
            "type": _cat(ACTIVITY_TYPES, a_ty),
            "owner": _cat(self.rep_names, a_owner),
            "opportunity_id": pc.if_else(pa.array(has), _ids("O", oid[safe] if n else np.zeros(len(safe))), null),
            "account_id": pc.if_else(pa.array(has), _ids("A", d["acc"][safe] if n else np.zeros(len(safe))), null),
        })
        self._add_daily("first_meetings", a_t[a_ty == 0])
        self._add_daily("proposals", a_t[a_ty == 4])

    # ------------------------------------------------------------------ subscriptions, transactions, tickets, reviews
    def _write_customers(self, rng, cu, sim):
        s = sim["subs"]
        ns = len(s["cust"])
        if ns == 0:
            return
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
        sid = self._take_ids("S", ns)
        self.w.write("subscriptions", {
            "customer_id": _ids("A", acc),
            "start_date": _dates(start),
            "mrr": mrr,
            "end_date": _dates(np.maximum(end, 0), end < 0),
            "subscription_id": _ids("S", sid),
            "product": _cat(PRODUCTS, prod),
            "segment": _cat(SEGMENTS, seg),
        })
        # invoices: one per subscription per month in which it is active on the last day
        end_month_cap = int(_month_of_day(self.end_day))  # months before it are complete
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
        tid = self._take_ids("T", len(r))
        self.w.write("transactions", {
            "customer_id": _ids("A", acc[r_o]),
            "occurred_at": _ts(occ_o),
            "amount": mrr[r_o],
            "transaction_id": _ids("T", tid),
        })
        # month-end MRR per customer: NRR numerators/denominators, active customers
        C = len(cu["acc"])
        mo = month - self.m0
        okm = (mo >= 0) & (mo < self.n_months)
        mat = np.bincount(cust[r][okm] * self.n_months + mo[okm], weights=mrr[r][okm],
                          minlength=C * self.n_months).reshape(C, self.n_months)
        self.active_customers += (mat > 0).sum(axis=0)
        self.mrr_total += mat.sum(axis=0)
        if self.n_months > 12:
            prev, cur = mat[:, :-12], mat[:, 12:]
            self.nrr_den[12:] += prev.sum(axis=0)
            self.nrr_num[12:] += np.where(prev > 0, cur, 0.0).sum(axis=0)
        # customer-months (main subscriptions) -> tickets and reviews
        cm = main[r]
        c_cust = cust[r][cm]
        c_month = month[cm]
        c_lo = np.maximum(_month_start(c_month), start[r][cm])
        c_hi = _month_start(c_month + 1)
        c_seg = cu["seg"][c_cust]
        nt = rng.poisson(np.take(TICKETS_PER_MONTH, c_seg))
        tr = np.repeat(np.arange(len(c_cust)), nt)
        span = (c_hi - c_lo)[tr] * DAY
        t_created = c_lo[tr] * DAY + (rng.random(len(tr)) * span).astype(np.int64)
        t_created = np.minimum(t_created, self.end_us - HOUR)
        nt_ = len(tr)
        resp_h = _lognormal(rng, 3.0, 1.0, nt_)
        t_resp = t_created + (resp_h * HOUR).astype(np.int64)
        has_resp = (rng.random(nt_) >= 0.04) & (t_resp < self.end_us)
        t_res = t_created + ((resp_h + _lognormal(rng, 18.0, 1.2, nt_)) * HOUR).astype(np.int64)
        has_res = (rng.random(nt_) >= 0.03) & (t_res < self.end_us)
        slow = resp_h > 8
        p_csat = np.where(slow[:, None], (0.08, 0.10, 0.17, 0.35, 0.30), (0.03, 0.04, 0.08, 0.30, 0.55))
        csat = _choice_rows(rng, p_csat) + 1
        rated = has_res & (rng.random(nt_) < 0.30)
        ces = _choice_rows(rng, np.tile((0.03, 0.04, 0.07, 0.12, 0.24, 0.30, 0.20), (nt_, 1))) + 1
        ces_rated = has_res & (rng.random(nt_) < 0.20)
        order = np.argsort(t_created, kind="stable")
        tkid = self._take_ids("TK", nt_)
        t_cust = c_cust[tr][order]
        self.w.write("support_tickets", {
            "ticket_id": _ids("TK", tkid),
            "created_at": _ts(t_created[order]),
            "customer_id": _ids("A", cu["acc"][t_cust]),
            "first_response_at": _ts(t_resp[order], ~has_resp[order]),
            "resolved_at": _ts(t_res[order], ~has_res[order]),
            "csat": pa.array(csat[order].astype(np.int64), mask=~rated[order]),
            "ces": pa.array(ces[order].astype(np.int64), mask=~ces_rated[order]),
        })
        self._add_daily("csat_rated", t_created[rated])
        self._add_daily("csat_pos", t_created[rated & (csat >= 4)])
        # reviews
        rv = rng.random(len(c_cust)) < REVIEWS_PER_CUSTOMER_MONTH
        nrv = int(rv.sum())
        rv_t = c_lo[rv] * DAY + (rng.random(nrv) * (c_hi - c_lo)[rv] * DAY).astype(np.int64)
        rv_t = np.minimum(rv_t, self.end_us - HOUR)
        rating = rng.choice(5, size=nrv, p=(0.03, 0.05, 0.12, 0.35, 0.45)) + 1
        platform = rng.choice(3, size=nrv, p=(0.55, 0.30, 0.15))
        anon = rng.random(nrv) < 0.25
        order = np.argsort(rv_t, kind="stable")
        rid = self._take_ids("R", nrv)
        self.w.write("reviews", {
            "review_id": _ids("R", rid),
            "posted_at": _ts(rv_t[order]),
            "rating": rating[order].astype(np.int64),
            "platform": _cat(PLATFORMS, platform[order]),
            "customer_id": pc.if_else(pa.array(~anon[order]), _ids("A", cu["acc"][c_cust[rv]][order]),
                                      pa.nulls(nrv, pa.string())),
        })

    # ------------------------------------------------------------------ small tables
    def _email_campaigns(self):
        s = self.sends
        rng = _rng(self.seed, 2)
        mo = _month_of_day(s["day"]) - self.m0
        contacts = np.round(self.active_customers[np.clip(mo, 0, self.n_months - 1)] * 3.0
                            * (0.9 + 0.1 * s["u_customers"][:, 0]))
        cust = s["aud"] == 1
        delivered = np.where(cust, contacts, s["delivered"]).astype(np.int64)
        opens = np.where(cust, rng.binomial(delivered, 0.38), s["opens"])
        clicks = np.where(cust, rng.binomial(opens, 0.08), s["clicks"])
        keep = delivered > 0
        ids = np.cumsum(keep)  # campaign numbers in send order
        self.w.write("email_campaigns", {
            "campaign_id": _ids("C", ids[keep]),
            "sent_date": _dates(s["day"][keep]),
            "delivered": delivered[keep],
            "opens": opens[keep],
            "clicks": clicks[keep],
            "leads_generated": pa.array(s["leads"][keep], type=pa.int64(), mask=cust[keep]),
            "audience": _cat(("prospects", "customers"), s["aud"][keep]),
        })
        self._email_clicks = (s["day"][keep], clicks[keep])

    def _web_traffic(self):
        rng = _rng(self.seed, 3)
        nd = self.n_days
        rows_s, rows_v, rows_c = [], [], []
        org_sessions = None
        for ws in WEB_SOURCES:
            if ws in WEB_CONVERSION:
                lam = self.lam_daily[_DAILY.index(ws)]
                conv = self.leads_src_day[_SRC[ws]].astype(np.int64)
                sess = rng.poisson(lam / WEB_CONVERSION[ws] * _lognormal(rng, 1.0, 0.08, nd))
                if ws == "organic_search":
                    org_sessions = lam / WEB_CONVERSION[ws]
            elif ws == "email":
                conv = self.leads_src_day[_SRC["email"]].astype(np.int64)
                cd, ck = self._email_clicks
                clicks = np.bincount(cd - self.start_day, weights=ck, minlength=nd)[:nd]
                nxt = np.concatenate([[0.0], clicks[:-1]])
                sess = np.round(0.8 * clicks + 0.2 * nxt).astype(np.int64) + rng.poisson(20 * self.scale, nd)
            else:  # direct
                sess = rng.poisson(0.35 * org_sessions * _lognormal(rng, 1.0, 0.08, nd))
                conv = rng.binomial(sess, 0.002)
            sess = np.maximum(sess, conv)
            vis = np.minimum(np.maximum(rng.binomial(sess, 0.78), conv), sess)
            rows_s.append(sess); rows_v.append(vis); rows_c.append(conv)
        k = len(WEB_SOURCES)
        self.sessions_day = np.sum(rows_s, axis=0).astype(float)
        self.w.write("web_traffic", {
            "date": _dates(np.repeat(self.days, k)),
            "source": _cat(WEB_SOURCES, np.tile(np.arange(k), nd)),
            "sessions": np.stack(rows_s, axis=1).ravel().astype(np.int64),
            "visitors": np.stack(rows_v, axis=1).ravel().astype(np.int64),
            "conversions": np.stack(rows_c, axis=1).ravel().astype(np.int64),
        })

    def _marketing_spend(self):
        rng = _rng(self.seed, 4)
        nd = self.n_days
        days = self.days
        ch_idx = {c: i for i, c in enumerate(SPEND_CHANNELS)}
        parts = []  # (day, channel, spend)
        ps = self.lam_daily[_DAILY.index("paid_search")] * 260.0 * _lognormal(rng, 1.0, 0.15, nd)
        so = self.lam_daily[_DAILY.index("paid_social")] * 180.0 * _lognormal(rng, 1.0, 0.20, nd)
        weekday = np.where(_weekday(days) < 5, 1.0, 0.3)
        content = 2000.0 * self.scale * self.growth * weekday * _lognormal(rng, 1.0, 0.1, nd)
        for mi, wd in self.webinar_day.items():
            if wd >= 0:
                content[wd - self.start_day] += 1500.0 * self.scale
        sales = sum(REPS_PER_TEAM) * self.scale * 19_000.0 * 12 / 365.25 * np.ones(nd)
        sales = sales * (1 + 0.15 * (days - self.start_day) / 365.25)  # the team grows
        for ch, v in (("paid_search", ps), ("paid_social", so), ("content", content), ("sales", sales)):
            parts.append((days, np.full(nd, ch_idx[ch]), v))
        ev_d, ev_v, pa_d, pa_v = [], [], [], []
        mo = _month_of_day(days)
        for mi in range(self.m0, self.m_last + 1):
            in_m = mo == mi
            edays = self.event_days.get(mi, [])
            if len(edays):
                total = self.lam_events[in_m].sum() * 600.0
                for d in edays:
                    ev_d.append(d); ev_v.append(total / len(edays) * _lognormal(rng, 1.0, 0.2))
            first = int(days[in_m][0])
            prev = (mo == mi - 1) if mi > self.m0 else in_m
            pa_d.append(first); pa_v.append(self.lam_daily[_DAILY.index("partner")][prev].sum() * 400.0)
        parts.append((np.array(ev_d, dtype=np.int64), np.full(len(ev_d), ch_idx["events"]), np.array(ev_v)))
        parts.append((np.array(pa_d, dtype=np.int64), np.full(len(pa_d), ch_idx["partner"]), np.array(pa_v)))
        d = np.concatenate([p[0] for p in parts])
        c = np.concatenate([p[1] for p in parts])
        v = np.round(np.concatenate([p[2] for p in parts]).astype(float), 2)
        order = np.lexsort((c, d))
        self.spend_day = np.bincount(d - self.start_day, weights=v, minlength=nd)[:nd]
        self.w.write("marketing_spend", {
            "date": _dates(d[order]),
            "channel": _cat(SPEND_CHANNELS, c[order]),
            "spend": v[order],
        })

    def _forecasts(self):
        rng = _rng(self.seed, 5)
        # forecasting starts with the first calendar quarter beginning >= 6 months into the data
        m = self.m0 + 6
        m += (-m) % 3
        fc_start = int(_month_start(m))
        first_monday = fc_start + (-int(_weekday(fc_start))) % 7
        mondays = np.arange(first_monday, self.end_day, 7, dtype=np.int64)
        if len(mondays) == 0:
            self.w.write("forecast_snapshots", {k: [] for k in _schema("forecast_snapshots").names})
            return
        z_period: dict = {}
        rows = []
        wmt = self.won_month_team
        for day in mondays:
            mi = int(_month_of_day(day))
            qi = mi - mi % 3
            for kind, p_lo, p_hi, label in (
                ("month", mi, mi + 1, _month_label(mi)), ("quarter", qi, qi + 3, _quarter_label(mi))):
                start = int(_month_start(p_lo))
                stop = int(_month_start(p_hi))
                remaining = (stop - day) / (stop - start)
                f = math.sqrt(max(remaining, 0.0))
                team_commit, team_best = [], []
                for ti, team in enumerate(TEAMS):
                    actual = float(wmt[p_lo - self.m0: p_hi - self.m0, ti].sum())
                    key = (label, ti)
                    if key not in z_period:
                        z_period[key] = rng.standard_normal(2)
                    zc, zb = z_period[key]
                    zw = rng.standard_normal(2)
                    b = FORECAST_BIAS[team]
                    commit = actual * max(0.0, 1 + (b + FORECAST_NOISE * zc + 0.03 * zw[0]) * f)
                    best = actual * max(0.0, 1 + (b + BEST_CASE_UPLIFT + FORECAST_NOISE * zb + 0.03 * zw[1]) * f)
                    best = max(best, commit)
                    team_commit.append(commit)
                    team_best.append(best)
                    rows.append((day, label, team, "commit", commit))
                    rows.append((day, label, team, "best_case", best))
                adj = 1 + 0.02 * rng.standard_normal(2) * f
                cc = sum(team_commit) * adj[0]
                cb = max(sum(team_best) * adj[1], cc)
                rows.append((day, label, "company", "commit", cc))
                rows.append((day, label, "company", "best_case", cb))
        rows.sort(key=lambda r: (r[0], len(r[1]), r[1], r[2] != "company", r[2], r[3]))
        self.w.write("forecast_snapshots", {
            "snapshot_date": _dates([r[0] for r in rows]),
            "forecast_period": [r[1] for r in rows],
            "scope": [r[2] for r in rows],
            "category": [r[3] for r in rows],
            "amount": np.round(np.array([r[4] for r in rows]), -2),
        })

    def _targets(self):
        rng = _rng(self.seed, 6)
        a = self.agg
        daily = {
            "revenue_won": a["won_amount"], "new_customers": a["new_customers"], "leads": a["leads"],
            "mqls": a["mqls"], "sqls": a["sqls"], "opportunities_created": a["opps"],
            "sessions": self.sessions_day, "first_meetings": a["first_meetings"], "proposals": a["proposals"],
        }
        ratios = {"win_rate": (a["won_count"], a["won_count"] + a["lost_count"]),
                  "csat": (a["csat_pos"], a["csat_rated"])}
        weekly = ("leads", "mqls", "sqls", "opportunities_created", "first_meetings")
        # periods: (label, kind, start_day, end_day)
        periods = []
        m_next = self.m_last + 1 if self.end_day > int(_month_start(self.m_last)) else self.m_last
        # months of the data plus the month after `end`
        for mi in range(self.m0, m_next + 1):
            periods.append((_month_label(mi), "month", int(_month_start(mi)), int(_month_start(mi + 1))))
        q_first = self.m0 - self.m0 % 3
        q_last = m_next - m_next % 3
        q_after = int(_month_of_day(self.end_day)) - int(_month_of_day(self.end_day)) % 3
        q_after = q_after + 3 if int(_month_start(q_after)) < self.end_day else q_after
        for qi in range(q_first, max(q_last, q_after) + 1, 3):
            periods.append((_quarter_label(qi), "quarter", int(_month_start(qi)), int(_month_start(qi + 3))))
        first_monday = self.start_day + (-int(_weekday(self.start_day))) % 7
        last_day = int(_month_start(m_next + 1))
        for mon in range(first_monday, last_day, 7):
            periods.append((_week_label(mon), "week", mon, mon + 7))
        sd = self.start_day
        rows = []
        history: dict = {}
        for label, kind, p0, p1 in periods:
            complete = p1 <= self.end_day and p0 >= sd
            metrics = list(daily) + ["win_rate", "csat", "nrr_12m"] if kind != "week" else list(weekly)
            for metric in metrics:
                hist = history.setdefault((kind, metric), [])
                if complete:
                    if metric in daily:
                        actual = float(daily[metric][p0 - sd:p1 - sd].sum())
                    elif metric in ratios:
                        num, den = ratios[metric]
                        dn = float(den[p0 - sd:p1 - sd].sum())
                        actual = float(num[p0 - sd:p1 - sd].sum()) / dn if dn > 0 else float("nan")
                    else:  # nrr_12m at the period's last month
                        k = int(_month_of_day(p1 - 1)) - self.m0
                        actual = self.nrr_num[k] / self.nrr_den[k] if k >= 12 and self.nrr_den[k] > 0 else float("nan")
                    if math.isfinite(actual):
                        hist.append(actual)
                    base = actual
                elif p1 > self.end_day:
                    # a plan for a period not yet complete: the recent trend
                    recent = [x for x in hist[-3:] if math.isfinite(x)]
                    base = float(np.mean(recent)) * (1.05 if metric in daily or metric in weekly else 1.0) \
                        if recent else float("nan")
                else:
                    continue
                if not math.isfinite(base) or base <= 0:
                    continue
                sd_ = 0.10 if complete else 0.03  # plans for the future are deliberate
                if metric in ratios or metric == "nrr_12m":
                    target = round(min(base + rng.normal(0.02, 0.3 * sd_), 1.5 if metric == "nrr_12m" else 0.99), 2)
                else:
                    target = base * float(np.exp(rng.normal(0.03, sd_)))
                    target = float(max(1.0, round(target))) if metric != "revenue_won" else _sig3(target)
                rows.append((label, metric, target))
        rows = _consistent_quarters(_consistent_weeks(rows, weekly=set(weekly)), additive=set(daily))
        quota = self._quotas(rows)
        rows = [(lab, metric, target, None, None) for lab, metric, target in rows] + quota
        self.w.write("targets", {
            "period": [r[0] for r in rows],
            "metric": [r[1] for r in rows],
            "target": np.array([r[2] for r in rows], dtype=float),
            "segment": pa.nulls(len(rows), pa.string()),
            "owner": [r[3] for r in rows],
            "team": [r[4] for r in rows],
        })

    def _quotas(self, rows: list[tuple]) -> list[tuple]:
        """Revenue quotas of each team and rep, months and quarters: ``(period, metric, target, owner, team)``.

        A month's company ``revenue_won`` target is split among the teams in proportion to what each team won
        in the three months before (by rep count in the first month), and a team's quota evenly among its reps;
        both are rounded to 100 with the last team (rep) taking the rounding, so the teams add up to the
        company target and the reps to their team's quota exactly. A quarter's quota is the sum of its months'.
        """
        wmt = self.won_month_team
        month_target = {lab: t for lab, metric, t in rows if metric == "revenue_won" and "-" in lab
                        and "Q" not in lab and "W" not in lab}
        from revops_lib.periods import parse_period

        out = []
        for mi in range(self.m0, self.m0 + len(wmt)):
            lab = _month_label(mi)
            if lab not in month_target:
                continue
            total = month_target[lab]
            k = mi - self.m0
            won = wmt[max(0, k - 3):k].sum(axis=0)  # the plan: each team's share of the last three months' wins
            share = won / won.sum() if won.sum() > 0 else self.rep_count / self.rep_count.sum()
            team_t = _split(total, share)
            for ti, team in enumerate(TEAMS):
                out.append((lab, "revenue_won", team_t[ti], None, team))
                n = int(self.rep_count[ti])
                reps = _split(team_t[ti], np.full(n, 1.0 / n))
                for k in range(n):
                    out.append((lab, "revenue_won", reps[k], self.rep_names[int(self.rep_offset[ti]) + k], team))
        quarters = sorted({_quarter_label(mi) for mi in range(self.m0, self.m0 + len(wmt))
                           if _month_label(mi) in month_target})
        by_key: dict = {}
        for lab, metric, t, owner, team in out:
            by_key.setdefault((owner, team), {})[lab] = t
        for q in quarters:
            months = [m.label for m in parse_period(q).months()]
            for (owner, team), vals in by_key.items():
                if all(m in vals for m in months):
                    out.append((q, "revenue_won", float(round(sum(vals[m] for m in months), 2)), owner, team))
        return out


# --------------------------------------------------------------------------- small helpers

def _split(total: float, share) -> list[float]:
    """``total`` split by ``share`` (fractions adding up to 1), each part rounded to 100 but the last, which takes
    what is left: the parts add up to ``total`` exactly (up to float rounding of cents)."""
    parts = [float(round(total * float(x), -2)) for x in share[:-1]]
    return parts + [float(round(total - sum(parts), 2))]


def _consistent_weeks(rows: list[tuple], *, weekly: set) -> list[tuple]:
    """Month targets of the KPIs also planned by week that agree with their weeks' (what data_quality checks):
    the weekly targets weighted by their days in the month, when every week overlapping the month has one."""
    from revops_lib.periods import parse_period

    value = {(label, metric): target for label, metric, target in rows}
    out = []
    for label, metric, target in rows:
        if metric in weekly and "-W" not in label and "-Q" not in label:
            p = parse_period(label)
            weeks = p.weeks()
            if all((w.label, metric) in value for w in weeks):
                target = round(sum(value[(w.label, metric)] * (min(w.end_naive, p.end_naive)
                                                               - max(w.start_naive, p.start_naive)).days / 7.0
                                   for w in weeks), 2)
        out.append((label, metric, target))
    return out


def _consistent_quarters(rows: list[tuple], *, additive: set) -> list[tuple]:
    """Quarter targets that agree with their months' (what data_quality checks, METRICS.md): an additive KPI's
    quarter is the sum of its three months when all have one; a rate's quarter the mean of its months' targets
    (NRR, measured at the quarter's last month: that month's target)."""
    from revops_lib.periods import parse_period

    value = {(label, metric): target for label, metric, target in rows}
    out = []
    for label, metric, target in rows:
        if "-Q" in label:
            months = [m.label for m in parse_period(label).months()]
            have = [value[(m, metric)] for m in months if (m, metric) in value]
            if metric in additive and len(have) == 3:
                target = float(sum(have))
            elif metric not in additive and have:
                last = value.get((months[-1], metric))
                target = last if metric == "nrr_12m" and last is not None else round(float(np.mean(have)), 2)
        out.append((label, metric, target))
    return out


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
