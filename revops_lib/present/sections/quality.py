"""The ``data_quality`` report: what it shows, computed once by :func:`assess`.

:func:`build` is the notebook's one setup call (parameters in, a :class:`DataQuality` out).
"""

from __future__ import annotations

import pandas as pd

from revops_lib.metrics.quality import (
    anomaly_summary,
    cached_validation,
    close_date_pushes,
    masked_validation,
    missing_amounts,
    monthly_volume,
    stale_open_deals,
    table_overview,
)
from revops_lib.metrics.targets import target_conflicts
from revops_lib.periods import Period, parse_period, resolve_as_of
from revops_lib.present.charts import quality as charts
from revops_lib.present.context import context
from revops_lib.present.format import fmt_money
from revops_lib.present.labels import label
from revops_lib.present.publish import publish
from revops_lib.present.section import Section
from revops_lib.present.tables import style_table
from revops_lib.present.text import md
from revops_lib.sources import open_source
from revops_lib.validation import validate

FOOTNOTES = [
    ("Rows in period", "rows whose time column (created_at, occurred_at, date, …) falls in [period start, period end); "
     "targets: rows for the period label."),
    ("Days since last", "days between the table's latest row and as of; a table is stale when that exceeds "
     "`stale_after_days`."),
    ("Stale open deal", "created before as of, not closed by then, with a close date already passed or no change in "
     "opportunity_history for `stale_days` days."),
    ("Close date pushed", "a change in opportunity_history that moves the deal's close date later; the deals pushed in "
     "the period, with at least `min_pushes` pushes in all, are listed (owner, stage, status, amount)."),
    ("Missing amount", "open or won deals whose amount is null or zero."),
    ("Contract checks", "revops validate: required columns, types, duplicate ids, nulls, negative amounts, "
     "stage order, end before start, rating ranges, dates in the future, period labels."),
]


