"""The ``forecast_accuracy`` report: what it shows, computed once by :func:`assess`.

:func:`build` is the notebook's one setup call (parameters in, a :class:`ForecastReport` out).
"""

from __future__ import annotations

import pandas as pd

from revops_lib.errors import ParameterError
from revops_lib.metrics.deal_history import COMPANY, as_period, fiscal_start, prepare
from revops_lib.metrics.forecast import (
    BASELINE,
    accuracy_by_week,
    accuracy_summary,
    bias_by_scope,
    forecast_accuracy,
    forecast_vs_actual,
    projection,
    score_forecasts,
)
from revops_lib.metrics.pipeline import coverage, slippage, undated_open_deals
from revops_lib.metrics.records import (
    pipeline_waterfall_records,
    rep_performance_records,
    waterfall_of_records,
    win_rate_records,
)
from revops_lib.metrics.reps import MORE_COLUMNS, REP_COLUMNS, rep_performance
from revops_lib.metrics.segments import win_rate_by
from revops_lib.periods import Period, window
from revops_lib.present.charts import forecast as charts
from revops_lib.present.charts import sales as sales_charts
from revops_lib.present.context import context
from revops_lib.present.format import MISSING, fmt_days, fmt_int, fmt_interval, fmt_money, fmt_pct
from revops_lib.present.labels import label
from revops_lib.present.publish import publish
from revops_lib.present.section import Part, Section, needs_part
from revops_lib.present.sections import segments as segment_views
from revops_lib.present.tables import style_table
from revops_lib.present.text import esc, md
from revops_lib.sources import open_source

FOOTNOTES = [
    ("Actual", "Σ amount of opportunities won with close_date in the forecast period, for the scope "
               "(company = all deals; otherwise opportunities.team, or the owner when no team has that name)."),
    ("Error, APE, accuracy", "error = forecast − actual; absolute percentage error (APE) = "
                             "|forecast − actual| / actual; "
                             "accuracy = max(0, 1 − APE). With an actual of zero APE and accuracy are undefined (—)."),
    ("MAPE, WAPE, bias", "MAPE = mean APE (forecasts with an actual > 0); WAPE = Σ|forecast − actual| / Σ actual; "
                         "bias = Σ(forecast − actual) / Σ actual (positive = over-forecast), across the periods, "
                         "snapshots and scopes in view."),
    ("Hit rate within 10%", "share of forecasts (with an actual > 0) whose APE is at most 10%."),
    ("In view", "every forecast period that ended on or before as of — the last lookback_periods (default 12) of "
                "each kind (months, quarters, weeks) — with all its snapshots, scopes and categories."),
    ("Week of period", "1 + whole weeks between the period's first day and the snapshot date."),
    ("Point-in-time state", "a deal's opportunity_history row with the latest changed_at before the cut-off; at a "
                            "snapshot date d the cut-off is the start of d (00:00 UTC): nothing of day d is known."),
    ("Baseline forecast", "at each snapshot date: won-to-date + Σ over deals open then with a close date in the period "
                          "of amount × the win rate of their stage, measured on deals closed before that date that "
                          "were ever in the stage (won / closed, by count; overall rate when a stage has none)."),
    ("Coverage", "open pipeline with close date in the period, at its start (or at as of if earlier) / the "
                 "period's target (targets, metric revenue_won)."),
    ("Slippage", "opportunities whose close date was in the period at its start and that were neither won nor "
                 "lost in the period; pushes = close-date changes to a later date."),
    ("Pipeline waterfall", "starting = open pipeline with close date in the period at its start; + new + pulled in "
                           "+ increased − won − lost − decreased − pushed out = ending, exactly (in cents)."),
    ("Rep and team performance", "one row per owner and team as on the deals (deals without one: unassigned), then "
                                 "each team and the company (all): revenue won, won, lost over the deals closed in "
                                 "the period; win rate = won / (won + lost) with its Wilson interval, flagged when "
                                 "fewer than min_sample deals closed; average deal size and cycle as in the sales "
                                 "metrics; pipeline created = Σ amount of the deals created in the period."),
    ("Records behind the numbers", "beside pipeline_waterfall.csv, pipeline_waterfall_records.csv: per step, the "
     "deals behind it and their part of it (a deal can be behind several steps; starting and ending: the deals "
     "open and due in the period at its start and at the cut-off); Σ amount per step = the step. Beside "
     "rep_performance.csv, rep_performance_records.csv: the deals closed or created in the period, with the "
     "columns they count in (won, lost, revenue_won, created, pipeline_created); their sums per owner and team, "
     "per team and over all are the table's rows. Beside win_rate_by_segment.csv, win_rate_by_segment_records.csv: "
     "the deals closed in the period with their segment and outcome; Σ won and Σ lost per segment are its row. "
     "slippage.csv lists its deals itself."),
    ("Quota, attainment", "quota = the targets row of the period with metric revenue_won and that owner (or that team "
                          "and no owner; the company's target for the company); attainment = revenue won / quota."),
    ("Rep coverage", "open pipeline at the cut-off (point-in-time) due in the next period / the next period's quota."),
    ("Rep activity and forecast", "first meetings and proposals: activities of that type in the period by the "
                                  "owner; forecast accuracy and bias of the period's call-category forecasts whose "
                                  "scope is the owner, the team or the company (mean accuracy; Σ error / Σ actual)."),
] + segment_views.FOOTNOTES[:1]


