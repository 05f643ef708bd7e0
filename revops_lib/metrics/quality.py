"""What the data can be trusted for: coverage, freshness and anomalies (the ``data_quality`` report).

Every function takes a :class:`~revops_lib.sources.Source` (or anything
:func:`~revops_lib.sources.open_source` accepts), runs its heavy work in the
source's engine and returns a small pandas DataFrame.

``as_of`` is an exclusive cut-off instant (naive UTC): a row counts when its
time is before ``as_of``; a date counts when it is before ``as_of``'s date.
"""

from __future__ import annotations

import ibis
import ibis.expr.datatypes as dt
import pandas as pd

from revops_lib.metrics.pipeline import push_counts
from revops_lib.periods import parse_period, resolve_as_of, window
from revops_lib.schema import TABLES
from revops_lib.sources import open_source


def _lit(ts: pd.Timestamp, kind: str):
    return ibis.timestamp(ts.to_pydatetime()) if kind == "timestamp" else ibis.date(ts.date())


def latest_event(source, *, tables=("leads", "opportunities", "activities", "web_traffic", "transactions")):
    """The latest event time in the main event tables (naive UTC), or None when they are absent or empty."""
    src = open_source(source)
    latest = None
    for name in tables:
        if not src.has(name):
            continue
        col = TABLES[name].time_column
        t = src.table(name)
        v = src.con.execute(t.aggregate(m=t[col].cast(dt.Timestamp()).max()))["m"].iloc[0]
        if v is not None and not pd.isna(v):
            latest = pd.Timestamp(v) if latest is None else max(latest, pd.Timestamp(v))
    return latest


def table_overview(source, *, period, as_of=None, stale_after_days: int = 14) -> pd.DataFrame:
    """Row counts, date coverage and freshness of every contract table.

    Parameters
    ----------
    source : Source or source spec
    period : str or Period
        The report period; ``rows_in_period`` counts the rows dated in it
        (targets: the rows for that period label).
    as_of : str or Timestamp, optional
        Cut-off (default: the period end).
    stale_after_days : int
        A table whose latest row is older than this many days before ``as_of`` is ``stale``.

    Returns
    -------
    DataFrame
        ``table, rows, rows_in_period, first, last, days_since_last, status``;
        status is one of ``ok``, ``stale``, ``empty``, ``no rows in period``, ``absent``.

    Examples
    --------
    >>> table_overview("data/demo", period="2026-10")[["table", "rows", "status"]].head(2)  # doctest: +SKIP
               table   rows status
    0          leads  50213     ok
    1  opportunities   5120     ok
    """
    src = open_source(source)
    p = parse_period(period)
    cut = resolve_as_of(p, as_of)
    rows = []
    for name, spec in TABLES.items():
        if not src.has(name):
            rows.append(dict(table=name, rows=None, rows_in_period=None, first=None, last=None,
                             days_since_last=None, status="absent"))
            continue
        t = src.table(name)
        tc = spec.time_column
        if tc:
            kind = spec.column(tc).kind
            col = t[tc]
            in_period = (col >= _lit(p.start_naive, kind)) & (col < _lit(p.end_naive, kind))
            r = src.con.execute(t.aggregate(
                n=t.count(), first=col.min().cast(dt.Timestamp()), last=col.max().cast(dt.Timestamp()),
                in_period=ibis.ifelse(in_period, 1, 0).sum(),
            )).iloc[0]
        else:  # targets: rows for the period label
            r = src.con.execute(t.aggregate(
                n=t.count(), in_period=ibis.ifelse(t.period == p.label, 1, 0).sum())).iloc[0]
            r = dict(r, first=None, last=None)
        n = int(r["n"])
        last = pd.Timestamp(r["last"]) if r["last"] is not None and not pd.isna(r["last"]) else None
        first = pd.Timestamp(r["first"]) if r["first"] is not None and not pd.isna(r["first"]) else None
        since = (cut - min(last, cut)).total_seconds() / 86400 if last is not None else None
        in_p = int(r["in_period"] or 0)
        if n == 0:
            status = "empty"
        elif in_p == 0:
            status = "no rows in period"
        elif since is not None and since > stale_after_days:
            status = "stale"
        else:
            status = "ok"
        rows.append(dict(table=name, rows=n, rows_in_period=in_p, first=first, last=last,
                         days_since_last=None if since is None else round(since, 1), status=status))
    out = pd.DataFrame(rows)
    out["rows"] = out["rows"].astype("Int64")
    out["rows_in_period"] = out["rows_in_period"].astype("Int64")
    return out