class DataQuality(Section):
    """Everything the ``data_quality`` report shows, computed once (see :func:`assess`)."""

    report = "data_quality"
    FOOTNOTES = FOOTNOTES

    def __init__(self, *, period: Period, as_of: pd.Timestamp, source_label: str, validation, overview,
                 monthly, stale, pushes, missing, currency: str = "USD", stale_days: int = 90, min_pushes: int = 2,
                 target_conflicts: pd.DataFrame | None = None, parts: pd.DataFrame | None = None):
        self.period, self.as_of, self.source_label = period, as_of, source_label
        self.validation, self.overview, self.monthly = validation, overview, monthly
        self.stale, self.pushes, self.missing = stale, pushes, missing
        self.currency, self.stale_days, self.min_pushes = currency, stale_days, min_pushes
        self.summary = anomaly_summary(stale, pushes, missing, validation=validation)
        self.parts = parts if parts is not None else report_parts(None)
        self.target_conflicts = target_conflicts if target_conflicts is not None else pd.DataFrame(
            columns=["period", "metric", "target", "parts", "parts_value", "difference", "problem"])

    def findings(self):
        """The verdict in a few bullets (Markdown)."""
        v, ov = self.validation, self.overview
        bullets = []
        if v.ok:
            bullets.append(f"**Contract: passed** ({v.summary()}): every table present meets the contract.")
        else:
            bullets.append(f"**Contract: failed** ({v.summary()}); fix the errors below before trusting any number.")
        absent = ov.loc[ov.status == "absent", "table"].tolist()
        if absent:
            left = self.parts[~self.parts["built"]]
            if len(left):
                bullets.append(f"Absent tables ({', '.join(absent)}): {len(left)} of {len(self.parts)} report parts "
                               "are left out (see *What the present tables allow*).")
            else:
                bullets.append(f"Absent tables ({', '.join(absent)}): no report part needs them.")
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
            bullets.append(f"{n_push:,} deals had their close date pushed in {self.period}, {self.min_pushes}+ times "
                           "in all: expect slippage.")
        n_miss = self.missing.attrs.get("count", 0)
        if n_miss:
            bullets.append(f"{n_miss:,} open or won deals have no amount: revenue and pipeline are understated.")
        n_conf = len(self.target_conflicts)
        if n_conf:
            bullets.append(f"{n_conf:,} period target{'s' if n_conf != 1 else ''} "
                           f"contradict{'' if n_conf != 1 else 's'} "
                           "the targets of their months or weeks: pacing and coverage read whichever row they find "
                           "first.")
        return md("\n".join(f"- {b}" for b in bullets))

    def allowed_table(self):
        """Per report and part: built, or left out with the table that would bring it (published as
        ``report_parts.csv``)."""
        t = self.parts
        shown = pd.DataFrame({"report": t["report_title"], "part": t["part"],
                              "status": ["built" if ok else f"left out: needs {why}"
                                         for ok, why in zip(t["built"], t["needs"])]})
        colors = {True: "color: #1e6b3a", False: "color: #b07d00"}
        out = self.table(t, "report_parts", shown, empty="No report of the kit declares parts.")
        if hasattr(out, "apply"):
            flags = list(t["built"])
            out = out.apply(lambda col: [colors[f] for f in flags] if col.name == "status" else [""] * len(col))
        return out

    def targets_table(self):
        """Quarter targets that disagree with their months' (published as ``target_conflicts.csv``)."""
        t = self.target_conflicts
        shown = pd.DataFrame({
            "period": t["period"], "KPI": t["metric"].map(label),
            "target": [self._kpi_value(v, m) for v, m in zip(t["target"], t["metric"])],
            "months": t["parts"],
            "months' value": [self._kpi_value(v, m) for v, m in zip(t["parts_value"], t["metric"])],
            "problem": t["problem"]})
        return self.table(t, "target_conflicts", shown, limit=25,
                          empty="Every quarter and month target agrees with its months' and weeks' targets.")

    def _kpi_value(self, value, metric: str) -> str:
        from revops_lib.metrics.kpis import KPI_BY_KEY
        from revops_lib.present.format import fmt_value

        unit = KPI_BY_KEY[metric].unit if metric in KPI_BY_KEY else "count"
        return fmt_value(value, unit, self.currency)

    def headlines(self) -> list[tuple[str, str]]:
        """Headline numbers for ``reports/index.html``."""
        return [("Contract", "passed" if self.validation.ok else "failed"),
                ("Warnings", f"{len(self.validation.warnings):,}"),
                ("Stale deals", f"{int(self.stale.attrs.get('count') or 0):,}")]

    def validation_table(self):
        """The contract checks: one row per problem (published as ``validation.csv``)."""
        v = self.validation
        frame = v.to_frame()
        status = "passed" if v.ok else "failed"
        # the page's header names the source as it was given; the validation's own name for it is the resolved
        # (absolute) path, which would name it twice, differently, and show the machine's folders
        head = md(f"**Contract validation**: {status} — {v.summary()}")
        if frame.empty:
            publish(frame, "validation")
            return head
        from IPython.display import display

        display(head)
        return self.table(frame, "validation", formats={"count": "{:,}"})

    def coverage_chart(self) -> None:
        """Date coverage per table with the period shaded (the numbers of ``table_overview.csv``)."""
        self.chart(self.overview, "table_overview", charts.plot_table_coverage, published=True,
                   period=self.period)

    def volume_chart(self) -> None:
        """Rows per month of the main event tables (published as ``monthly_volume.csv``)."""
        self.chart(self.monthly, "monthly_volume", charts.plot_monthly_rows)

    def overview_table(self):
        """The per-table overview, formatted (published as ``table_overview.csv``)."""
        publish(self.overview, "table_overview")
        ov = self.overview.copy()
        for c in ("first", "last"):
            ov[c] = pd.to_datetime(ov[c]).dt.strftime("%Y-%m-%d")
        return style_table(ov, {"rows": "{:,}", "rows_in_period": "{:,}", "days_since_last": "{:.1f}"}).map(
            lambda s: "color: #C0392B; font-weight: bold" if s in ("stale", "empty", "absent", "no rows in period")
            else "", subset=["status"])

    def _money(self, df, name: str, empty: str, cols=("amount",), limit: int = 25):
        return self.table(df, name, formats={c: (lambda x: fmt_money(x, self.currency)) for c in cols},
                          empty=empty, limit=limit)

    def summary_table(self):
        """The anomaly counts (published as ``anomalies.csv``)."""
        return publish(self.summary, "anomalies", formats={"count": "{:,}"})

    def stale_table(self):
        """Stale open deals (published as ``stale_open_deals.csv``)."""
        return self._money(self.stale, "stale_open_deals", f"No open deal is stale: every one has a close date ahead "
                                                           f"and a change in the last {self.stale_days} days.")

    def pushes_table(self):
        """Deals pushed repeatedly (published as ``close_date_pushes.csv``)."""
        return self._money(self.pushes, "close_date_pushes",  # amounts in money, as in the stale deals above
                           f"No deal had its close date pushed in {self.period} ({self.min_pushes}+ pushes in all).")

    def missing_table(self):
        """Deals without amount (published as ``missing_amounts.csv``)."""
        return self._money(self.missing, "missing_amounts", "Every deal has an amount.")


