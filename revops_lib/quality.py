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

from revops_lib.periods import Period, parse_period, resolve_as_of
from revops_lib.schema import TABLES
from revops_lib.sources import open_source
from revops_lib.text import md

__all__ = [
    "table_overview",
    "monthly_volume",
    "stale_open_deals",
    "close_date_pushes",
    "missing_amounts",
    "anomaly_summary",
    "assess",
    "DataQuality",
]


FOOTNOTES = [
    ("Rows in period", "rows whose time column (created_at, occurred_at, date, …) falls in [period start, period end); targets: rows for the period label."),
    ("Days since last", "days between the table's latest row and as of; a table is stale when that exceeds `stale_after_days`."),
    ("Stale open deal", "created before as of, not closed by then, with a close date already passed or no change in opportunity_history for `stale_days` days."),
    ("Close date pushed", "a change in opportunity_history that moves the deal's close date later; deals with at least `min_pushes` such changes are listed."),
    ("Missing amount", "open or won deals whose amount is null or zero."),
    ("Contract checks", "revops validate: required columns, types, duplicate ids, nulls, negative amounts, stage order, end before start, rating ranges, dates in the future, period labels."),
]


def _cut(period, as_of) -> pd.Timestamp:
    """The exclusive cut-off: ``as_of``, or the end of ``period`` when ``as_of`` is not given."""
    return resolve_as_of(parse_period(period), as_of) if period is not None else pd.Timestamp(as_of)


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
    cut = _cut(period, as_of)
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
    cut = _cut(period, as_of)
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
    stats = src.con.execute(o.aggregate(count=o.count(), amount=o.amount.sum())).iloc[0]
    cols = ["opportunity_id", "owner", "stage", "amount", "created_at", "close_date", "days_since_change", "reason"]
    df = src.con.execute(o.select(*cols).order_by([ibis.desc("amount"), "opportunity_id"]).limit(limit))
    df["created_at"] = pd.to_datetime(df["created_at"]).dt.date
    df["close_date"] = pd.to_datetime(df["close_date"]).dt.date
    df.attrs.update(count=int(stats["count"]), amount=float(stats["amount"] or 0.0))
    return df


def close_date_pushes(source, *, as_of=None, period=None, min_pushes: int = 2, limit: int = 50) -> pd.DataFrame:
    """Deals whose close date was moved later at least ``min_pushes`` times (history before ``as_of``).

    Returns ``opportunity_id, pushes, first_close_date, latest_close_date,
    days_pushed`` (most pushed first, at most ``limit`` rows); ``.attrs['count']``
    is the number of such deals.
    """
    src = open_source(source)
    cut = _cut(period, as_of)
    if not src.has("opportunity_history"):
        df = pd.DataFrame(columns=["opportunity_id", "pushes", "first_close_date", "latest_close_date", "days_pushed"])
        df.attrs.update(count=0, absent=True)
        return df
    h = src.table("opportunity_history")
    h = h.filter((h.changed_at < _lit(cut, "timestamp")) & h.close_date.notnull())
    w = ibis.window(group_by=h.opportunity_id, order_by=[h.changed_at])
    h = h.mutate(prev=h.close_date.lag().over(w))
    g = h.group_by("opportunity_id").aggregate(
        pushes=ibis.ifelse(h.close_date > h.prev, 1, 0).sum(),
        first_close_date=h.close_date.argmin(h.changed_at),
        latest_close_date=h.close_date.argmax(h.changed_at),
    )
    g = g.filter(g.pushes >= min_pushes)
    g = g.mutate(days_pushed=(g.latest_close_date.delta(g.first_close_date, unit="day")))
    count = int(src.con.execute(g.count()))
    df = src.con.execute(g.order_by([ibis.desc("pushes"), ibis.desc("days_pushed"), "opportunity_id"]).limit(limit))
    for c in ("first_close_date", "latest_close_date"):
        df[c] = pd.to_datetime(df[c]).dt.date
    df.attrs.update(count=count)
    return df


def missing_amounts(source, *, as_of=None, period=None, limit: int = 50) -> pd.DataFrame:
    """Open or won deals (created before ``as_of``) without a usable amount (null or zero).

    Returns ``opportunity_id, owner, stage, is_closed, is_won, amount``;
    ``.attrs['count']`` is the number of such deals.
    """
    src = open_source(source)
    cut = _cut(period, as_of)
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