_KIND_WORD = {"week": "week", "month": "month", "quarter": "quarter"}


def _reliable_week(by_week: pd.DataFrame, kind: str, category: str, level: float = 0.9) -> int | None:
    """First week from which the median accuracy stays at or above ``level`` for every later week."""
    g = by_week[(by_week["kind"] == kind) & (by_week["category"] == category) & (by_week["week_of_period"] >= 1)]
    g = g.sort_values("week_of_period")
    if g.empty:
        return None
    ok = (g["median_accuracy"] >= level).to_numpy()
    if not ok[-1]:
        return None
    k = len(ok) - 1
    while k > 0 and ok[k - 1]:
        k -= 1
    return int(g["week_of_period"].iloc[k])


class ForecastReport(Section):
    """Everything the ``forecast_accuracy`` report shows, computed once (see :func:`assess`).

    Attributes hold the frames (``accuracy``, ``summary``, ``summary_by_scope``,
    ``by_week``, ``calls``, ``coverage``, ``projection``, ``waterfall``,
    ``slippage``); methods return what a notebook cell displays (a formatted
    table, a chart or one-sentence findings) and publish the data behind it.
    """

    report = "forecast_accuracy"
    PARTS = (
        Part("accuracy", "forecast accuracy",
             ("opportunities", "forecast_snapshots")),
        Part("projection", "the periods in progress", ("opportunities",)),
        Part("coverage", "pipeline coverage", ("opportunities",)),
        Part("waterfall", "the pipeline waterfall", ("opportunities", "opportunity_history")),
        Part("slippage", "slippage", ("opportunities", "opportunity_history")),
        Part("reps", "rep and team performance", ("opportunities",)),
        Part("segments", "win rate by segment", ("opportunities",), columns=("opportunities.segment",)),
    )
    _TOPIC_PART = {"accuracy": "accuracy", "baseline": "accuracy", "convergence": "accuracy", "bias": "accuracy",
                   "projection": "projection", "coverage": "coverage", "waterfall": "waterfall",
                   "slippage": "slippage", "reps": "reps"}

    def __init__(self, *, period: Period, as_of: pd.Timestamp, currency: str = "USD", call_category: str = "commit",
                 bias_threshold: float = 0.05, accuracy=None, coverage=None, projection=None, waterfall=None,
                 slippage=None, notes: dict | None = None, target_metric: str = "revenue_won", reps=None,
                 min_sample: int = 30, confidence: float = 0.95, segments=None, waterfall_records=None,
                 rep_records=None, segment_records=None):
        self.period, self.as_of, self.currency = period, as_of, currency
        self.segments, self.segment_records = segments, segment_records
        self.reps, self.min_sample, self.confidence = reps, min_sample, confidence
        self.bias_threshold = bias_threshold
        self.target_metric = target_metric
        self.notes = dict(notes or {})
        empty_acc = score_forecasts(pd.DataFrame(), pd.DataFrame())
        self.accuracy = accuracy if accuracy is not None else empty_acc
        cats = list(dict.fromkeys(self.accuracy["category"]))
        self.call_category = call_category if call_category in cats or not cats else next(
            (c for c in cats if c != BASELINE), call_category)
        self.summary = accuracy_summary(self.accuracy)
        self.summary_by_scope = bias_by_scope(self.accuracy, threshold=bias_threshold)
        self.by_week = accuracy_by_week(self.accuracy)
        kinds = set(self.by_week["kind"]) if len(self.by_week) else set()
        self.kind = period.kind if period.kind in kinds else next((k for k in ("month", "quarter", "week")
                                                                     if k in kinds), period.kind)
        self.calls = forecast_vs_actual(self.accuracy, kind=self.kind)
        self.coverage, self.projection = coverage, projection
        self.waterfall, self.slippage = waterfall, slippage
        #: The deals behind each waterfall step and behind each rep's figures (the ``*_records.csv``).
        self.waterfall_records, self.rep_records = waterfall_records, rep_records

    # -- helpers ---------------------------------------------------------------
    def _money(self, x) -> str:
        return fmt_money(x, self.currency)

    @staticmethod
    def _pct(x, signed: bool = False) -> str:
        return fmt_pct(x, signed=signed)

    def _note(self, key: str):
        return md(f"*{self.notes[key]}*")

    def _show(self, text: str) -> None:
        """Display a note in place of a chart (chart cells end with ';', which would hide a returned note)."""
        from IPython.display import display

        display(md(f"*{text}*"))

    def finding(self, topic: str):
        """One finding as Markdown: ``accuracy``, ``baseline``, ``convergence``, ``bias``, ``projection``,
        ``coverage``, ``waterfall`` or ``slippage``."""
        topics = {"accuracy": self._accuracy_finding, "baseline": self._baseline_finding,
                  "convergence": self._convergence_finding, "bias": self._bias_finding,
                  "projection": self._projection_finding, "coverage": self._coverage_finding,
                  "waterfall": self._waterfall_finding, "slippage": self._slippage_finding,
                  "reps": self._reps_finding}
        if topic not in topics:
            raise ParameterError(f"`topic` must be one of {', '.join(topics)}, not `{topic}`.")
        if self._TOPIC_PART[topic] in self.left_out:
            return self.left_out_note(self._TOPIC_PART[topic])
        text = topics[topic]()
        if text is None:
            key = "accuracy" if topic in ("accuracy", "baseline", "convergence", "bias") else "pipeline"
            text = self.notes.get(key, "Nothing to report for this section.")
        return md(text)

    def _sum(self, category: str, frame=None) -> pd.Series | None:
        s = self.summary if frame is None else frame
        row = s[s["category"] == category]
        return row.iloc[0] if len(row) else None

    # -- the verdict -------------------------------------------------------------
    def findings(self):
        """The findings in one sentence each (Markdown)."""

        topics = [("accuracy", self._accuracy_finding), ("baseline", self._baseline_finding),
                  ("convergence", self._convergence_finding), ("bias", self._bias_finding),
                  ("projection", self._projection_finding), ("coverage", self._coverage_finding),
                  ("waterfall", self._waterfall_finding), ("slippage", self._slippage_finding),
                  ("reps", self._reps_finding)]
        b = [f() for t, f in topics if self._TOPIC_PART[t] not in self.left_out]
        for key in ("pipeline", "undated"):
            if key in self.notes:
                b.append(self.notes[key])
        return md("\n".join(f"- {x}" for x in b if x))

    def _accuracy_finding(self) -> str | None:
        if "accuracy" in self.notes:
            return self.notes["accuracy"]
        s = self._sum(self.call_category)
        if s is None:
            return None
        acc = self.accuracy
        n_p = acc["forecast_period"].nunique()
        n = int(s["n"])
        return (f"Over the {n_p} forecast period{'s' if n_p != 1 else ''} in view ({n:,} {self.call_category} "
                f"call{'s' if n != 1 else ''} across snapshots and scopes), the {self.call_category} call missed the "
                f"actual by "
                f"{self._pct(s['wape'])} (WAPE; MAPE {self._pct(s['mape'])}) and was within 10% "
                f"{self._pct(s['hit_rate_10'])} of the time.")

    def _baseline_finding(self) -> str | None:
        s, b = self._sum(self.call_category), self._sum(BASELINE)
        if s is None or b is None or pd.isna(s["wape"]) or pd.isna(b["wape"]):
            return None
        verdict = "beats" if s["wape"] < b["wape"] else "does not beat"
        return (f"The {self.call_category} call {verdict} the kit's mechanical baseline "
                f"(WAPE {self._pct(s['wape'])} vs {self._pct(b['wape'])}).")

    def _convergence_finding(self) -> str | None:
        if self.by_week.empty:
            return None
        parts = []
        for kind in ("month", "quarter", "week"):
            if kind not in set(self.by_week["kind"]):
                continue
            w = _reliable_week(self.by_week, kind, self.call_category)
            wb = _reliable_week(self.by_week, kind, BASELINE)
            txt = (f"from week {w} of the {kind}" if w else f"at no week of the {kind}")
            has_baseline = BASELINE in set(self.by_week["category"])
            bt = f" (baseline: {'week ' + str(wb) if wb else 'never'})" if has_baseline else ""
            parts.append(txt + bt)
        return (f"The {self.call_category} call becomes reliable (median accuracy of 90% or better from then on) "
                + "; ".join(parts) + ".")

    def _bias_finding(self) -> str | None:
        s = self.summary_by_scope
        s = s[(s["category"] == self.call_category) & (s["scope"] != COMPANY) & s["bias"].notna()]
        if s.empty:
            return None
        opt = s[s["verdict"] == "optimistic"].sort_values("bias", ascending=False)
        sand = s[s["verdict"] == "sandbagging"].sort_values("bias")
        ok = s[s["verdict"] == "on target"]
        bits = []
        if len(opt):
            bits.append("optimistic: " + ", ".join(f"{label(r.scope)} ({self._pct(r.bias, True)})"
                                                   for r in opt.itertuples()))
        if len(sand):
            bits.append("sandbagging: " + ", ".join(f"{label(r.scope)} ({self._pct(r.bias, True)})"
                                                    for r in sand.itertuples()))
        if len(ok):
            bits.append("on target: " + ", ".join(f"{label(r.scope)} ({self._pct(r.bias, True)})"
                                                  for r in ok.itertuples()))
        return (f"Bias of the {self.call_category} call by scope (over-forecast > +{self._pct(self.bias_threshold)}, "
                f"under-forecast < -{self._pct(self.bias_threshold)}) — " + "; ".join(bits) + ".")

    def _projection_finding(self) -> str | None:
        p = self.projection
        if p is None or p.empty:
            return None
        bits = []
        for lab, g in p.groupby("forecast_period", sort=False):
            call = g[g["category"] == self.call_category]
            base = g[g["category"] == BASELINE]
            t = g["target"].iloc[0]
            txt = f"{lab}: {self._money(g['won_to_date'].iloc[0])} won so far"
            if len(call):
                c = call.iloc[0]
                notes = [] if pd.isna(t) else [f"{self._pct(c['pct_of_target'])} of target"]
                if c["forecast"] < g["won_to_date"].iloc[0] and "submitted" in c:  # a call older than the wins
                    notes.append(f"below what is won already: it dates from {pd.Timestamp(c['submitted']):%Y-%m-%d}")
                txt += f", latest {self.call_category} {self._money(c['forecast'])}"
                txt += f" ({'; '.join(notes)})" if notes else ""
            if len(base):
                b = base.iloc[0]
                txt += f", baseline {self._money(b['forecast'])}"
                txt += "" if pd.isna(t) else f" ({self._pct(b['pct_of_target'])}{'' if len(call) else ' of target'})"
            if pd.isna(t):
                txt += ", no target"
            bits.append(txt)
        return "Periods in progress — " + "; ".join(bits) + "."

    def _coverage_finding(self) -> str | None:
        c = self.coverage
        if c is None or c.empty:
            return None
        nxt = c.iloc[-1]
        past = c[c["complete"] & c["coverage"].notna()]
        if pd.isna(nxt["coverage"]):
            txt = (f"Open pipeline due in {nxt['period']} is {self._money(nxt['open_pipeline'])} at the cut-off "
                   f"(no {label(self.target_metric)} target to compare it with)")
        else:
            txt = (f"Open pipeline due in {nxt['period']} covers {self._pct(nxt['coverage'])} of its "
                   f"{self._money(nxt['target'])} target at the cut-off")
        if len(past):
            txt += (f" (previous {len(past)} periods: "
                    f"{self._pct(past['coverage'].min())}–{self._pct(past['coverage'].max())} at their start, "
                    f"attainment {self._pct(past['attainment'].min())}–{self._pct(past['attainment'].max())})")
        return txt + "."

    def _waterfall_finding(self) -> str | None:
        w = self.waterfall
        if w is None or w.empty:
            return None
        a = w.set_index("step")["amount"]
        # every step, so the sentence adds up as the chart does (amount changes can be millions in a quarter)
        net = a["increased"] - a["decreased"]
        changes = ("" if round(net, 2) == 0 else
                   f", {self._money(abs(net))} net {'more' if net > 0 else 'less'} on deals whose amount changed")
        return (f"{self.period.label} pipeline due in the period went from {self._money(a['starting'])} to "
                f"{self._money(a['ending'])}: {self._money(a['won'])} won, {self._money(a['lost'])} lost, "
                f"{self._money(a['pushed_out'])} pushed out, {self._money(a['new'] + a['pulled_in'])} added "
                f"(new or pulled in){changes}.")

    def _slippage_finding(self) -> str | None:
        s = self.slippage
        if s is None:
            return None
        at = s.attrs
        if not at.get("starting_count"):
            return f"No open pipeline was due in {self.period.label} at its start, so nothing could slip."
        multi = int((s["pushes"] >= 2).sum()) if len(s) else 0
        return (f"{at['count']:,} of {at['starting_count']:,} deals due in {self.period.label} at its start slipped "
                f"({self._money(at['amount'])}, {self._pct(at['rate'])} of that pipeline): neither won nor lost in "
                f"the period" + (f"; {multi:,} of them {'was' if multi == 1 else 'were'} pushed twice or more in it"
                                 if multi else "") + ".")

    def _reps_finding(self) -> str | None:
        r = self.reps
        if r is None or r.empty:
            return None
        owners = r[(r["owner"] != "all") & r["quota"].notna()]
        teams = r[(r["owner"] == "all") & (r["team"] != "all")]
        bits = []
        if len(owners):
            at = int((owners["attainment"] >= 1).sum())
            bits.append(f"{at:,} of {len(owners):,} reps with a quota reached it in {self.period.label}")
        with_q = teams[teams["attainment"].notna()]
        if len(with_q):
            bits.append("teams: " + ", ".join(f"{label(t.team)} {fmt_pct(t.attainment)} of quota"
                                              for t in with_q.itertuples()))
        if r["quota"].isna().all():
            bits.append(f"no quota for {self.period.label} in targets, so no attainment")
        small = int(r.loc[r["owner"] != "all", "small_sample"].sum())
        if small:
            bits.append(f"{small:,} owner win rate{'s rest' if small != 1 else ' rests'} on fewer than "
                        f"{self.min_sample:,} closed deals (too few to read; compare over "
                        f"{'several quarters' if self.period.kind == 'quarter' else 'a quarter'})")
        return ("Rep performance — " + "; ".join(bits) + ".") if bits else None

    def headlines(self) -> list[tuple[str, str]]:
        """Headline numbers for ``reports/index.html``."""
        out = []
        s = self._sum(self.call_category)
        if s is not None:
            out.append((f"{self.call_category.capitalize()} WAPE", self._pct(s["wape"])))
            out.append((f"{self.call_category.capitalize()} bias", self._pct(s["bias"], True)))
        if self.coverage is not None and len(self.coverage):
            nxt = self.coverage.iloc[-1]
            # the scorecard's KPI "Next-period coverage", under its name and in its format (a percentage)
            out.append((f"Next-period coverage ({nxt['period']})", fmt_pct(nxt["coverage"])))
        if self.slippage is not None:
            out.append(("Slipped deals", f"{self.slippage.attrs.get('count', 0):,}"))
        return out

    # -- tables ---------------------------------------------------------------------
    def _formats(self, money=(), pct=(), signed=(), ints=()):
        f = {c: (lambda x: self._money(x)) for c in money}
        f.update({c: (lambda x: self._pct(x)) for c in pct})
        f.update({c: (lambda x: self._pct(x, True)) for c in signed})
        f.update({c: "{:,}" for c in ints})
        return f

    @needs_part("accuracy")
    def summary_table(self):
        """Accuracy per category (published as ``summary.csv``)."""
        if "accuracy" in self.notes:
            publish(self.summary, "summary")
            return self._note("accuracy")
        return publish(self.summary, "summary",
                       formats=self._formats(pct=("mape", "wape", "hit_rate_10"), signed=("bias",), ints=("n",)))

    @needs_part("accuracy")
    def accuracy_table(self):
        """Every snapshot in view (published as ``accuracy.csv``); shows the first and last call of each period."""
        publish(self.accuracy, "accuracy")
        if "accuracy" in self.notes:
            return self._note("accuracy")
        c = self.calls
        if c.empty:
            return md("No company-scope forecast in view.")
        wide = c.pivot_table(index=["forecast_period", "actual"], columns=["category", "call"], values="forecast",
                             aggfunc="first", sort=False)
        cols = [(cat, call) for cat in dict.fromkeys(c["category"]) for call in ("first", "last")
                if (cat, call) in wide.columns]
        wide = wide[cols]
        wide.columns = [f"{label(cat)} ({'first' if call == 'first' else 'last'} call)" for cat, call in cols]
        wide = wide.reset_index()
        order = {p: i for i, p in enumerate(dict.fromkeys(c["forecast_period"]))}
        wide = wide.sort_values("forecast_period", key=lambda s: s.map(order), ascending=False, ignore_index=True)
        money = [col for col in wide.columns if col != "forecast_period"]
        return style_table(wide, self._formats(money=money))

    @needs_part("accuracy")
    def bias_table(self):
        """Bias and accuracy per scope and category (published as ``summary_by_scope.csv``)."""
        if "accuracy" in self.notes:
            return self._note("accuracy")
        return publish(self.summary_by_scope, "summary_by_scope",
                       formats=self._formats(pct=("mape", "wape", "hit_rate_10"), signed=("bias",), ints=("n",)))

    @needs_part("projection")
    def projection_table(self):
        """Periods in progress: latest calls, baseline, target (published as ``projection.csv``)."""
        if self.projection is None:
            return self._note("pipeline")
        return publish(self.projection, "projection",
                       formats=self._formats(money=("forecast", "won_to_date", "target"), pct=("pct_of_target",)))

    @needs_part("coverage")
    def coverage_table(self):
        """Coverage per period (published as ``coverage.csv``)."""
        if self.coverage is None:
            return self._note("pipeline")
        c = self.coverage.copy()
        c["measured_at"] = pd.to_datetime(c["measured_at"]).dt.strftime("%Y-%m-%d %H:%M").str.replace(" 00:00", "")
        styled = publish(c, "coverage", formats={
            **self._formats(money=("open_pipeline", "target", "won"), pct=("attainment", "coverage"))})
        return styled

    @needs_part("waterfall")
    def waterfall_table(self):
        """The waterfall steps (published as ``pipeline_waterfall.csv``), and the link to the deals behind them
        (``pipeline_waterfall_records.csv``)."""
        if self.waterfall is None:
            return self._note("pipeline")
        styled = publish(self.waterfall, "pipeline_waterfall", formats=self._formats(money=("amount",)))
        if self.waterfall_records is None:
            return styled
        return self.with_records(styled, self.waterfall_records, "pipeline_waterfall", "the deals behind each step")

    @needs_part("slippage")
    def slippage_table(self, limit: int = 15):
        """Slipped deals, largest first (all of them published as ``slippage.csv``)."""
        if self.slippage is None:
            return self._note("pipeline")
        return self.table(self.slippage, "slippage", formats=self._formats(money=("amount",)), limit=limit,
                          empty="No deal slipped: every deal due in the period closed or kept its close date.")

    # -- charts ------------------------------------------------------------------
    @needs_part("accuracy")
    def convergence_chart(self):
        """Median accuracy by week of the period, per category (published as ``accuracy_by_week.csv``)."""
        if self.by_week.empty:
            return self._show(self.notes.get("accuracy", "No forecast in view."))
        self.chart(self.by_week, "accuracy_by_week", charts.plot_forecast_convergence, kind=self.kind)

    @needs_part("accuracy")
    def bias_chart(self):
        """Bias of the call category per scope (the numbers of ``summary_by_scope.csv``)."""
        s = self.summary_by_scope
        if s[(s["category"] == self.call_category) & s["bias"].notna()].empty:
            return self._show(self.notes.get("accuracy", "No forecast in view."))
        self.chart(s, "summary_by_scope", charts.plot_bias_by_scope, published=True,
                   category=self.call_category,
                   threshold=self.bias_threshold)

    @needs_part("accuracy")
    def calls_chart(self):
        """The first call of each period vs its actual (published as ``forecast_vs_actual.csv``)."""
        if self.calls.empty:
            return self._show(self.notes.get("accuracy", "No company-scope forecast in view."))
        self.chart(self.calls, "forecast_vs_actual", charts.plot_forecast_vs_actual, currency=self.currency)

    @needs_part("coverage")
    def coverage_chart(self):
        """Coverage per period (the numbers of ``coverage.csv``)."""
        if self.coverage is None:
            return self._show(self.notes["pipeline"])
        if self.coverage["coverage"].notna().sum() == 0:
            return self._show(f"No `{self.target_metric}` target for these periods: coverage cannot be computed.")
        self.chart(self.coverage, "coverage", charts.plot_coverage, published=True)

    @needs_part("waterfall")
    def waterfall_chart(self):
        """The pipeline waterfall of the report period (the numbers of ``pipeline_waterfall.csv``)."""
        if self.waterfall is None:
            return self._show(self.notes["pipeline"])
        self.chart(self.waterfall, "pipeline_waterfall", charts.plot_pipeline_waterfall, published=True,
                   currency=self.currency,
                   period=self.period.label)


    # -- win rate by segment -----------------------------------------------------------------
    @needs_part("segments")
    def segment_table(self):
        """Win rate by segment with its interval and the chi-square test across segments (published as
        ``win_rate_by_segment.csv``), and the link to the deals behind it (``win_rate_by_segment_records.csv``)."""
        shown = segment_views.win_rate_table(self.segments, confidence=self.confidence)
        if self.segment_records is None or self.segments is None or self.segments.empty:
            return shown
        return self.with_records(shown, self.segment_records, "win_rate_by_segment",
                                 "the deals closed in the period behind each row")

    # -- rep and team performance ------------------------------------------------------------
    def _rep_rows(self, limit: int) -> tuple[pd.DataFrame, bool]:
        r = self.reps
        owners = int((r["owner"] != "all").sum())
        if owners > limit:  # too many reps for a page: the teams and the company (every owner in the CSV)
            return r[r["owner"] == "all"], True
        return r, False

    @needs_part("reps")
    def rep_table(self, limit: int = 60):
        """Quota attainment, win rate with its interval, deal size, cycle and pipeline created per owner, team and
        company (published as ``rep_performance.csv``), and the link to the deals behind them
        (``rep_performance_records.csv``)."""
        if self.reps is None:
            return self._note("pipeline")
        publish(self.reps[REP_COLUMNS], "rep_performance")
        r, cut = self._rep_rows(limit)
        money = self._money
        shown = pd.DataFrame({
            "Owner": [("All — " + label(t) if t != "all" else "All (company)") if o == "all" else o
                      for o, t in zip(r["owner"], r["team"])],
            "team": r["team"].where(r["team"] != "all", MISSING),
            "Quota": r["quota"].map(money), "Revenue won": r["revenue_won"].map(money),
            "Attainment": r["attainment"].map(fmt_pct), "Won": r["won"].map(fmt_int), "Lost": r["lost"].map(fmt_int),
            "Win rate": r["win_rate"].map(fmt_pct),
            f"{self.confidence:.0%} interval": [fmt_interval(lo, hi) for lo, hi in zip(r["ci_low"], r["ci_high"])],
            "Avg deal size": r["avg_deal_size"].map(money), "Cycle": r["cycle_days"].map(fmt_days),
            "Pipeline created": r["pipeline_created"].map(money),
            "Note": ["too few to read" if s else "" for s in r["small_sample"]],
        }).reset_index(drop=True)
        total = (r["owner"] == "all").to_numpy()
        small = r["small_sample"].to_numpy()
        caption = []
        if cut:
            caption.append(f"{int((self.reps['owner'] != 'all').sum()):,} owners: the teams and the company here, "
                           "every owner in rep_performance.csv.")
        if self.reps["quota"].isna().all():  # e.g. a week when quotas are set by month: two columns of dashes
            shown = shown.drop(columns=["Quota", "Attainment"])
            caption.append(f"No quota for {self.period.label} in targets ({self.target_metric} rows with an owner "
                           "or team): quota and attainment are left out.")
        styled = style_table(shown).apply(
            lambda row: ["font-weight: bold" if total[row.name] else ("color: #9a9a9a" if small[row.name] else "")
                         for _ in row], axis=1)
        if caption:  # a caption is not escaped by the Styler: parameters in it are
            styled = styled.set_caption(str(esc(" ".join(caption))))
        if self.rep_records is None:
            return styled
        return self.with_records(styled, self.rep_records, "rep_performance",
                                 "the deals closed or created in the period, by owner")

    @needs_part("reps")
    def rep_activity_table(self, limit: int = 60):
        """Next-period coverage, first meetings, proposals and forecast accuracy and bias per owner and team
        (published as ``rep_activity.csv``)."""
        if self.reps is None:
            return self._note("pipeline")
        publish(self.reps[["owner", "team"] + MORE_COLUMNS], "rep_activity")
        r, _ = self._rep_rows(limit)
        nxt = self.reps.attrs.get("next_period", "next period")
        shown = pd.DataFrame({
            "Owner": [("All — " + label(t) if t != "all" else "All (company)") if o == "all" else o
                      for o, t in zip(r["owner"], r["team"])],
            "team": r["team"].where(r["team"] != "all", MISSING),
            "Opportunities created": r["opportunities_created"].map(fmt_int),
            f"Open pipeline due {nxt}": r["open_pipeline_next"].map(self._money),
            f"Quota {nxt}": r["next_quota"].map(self._money), "Coverage": r["coverage"].map(fmt_pct),
            "First meetings": r["first_meetings"].map(fmt_int), "Proposals": r["proposals"].map(fmt_int),
            f"Forecast accuracy ({self.call_category})": r["forecast_accuracy"].map(fmt_pct),
            "Forecast bias": r["forecast_bias"].map(lambda v: fmt_pct(v, signed=True)),
        }).reset_index(drop=True)
        caption = []
        if self.reps["next_quota"].isna().all():  # e.g. the next week when quotas are set by month
            shown = shown.drop(columns=[f"Quota {nxt}", "Coverage"])
            caption.append(f"No quota for {nxt} in targets ({self.target_metric} rows with an owner or team): "
                           "quota and coverage are left out.")
        if self.reps["forecast_accuracy"].isna().all() and self.reps["forecast_bias"].isna().all():
            shown = shown.drop(columns=[f"Forecast accuracy ({self.call_category})", "Forecast bias"])
            caption.append(f"No {self.call_category} forecast of {self.period.label} was submitted by a rep or "
                           "team: accuracy and bias are left out.")
        total = (r["owner"] == "all").to_numpy()
        styled = style_table(shown).apply(lambda row: ["font-weight: bold" if total[row.name] else "" for _ in row],
                                          axis=1)
        return styled.set_caption(str(esc(" ".join(caption)))) if caption else styled

    @needs_part("reps")
    def rep_chart(self):
        """Quota attainment and win rate with its interval per owner (the numbers of ``rep_performance.csv``)."""
        if self.reps is None or self.reps.empty:
            return self._show(self.notes.get("pipeline", "No deal in this period."))
        self.chart(self.reps, "rep_performance", sales_charts.plot_rep_performance, published=True,
                   confidence=self.confidence)