def assess(source, *, period, as_of=None, currency: str = "USD", stale_after_days: int = 14,
           stale_days: int = 90, min_pushes: int = 2, now=None) -> DataQuality:
    """Compute every part of the data-quality report for one period."""
    src = open_source(source)
    p = parse_period(period)
    cut = resolve_as_of(p, as_of)
    validation = cached_validation(src, now, validate)
    if src.privacy == "masked":
        validation = masked_validation(validation)
    overview = table_overview(src, period=p, as_of=cut, stale_after_days=stale_after_days)
    monthly = monthly_volume(src, as_of=cut)
    has_opps = src.has("opportunities")
    empty = pd.DataFrame()
    stale = stale_open_deals(src, as_of=cut, stale_days=stale_days) if has_opps else empty
    pushes = close_date_pushes(src, period=p, as_of=cut, min_pushes=min_pushes)
    missing = missing_amounts(src, as_of=cut) if has_opps else empty
    conflicts = target_conflicts(src)
    return DataQuality(period=p, as_of=cut, source_label=src.description, validation=validation,
                       overview=overview, monthly=monthly, stale=stale, pushes=pushes, missing=missing,
                       currency=currency, stale_days=stale_days, min_pushes=min_pushes, target_conflicts=conflicts,
                       parts=report_parts(src))


def report_parts(src) -> pd.DataFrame:
    """Every part of every report and whether the tables of ``src`` allow it (None: an empty frame).

    ``report, report_title, part_key, part, built, needs`` — ``needs`` names the table(s) that would bring a
    left-out part.
    """
    from revops_lib.present.sections.forecast import ForecastReport
    from revops_lib.present.sections.funnel import FunnelReport
    from revops_lib.present.sections.retention import RetentionReport
    from revops_lib.present.sections.scorecard import Scorecard

    cols = ["report", "report_title", "part_key", "part", "built", "needs"]
    if src is None:
        return pd.DataFrame(columns=cols)
    rows = []
    for title, cls in (("RevOps scorecard", Scorecard), ("Funnel conversion", FunnelReport),
                       ("Forecast accuracy", ForecastReport), ("Cohort retention", RetentionReport)):
        plan = cls.plan(src)
        for part in cls.PARTS:
            why = plan.get(part.key, "")
            rows.append((cls.report, title, part.key, part.title[0].upper() + part.title[1:], not why, why))
    return pd.DataFrame(rows, columns=cols)


def build(*, period: str = "", source: str = "../data/demo", as_of: str = "", currency: str = "USD",
          fiscal_year_start_month: int = 1, privacy: str = "names", labels: dict | None = None,
          slices: dict | None = None, output_dir: str = "", preset: str = "", stale_after_days: int = 14,
          stale_days: int = 90, min_pushes: int = 2) -> DataQuality:
    """The report from the notebook's parameters."""
    ctx = context(period=period, as_of=as_of, source=source, currency=currency,
                  fiscal_year_start_month=fiscal_year_start_month, output_dir=output_dir, privacy=privacy,
                  labels=labels, preset=preset, slices=slices)
    dq = assess(ctx.source, period=ctx.period, as_of=ctx.as_of, currency=currency, stale_after_days=stale_after_days,
                stale_days=stale_days, min_pushes=min_pushes)
    dq.record_headlines()
    return dq
