"""The records behind the numbers: the customers, deals and leads behind each row of an aggregate table.

A stakeholder who questions a number ("which customers churned?", "which deals were pushed out?") gets the
records behind it, published beside the table as ``<table>_records.csv``. Each function here is computed
from the same engine expressions as its aggregate, so the records add up to it exactly (the tests check it):

Definitions (METRICS.md, the aggregates' own definitions; "Records behind the numbers")
---------------------------------------------------------------------------------------
- **MRR movement records** (:func:`mrr_movement_records`, beside ``mrr_movements.csv``): one row per customer
  and month of the report period in which its month-end MRR changed, with its movement (new, expansion,
  reactivation, contraction, churned: :func:`revops_lib.metrics.mrr.movement_kinds`), ``amount`` (positive:
  the absolute change), ``starting_mrr`` and ``ending_mrr`` (the customer's MRR at the end of the month before
  and of the month). Σ amount per month and movement = that month's column of ``mrr_movements``; the number
  of rows = its ``*_logos`` column.
- **Waterfall records** (:func:`pipeline_waterfall_records`, beside ``pipeline_waterfall.csv``): one row per
  step and deal with a non-zero part in it (``starting`` and ``ending``: every deal open and due in the period
  at its start, at the cut-off), its part of the step (``amount``, positive), its stage and close date at the
  cut-off and its owner and team. Σ amount per step = the step's amount (in cents); the rows per step = its
  ``.attrs['deals']`` count. A deal can be behind several steps (increased then pushed out).
- **Stage conversion records** (:func:`stage_conversion_records`, beside ``stage_conversion.csv``): one row per
  lead of the period's cohort and adjacent stage pair whose ``from_stage`` it reached: ``lead_id``, ``source``
  (``unknown`` when missing), ``from_stage``, ``to_stage``, ``converted`` (1 when it reached ``to_stage``,
  within the conversion window when there is one), ``entered_at`` and ``converted_at`` (its reach times, UTC).
  Per source and pair, rows = ``entered`` and Σ converted = ``converted``; over every source, the ``all`` row.
- **Rep records** (:func:`rep_performance_records`, beside ``rep_performance.csv``): one row per deal closed in
  the period (before ``as_of``'s date) or created in it (before the cut-off): ``opportunity_id``, ``owner``,
  ``team`` (``unassigned`` when missing), ``outcome`` (won, lost, or created when it did not close in the
  period), ``stage``, ``created_at``, ``close_date``, ``amount``, and the columns of ``rep_performance`` it counts
  in: ``won``, ``lost`` (0/1), ``revenue_won`` (its amount when won, else 0), ``created`` (0/1) and
  ``pipeline_created`` (its amount when created in the period, else 0). Σ per owner and team = the owner's
  row; per team = the team's row (``owner`` = ``all``); over all = the company row.
- **Channel records** (:func:`channel_economics_records`, beside ``channel_economics.csv``): one row per
  opportunity created in the period (before the cut-off) or won with ``close_date`` in it:
  ``opportunity_id``, ``account_id``, ``source`` (its attributed source), ``basis`` (the link that gave it:
  opportunity, lead, account or none), ``type``, ``created_at``, ``close_date``, ``amount``, and the columns of
  ``channel_economics`` it counts in: ``created`` (0/1) and ``pipeline_created`` (its amount when created in the
  period, else 0), ``won`` (0/1), ``revenue_won``, ``new_business_won``, ``new_customer`` (0/1: its account's
  first won new-business deal) and ``starting_mrr`` (that account's starting MRR, on its new-customer row only).
  Σ per source = the source's ``opportunities``, ``pipeline_created``, ``revenue_won`` and ``new_customers``;
  over all = the ``all`` row. Leads, MQLs, SQLs and spend are not in them (``stage_conversion_records`` has the
  cohort's leads; the spend is ``marketing_spend`` itself).
- **Win rate records** (:func:`win_rate_records`, beside ``win_rate_by_segment.csv``): one row per deal closed in
  the period (before ``as_of``'s date), as :func:`revops_lib.metrics.segments.win_rate_by` counts them:
  ``opportunity_id``, the ``by`` column (``segment``; ``(none)`` when missing), ``outcome`` (won or lost),
  ``won`` and ``lost`` (0/1), ``close_date``, ``amount``, ``owner`` and ``team``. Σ won and Σ lost per segment =
  the segment's row; over all = the ``all`` row.
- **Retention records** (:func:`retention_records`, beside ``retention_by_segment.csv``): one row per customer of
  the base, as :func:`revops_lib.metrics.mrr.trailing_retention` counts it at the last complete month *m*: the
  customers with MRR > 0 at the end of *m − lag* (``base_month``): ``customer_id``, the ``by`` column
  (``segment``: the segment of the customer's earliest subscription; ``(none)`` when missing), ``base_month``,
  ``month``, ``base_mrr`` and ``mrr`` (its MRR then and now), ``capped_mrr`` (now, capped at its base MRR) and
  ``retained`` (1 when its MRR now is > 0). Per segment: rows = ``base_customers``, Σ retained =
  ``retained_customers``, Σ base_mrr, mrr, capped_mrr = the table's (NRR = Σ mrr / Σ base_mrr, GRR = Σ capped /
  Σ base_mrr); over all = the ``all`` row.

Sizes are bounded by the period: its months, its deals, its cohort — never the history.
With ``privacy: masked`` (:meth:`revops_lib.sources.Source.with_privacy`) ids are hashed and owners and teams
pseudonymised as in every table of the source (the records come from the same masked tables).
"""