def monthly_volume(source, *, as_of=None, period=None, months: int = 24,
                   tables=("leads", "opportunities", "activities", "support_tickets", "transactions")) -> pd.DataFrame:
    """Rows per calendar month for event tables, the last ``months`` months before ``as_of``.

    Returns ``month`` (``YYYY-MM``), ``table``, ``rows``.
    """
    src = open_source(source)
    cut = window(period, as_of)[1]
    start = (cut.to_period("M") - months + (0 if cut == cut.to_period("M").start_time else 1)).start_time
    frames = []
    for name in tables:
        if not src.has(name):
            continue
        spec = TABLES[name]
        t = src.table(name)
        col = t[spec.time_column]
        kind = spec.column(spec.time_column).kind
        t = t.filter((col >= _lit(start, kind)) & (col < _lit(cut, kind)))
        month = t[spec.time_column].truncate("M").cast(dt.date)
        g = src.con.execute(t.group_by(month=month).aggregate(rows=t.count()))
        g["table"] = name
        frames.append(g)
    if not frames:
        return pd.DataFrame(columns=["month", "table", "rows"])
    out = pd.concat(frames, ignore_index=True)
    out["month"] = pd.to_datetime(out["month"]).dt.strftime("%Y-%m")
    return out.sort_values(["table", "month"], ignore_index=True)[["month", "table", "rows"]]


def _history_last_change(src, cut):
    h = src.table("opportunity_history")
    h = h.filter(h.changed_at < _lit(cut, "timestamp"))
    return h.group_by("opportunity_id").aggregate(last_change=h.changed_at.max())


def stale_open_deals(source, *, as_of=None, period=None, stale_days: int = 90, limit: int = 50) -> pd.DataFrame:
    """Open deals that look abandoned: close date already passed, or no change for ``stale_days``.

    A deal is open when it was created before ``as_of`` and is not closed
    (``is_closed`` false, or closed with a close date on or after ``as_of``).
    Returns ``opportunity_id, owner, stage, amount, created_at, close_date,
    days_since_change, reason`` (largest amounts first, at most ``limit`` rows)
    and, in ``.attrs``, ``count`` and ``amount`` over all such deals.
    """
    src = open_source(source)
    cut = window(period, as_of)[1]
    o = src.table("opportunities")
    o = o.filter((o.created_at < _lit(cut, "timestamp"))
                 & (~o.is_closed | (o.close_date >= _lit(cut, "date"))))
    if src.has("opportunity_history"):
        lc = _history_last_change(src, cut)
        o = o.left_join(lc, "opportunity_id").select(o, lc.last_change)
        last = ibis.coalesce(o.last_change, o.created_at)
    else:
        last = o.created_at
    since = (ibis.timestamp(cut.to_pydatetime()).epoch_seconds() - last.epoch_seconds()) / 86400
    o = o.mutate(days_since_change=since.round(0).cast(dt.int64))
    overdue = o.close_date < _lit(cut, "date")
    idle = o.days_since_change > stale_days
    o = o.filter(overdue | idle).mutate(
        reason=ibis.cases((overdue & idle, "close date passed, no change"),
                          (overdue, "close date passed"), else_=f"no change for {stale_days}+ days"))
    cols = ["opportunity_id", "owner", "stage", "amount", "created_at", "close_date", "days_since_change", "reason"]
    # one query: the count and amount of every such deal (windows over all of them, before the limit), the top rows
    every = ibis.window()
    o = o.select(*cols, _count=o.reason.count().over(every), _amount=o.amount.sum().over(every))  # reason: never null
    df = src.con.execute(o.order_by([ibis.desc("amount"), "opportunity_id"]).limit(limit))
    count, amount = (int(df["_count"].iloc[0]), df["_amount"].iloc[0]) if len(df) else (0, None)
    df = df.drop(columns=["_count", "_amount"])
    df["created_at"] = pd.to_datetime(df["created_at"]).dt.date
    df["close_date"] = pd.to_datetime(df["close_date"]).dt.date
    df.attrs.update(count=count, amount=0.0 if amount is None or pd.isna(amount) else float(amount))
    return df


def close_date_pushes(source, *, as_of=None, period=None, min_pushes: int = 2, limit: int = 50) -> pd.DataFrame:
    """Deals whose close date was moved later at least ``min_pushes`` times (history before the cut-off).

    With a ``period``, only deals pushed *in the period* (at least once, in ``[period start, cut-off)``) are
    listed, ``pushes`` counts the period's pushes and ``total_pushes`` all of them; ``min_pushes`` applies to
    the total. Without one, every push before ``as_of`` counts (all time).

    Returns ``opportunity_id, owner, stage, status (open, won, lost), amount, pushes, total_pushes,
    first_close_date, latest_close_date, days_pushed`` (most pushed first, at most ``limit`` rows);
    ``.attrs['count']`` is the number of such deals and ``.attrs['scope']`` says ``period`` or ``all time``.
    """
    src = open_source(source)
    p, cut = window(period, as_of)
    cols = ["opportunity_id", "owner", "stage", "status", "amount", "pushes", "total_pushes", "first_close_date",
            "latest_close_date", "days_pushed"]
    if not src.has("opportunity_history"):
        df = pd.DataFrame(columns=cols)
        df.attrs.update(count=0, absent=True, scope="period" if p is not None else "all time")
        return df
    since = p.start_naive if p is not None else None
    g = push_counts(src.table("opportunity_history"), cut=cut, since=since)
    g = g.filter((g.total_pushes >= min_pushes) & (g.pushes >= (1 if since is not None else min_pushes)))
    g = g.mutate(days_pushed=(g.latest_close_date.delta(g.first_close_date, unit="day")))
    if src.has("opportunities"):
        o = src.table("opportunities")
        status = ibis.cases((o.is_won, "won"), (o.is_closed, "lost"), else_="open")
        g = g.left_join(o.select("opportunity_id", "owner", "stage", "amount", status=status), "opportunity_id")
    else:
        g = g.mutate(owner=ibis.null(dt.string), stage=ibis.null(dt.string), status=ibis.null(dt.string),
                     amount=ibis.null(dt.float64))
    # one query: the count of such deals (a window over all of them, taken before the limit) and the top rows
    g = g.select(*cols, _count=g.total_pushes.count().over(ibis.window()))  # total_pushes is never null
    df = src.con.execute(g.order_by([ibis.desc("pushes"), ibis.desc("total_pushes"), ibis.desc("days_pushed"),
                                     "opportunity_id"]).limit(limit))
    count = int(df["_count"].iloc[0]) if len(df) else 0
    df = df.drop(columns="_count")
    for c in ("first_close_date", "latest_close_date"):
        df[c] = pd.to_datetime(df[c]).dt.date
    df.attrs.update(count=count, scope="period" if p is not None else "all time")
    return df


