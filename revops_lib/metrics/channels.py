"""Channel economics: what each lead source brings and costs in a period (METRICS.md, "Channels, reps and stages").

Definitions
-----------
One row per lead source; every figure is the period's *flow*, counted exactly as the scorecard counts
it, so the ``all`` row equals the scorecard's blended KPIs (``leads``, ``mqls``, ``sqls``,
``opportunities_created``, ``revenue_won``, ``new_customers``, ``cost_per_lead``, ``cac``):

- **leads** — leads created in the period (``leads.created_at``), by ``leads.source``;
- **mqls**, **sqls** — leads entering ``mql_at`` / ``sql_at`` in the period, whenever created (a skipped
  stage is entered at the time of the next stage reached), by ``leads.source``;
- **opportunities**, **pipeline_created** — opportunities created in the period and Σ their ``amount``,
  by the opportunity's *attributed source* (below);
- **revenue_won** — Σ ``amount`` of opportunities won with ``close_date`` in the period, by attributed
  source (every type; ROAS uses the new-business part);
- **new_customers** — accounts whose first won ``new_business`` opportunity closed in the period, by that
  deal's attributed source;
- **spend** — Σ ``marketing_spend.spend`` dated in the period of the channels mapped to the source (blank
  when no channel maps to it: its cost is not tracked, so its cost per lead, CAC and ROAS are blank too);
- **cost_per_lead** = spend / leads; **cac** = spend / new customers; **roas** = new-business revenue
  won / spend; **payback_months** = CAC / (starting MRR per new customer × gross margin), where a new
  customer's starting MRR is Σ ``mrr`` of its first subscriptions (those starting on its earliest
  ``start_date``, known by the cut-off; ``subscriptions.customer_id`` is the account id) averaged over
  the row's new customers that have one; blank without ``subscriptions``.

**Attributed source** of an opportunity (first touch through the lead → opportunity → account link):
its own ``opportunities.source``; else the source of the earliest-created lead with a source whose
``leads.opportunity_id`` is the opportunity; else that of the earliest-created lead with a source of
its ``account_id``; else ``unattributed``. Leads without a source are ``unattributed`` too: such rows are
never dropped.

**Spend channels** map to lead sources by ``channel_map`` (``{channel: source}``): a channel not in it
maps to the source of the same name when there is one (identity, the default), and a channel that maps
to no source (not in the map and no source of its name, or mapped to ``None`` / ``""``) keeps its spend
on a row of its own, ``unattributed:<channel>`` (spend only: its counts are 0, its ratios blank, ROAS
included: no revenue is traced to it). In the
demo company ``paid_search``, ``paid_social``, ``events`` and ``partner`` spend is the source of the same
name; ``content`` and ``sales`` (the sales team's cost) have rows of their own unless mapped.

Choices
-------
- A ratio with a zero or missing denominator is blank (:func:`~revops_lib.metrics.common.ratio`).
- Rows: every source with a non-zero figure or spend in the period, alphabetically, then
  ``unattributed``, the ``unattributed:<channel>`` rows, and ``all`` (the totals: Σ of the rows for the
  counts and amounts, the blended ratios).
- Absent tables leave their columns blank: no ``leads`` → leads, MQLs, SQLs, cost per lead; no
  ``opportunities`` → opportunities, pipeline, revenue, new customers, CAC, ROAS, payback; no
  ``marketing_spend`` → spend and every ratio over it; no ``subscriptions`` → payback.

Queries: a few aggregate queries in the engine (leads, stage entries, the deal columns, spend, the sources
the spend channels may map to); one row per source comes back. The deal columns are one query over
:func:`attributed_deals`, the deals behind them, which ``channel_economics_records.csv`` publishes
(:func:`revops_lib.metrics.records.channel_economics_records`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from revops_lib.errors import ParameterError
from revops_lib.metrics.common import (
    UNKNOWN,
    caches,
    check_fraction,
    check_stages,
    count_if,
    date_lit,
    ratio,
    run,
    source_of,
    ts_lit,
)
from revops_lib.metrics.lead_funnel import DEFAULT_STAGES, TOTAL, activity_counts_many
from revops_lib.periods import window

__all__ = ["channel_economics", "attributed_opportunities", "attributed_deals", "prepare_deals", "AttributedDeals",
           "UNATTRIBUTED", "CHANNEL_COLUMNS", "channel_rows"]

#: The source of rows without one (leads without a source, deals no lead can be traced to).
UNATTRIBUTED = "unattributed"

#: The published columns of ``channel_economics.csv`` (DESIGN.md, "Published tables").
CHANNEL_COLUMNS = ["source", "leads", "mqls", "sqls", "opportunities", "pipeline_created", "revenue_won",
                   "new_customers", "spend", "cost_per_lead", "cac", "roas", "payback_months"]

_COUNTS = ["leads", "mqls", "sqls", "opportunities", "new_customers"]
_MONEY = ["pipeline_created", "revenue_won", "new_business_won", "spend"]


def _check_map(channel_map) -> dict[str, str | None]:
    if channel_map is None:
        return {}
    if not isinstance(channel_map, Mapping):
        raise ParameterError("`channel_map` must map spend channels to lead sources, e.g. {content: organic_search}, "
                             f"not `{channel_map!r}`.")
    out = {}
    for k, v in channel_map.items():
        if not isinstance(k, str) or not (v is None or isinstance(v, str)):
            raise ParameterError(f"`channel_map` maps channel names to source names (text, or empty for a row of its "
                                 f"own), not `{k!r}: {v!r}`.")
        out[k] = v or None
    return out


def _first_source(leads: ir.Table, key: str) -> ir.Table:
    """``key, <key>_source``: the source of the earliest-created lead with a source, per non-null ``key``."""
    t = leads.filter(leads[key].notnull() & leads.source.notnull())
    w = ibis.window(group_by=t[key], order_by=[t.created_at, t.lead_id])
    t = t.mutate(_rn=ibis.row_number().over(w))
    t = t.filter(t._rn == 0)
    return t.select(key, **{f"{key}_source": t.source})


def attributed_opportunities(data) -> ir.Table:
    """Every opportunity with its attributed source (see the module docstring), as an Ibis table.

    Parameters
    ----------
    data : Source or source spec
        ``opportunities`` (required) and ``leads`` (optional: without it, an opportunity without its own
        source is ``unattributed``).

    Returns
    -------
    Ibis table
        The typed ``opportunities`` columns ``opportunity_id, account_id, created_at, close_date, is_won, amount,
        type`` and ``attributed_source`` (never null), ``basis`` (``opportunity``, ``lead``, ``account`` or
        ``none``: which link gave the source) — the records behind each row of :func:`channel_economics`.

    >>> o = pd.DataFrame({"opportunity_id": ["O1", "O2", "O3"], "created_at": pd.to_datetime(["2026-10-02"] * 3),
    ...     "close_date": pd.to_datetime(["2026-10-20"] * 3).date, "is_closed": [False] * 3, "is_won": [False] * 3,
    ...     "amount": [1.0] * 3, "account_id": ["A1", "A2", "A3"], "source": ["referral", None, None]})
    >>> leads = pd.DataFrame({"lead_id": ["L1", "L2"], "created_at": pd.to_datetime(["2026-09-01", "2026-09-02"]),
    ...     "source": ["events", "email"], "account_id": ["A2", "A3"], "opportunity_id": [None, "O3"]})
    >>> run(attributed_opportunities({"opportunities": o, "leads": leads}).order_by("opportunity_id"))[
    ...     ["opportunity_id", "attributed_source", "basis"]]
      opportunity_id attributed_source        basis
    0             O1          referral  opportunity
    1             O2            events      account
    2             O3             email         lead
    """
    src = source_of(data, "opportunities")
    o = src.table("opportunities")
    cols = ["opportunity_id", "account_id", "created_at", "close_date", "is_won", "amount", "type"]
    if not src.has("leads"):
        return o.select(*cols, attributed_source=o.source.fill_null(UNATTRIBUTED),
                        basis=ibis.ifelse(o.source.notnull(), "opportunity", "none"))
    leads = src.table("leads")
    by_opp = _first_source(leads, "opportunity_id")
    by_acc = _first_source(leads, "account_id")
    j = o.left_join(by_opp, o.opportunity_id == by_opp.opportunity_id).select(
        *[o[c] for c in cols], o.source, by_opp.opportunity_id_source)
    j = j.left_join(by_acc, j.account_id == by_acc.account_id).select(
        *[j[c] for c in cols], j.source, j.opportunity_id_source, by_acc.account_id_source)
    basis = ibis.cases((j.source.notnull(), "opportunity"), (j.opportunity_id_source.notnull(), "lead"),
                       (j.account_id_source.notnull(), "account"), else_="none")
    return j.select(*cols, attributed_source=ibis.coalesce(j.source, j.opportunity_id_source, j.account_id_source,
                                                           ibis.literal(UNATTRIBUTED)), basis=basis)


def channel_rows(spend_channels: Sequence[str], sources: Sequence[str], channel_map=None) -> dict[str, str]:
    """Which row each spend channel's spend goes to: ``{channel: source or 'unattributed:<channel>'}``.

    >>> channel_rows(["paid_search", "content", "sales"], ["paid_search", "organic_search"],
    ...              {"content": "organic_search"})
    {'paid_search': 'paid_search', 'content': 'organic_search', 'sales': 'unattributed:sales'}
    """
    cmap = _check_map(channel_map)
    known = set(sources)
    out = {}
    for ch in spend_channels:
        target = cmap[ch] if ch in cmap else (ch if ch in known else None)
        out[ch] = target if target else f"{UNATTRIBUTED}:{ch}"
    return out


def channel_economics(data, *, period, as_of=None, channel_map: Mapping[str, str | None] | None = None,
                      stages: Sequence[str] = DEFAULT_STAGES, gross_margin: float = 0.8,
                      deals: "AttributedDeals | None" = None) -> pd.DataFrame:
    """Leads, MQLs, SQLs, pipeline, revenue, new customers, spend, cost per lead, CAC, ROAS and payback per source.

    Parameters
    ----------
    data : Source or source spec
        Any of ``leads``, ``opportunities`` (with ``leads`` for the lead → account link), ``marketing_spend``,
        ``subscriptions``; absent ones leave their columns blank (see the module docstring).
    period : str or Period
    as_of : date or time, optional
        Exclusive cut-off (default: the period end).
    channel_map : mapping, optional
        ``{spend channel: lead source}``; unmapped channels go to the source of their name, else a row of
        their own (see the module docstring).
    stages : list of str
        The lifecycle stage columns of ``leads`` (MQLs and SQLs are the entries into ``mql_at`` and
        ``sql_at``; blank when a stage is not in the list).
    gross_margin : float, default 0.8
    deals : AttributedDeals, optional
        The deals of this period and cut-off from :func:`prepare_deals` (computed once, e.g. for the records too);
        default: computed here.

    Returns
    -------
    DataFrame
        :data:`CHANNEL_COLUMNS` (``source, leads, mqls, sqls, opportunities, pipeline_created, revenue_won,
        new_customers, spend, cost_per_lead, cac, roas, payback_months``), then ``new_business_won``,
        ``starting_mrr`` (Σ over the new customers that have a subscription) and ``customers_with_mrr``.
        ``attrs['channels']``: ``{spend channel: row}``.

    Examples
    --------
    >>> leads = pd.DataFrame({"lead_id": ["L1", "L2", "L3"], "source": ["paid_search", "paid_search", None],
    ...     "created_at": pd.to_datetime(["2026-10-01", "2026-10-02", "2026-10-03"])})
    >>> spend = pd.DataFrame({"date": pd.to_datetime(["2026-10-01", "2026-10-01"]).date,
    ...     "channel": ["paid_search", "sales"], "spend": [100.0, 50.0]})
    >>> ce = channel_economics({"leads": leads, "marketing_spend": spend}, period="2026-10")
    >>> ce[["source", "leads", "spend", "cost_per_lead"]]
                   source  leads  spend  cost_per_lead
    0         paid_search      2  100.0           50.0
    1        unattributed      1    NaN            NaN
    2  unattributed:sales      0   50.0            NaN
    3                 all      3  150.0           50.0
    """
    gross_margin = check_fraction(gross_margin, "gross_margin")
    stages = check_stages(stages)
    cmap = _check_map(channel_map)
    p, cut_as_of = window(period, as_of, period_required=True)
    cut = min(p.end_naive, cut_as_of)
    lo_d, hi_d = p.start_date, min(p.end_date, cut.date())
    src = source_of(data)
    frames: dict[str, pd.DataFrame] = {}
    has = {t: src.has(t) for t in ("leads", "opportunities", "marketing_spend", "subscriptions")}

    if has["leads"]:
        ld = src.table("leads")
        ld = ld.filter((ld.created_at >= ts_lit(p.start_naive)) & (ld.created_at < ts_lit(cut)))
        g = run(ld.group_by(source=ld.source.fill_null(UNATTRIBUTED)).aggregate(leads=ld.count()))
        frames["leads"] = g.set_index("source")
        wanted = {key: stage for key, stage in (("mqls", "mql_at"), ("sqls", "sql_at")) if stage in stages}
        if wanted:
            entries = activity_counts_many(src, [(p, cut_as_of)], stages=stages, by="source",
                                           count=list(wanted.values()))
            entries["source"] = entries["source"].replace({UNKNOWN: UNATTRIBUTED})
            for key, stage in wanted.items():
                e = entries[entries["stage"] == stage]
                frames[key] = e.groupby("source")["leads"].sum().rename(key).to_frame()
    if has["opportunities"]:
        r = resolve_deals(deals, src, p, cut_as_of)
        aggs = dict(opportunities=count_if(r.created), pipeline_created=r.amount.sum(where=r.created),
                    revenue_won=r.amount.sum(where=r.won), new_business_won=r.amount.sum(where=r.won & r.new_business),
                    new_customers=count_if(r.new_customer))
        if has["subscriptions"]:
            aggs.update(customers_with_mrr=count_if(r.new_customer & r.starting_mrr.notnull()),
                        starting_mrr=r.starting_mrr.sum())
        g = run(r.group_by("source").aggregate(**aggs)).set_index("source")  # one query: one attribution pass
        frames["opportunities"] = g[["opportunities", "pipeline_created", "revenue_won", "new_business_won"]]
        nc = g[g["new_customers"].astype("int64") > 0]
        frames["new_customers"] = nc[[c for c in ("new_customers", "customers_with_mrr", "starting_mrr")
                                      if c in nc.columns]]
    channels: dict[str, str] = {}
    if has["marketing_spend"]:
        s = src.table("marketing_spend")
        s = s.filter(s.channel.notnull())
        # every channel (the sources it maps to have a spend, 0 when it spent nothing in the period)
        g = run(s.group_by("channel").aggregate(
            spend=s.spend.sum(where=(s.date >= date_lit(lo_d)) & (s.date < date_lit(hi_d)))))
        g["spend"] = g["spend"].astype("float64").fillna(0.0)
        known = set().union(*[set(f.index) for f in frames.values()]) if frames else set()  # every lead source
        if has["opportunities"]:
            o = src.table("opportunities")
            known |= set(run(o.select("source").distinct())["source"].dropna())
        channels = channel_rows(sorted(g["channel"]), sorted(known - {UNATTRIBUTED}), cmap)
        g["source"] = g["channel"].map(channels)
        frames["spend"] = g.groupby("source")[["spend"]].sum()
    out = _assemble(frames, has, gross_margin)
    out.attrs.update(period=p.label, as_of=cut_as_of, channels=channels, gross_margin=gross_margin)
    return out


@dataclass
class AttributedDeals:
    """:func:`attributed_deals` of one period and cut-off, computed once (a temporary table where the engine caches
    it) for :func:`channel_economics` and its records; :meth:`release` (or ``with``) drops it."""

    table: ir.Table
    period: str
    as_of: pd.Timestamp
    cached: bool = False

    def release(self) -> None:
        if self.cached:
            self.table.release()
            self.cached = False

    def __enter__(self) -> "AttributedDeals":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def prepare_deals(data, *, period, as_of=None) -> AttributedDeals:
    """The deals behind the deal columns of :func:`channel_economics` for ``period`` and ``as_of``, computed once
    (one attribution pass over the leads) to give both the table and its records (``deals=``)."""
    p, cut_as_of = window(period, as_of, period_required=True)
    t = attributed_deals(data, period=p, as_of=cut_as_of)
    if not caches(t):
        return AttributedDeals(t, p.label, cut_as_of)
    return AttributedDeals(t.cache(), p.label, cut_as_of, cached=True)


def resolve_deals(deals: AttributedDeals | None, src, p, cut_as_of) -> ir.Table:
    """The table of ``deals`` when it is of period ``p`` and cut-off ``cut_as_of`` (else a ParameterError), or the
    deals computed from ``src`` when ``deals`` is None."""
    if deals is None:
        return attributed_deals(src, period=p, as_of=cut_as_of)
    if not isinstance(deals, AttributedDeals) or deals.period != p.label or deals.as_of != cut_as_of:
        raise ParameterError(f"`deals` must be prepare_deals(...) of period {p.label} and as of {cut_as_of}, "
                             f"not {deals!r}.")
    return deals.table


def attributed_deals(data, *, period, as_of=None) -> ir.Table:
    """The deals behind the deal columns of :func:`channel_economics`, as an Ibis table (one row per opportunity
    created in the period before the cut-off, or won with ``close_date`` in it).

    Columns: ``opportunity_id, account_id, source`` (the attributed source), ``basis, type, created_at,
    close_date, amount``, and booleans ``created`` (counts in ``opportunities`` and ``pipeline_created``),
    ``won`` (``revenue_won``), ``new_business`` (its type), ``new_customer`` (the first won ``new_business``
    deal of its account, closed in the period: ``new_customers``), and ``starting_mrr`` (the account's starting
    MRR on its new-customer row, null elsewhere and without ``subscriptions``). Grouped by ``source``, these rows
    give exactly the deal columns of :func:`channel_economics`, which aggregates this very table.
    """
    p, cut_as_of = window(period, as_of, period_required=True)
    cut = min(p.end_naive, cut_as_of)
    lo_d, hi_d = p.start_date, min(p.end_date, cut.date())
    src = source_of(data, "opportunities")
    a = attributed_opportunities(src)
    created = ((a.created_at >= ts_lit(p.start_naive)) & (a.created_at < ts_lit(cut))).fill_null(False)
    is_won = a.is_won.fill_null(False)
    won = (is_won & a.close_date.notnull() & (a.close_date >= date_lit(lo_d)) & (a.close_date < date_lit(hi_d))
           ).fill_null(False)
    nb = (a.type == "new_business").fill_null(False)
    # an account's first won new-business deal (closed before the period's end; a new customer when in it)
    first_win = (is_won & nb & a.account_id.notnull() & a.close_date.notnull() & (a.close_date < date_lit(hi_d))
                 ).fill_null(False)
    rank = ibis.row_number().over(ibis.window(group_by=[a.account_id, first_win],
                                              order_by=[a.close_date, a.opportunity_id]))
    t = a.mutate(created=created, won=won, new_business=nb, new_customer=first_win & (rank == 0)
                 & (a.close_date >= date_lit(lo_d)))
    t = t.filter(t.created | t.won)
    cols = ["opportunity_id", "account_id", "source", "basis", "type", "created_at", "close_date", "amount",
            "created", "won", "new_business", "new_customer"]
    t = t.rename(source="attributed_source")
    if not src.has("subscriptions"):
        return t.select(*cols, starting_mrr=ibis.null("float64"))
    subs = src.table("subscriptions")
    subs = subs.filter(subs.customer_id.notnull() & subs.start_date.notnull() & (subs.start_date < date_lit(hi_d)))
    fs = subs.group_by("customer_id").aggregate(first_start=subs.start_date.min())
    s2 = subs.join(fs, [subs.customer_id == fs.customer_id, subs.start_date == fs.first_start])
    s2 = s2.filter(s2.end_date.isnull() | (s2.end_date > s2.first_start))
    mrr = s2.group_by(cid=s2.customer_id).aggregate(start_mrr=s2.mrr.sum())
    j = t.left_join(mrr, t.account_id == mrr.cid)
    return j.select(*[j[c] for c in cols],
                    starting_mrr=ibis.ifelse(j.new_customer, j.start_mrr, ibis.null("float64")))


def _num(frame: pd.DataFrame | None, col: str, index) -> pd.Series:
    if frame is None or col not in frame.columns:
        return pd.Series(np.nan, index=index, dtype="float64")
    return frame[col].reindex(index).astype("float64").fillna(0.0)


def _assemble(frames: dict, has: dict, gross_margin: float) -> pd.DataFrame:
    keys = set()
    for f in frames.values():
        keys |= set(f.index)
    spend_only = sorted(k for k in keys if k.startswith(f"{UNATTRIBUTED}:"))
    plain = sorted(k for k in keys if k != UNATTRIBUTED and k not in spend_only)
    index = plain + ([UNATTRIBUTED] if UNATTRIBUTED in keys else []) + spend_only
    if not index:  # nothing at all: one probe row (dropped below) tells the columns of present tables (0) from blank
        index = ["\x00probe"]
    out = pd.DataFrame(index=pd.Index(index, name="source"))
    out["leads"] = _num(frames.get("leads"), "leads", index)
    out["mqls"] = _num(frames.get("mqls"), "mqls", index)
    out["sqls"] = _num(frames.get("sqls"), "sqls", index)
    opp = frames.get("opportunities")
    for c in ("opportunities", "pipeline_created", "revenue_won", "new_business_won"):
        out[c] = _num(opp, c, index)
    nc = frames.get("new_customers")
    out["new_customers"] = _num(nc, "new_customers", index)
    # a source that no spend channel maps to has no spend figure (blank, not 0: its cost is not tracked)
    out["spend"] = (frames["spend"]["spend"].reindex(index).astype("float64") if "spend" in frames
                    else pd.Series(np.nan, index=index, dtype="float64"))
    out["starting_mrr"] = _num(nc, "starting_mrr", index) if has["subscriptions"] else np.nan
    out["customers_with_mrr"] = _num(nc, "customers_with_mrr", index) if has["subscriptions"] else np.nan
    if has["leads"] and "mqls" not in frames:  # a custom stage list without mql_at / sql_at: blank
        out["mqls"] = np.nan
    if has["leads"] and "sqls" not in frames:
        out["sqls"] = np.nan
    # an all-zero row (a source with no activity in the period) is left out
    figures = out[["leads", "mqls", "sqls", "opportunities", "pipeline_created", "revenue_won", "new_customers",
                   "spend"]]
    nothing = {c: np.nan if out[c].isna().all() else 0.0 for c in out.columns}  # the total of no row
    out = out[(figures.fillna(0) != 0).any(axis=1)]
    total = out.sum(axis=0, min_count=1).to_frame().T
    for c in out.columns:  # a column blank for lack of its table stays blank in the total
        if out[c].isna().all():
            total[c] = nothing[c] if out.empty else np.nan
    total.index = pd.Index([TOTAL], name="source")
    out = pd.concat([out, total])
    out["cost_per_lead"] = ratio(out["spend"].to_numpy(), out["leads"].to_numpy())
    out["cac"] = ratio(out["spend"].to_numpy(), out["new_customers"].to_numpy())
    out["roas"] = ratio(out["new_business_won"].to_numpy(), out["spend"].to_numpy())
    out.loc[out.index.str.startswith(f"{UNATTRIBUTED}:"), "roas"] = np.nan  # spend no revenue can be traced to
    arpa = ratio(out["starting_mrr"].to_numpy(), out["customers_with_mrr"].to_numpy())
    out["payback_months"] = ratio(out["cac"].to_numpy(), arpa * gross_margin)
    out = out.reset_index()
    for c in _COUNTS:
        if out[c].notna().all():
            out[c] = out[c].astype("int64")
    if out["customers_with_mrr"].notna().all():
        out["customers_with_mrr"] = out["customers_with_mrr"].astype("int64")
    return out[CHANNEL_COLUMNS + ["new_business_won", "starting_mrr", "customers_with_mrr"]].reset_index(drop=True)