from __future__ import annotations

from collections.abc import Sequence

import ibis
import ibis.expr.datatypes as dt
import numpy as np
import pandas as pd

from revops_lib.errors import ParameterError
from revops_lib.metrics.channels import UNATTRIBUTED, AttributedDeals, resolve_deals
from revops_lib.metrics.common import (
    UNKNOWN,
    check_int,
    check_stages,
    date_lit,
    run,
    source_of,
    ts_lit,
    typed,
    us,
    with_dtypes,
)
from revops_lib.metrics.deal_history import as_dates, as_period, fiscal_start
from revops_lib.metrics.lead_funnel import (
    _US_PER_DAY,
    DEFAULT_STAGES,
    _check_mode,
    _check_window,
    _stage_times,
)
from revops_lib.metrics.mrr import INT, month_label, movement_kinds, period_months, prepared_mrr
from revops_lib.metrics.pipeline import (
    WATERFALL_PARTS,
    WATERFALL_STEPS,
    _window_cut,
    waterfall_frame,
    waterfall_steps,
)
from revops_lib.metrics.reps import UNASSIGNED
from revops_lib.metrics.segments import NONE, check_by
from revops_lib.periods import window
from revops_lib.sources import Source, pseudonym

__all__ = ["mrr_movement_records", "pipeline_waterfall_records", "stage_conversion_records",
           "rep_performance_records", "channel_economics_records", "win_rate_records", "retention_records",
           "waterfall_of_records",
           "MOVEMENT_RECORD_COLUMNS", "WATERFALL_RECORD_COLUMNS", "CONVERSION_RECORD_COLUMNS", "REP_RECORD_COLUMNS",
           "CHANNEL_RECORD_COLUMNS", "WIN_RATE_RECORD_COLUMNS", "RETENTION_RECORD_COLUMNS"]

#: Columns of ``mrr_movements_records.csv`` (``group`` columns such as ``segment`` come after ``customer_id``).
MOVEMENT_RECORD_COLUMNS = ["month", "customer_id", "movement", "amount", "starting_mrr", "ending_mrr"]
#: Columns of ``pipeline_waterfall_records.csv``.
WATERFALL_RECORD_COLUMNS = ["step", "opportunity_id", "amount", "stage", "close_date", "owner", "team"]
#: Columns of ``stage_conversion_records.csv``.
CONVERSION_RECORD_COLUMNS = ["lead_id", "source", "from_stage", "to_stage", "converted", "entered_at",
                             "converted_at"]
#: Columns of ``rep_performance_records.csv``.
REP_RECORD_COLUMNS = ["opportunity_id", "owner", "team", "outcome", "stage", "created_at", "close_date", "amount",
                      "won", "lost", "revenue_won", "created", "pipeline_created"]
#: Columns of ``channel_economics_records.csv``.
CHANNEL_RECORD_COLUMNS = ["opportunity_id", "account_id", "source", "basis", "type", "created_at", "close_date",
                          "amount", "created", "pipeline_created", "won", "revenue_won", "new_business_won",
                          "new_customer", "starting_mrr"]
#: Columns of ``win_rate_by_segment_records.csv`` (``segment`` named after ``by``).
WIN_RATE_RECORD_COLUMNS = ["opportunity_id", "segment", "outcome", "won", "lost", "close_date", "amount", "owner",
                           "team"]
#: Columns of ``retention_by_segment_records.csv`` (``segment`` named after ``by``).
RETENTION_RECORD_COLUMNS = ["customer_id", "segment", "base_month", "month", "base_mrr", "mrr", "capped_mrr",
                            "retained"]

_MOVEMENT_ORDER = ["new", "expansion", "reactivation", "contraction", "churned"]


