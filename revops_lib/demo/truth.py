"""The demo company's truth: its categories and every generating parameter, collected in ``TRUE_RATES``.

The numbers here are the ones the package docstring (:mod:`revops_lib.demo`) documents: the generator
draws from them and an analysis of the demo data should recover them. Names without a leading
underscore are API (re-exported by :mod:`revops_lib.demo`).
"""

from __future__ import annotations

import numpy as np

# --------------------------------------------------------------------------- categories

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