def assess(source, *, period, as_of=None, lookback_periods: int = 12, coverage_periods: int = 6,
           target_metric: str = "revenue_won", call_category: str = "commit", bias_threshold: float = 0.05,
           currency: str = "USD", fiscal_year_start_month: int = 1, won_stages=None,
           lost_stages=None, min_sample: int = 30, confidence: float = 0.95) -> ForecastReport:
    """Compute every part of the forecast-accuracy report for one period.

    Parameters
    ----------
    source : Source or source spec
    period : str or Period
        The report period (its kind picks the convergence chart and the coverage periods).
    as_of : date or time, optional (default: the period end)
    lookback_periods : int, default 12
        Forecast periods in view per kind.
    coverage_periods : int, default 6
        Periods of the report's kind shown in the coverage table (plus the next one).
    target_metric : str, default ``"revenue_won"``
    call_category : str, default ``"commit"``
        The category whose accuracy and bias the findings describe.
    bias_threshold : float, default 0.05
        |bias| above which a scope is called optimistic or sandbagging.
    currency : str, default ``"USD"``
        Label of money amounts.
    fiscal_year_start_month : int, default 1
    won_stages, lost_stages : iterable of str or comma-separated text, optional
        Stage values meaning won / lost (empty or None: inferred).
    min_sample, confidence : int, float
        Rep win rates on fewer closed deals are flagged; the level of their Wilson interval.

    Returns
    -------
    ForecastReport
    """
    fy = fiscal_start(fiscal_year_start_month)
    p = as_period(period, fy)
    cut = window(p, as_of, fiscal_year_start_month=fy)[1]
    won_stages, lost_stages = (
        ([x.strip() for x in v.split(",") if x.strip()] or None) if isinstance(v, str) else v
        for v in (won_stages, lost_stages))
    if not (isinstance(bias_threshold, (int, float)) and 0 <= bias_threshold < 1):
        raise ParameterError(f"`bias_threshold` must be a fraction in [0, 1), not `{bias_threshold!r}`.")
    src = open_source(source)
    left_out = ForecastReport.plan(src)
    notes = {}
    acc = cov = proj = wf = slip = wf_records = None
    if not src.has("opportunities"):
        notes["pipeline"] = ("No `opportunities` table in the source: actuals, the baseline, coverage, slippage and "
                             "the waterfall cannot be computed.")
        notes["accuracy"] = notes["pipeline"]
        fa = ForecastReport(period=p, as_of=cut, currency=currency, notes=notes, call_category=call_category,
                            bias_threshold=bias_threshold, target_metric=target_metric)
        fa.left_out = left_out
        return fa
    with prepare(src, won_stages=won_stages, lost_stages=lost_stages) as deals:
        if "accuracy" not in left_out:
            acc = forecast_accuracy(deals, period=p, as_of=cut, lookback_periods=lookback_periods,
                                    fiscal_year_start_month=fy)
            if acc.empty:
                notes["accuracy"] = (f"No forecast period in view: none of the forecast periods in "
                                     f"`forecast_snapshots` ended by {cut:%Y-%m-%d %H:%M} UTC.")
        n_undated, amt_undated = undated_open_deals(deals, at=cut)
        if n_undated:
            notes["undated"] = (f"**{n_undated:,} open deal{'s' if n_undated != 1 else ''} "
                                f"({fmt_money(amt_undated, currency)}) without an expected close date** at the "
                                "cut-off: in open pipeline, but left out of coverage, the projection, the waterfall "
                                "and slippage.")
        cov = coverage(deals, period=p, as_of=cut, lookback_periods=coverage_periods, target_metric=target_metric,
                       fiscal_year_start_month=fy)
        proj = projection(deals, period=p, as_of=cut, target_metric=target_metric, fiscal_year_start_month=fy)
        if "waterfall" not in left_out:
            # the waterfall is the sum of its records (one pass over the deals instead of two)
            wf_records = pipeline_waterfall_records(deals, period=p, as_of=cut, fiscal_year_start_month=fy)
            wf = waterfall_of_records(wf_records)
        if "slippage" not in left_out:
            slip = slippage(deals, period=p, as_of=cut, fiscal_year_start_month=fy)
        reps = rep_performance(deals, period=p, as_of=cut, confidence=confidence, min_sample=min_sample,
                               target_metric=target_metric, accuracy=acc if acc is not None else pd.DataFrame(
                                   columns=["forecast_period", "scope", "category", "forecast", "actual", "error",
                                            "accuracy"]), call_category=call_category)
        rep_records = rep_performance_records(deals, period=p, as_of=cut)
    segs = seg_records = None
    if "segments" not in left_out:
        segs = win_rate_by(src, period=p, as_of=cut, confidence=confidence, min_sample=min_sample)
        seg_records = win_rate_records(src, period=p, as_of=cut)
    fa = ForecastReport(period=p, as_of=cut, currency=currency, call_category=call_category,
                        bias_threshold=bias_threshold, accuracy=acc, coverage=cov, projection=proj, waterfall=wf,
                        slippage=slip, notes=notes, target_metric=target_metric, reps=reps, min_sample=min_sample,
                        confidence=confidence, segments=segs, waterfall_records=wf_records, rep_records=rep_records,
                        segment_records=seg_records)
    fa.left_out = left_out
    return fa