def mrr_movement_records(data, *, period=None, as_of=None, months=None) -> pd.DataFrame:
    """The customers behind each MRR movement of the report period's months (see the module docstring).

    Parameters
    ----------
    data : Source, table or CustomerMRR
        As :func:`revops_lib.metrics.mrr.mrr_movements` takes it (a CustomerMRR made with ``by`` adds its group
        column, e.g. ``segment``).
    period, as_of
        The window (ignored for a CustomerMRR, which carries its own).
    months : list of ``YYYY-MM``, optional
        The months to list (default: the complete months of the period,
        :func:`revops_lib.metrics.mrr.period_months`).

    Returns
    -------
    DataFrame
        :data:`MOVEMENT_RECORD_COLUMNS`, by month, movement (new, expansion, reactivation, contraction, churned),
        largest amount first, then customer; ``.attrs['months']``: the months listed (``YYYY-MM``).

    Examples
    --------
    >>> cm = pd.DataFrame({"customer_id": ["A", "A", "B", "B"], "mrr": [100.0, 60.0, 50.0, 70.0],
    ...                    "month": pd.to_datetime(["2026-01-01", "2026-02-01", "2026-01-01", "2026-02-01"])})
    >>> mrr_movement_records(cm, period="2026-02")
         month customer_id     movement  amount  starting_mrr  ending_mrr
    0  2026-02           B    expansion    20.0          50.0        70.0
    1  2026-02           A  contraction    40.0         100.0        60.0
    """
    cm = prepared_mrr(data, period, as_of, None)
    if months is None:
        ms = period_months(cm.period, cm.last_month)
    else:
        ms = [int(pd.Period(m, "M").year) * 12 + int(pd.Period(m, "M").month) - 1 for m in months]
        ms = [m for m in ms if m <= cm.last_month]
    group = cm.by if "group" in cm.changes.columns else None
    cols = MOVEMENT_RECORD_COLUMNS[:2] + ([group] if group else []) + MOVEMENT_RECORD_COLUMNS[2:]
    if not ms:
        return _empty(cols, money=("amount", "starting_mrr", "ending_mrr"))
    labels = [month_label(m) for m in ms]
    ch = cm.changes
    ch = ch.filter(ch.m.isin([ibis.literal(m, INT) for m in ms]))
    kinds = movement_kinds(ch)
    movement = ibis.cases(*[(cond, name) for name, (cond, _) in kinds.items()], else_=ibis.null(dt.string))
    cents = ibis.cases(*[(cond, amount) for cond, amount in kinds.values()], else_=ibis.null(INT))
    t = ch.select("customer_id", "m", movement=movement, c=cents, prev=ch.lvl - ch.d, lvl=ch.lvl,
                  **({"group": ch.group} if group else {}))
    df = run(t.filter(t.movement.notnull()))
    out = pd.DataFrame({"month": [month_label(m) for m in df["m"]], "customer_id": _text(df["customer_id"])})
    if group:
        out[group] = df["group"].astype(str).to_numpy()
    out["movement"] = df["movement"].to_numpy()
    for name, col in (("amount", "c"), ("starting_mrr", "prev"), ("ending_mrr", "lvl")):
        out[name] = df[col].astype("int64").to_numpy() / 100
    out["_k"] = out["movement"].map({m: i for i, m in enumerate(_MOVEMENT_ORDER)})
    out = _sorted(out, ["month", "_k", "amount", "customer_id"], [True, True, False, True])
    out = out[cols]
    out.attrs["months"] = labels
    return _typed(out, group)