class DataQuality:
    """Everything the ``data_quality`` report shows, computed once (see :func:`assess`)."""

    def __init__(self, *, period: Period, as_of: pd.Timestamp, source_label: str, validation, overview,
                 monthly, stale, pushes, missing, currency: str = "USD", stale_days: int = 90, min_pushes: int = 2):
        self.period, self.as_of, self.source_label = period, as_of, source_label
        self.validation, self.overview, self.monthly = validation, overview, monthly
        self.stale, self.pushes, self.missing = stale, pushes, missing
        self.currency, self.stale_days, self.min_pushes = currency, stale_days, min_pushes
        self.summary = anomaly_summary(stale, pushes, missing, validation=validation)

    def findings(self):
        """The verdict in a few bullets (Markdown)."""

        from revops_lib.plots import fmt_money

        v, ov = self.validation, self.overview
        bullets = []
        if v.ok:
            bullets.append(f"**Contract: passed** ({v.summary()}); every report can run on this source.")
        else:
            bullets.append(f"**Contract: failed** ({v.summary()}); fix the errors below before trusting any number.")
        absent = ov.loc[ov.status == "absent", "table"].tolist()
        if absent:
            bullets.append(f"Absent tables ({', '.join(absent)}): the report sections that need them are skipped.")
        quiet = ov.loc[ov.status.isin(["no rows in period", "empty"]), "table"].tolist()
        if quiet:
            bullets.append(f"No rows in {self.period}: {', '.join(quiet)} — figures from them will be blank or zero.")
        stale = ov.loc[ov.status == "stale", ["table", "days_since_last"]]
        if len(stale):
            bullets.append("Stale tables (latest row long before as of): "
                           + ", ".join(f"{t} ({d:.0f} days)" for t, d in stale.itertuples(index=False)) + ".")
        if not (absent or quiet or len(stale)):
            bullets.append(f"All tables have rows in {self.period} and are fresh as of {self.as_of:%Y-%m-%d}.")
        n_stale, amt = self.stale.attrs.get("count", 0), self.stale.attrs.get("amount", 0.0)
        if n_stale:
            bullets.append(f"{n_stale:,} open deals look stale ({fmt_money(amt, self.currency)} of pipeline): "
                           "coverage and pipeline are overstated until they are updated or closed.")
        n_push = self.pushes.attrs.get("count", 0)
        if n_push:
            bullets.append(f"{n_push:,} deals had their close date pushed {self.min_pushes}+ times: expect slippage.")
        n_miss = self.missing.attrs.get("count", 0)
        if n_miss:
            bullets.append(f"{n_miss:,} open or won deals have no amount: revenue and pipeline are understated.")
        return md("\n".join(f"- {b}" for b in bullets))

    def record_headlines(self) -> None:
        """Headline numbers for ``reports/index.html``."""
        from revops_lib.report import headline

        headline("Contract", "passed" if self.validation.ok else "failed")
        headline("Warnings", len(self.validation.warnings))
        headline("Stale deals", self.stale.attrs.get("count", 0))

    def overview_table(self):
        """The per-table overview, formatted (published as ``table_overview.csv``)."""
        from revops_lib.report import publish

        publish(self.overview, "table_overview")
        ov = self.overview.copy()
        for c in ("first", "last"):
            ov[c] = pd.to_datetime(ov[c]).dt.strftime("%Y-%m-%d")
        from revops_lib.plots import style_table

        return style_table(ov, {"rows": "{:,}", "rows_in_period": "{:,}", "days_since_last": "{:.1f}"}).map(lambda s: "color: #C0392B; font-weight: bold" if s in ("stale", "empty", "absent", "no rows in period")
              else "", subset=["status"])

    def _money(self, df, cols=("amount",)):
        from revops_lib.plots import fmt_money, style_table

        if df.empty:
            return md("None found.")
        return style_table(df, {c: (lambda x: fmt_money(x, self.currency)) for c in cols})

    def summary_table(self):
        """The anomaly counts (published as ``anomalies.csv``)."""
        from revops_lib.report import publish

        return publish(self.summary, "anomalies", formats={"count": "{:,}"})

    def stale_table(self):
        """Stale open deals (published as ``stale_open_deals.csv``)."""
        from revops_lib.report import publish

        publish(self.stale, "stale_open_deals")
        return self._money(self.stale)

    def pushes_table(self):
        """Deals pushed repeatedly (published as ``close_date_pushes.csv``)."""
        from revops_lib.report import publish

        styled = publish(self.pushes, "close_date_pushes")
        return styled if len(self.pushes) else "None found."

    def missing_table(self):
        """Deals without amount (published as ``missing_amounts.csv``)."""
        from revops_lib.report import publish

        publish(self.missing, "missing_amounts")
        return self._money(self.missing)


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


def _cached_validation(src, now, validate):
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


def assess(source, *, period, as_of=None, currency: str = "USD", stale_after_days: int = 14,
           stale_days: int = 90, min_pushes: int = 2, now=None) -> DataQuality:
    """Compute every part of the data-quality report for one period."""
    from revops_lib.schema import validate

    src = open_source(source)
    p = parse_period(period)
    cut = resolve_as_of(p, as_of)
    validation = _cached_validation(src, now, validate)
    if src.privacy == "masked":
        validation = masked_validation(validation)
    overview = table_overview(src, period=p, as_of=cut, stale_after_days=stale_after_days)
    monthly = monthly_volume(src, as_of=cut)
    has_opps = src.has("opportunities")
    empty = pd.DataFrame()
    stale = stale_open_deals(src, as_of=cut, stale_days=stale_days) if has_opps else empty
    pushes = close_date_pushes(src, as_of=cut, min_pushes=min_pushes)
    missing = missing_amounts(src, as_of=cut) if has_opps else empty
    return DataQuality(period=p, as_of=cut, source_label=src.description, validation=validation,
                       overview=overview, monthly=monthly, stale=stale, pushes=pushes, missing=missing,
                       currency=currency, stale_days=stale_days, min_pushes=min_pushes)