def missing_amounts(source, *, as_of=None, period=None, limit: int = 50) -> pd.DataFrame:
    """Open or won deals (created before ``as_of``) without a usable amount (null or zero).

    Returns ``opportunity_id, owner, stage, is_closed, is_won, amount``;
    ``.attrs['count']`` is the number of such deals.
    """
    src = open_source(source)
    cut = window(period, as_of)[1]
    o = src.table("opportunities")
    o = o.filter((o.created_at < _lit(cut, "timestamp")) & (~o.is_closed | o.is_won)
                 & (o.amount.isnull() | (o.amount == 0)))
    count = int(src.con.execute(o.count()))
    df = src.con.execute(o.select("opportunity_id", "owner", "stage", "is_closed", "is_won", "amount")
                         .order_by("opportunity_id").limit(limit))
    df.attrs.update(count=count)
    return df


def anomaly_summary(stale: pd.DataFrame, pushes: pd.DataFrame, missing: pd.DataFrame,
                    *, validation=None) -> pd.DataFrame:
    """One row per check with its count and what to do: the "worth a look" list."""
    rows = []
    if validation is not None:
        rows.append(("contract errors", len(validation.errors), "fix at the source before trusting any report"))
        rows.append(("contract warnings", len(validation.warnings), "read the list below; numbers stay usable"))
    rows += [
        ("stale open deals", stale.attrs.get("count", len(stale)),
         "ask owners to update or close them: they inflate pipeline and coverage"),
        ("close date pushed repeatedly", pushes.attrs.get("count", len(pushes)),
         "review in pipeline calls: repeated pushes predict slippage"),
        ("open or won deals without amount", missing.attrs.get("count", len(missing)),
         "fill amounts: they understate pipeline, revenue and deal size"),
    ]
    return pd.DataFrame(rows, columns=["check", "count", "next step"])


_VALIDATIONS: dict = {}


def validation_key(src) -> tuple:
    """What a cached validation of a file source is valid for: the source, its files' fingerprint and
    the hour (the checks against the clock move with it)."""
    import datetime as _dt

    return (src.description, src.fingerprint(), _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H"))


def load_validation(path) -> None:
    """Seed the cache with a validation the report runner already made (a pickle of ``(key, result)``).

    Best effort: anything unreadable is ignored and the report validates again.
    """
    import pickle

    try:
        with open(path, "rb") as f:
            key, result = pickle.load(f)
    except Exception:
        return
    _VALIDATIONS.clear()
    _VALIDATIONS[key] = result


def cached_validation(src, now, validate):
    """Validation results of file sources, reused while the files are unchanged (a warm kernel runs many reports)."""
    if not src.files or now is not None:
        return validate(src, now=now)
    key = validation_key(src)
    if key not in _VALIDATIONS:
        _VALIDATIONS.clear()
        _VALIDATIONS[key] = validate(src)
    return _VALIDATIONS[key]


def masked_validation(result):
    """A validation result whose example ids are shown as ``privacy: masked`` shows ids (hashed, the same
    pseudonym as in the masked tables); other example keys (dates, channels, periods) stay as they are."""
    import dataclasses

    from revops_lib.sources import pseudonym_text

    def mask(example: str, column: str) -> str:
        if "=" not in example:  # a single-column key: the table's id
            return pseudonym_text(example, "id-", 10) if column.endswith("_id") or column.endswith("id") else example
        parts = []
        for part in example.split(" "):
            k, _, v = part.partition("=")
            parts.append(f"{k}={pseudonym_text(v, 'id-', 10)}" if k.endswith("_id") else part)
        return " ".join(parts)

    from revops_lib.schema import TABLES

    problems = []
    for pr in result.problems:
        key = TABLES[pr.table].key if pr.table in TABLES else ()
        col = key[0] if len(key) == 1 else ""
        problems.append(dataclasses.replace(pr, examples=tuple(mask(e, col) for e in pr.examples)))
    return dataclasses.replace(result, problems=problems)