def pipeline_waterfall_records(data, *, period, as_of=None, fiscal_year_start_month: int = 1, won_stages=None,
                               lost_stages=None) -> pd.DataFrame:
    """The deals behind each step of the period's pipeline waterfall (see the module docstring).

    Parameters are those of :func:`revops_lib.metrics.pipeline.pipeline_waterfall`.

    Returns
    -------
    DataFrame
        :data:`WATERFALL_RECORD_COLUMNS`, by step (in waterfall order), largest amount first, then deal.

    Examples
    --------
    >>> import datetime as _dt
    >>> opps = pd.DataFrame({"opportunity_id": ["a", "b"], "created_at": pd.to_datetime(["2026-09-01", "2026-10-03"]),
    ...     "close_date": [_dt.date(2026, 10, 20), _dt.date(2026, 10, 25)], "is_closed": [True, False],
    ...     "is_won": [True, False], "amount": [100.0, 40.0], "stage": ["closed_won", "proposal"]})
    >>> pipeline_waterfall_records(opps, period="2026-10")[["step", "opportunity_id", "amount", "stage"]]
           step opportunity_id  amount       stage
    0  starting              a   100.0  closed_won
    1       new              b    40.0    proposal
    2       won              a   100.0  closed_won
    3    ending              b    40.0    proposal
    """
    fy = fiscal_start(fiscal_year_start_month)
    p = as_period(period, fy)
    cut = _window_cut(p, window(p, as_of, fiscal_year_start_month=fy)[1])
    u, c = waterfall_steps(data, p, cut, won_stages=won_stages, lost_stages=lost_stages)
    parts = list(WATERFALL_PARTS)
    agg = c.group_by("opportunity_id").aggregate(**{k: c[k].sum() for k in parts})
    # one row per deal and step it is behind (a step of 0 cents is nobody's)
    steps = [agg.filter(agg[k] != 0).select("opportunity_id", step=ibis.literal(name), c=agg[k])
             for k, name in WATERFALL_PARTS.items()]
    i0 = u.filter(u.is_init & u.inn)
    steps.insert(0, i0.select("opportunity_id", step=ibis.literal("starting"), c=i0.cents))
    # each deal's last state in the window (at the cut-off): its stage and close date, and the ending step
    w = ibis.window(group_by=u.opportunity_id, order_by=[ibis.desc(u.changed_at), ibis.desc(u.seq)])
    last = u.mutate(_rn=ibis.row_number().over(w))
    last = last.filter(last._rn == 0).select("opportunity_id", "stage", "close_date", "inn", "cents")
    end = last.filter(last.inn)
    steps.append(end.select("opportunity_id", step=ibis.literal("ending"), c=end.cents))
    rows = steps[0]
    for s in steps[1:]:
        rows = rows.union(s, distinct=False)
    j = rows.left_join(last, "opportunity_id").select(rows.step, rows.opportunity_id, rows.c, last.stage,
                                                      last.close_date)
    src = source_of(data, "opportunities")
    o = src.table("opportunities")
    oo = o.select(oid=o.opportunity_id, owner=o.owner, team=o.team)
    j = j.left_join(oo, j.opportunity_id == oo.oid).select(j.step, j.opportunity_id, j.c, j.stage, j.close_date,
                                                          oo.owner, oo.team)
    df = run(j)
    out = pd.DataFrame({"step": df["step"].astype(str), "opportunity_id": _text(df["opportunity_id"]),
                        "amount": df["c"].astype("int64").to_numpy() / 100, "stage": df["stage"],
                        "close_date": as_dates(df["close_date"]), "owner": df["owner"], "team": df["team"]})
    out["_k"] = out["step"].map({s: i for i, s in enumerate(WATERFALL_STEPS)})
    out = _sorted(out, ["_k", "amount", "opportunity_id"], [True, False, True])
    out = out[WATERFALL_RECORD_COLUMNS]
    out.attrs.update(period=p.label, cut=cut)
    return _typed(out)


def waterfall_of_records(records: pd.DataFrame) -> pd.DataFrame:
    """The pipeline waterfall of :func:`pipeline_waterfall_records`' rows: the frame (and ``.attrs``)
    :func:`revops_lib.metrics.pipeline.pipeline_waterfall` gives for the same period and cut-off, without a
    second pass over the deals (the forecast report computes both).

    Each step is the sum of its rows in whole cents (the records' amounts are whole cents / 100, so the cents
    come back exactly) and its deal count is its number of rows; ``ending`` follows from the identity.
    """
    cents_of = np.rint(records["amount"].to_numpy(dtype="float64") * 100).astype("int64")
    by_step = pd.Series(cents_of).groupby(records["step"].to_numpy()).agg(["sum", "size"])
    steps = ["starting", *WATERFALL_PARTS.values()]
    cents = {s: int(by_step["sum"].get(s, 0)) for s in steps}
    counts = {s: int(by_step["size"].get(s, 0)) for s in steps}
    return waterfall_frame(cents, counts, records.attrs.get("period"), records.attrs.get("cut"))