def build(*, period: str = "", source: str = "../data/demo", as_of: str = "", currency: str = "USD",
          fiscal_year_start_month: int = 1, privacy: str = "names", labels: dict | None = None,
          slices: dict | None = None, output_dir: str = "", preset: str = "",
          lookback_periods: int = 12, coverage_periods: int = 6, target_metric: str = "revenue_won",
          call_category: str = "commit", bias_threshold: float = 0.05, won_stages: str = "",
          lost_stages: str = "", min_sample: int = 30, confidence: float = 0.95) -> ForecastReport:
    """The report from the notebook's parameters."""
    ctx = context(period=period, as_of=as_of, source=source, currency=currency,
                  fiscal_year_start_month=fiscal_year_start_month, output_dir=output_dir, privacy=privacy,
                  labels=labels, preset=preset, slices=slices)
    fa = assess(ctx.source, period=ctx.period, as_of=ctx.as_of, lookback_periods=lookback_periods,
                coverage_periods=coverage_periods, target_metric=target_metric, call_category=call_category,
                bias_threshold=bias_threshold, currency=currency, fiscal_year_start_month=fiscal_year_start_month,
                won_stages=won_stages, lost_stages=lost_stages, min_sample=min_sample, confidence=confidence)
    fa.record_headlines()
    return fa
