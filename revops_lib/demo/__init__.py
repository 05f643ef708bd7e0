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

The package
-----------
About a fifth of the code is this documentation (sample data is API: its truth is written down
next to the code that draws it). The generator is split by concern; its tables are draws from
shared state (each lead's future decides its deal, the deal its subscription, the subscriptions the
support tickets, and the targets follow the actuals), which ``company._Company`` holds and passes to
each module, streaming the lead cohorts month by month to keep memory flat at scale 100:

- :mod:`~revops_lib.demo.truth` — the categories and generating parameters above, and ``TRUE_RATES``;
- :mod:`~revops_lib.demo.calendar` — days, months, weeks, working hours, growth and seasonality;
- :mod:`~revops_lib.demo.draws` — seeded random streams and draws;
- :mod:`~revops_lib.demo.company` — the generator's state and its month-by-month loop;
- :mod:`~revops_lib.demo.crm` — leads, opportunities, opportunity history, activities;
- :mod:`~revops_lib.demo.billing` — customers' lives, subscriptions, transactions;
- :mod:`~revops_lib.demo.support` — support tickets and reviews;
- :mod:`~revops_lib.demo.marketing` — email campaigns, web traffic, marketing spend;
- :mod:`~revops_lib.demo.forecasts`, :mod:`~revops_lib.demo.targets` — forecast snapshots, targets;
- :mod:`~revops_lib.demo.writer` — Parquet writing and the output folder.

Every documented constant above is importable from here (``from revops_lib.demo import TRUE_RATES``).
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Callable

import numpy as np

from revops_lib.demo.calendar import DAY, HOUR, MONTH_DAYS, SECOND, _to_date  # noqa: F401  (DAY … SECOND re-exported)
from revops_lib.demo.company import _Company
from revops_lib.demo.truth import (  # noqa: F401  (the documented constants, re-exported)
    ACTIVITY_TYPES,
    ACV_MEDIAN,
    ACV_SIGMA,
    AMOUNT_CHANGE_P,
    BEST_CASE_UPLIFT,
    CYCLE_MEDIAN_DAYS,
    CYCLE_SIGMA,
    DEAL_STAGES,
    EVENT_SEASON,
    EXPANSION_MONTHLY,
    EXPANSION_SIZE_MEDIAN,
    EXPANSION_WIN,
    FORECAST_BIAS,
    FORECAST_CATEGORIES,
    FORECAST_NOISE,
    GROWTH_PER_YEAR,
    LAG_MEDIAN_DAYS,
    LAG_SEGMENT_FACTOR,
    LAG_SIGMA,
    LEAD_SHARE,
    LEADS_PER_36_MONTHS,
    LOST_CYCLE_FACTOR,
    LOST_STAGE_P,
    NONRENEWAL,
    OPP_SOURCES,
    OPP_TYPES,
    PLATFORMS,
    PRODUCT_MIX,
    PRODUCTS,
    PULL_IN_P,
    PULL_IN_P_Q4,
    PUSH_P,
    REACTIVATION,
    RENEWAL_SHRINK_P,
    RENEWAL_UPLIFT_P,
    REPS_PER_TEAM,
    REVIEWS_PER_CUSTOMER_MONTH,
    SEASON,
    SEGMENT_MIX,
    SEGMENT_NULL_IF_NOT_MQL,
    SEGMENTS,
    SKIP_MQL,
    SKIP_SQL,
    SMB_CONTRACTION,
    SMB_HAZARD,
    SOURCES,
    SPEND_CHANNELS,
    STAGE_CATEGORY,
    STAGE_CONVERSION,
    STAGE_SKIP_WON,
    STALE_P,
    TEAMS,
    TICKETS_PER_MONTH,
    TRUE_RATES,
    WEB_CONVERSION,
    WEB_SOURCES,
    WEBINAR_LEADS_PER_MONTH,
    WEEKDAY,
    WEEKDAY_OUTBOUND,
    WIN_RATE,
)
from revops_lib.demo.writer import write_folder
from revops_lib.errors import ParameterError

__all__ = ["build", "TRUE_RATES", "SOURCES", "SEGMENTS", "TEAMS", "PRODUCTS"]


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

    def fill(folder) -> dict[str, int]:
        return _Company(folder, int(seed), scale, end_date, int(months), progress).run()

    return write_folder(out, fill, seed=int(seed), scale=scale, end=end_date.isoformat(), months=int(months))