def stage_conversion_records(leads, *, period, as_of=None, stages=DEFAULT_STAGES, by: str = "source",
                             funnel_mode: str = "reached", conversion_window_days: float | None = None,
                             also: Sequence[str] = ()) -> pd.DataFrame:
    """The leads behind each cell of the period's cohort funnel (see the module docstring).

    Parameters are those of :func:`revops_lib.metrics.lead_funnel.stage_conversion` (``by``: the column the
    records carry, named as in the table). ``also``: more columns of ``leads`` to carry after ``by``, labelled as
    ``by`` is: the funnel report publishes ``by="source", also=["segment"]``, one file behind its table by source
    and its table by segment (the records of ``by="segment"`` are those rows without the ``source`` column).

    Returns
    -------
    DataFrame
        :data:`CONVERSION_RECORD_COLUMNS` (``source`` named ``by``; ``also`` after it), by stage pair, then lead.

    Examples
    --------
    >>> leads = pd.DataFrame({
    ...     "lead_id": ["L1", "L2", "L3"], "source": ["web", "web", "event"],
    ...     "created_at": pd.to_datetime(["2026-10-01", "2026-10-02", "2026-10-03"]),
    ...     "mql_at": pd.to_datetime(["2026-10-02", None, None]),
    ...     "sql_at": pd.to_datetime([None, None, "2026-10-05"])})
    >>> stage_conversion_records(leads, period="2026-10", stages=["created_at", "mql_at", "sql_at"])[
    ...     ["lead_id", "source", "from_stage", "to_stage", "converted"]]
      lead_id source  from_stage to_stage  converted
    0      L1    web  created_at   mql_at          1
    1      L2    web  created_at   mql_at          0
    2      L3  event  created_at   mql_at          1
    3      L1    web      mql_at   sql_at          0
    4      L3  event      mql_at   sql_at          1
    """
    stages = check_stages(stages)
    mode = _check_mode(funnel_mode)
    win = _check_window(conversion_window_days)
    p, cut_as_of = window(period, as_of, period_required=True)
    cut = min(p.end_naive, cut_as_of)
    also = [a for a in also if a != by]
    r = _stage_times(leads, stages, cut_as_of, mode, by, start=p.start_naive, ids=True, also=also)
    r = r.filter((r.r0 >= us(p.start_naive)) & (r.r0 < us(cut)))
    if isinstance(leads, Source) and leads.privacy == "masked":  # as the masked `leads` table shows the ids
        r = r.mutate(lead_id=pseudonym(r.lead_id, "id-", 10))
    df = run(r)
    ids, groups = _text(df["lead_id"]).to_numpy(), df["g"].astype(str).to_numpy()
    more = {a: df[f"g_{a}"].astype(str).to_numpy() for a in also}
    frames = []
    for i, (a, b) in enumerate(zip(stages[:-1], stages[1:])):
        ra, rb = df[f"r{i}"], df[f"r{i + 1}"]
        entered = ra.notna()
        conv = rb.notna() if win is None else (rb - ra).le(int(round(win * _US_PER_DAY))).fillna(False)
        conv = (conv & entered).to_numpy(dtype=bool)
        e = entered.to_numpy(dtype=bool)
        frames.append(pd.DataFrame({
            "lead_id": ids[e], by: groups[e], **{a: v[e] for a, v in more.items()},
            "from_stage": a, "to_stage": b, "converted": conv[e].astype("int64"),
            "entered_at": _micros_to_time(ra[e]), "converted_at": _micros_to_time(rb[e].where(conv[e]))}))
    cols = [by if c == "source" else c for c in CONVERSION_RECORD_COLUMNS]
    cols[2:2] = also
    if not frames:
        return _typed(_empty(cols, ints=("converted",), times=("entered_at", "converted_at")), by, *also)
    out = pd.concat(frames, ignore_index=True)
    out["_k"] = out["from_stage"].map({s: i for i, s in enumerate(stages)})
    out = _sorted(out, ["_k", "lead_id"], [True, True])
    return _typed(out[cols], by, *also)


def rep_performance_records(data, *, period, as_of=None) -> pd.DataFrame:
    """The deals behind each owner's won, lost, revenue won and pipeline created (see the module docstring).

    Parameters
    ----------
    data : Source, source spec or DealHistory
    period : str or Period
    as_of : date or time, optional

    Returns
    -------
    DataFrame
        :data:`REP_RECORD_COLUMNS`, by team, owner, outcome (won, lost, created), largest amount first.

    Examples
    --------
    >>> import datetime as _dt
    >>> o = pd.DataFrame({"opportunity_id": ["O1", "O2", "O3"], "owner": ["ana", "ana", "bo"],
    ...     "team": ["smb", "smb", "smb"], "created_at": pd.to_datetime(["2026-09-01", "2026-10-03", "2026-09-10"]),
    ...     "close_date": [_dt.date(2026, 10, 5), _dt.date(2026, 10, 20), _dt.date(2026, 10, 2)],
    ...     "is_closed": [True, True, True], "is_won": [True, False, True], "amount": [100.0, 300.0, 50.0]})
    >>> r = rep_performance_records(o, period="2026-10")
    >>> r[["opportunity_id", "owner", "outcome", "won", "lost", "created", "pipeline_created"]]
      opportunity_id owner outcome  won  lost  created  pipeline_created
    0             O1   ana     won    1     0        0               0.0
    1             O2   ana    lost    0     1        1             300.0
    2             O3    bo     won    1     0        0               0.0
    """
    p, cut_as_of = window(period, as_of, period_required=True)
    cut = min(p.end_naive, cut_as_of)
    src = source_of(data, "opportunities")
    o = src.table("opportunities")
    # as rep_performance counts them: closed_deal_stats_by's window and the created-in-period filter
    hi = min(p.end_date, cut_as_of.date())
    closed = (o.is_closed & (o.close_date >= date_lit(p.start_date)) & (o.close_date < date_lit(hi))).fill_null(False)
    created = ((o.created_at < ts_lit(cut)) & (o.created_at >= ts_lit(p.start_naive))).fill_null(False)
    won = closed & o.is_won.fill_null(False)
    t = o.filter(closed | created).select(
        "opportunity_id", owner=o.owner.fill_null(UNASSIGNED), team=o.team.fill_null(UNASSIGNED),
        stage=o.stage if "stage" in o.columns else ibis.null(dt.string), created_at=o.created_at,
        close_date=o.close_date, amount=o.amount, _closed=closed, _won=won, _created=created)
    df = run(t)
    amount = df["amount"].astype("float64")
    w = df["_won"].astype(bool).to_numpy()
    cl = df["_closed"].astype(bool).to_numpy()
    cr = df["_created"].astype(bool).to_numpy()
    out = pd.DataFrame({
        "opportunity_id": _text(df["opportunity_id"]), "owner": df["owner"].astype(str),
        "team": df["team"].astype(str),
        "outcome": np.select([w, cl], ["won", "lost"], default="created"),
        "stage": df["stage"], "created_at": _naive_utc(df["created_at"]),
        "close_date": as_dates(df["close_date"]), "amount": amount,
        "won": w.astype("int64"), "lost": (cl & ~w).astype("int64"),
        "revenue_won": np.where(w, amount.fillna(0.0), 0.0), "created": cr.astype("int64"),
        "pipeline_created": np.where(cr, amount.fillna(0.0), 0.0)})
    out["_k"] = out["outcome"].map({"won": 0, "lost": 1, "created": 2})
    out = _sorted(out, ["team", "owner", "_k", "amount", "opportunity_id"], [True, True, True, False, True])
    return _typed(out[REP_RECORD_COLUMNS])


def channel_economics_records(data, *, period, as_of=None, deals: AttributedDeals | None = None) -> pd.DataFrame:
    """The deals behind each source's opportunities, pipeline, revenue won and new customers in
    :func:`~revops_lib.metrics.channels.channel_economics` (see the module docstring).

    Parameters
    ----------
    data : Source or source spec
        ``opportunities`` (required); ``leads`` (the attribution) and ``subscriptions`` (starting MRR) optional.
    period : str or Period
    as_of : date or time, optional
    deals : AttributedDeals, optional
        :func:`~revops_lib.metrics.channels.prepare_deals` of this period and cut-off (shared with
        ``channel_economics``); default: computed here.

    Returns
    -------
    DataFrame
        :data:`CHANNEL_RECORD_COLUMNS`, by source (``unattributed`` last), new customers first, then won deals,
        largest amount first.

    Examples
    --------
    >>> import datetime as _dt
    >>> o = pd.DataFrame({"opportunity_id": ["O1", "O2"], "account_id": ["A1", "A2"], "source": ["web", None],
    ...     "created_at": pd.to_datetime(["2026-10-01", "2026-09-03"]), "type": ["new_business"] * 2,
    ...     "close_date": [_dt.date(2026, 11, 5), _dt.date(2026, 10, 20)],
    ...     "is_closed": [False, True], "is_won": [False, True], "amount": [100.0, 300.0]})
    >>> r = channel_economics_records(o, period="2026-10")
    >>> r[["opportunity_id", "source", "pipeline_created", "revenue_won", "new_customer"]]
      opportunity_id        source  pipeline_created  revenue_won  new_customer
    0             O1           web             100.0          0.0             0
    1             O2  unattributed               0.0        300.0             1
    """
    p, cut_as_of = window(period, as_of, period_required=True)
    df = run(resolve_deals(deals, source_of(data, "opportunities"), p, cut_as_of))
    amount = df["amount"].astype("float64")
    flags = {c: df[c].fillna(False).astype(bool).to_numpy() for c in ("created", "won", "new_business", "new_customer")}
    out = pd.DataFrame({
        "opportunity_id": _text(df["opportunity_id"]), "account_id": _text(df["account_id"]),
        "source": df["source"].astype(str), "basis": df["basis"].astype(str), "type": df["type"],
        "created_at": _naive_utc(df["created_at"]), "close_date": as_dates(df["close_date"]), "amount": amount,
        "created": flags["created"].astype("int64"),
        "pipeline_created": np.where(flags["created"], amount.fillna(0.0), 0.0),
        "won": flags["won"].astype("int64"), "revenue_won": np.where(flags["won"], amount.fillna(0.0), 0.0),
        "new_business_won": np.where(flags["won"] & flags["new_business"], amount.fillna(0.0), 0.0),
        "new_customer": flags["new_customer"].astype("int64"),
        "starting_mrr": pd.to_numeric(df["starting_mrr"], errors="coerce").astype("float64")})
    out["_u"], out["_n"], out["_w"] = out["source"].eq(UNATTRIBUTED), -out["new_customer"], -out["won"]
    out = _sorted(out, ["_u", "source", "_n", "_w", "amount", "opportunity_id"], [True, True, True, True, False, True])
    return _typed(out[CHANNEL_RECORD_COLUMNS])


def win_rate_records(data, *, period, as_of=None, by: str = "segment") -> pd.DataFrame:
    """The deals closed in the period behind each row of the win rate by segment (see the module docstring).

    Parameters
    ----------
    data : Source, source spec, or the ``opportunities`` table (Ibis or pandas)
    period : str or Period
    as_of : date or time, optional
    by : str, default "segment"
        The column of ``opportunities`` the rows are grouped by (as in ``win_rate_by``).

    Returns
    -------
    DataFrame
        :data:`WIN_RATE_RECORD_COLUMNS` (``segment`` named ``by``), by ``by`` (``(none)`` last), won before
        lost, largest amount first.

    Examples
    --------
    >>> import datetime as _dt
    >>> o = pd.DataFrame({"opportunity_id": ["O1", "O2", "O3", "O4"], "segment": ["smb", "smb", "ent", None],
    ...     "created_at": pd.to_datetime(["2026-09-01"] * 4),
    ...     "close_date": [_dt.date(2026, 10, 5), _dt.date(2026, 10, 20), _dt.date(2026, 10, 2),
    ...                    _dt.date(2026, 11, 3)],
    ...     "is_closed": [True] * 4, "is_won": [True, False, True, False], "amount": [100.0, 300.0, 50.0, 9.0]})
    >>> win_rate_records(o, period="2026-10")[["opportunity_id", "segment", "outcome", "won", "lost"]]
      opportunity_id segment outcome  won  lost
    0             O3     ent     won    1     0
    1             O1     smb     won    1     0
    2             O2     smb    lost    0     1
    """
    p, cut_as_of = window(period, as_of, period_required=True)
    o = typed(data, "opportunities", needed_by="the list of win rate records")
    if not isinstance(by, str) or by not in o.columns:
        raise ParameterError(f"`by` names column `{by}`, which is not in the opportunities table.")
    # as win_rate_by counts them (closed_deal_stats_by's window: the close date before as_of's date)
    hi = min(p.end_date, cut_as_of.date())
    closed = o.is_closed & (o.close_date >= date_lit(p.start_date)) & (o.close_date < date_lit(hi))
    t = o.filter(closed.fill_null(False))
    df = run(t.select(
        "opportunity_id", "close_date", "amount", g=t[by].cast(dt.string), _won=t.is_won.fill_null(False),
        owner=t.owner.fill_null(UNASSIGNED) if "owner" in t.columns else ibis.literal(UNASSIGNED),
        team=t.team.fill_null(UNASSIGNED) if "team" in t.columns else ibis.literal(UNASSIGNED)))
    w = df["_won"].astype(bool).to_numpy()
    group = df["g"].astype(object)
    out = pd.DataFrame({
        "opportunity_id": _text(df["opportunity_id"]),
        "outcome": np.where(w, "won", "lost"), "won": w.astype("int64"), "lost": (~w).astype("int64"),
        "close_date": as_dates(df["close_date"]), "amount": df["amount"].astype("float64"),
        "owner": df["owner"].astype(str), "team": df["team"].astype(str)})
    out[by] = group.where(group.notna(), NONE).astype(str).to_numpy()  # by owner or team: as the table names them
    out["_none"] = out[by] == NONE
    out = _sorted(out, ["_none", by, "lost", "amount", "opportunity_id"], [True, True, True, False, True])
    return _typed(out[list(dict.fromkeys(by if c == "segment" else c for c in WIN_RATE_RECORD_COLUMNS))], by)


def retention_records(data, *, period=None, as_of=None, by: str = "segment", lag: int = 12) -> pd.DataFrame:
    """The base customers behind each row of the retention by segment (see the module docstring).

    Parameters
    ----------
    data : Source, table or CustomerMRR
        As :func:`revops_lib.metrics.segments.retention_by` takes it (a CustomerMRR must be made with ``by``).
    period, as_of
        The window (ignored for a CustomerMRR, which carries its own).
    by : str, default "segment"
    lag : int, default 12
        Months between the base and the measured month.

    Returns
    -------
    DataFrame
        :data:`RETENTION_RECORD_COLUMNS` (``segment`` named ``by``), by ``by`` (``(none)`` last), retained first,
        largest base MRR first, then customer.

    Examples
    --------
    >>> cm = pd.DataFrame({"customer_id": ["A", "A", "B", "C"], "mrr": [100.0, 130.0, 50.0, 20.0],
    ...     "segment": ["smb", "smb", "ent", "smb"],
    ...     "month": pd.to_datetime(["2025-01-01", "2026-01-01", "2025-01-01", "2025-01-01"])})
    >>> retention_records(cm, period="2026-01")[["customer_id", "segment", "base_mrr", "mrr", "capped_mrr",
    ...                                          "retained"]]
      customer_id segment  base_mrr    mrr  capped_mrr  retained
    0           B     ent      50.0    0.0         0.0         0
    1           A     smb     100.0  130.0       100.0         1
    2           C     smb      20.0    0.0         0.0         0
    """
    lag = check_int(lag, "lag")
    cm = prepared_mrr(data, period, as_of, check_by(by))  # a CustomerMRR made with this ``by``: it has ``group``
    last = cm.last_month
    base_m = last - lag
    ch = cm.changes

    def at(m: int):  # each customer's MRR (cents) at the end of month m
        r = ch.filter((ch.m <= m) & (ch.nxt > m))
        return r.select("customer_id", "group", c=r.lvl)

    base, now = at(base_m), at(last).view()
    base = base.filter(base.c > 0)
    j = base.left_join(now, base.customer_id == now.customer_id)
    c2 = ibis.ifelse(j.c_right > 0, j.c_right, ibis.literal(0, INT)).fill_null(0)
    df = run(j.select(customer_id=base.customer_id, group=base.group, c1=base.c, c2=c2))
    c1, c2 = df["c1"].astype("int64").to_numpy(), df["c2"].astype("int64").to_numpy()
    group = df["group"].astype(object)
    group = group.where(group.notna() & (group != UNKNOWN), NONE).astype(str).to_numpy()
    out = pd.DataFrame({
        "customer_id": _text(df["customer_id"]), by: group,
        "base_month": month_label(base_m), "month": month_label(last),
        "base_mrr": c1 / 100.0, "mrr": c2 / 100.0, "capped_mrr": np.minimum(c1, c2) / 100.0,
        "retained": (c2 > 0).astype("int64")})
    out["_none"] = out[by] == NONE
    out = _sorted(out, ["_none", by, "retained", "base_mrr", "customer_id"], [True, True, False, False, True])
    return _typed(out[[by if c == "segment" else c for c in RETENTION_RECORD_COLUMNS]], by)


def _text(values: pd.Series) -> pd.Series:
    """Ids as text, a missing one blank (never the text "None")."""
    present = values.notna().to_numpy(dtype=bool)
    out = pd.Series([None] * len(values), index=values.index, dtype=object)
    if present.any():
        out[present] = values[present].astype(str).astype(object).to_numpy()
    return out


def _sorted(df: pd.DataFrame, keys: list[str], ascending: list[bool]) -> pd.DataFrame:
    """``df`` in the order of ``keys``, ties (duplicate ids in messy data) broken by every other column, so every
    engine publishes the same bytes whatever order it returned the rows in."""
    rest = [c for c in df.columns if c not in keys]
    if not len(df) or not df.duplicated(keys).any():  # no tie to break (the usual case): the keys alone
        return df.sort_values(keys, ascending=ascending, kind="stable").reset_index(drop=True)
    tie = df[rest].astype(str) if rest else df[[]]
    tmp = pd.concat([df[keys], tie.add_prefix("_t_")], axis=1)
    order = tmp.sort_values(keys + list(tie.add_prefix("_t_").columns), ascending=ascending + [True] * len(rest),
                            kind="stable").index
    return df.loc[order].reset_index(drop=True)


def _naive_utc(values: pd.Series) -> pd.Series:
    """Times as naive UTC microseconds, whether the engine hands them tz-aware or not."""
    t = pd.to_datetime(values)
    if isinstance(t.dtype, pd.DatetimeTZDtype):
        t = t.dt.tz_convert("UTC").dt.tz_localize(None)
    return t.astype("datetime64[us]")


def _micros_to_time(values: pd.Series) -> pd.Series:
    """Microseconds since the epoch (floats with NaN) -> naive UTC times."""
    v = pd.to_numeric(values, errors="coerce")
    return pd.Series(pd.to_datetime(v, unit="us"), index=values.index).astype("datetime64[us]").to_numpy()


def _empty(cols, money=(), ints=(), times=()) -> pd.DataFrame:
    """No rows, with the dtypes of a full result: money float64, counts int64, times datetime64[us], text str."""
    kind = {**{c: "float64" for c in money}, **{c: "int64" for c in ints}, **{c: "datetime64[us]" for c in times}}
    return pd.DataFrame({c: pd.Series(dtype=kind.get(c, "str")) for c in cols})


#: The text columns of the records (ids, labels, groups): pandas' ``str`` dtype whether or not there are rows.
_TEXT_COLUMNS = ("month", "base_month", "customer_id", "account_id", "opportunity_id", "lead_id", "movement", "step",
                 "stage", "from_stage", "to_stage", "outcome", "owner", "team", "segment", "source", "basis", "type")


def _typed(out: pd.DataFrame, *groups) -> pd.DataFrame:
    """``out`` with its text columns (and the grouping columns ``groups``) as ``str``: see ``with_dtypes``."""
    return with_dtypes(out, {c: "str" for c in (*_TEXT_COLUMNS, *(g for g in groups if g))})
