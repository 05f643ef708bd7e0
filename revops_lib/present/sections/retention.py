"""The ``cohort_retention`` report: what it shows, computed once by :func:`analyze`.

:func:`build` is the notebook's one setup call (parameters in, a :class:`RetentionReport` out).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from revops_lib.metrics.cohorts import (
    cohort_average,
    cohort_retention,
    logo_retention,
    quarterly_retention,
    revenue_retention,
    survival,
)
from revops_lib.metrics.common import check_fraction, check_int
from revops_lib.metrics.economics import unit_economics
from revops_lib.metrics.kpis import KPI_BY_KEY
from revops_lib.metrics.mrr import (
    ALL,
    MOVEMENT_COLUMNS,
    arr_bridge,
    customer_mrr,
    monthly_kpis,
    mrr_movements,
    period_months,
    trailing_retention,
)
from revops_lib.metrics.records import mrr_movement_records, retention_records
from revops_lib.metrics.segments import retention_by
from revops_lib.periods import Period, parse_period, resolve_as_of
from revops_lib.present.charts import retention as charts
from revops_lib.present.context import context
from revops_lib.present.format import fmt_money, fmt_pct
from revops_lib.present.labels import label as label_of
from revops_lib.present.publish import publish
from revops_lib.present.section import Part, Section
from revops_lib.present.sections import segments as segment_views
from revops_lib.present.tables import style_table
from revops_lib.present.text import md
from revops_lib.sources import open_source

FOOTNOTES = [
    ("Three 12-month retentions", "they answer different questions and differ: logo retention, trailing 12 m "
     "(scorecard) = customers paying 12 months ago still paying now, whatever happened between; cohort logo "
     "retention at M12 (heatmap, weighted average) = customers of a cohort paying in their 12th month after the "
     "first; survival at 12 months (Kaplan–Meier) = customers who never stopped paying for 12 months (a gap ends "
     "survival, a return does not restore it)."),
    ("Monthly MRR per customer", "a month-end snapshot: the sum of mrr of the customer's subscriptions active on "
     "the last day d of the month (start_date <= d and end_date null or > d). Without subscriptions: a customer "
     "is active in a month when it had a payment in it, and its MRR is the sum of those payments (a zero sum is "
     "not paying). Only months complete before as of count; amounts are counted in whole cents."),
    ("Cohort", "month of a customer's first positive MRR; age k = months since the cohort month (k = 0 is the "
     "cohort month). Quarterly cohorts group the monthly cohorts of a quarter, ages stay in months."),
    ("Logo retention", "customers of cohort c with MRR > 0 at age k / cohort size. Cells past as of are empty, "
     "not zero. The average row weights cohorts by size."),
    ("Revenue retention", "starting MRR = cohort MRR at age 0; NRR = cohort MRR at age k / starting MRR; "
     "GRR = Σ min(customer MRR at k, customer MRR at 0) / starting MRR. The average row weights cohorts by "
     "starting MRR."),
    ("MRR movements", "month m vs m−1, per customer: new (first ever positive MRR), expansion (up), contraction "
     "(down, still > 0), churned (from > 0 to 0, shown positive), reactivation (from 0 to > 0 after an earlier "
     "positive month); ending = starting + new + expansion + reactivation − contraction − churned, exactly. "
     "ARR = 12 × MRR. Quick ratio = (new + expansion + reactivation) / (contraction + churned)."),
    ("Records behind the numbers", "mrr_movements_records.csv, beside mrr_movements.csv: one row per customer "
     "and month of the report period in which its MRR changed (month, customer_id, movement, amount, its MRR "
     "before and after); Σ amount per month and movement = that month's movement, the rows = its customers. "
     "retention_by_segment_records.csv, beside retention_by_segment.csv: one row per customer of the base (MRR > 0 "
     "twelve months before the last complete month) with its segment, its MRR then and now, capped, and retained "
     "0/1; per segment the rows are its base customers and the sums its retained customers and MRR."),
    ("Trailing-12-month NRR / GRR", "at month m: customers with MRR > 0 in m−12; NRR = their MRR in m / their "
     "MRR in m−12; GRR caps each customer at its MRR in m−12; logo retention = those still paying / their number."),
    ("Logo churn rate", "customers churned in the month / customers with MRR > 0 at the start of the month."),
    ("Revenue churn rate", "(churned + contraction MRR) / starting MRR of the month (gross; 1 − monthly GRR); "
     "over a period of several months, Σ (churned + contraction) / Σ starting MRR."),
    ("Survival curve", "Kaplan–Meier on months from first paid month to first churn, censored at as of for "
     "customers still paying; 95% CI (Greenwood, clipped to [0, 1])."),
    ("ARPA, LTV", "ARPA = MRR / paying customers at the period's last complete month; LTV = ARPA × gross margin / "
     "monthly revenue churn rate (gross margin a parameter, default 0.8)."),
    ("CAC, payback", "CAC = Σ marketing_spend.spend in the period (sales costs included as their own channel) / "
     "new customers (distinct accounts with a first won new_business opportunity in the period); CAC payback "
     "(months) = CAC / (ARPA of new customers × gross margin), ARPA of new customers = new MRR / customers "
     "whose first paid month fell in the period."),
] + segment_views.FOOTNOTES[1:]


class RetentionReport(Section):
    """Everything the ``cohort_retention`` report shows, computed once (see :func:`analyze`).

    Attributes hold the tables (pandas): ``cohorts`` (:func:`cohort_retention`),
    ``average`` (:func:`cohort_average`), ``quarterly``, ``movements``,
    ``bridge``, ``kpis``, ``trailing``, ``survival``, ``unit``. When the source
    has neither subscriptions nor transactions, ``available`` is False and every
    section says so instead of failing.
    """

    report = "cohort_retention"
    PARTS = (Part("retention", "cohort retention, MRR movements and unit economics",
                  any_of=("subscriptions", "transactions")),)
    FOOTNOTES = FOOTNOTES
    segments: pd.DataFrame | None = None  # retention by segment (metrics.segments.retention_by)
    segments_by: str | None = None
    segment_records: pd.DataFrame | None = None  # the base customers behind it (metrics.records.retention_records)

    def __init__(self, *, period: Period, as_of: pd.Timestamp, currency: str = "USD", gross_margin: float = 0.8,
                 basis: str | None = None, last_month: str | None = None, cohorts=None, average=None,
                 quarterly=None, movements=None, bridge=None, kpis=None, trailing=None, survival=None,
                 survival_by: str | None = None, unit=None, min_cohort_size: int = 20, note: str = "",
                 movement_records=None):
        self.period, self.as_of, self.currency, self.gross_margin = period, as_of, currency, gross_margin
        self.basis, self.last_month = basis, last_month
        self.cohorts, self.average, self.quarterly = cohorts, average, quarterly
        self.movements, self.bridge, self.kpis, self.trailing = movements, bridge, kpis, trailing
        self.survival, self.survival_by, self.unit = survival, survival_by, unit
        self.min_cohort_size = min_cohort_size
        self.note = note
        #: The customers behind each movement of the report period's months (``mrr_movements_records.csv``).
        self.movement_records = movement_records

    @property
    def available(self) -> bool:
        return self.cohorts is not None

    # -- helpers ------------------------------------------------------------
    def money(self, x) -> str:
        return fmt_money(x, self.currency)

    def _missing(self):
        return md(f"*{self.note or 'No subscription or transaction data: this section is skipped.'}*")

    # -- findings -----------------------------------------------------------
    def findings(self):
        """The verdict in a few one-sentence bullets (Markdown), each computed from the tables."""
        if not self.available:
            return self._missing()
        bullets = [s for s in (self._finding_mrr(), self._finding_offset(), self._finding_nrr(),
                               self._finding_cohorts(), self._finding_trend(), self._finding_survival(),
                               self._finding_unit()) if s]
        if self.basis == "transactions":
            bullets.append("MRR here is payments per month (the source has no subscriptions): a customer is "
                           "active in a month when it paid in it.")
        return md("\n".join(f"- {b}" for b in bullets))

    def _finding_mrr(self) -> str:
        mv = self.movements
        if mv is None or mv.empty:
            return ""
        end = mv.iloc[-1]
        k = self.kpis.iloc[-1]
        start12 = mv["starting_mrr"].iloc[0]
        growth = (end["ending_mrr"] / start12 - 1) if start12 > 0 else math.nan
        since = (f", {'up' if growth >= 0 else 'down'} {fmt_pct(abs(growth))} over the last {len(mv)} months"
                 if not math.isnan(growth) else "")
        return (f"MRR at the end of {end['month']} is **{self.money(end['ending_mrr'])}** "
                f"(ARR {self.money(12 * end['ending_mrr'])}) from {int(end['ending_customers']):,} paying "
                f"customers (ARPA {self.money(k['arpa'])}){since}.")

    def _finding_offset(self) -> str:
        mv = self.movements
        if mv is None or mv.empty:
            return ""
        gain = float(mv["expansion"].sum() + mv["reactivation"].sum())
        loss = float(mv["contraction"].sum() + mv["churned"].sum())
        if loss <= 0:
            return f"No MRR was lost to churn or contraction in the last {len(mv)} months."
        share = gain / loss
        verdict = ("more than offset" if share >= 1 else "offset most of" if share >= 0.5 else "offset only")
        return (f"Expansion and reactivation (+{self.money(gain)}) {verdict} the MRR lost to contraction and "
                f"churn (-{self.money(loss)}) over the last {len(mv)} months: {fmt_pct(share, 0)} of the losses.")

    def _finding_nrr(self) -> str:
        tr = self.trailing
        if tr is None or tr.empty or pd.isna(tr["nrr"].iloc[-1]):
            return ""
        last = tr.iloc[-1]
        first = tr.dropna(subset=["nrr"]).iloc[0]
        move = ""
        if first["month"] != last["month"]:
            move = f" (from {fmt_pct(first['nrr'])} and {fmt_pct(first['grr'])} in {first['month']})"
        return (f"Trailing-12-month **NRR is {fmt_pct(last['nrr'])}** and **GRR {fmt_pct(last['grr'])}** in "
                f"{last['month']}{move}; {fmt_pct(last['logo_retention'])} of the customers paying a year earlier "
                "still pay.")

    def _comparable(self, age: int) -> pd.DataFrame:
        c = self.cohorts
        return c[(c["age"] == age) & (c["cohort_size"] >= self.min_cohort_size)]

    def _finding_cohorts(self) -> str:
        c = self.cohorts
        if c is None or c.empty:
            return ""
        for age in (12, 6, 3):
            rows = self._comparable(age)
            if len(rows) >= 3:
                break
        else:
            return ""
        best = rows.loc[rows["retention"].idxmax()]
        worst = rows.loc[rows["retention"].idxmin()]
        avg = rows["active"].sum() / rows["cohort_size"].sum()
        return (f"At {age} months, cohort {best['cohort']} keeps the most customers ({fmt_pct(best['retention'])}) "
                f"and {worst['cohort']} the fewest ({fmt_pct(worst['retention'])}), against a size-weighted "
                f"{fmt_pct(avg)} over the {len(rows)} cohorts that old.")

    def _finding_trend(self) -> str:
        for age in (6, 3):
            rows = self._comparable(age).sort_values("cohort")
            if len(rows) >= 6:
                break
        else:
            return ""
        n = min(6, len(rows) // 2)
        new, old = rows.iloc[-n:], rows.iloc[-2 * n:-n]
        r_new = new["active"].sum() / new["cohort_size"].sum()
        r_old = old["active"].sum() / old["cohort_size"].sum()
        diff = r_new - r_old
        word = "better" if diff > 0.005 else "worse" if diff < -0.005 else "about as well"
        detail = f" ({fmt_pct(r_new)} vs {fmt_pct(r_old)})"
        return (f"The latest {n} cohorts with {age} months of history retain {word} at {age} months than the "
                f"{n} before them{detail}.")

    def _finding_survival(self) -> str:
        s = self.survival
        if s is None or s.empty:
            return ""
        age = 12 if (s[s["group"] == ALL]["age"].max() or 0) >= 12 else int(s[s["group"] == ALL]["age"].max())
        if age < 1:
            return ""
        at = s[s["age"] == age].set_index("group")
        if ALL not in at.index:
            return ""
        a = at.loc[ALL]
        text = (f"{fmt_pct(a['survival'])} of customers are still paying without interruption {age} "
                f"month{'s' if age != 1 else ''} after "
                f"their first payment (95% CI {fmt_pct(a['ci_low'])}–{fmt_pct(a['ci_high'])})")
        others = [g for g in at.index if g != ALL]
        if others and self.survival_by:
            label = self.survival_by.replace("_", " ")
            text += f"; by {label}: " + ", ".join(f"{label_of(g)} {fmt_pct(at.loc[g, 'survival'])}" for g in others)
        return text + "."

    def _finding_unit(self) -> str:
        u = self.unit
        if u is None or u.empty:
            return ""
        r = u.iloc[0]
        if pd.isna(r["ltv"]):
            return ""
        cap = f"{r['lifetime_months']:.0f}-month"
        if r["lifetime_capped"]:
            life = (f"a lifetime capped at {r['lifetime_months']:.0f} months"
                    + ("" if pd.isna(r["ltv_uncapped"]) else
                       f"; uncapped LTV {self.money(r['ltv_uncapped'])} would assume "
                       f"{1 / r['revenue_churn_rate'] / 12:.0f} years"))
        else:
            life = f"a lifetime of 1 / churn = {r['lifetime_months']:.0f} months"
        # the 12-month churn's figure once, "the same" when it reads the same (both lifetimes at the cap)
        ltv12 = self.money(r["ltv_12m"])
        text = (f"LTV is {self.money(r['ltv'])} (ARPA {self.money(r['arpa'])} × gross margin "
                f"{fmt_pct(r['gross_margin'], 0)} × {life}; revenue churn {fmt_pct(r['revenue_churn_rate'], 2)} "
                f"a month in {r['months']}; {'the same' if ltv12 == self.money(r['ltv']) else ltv12} at the "
                f"12-month average churn of {fmt_pct(r['revenue_churn_rate_12m'], 2)})")
        if not pd.isna(r["cac"]):
            ratio, ratio12 = f"{r['ltv_to_cac']:.1f}", f"{r['ltv_12m_to_cac']:.1f}"
            at12 = ("" if pd.isna(r["ltv_12m_to_cac"]) else
                    f"; {'the same' if ratio12 == ratio else ratio12} at the 12-month churn")
            payback = ("" if pd.isna(r["cac_payback_months"])
                       else f", CAC paid back in {r['cac_payback_months']:.1f} months")
            text += (f" against a CAC of {self.money(r['cac'])}: **LTV:CAC {ratio}** "
                     f"(with the {cap} lifetime{at12}){payback}")
        else:
            text += "; CAC needs marketing_spend and opportunities"
        return text + "."

    # -- headlines ----------------------------------------------------------
    def headlines(self) -> list[tuple[str, str]]:
        """Headline numbers for ``reports/index.html``."""
        if not self.available:
            return [("Retention", "no data")]
        out = []
        if self.movements is not None and len(self.movements):
            out.append(("MRR", self.money(self.movements["ending_mrr"].iloc[-1])))
        if self.trailing is not None and len(self.trailing):
            # the scorecard's KPIs, under their names (revops_lib.metrics.kpis) and in their format
            out.append((KPI_BY_KEY["nrr_12m"].label, fmt_pct(self.trailing["nrr"].iloc[-1])))
            out.append((KPI_BY_KEY["grr_12m"].label, fmt_pct(self.trailing["grr"].iloc[-1])))
        if self.unit is not None and not pd.isna(self.unit["ltv_to_cac"].iloc[0]):
            u = self.unit.iloc[0]
            out.append(("LTV:CAC", f"{u['ltv_to_cac']:.1f} ({u['lifetime_months']:.0f}-month lifetime"
                                   f"{', capped' if u['lifetime_capped'] else ''})"))
        return out

    # -- sections -----------------------------------------------------------
    def logo_heatmap(self):
        """Logo retention heatmap table (cohort × age) with the weighted-average row; publishes ``logo_retention``."""
        return self._heatmap(logo_retention, "logo_retention", "retention",
                             "Logo retention: share of each cohort's customers still paying")

    def revenue_heatmap(self):
        """NRR heatmap table (cohort × age) with the weighted-average row; publishes ``revenue_retention``."""
        return self._heatmap(revenue_retention, "revenue_retention", "nrr",
                             "Net revenue retention: cohort MRR vs its first month")

    def _heatmap(self, published, name: str, value: str, title: str):
        if not self.available:
            return self._missing()
        publish(published(self.cohorts), name)
        return charts.cohort_heatmap_table(self.cohorts, value=value, average=self.average, title=title)

    def retention_curves(self):
        """Average logo retention, NRR and GRR by age; publishes ``retention_average``."""
        if not self.available:
            return self._missing()
        self.chart(self.average, "retention_average", charts.plot_retention_curves)

    def quarterly_table(self):
        """Quarterly cohorts: logo retention and NRR every 3 months of age; publishes ``quarterly_retention``."""
        if not self.available:
            return self._missing()
        publish(self.quarterly, "quarterly_retention")
        q = self.quarterly
        if q.empty:
            return md("No quarterly cohort yet.")
        ages = [a for a in range(0, int(q["age"].max()) + 1, 3)]
        q = q[q["age"].isin(ages)]
        logo = q.pivot(index="cohort", columns="age", values="retention")
        nrr = q.pivot(index="cohort", columns="age", values="nrr")
        sizes = q.groupby("cohort")["cohort_size"].first()
        out = pd.DataFrame({"cohort": logo.index, "customers": sizes.reindex(logo.index).to_numpy()})
        for a in ages:
            if a == 0:
                continue
            out[f"logo M{a}"] = logo[a].to_numpy() if a in logo else np.nan
        for a in ages:
            if a == 0:
                continue
            out[f"NRR M{a}"] = nrr[a].to_numpy() if a in nrr else np.nan
        fmts = {c: (lambda x: fmt_pct(x, 0) if not pd.isna(x) else "—") for c in out.columns if " M" in c}
        fmts["customers"] = "{:,}"
        return style_table(out, fmts)

    def survival_chart(self):
        """Kaplan–Meier curves with 95% bands; publishes ``survival``."""
        if not self.available:
            return self._missing()
        self.chart(self.survival, "survival", charts.plot_survival, by=self.survival_by)

    def survival_table(self):
        """Share still paying at 3, 6, 12, 24 months per group, with the 95% interval."""
        if not self.available:
            return self._missing()
        s = self.survival
        rows = []
        for g, part in s.groupby("group", sort=False):
            part = part.set_index("age")
            row = {"group": g, "customers": int(part["at_risk"].iloc[0])}
            for a in (3, 6, 12, 24):
                if a in part.index:
                    r = part.loc[a]
                    row[f"{a} months"] = (f"{fmt_pct(r['survival'])} "
                                          f"({fmt_pct(r['ci_low'], 0)}–{fmt_pct(r['ci_high'], 0)})")
                else:
                    row[f"{a} months"] = None
            rows.append(row)
        return style_table(pd.DataFrame(rows), {"customers": "{:,}"})

    def movements_chart(self):
        """MRR movements per month (gains up, losses down, net change); publishes ``mrr_movements``."""
        if not self.available:
            return self._missing()
        publish(self.movements[MOVEMENT_COLUMNS], "mrr_movements")
        self.chart(self.movements, "mrr_movements", charts.plot_mrr_movements, published=True,
                   currency=self.currency)

    def movements_table(self):
        """The movements table, formatted (money), with the logo counts, and the link to the customers behind the
        movements of the report period's months (published as ``mrr_movements_records.csv``)."""
        if not self.available:
            return self._missing()
        mv = self.movements
        show = mv[MOVEMENT_COLUMNS + ["new_logos", "churned_logos", "ending_customers"]].rename(columns={
            "starting_mrr": "starting MRR", "ending_mrr": "ending MRR", "new_logos": "new customers",
            "churned_logos": "churned customers", "ending_customers": "customers"})
        money = ["starting MRR", "new", "expansion", "reactivation", "contraction", "churned", "ending MRR"]
        fm = {c: (lambda x: self.money(x)) for c in money}
        fm.update({c: "{:,}" for c in ("new customers", "churned customers", "customers")})
        styled = style_table(show, fm)
        if self.movement_records is None:
            return styled
        months = self.movement_records.attrs.get("months") or sorted(set(self.movement_records["month"]))
        span = months[0] if len(months) == 1 else f"{months[0]} to {months[-1]}" if months else self.last_month
        return self.with_records(styled, self.movement_records, "mrr_movements",
                                 f"the customers behind the movements of {span}")

    def arr_bridge_chart(self):
        """ARR bridge over the movements' months (waterfall); publishes ``arr_bridge``."""
        if not self.available:
            return self._missing()
        self.chart(self.bridge, "arr_bridge", charts.plot_arr_bridge, currency=self.currency)

    def nrr_chart(self):
        """Trailing-12-month NRR, GRR and logo retention by month; publishes ``trailing_retention``."""
        if not self.available:
            return self._missing()
        self.chart(self.trailing, "trailing_retention", charts.plot_nrr_trend)

    def segment_table(self):
        """Trailing-12-month NRR, GRR and logo retention by segment at the last complete month, with the interval
        and test of logo retention (published as ``retention_by_segment.csv``), and the link to the base customers
        behind it (``retention_by_segment_records.csv``)."""
        if self.segments is None:
            return md("No `segment` column on the subscriptions: no retention by segment.")
        shown = segment_views.retention_table(self.segments, by=self.segments_by, money=self.money)
        if self.segment_records is None or self.segments.empty:
            return shown
        return self.with_records(shown, self.segment_records, "retention_by_segment",
                                 "the base customers behind each row")

    def kpi_table(self):
        """Monthly customers, MRR, ARPA, churn rates and quick ratio; publishes ``monthly_kpis``."""
        if not self.available:
            return self._missing()
        k = self.kpis
        publish(k, "monthly_kpis")
        t = self.trailing[["month", "nrr", "grr"]].rename(columns={"nrr": "NRR 12m", "grr": "GRR 12m"})
        show = k.merge(t, on="month", how="left").drop(columns=["arr"]).rename(columns={
            "mrr": "MRR", "arpa": "ARPA", "logo_churn_rate": "Logo churn", "revenue_churn_rate": "Revenue churn",
            "net_mrr_growth": "MRR growth", "quick_ratio": "Quick ratio"})
        fm = {"customers": "{:,}", "MRR": lambda x: self.money(x), "ARPA": lambda x: self.money(x),
              "Logo churn": lambda x: fmt_pct(x, 2), "Revenue churn": lambda x: fmt_pct(x, 2),
              "MRR growth": lambda x: fmt_pct(x, 1), "Quick ratio": lambda x: "—" if pd.isna(x) else f"{x:.1f}",
              "NRR 12m": lambda x: fmt_pct(x), "GRR 12m": lambda x: fmt_pct(x)}
        return style_table(show, fm)

    def unit_economics_table(self):
        """LTV, CAC, payback and LTV:CAC with their inputs and definitions; publishes ``unit_economics``."""
        if not self.available:
            return self._missing()
        publish(self.unit, "unit_economics")
        r = self.unit.iloc[0]
        num = lambda x, f: "—" if x is None or pd.isna(x) else f.format(x)  # noqa: E731
        rows = [
            ("ARPA", self.money(r["arpa"]), f"MRR / paying customers at the end of {self.last_month}"),
            ("Revenue churn rate (monthly)", fmt_pct(r["revenue_churn_rate"], 2),
             f"(churned + contraction) / starting MRR, months {r['months']}"),
            ("Gross margin", fmt_pct(r["gross_margin"], 0), "parameter gross_margin"),
            ("Customer lifetime", num(r["lifetime_months"], "{:.0f} months"),
             "1 / revenue churn rate, capped at the parameter ltv_max_months"
             + (" (capped)" if r["lifetime_capped"] else "")),
            ("LTV", self.money(r["ltv"]), "ARPA × gross margin × customer lifetime"),
            ("Uncapped LTV", self.money(r["ltv_uncapped"]),
             "ARPA × gross margin / revenue churn rate (no cap: a low churn implies an implausibly long life)"),
            ("Sales and marketing spend", self.money(r["spend"]), f"Σ marketing_spend.spend in {self.period}"),
            ("New customers", num(r["new_customers"], "{:,.0f}"),
             "accounts with a first won new_business opportunity in the period"),
            ("CAC", self.money(r["cac"]), "spend / new customers"),
            ("ARPA of new customers", self.money(r["new_customer_arpa"]),
             f"new MRR / customers whose first paid month was in {r['months']}"),
            ("CAC payback", num(r["cac_payback_months"], "{:.1f} months"),
             "CAC / (ARPA of new customers × gross margin)"),
            ("LTV:CAC", num(r["ltv_to_cac"], "{:.1f}"), "LTV / CAC"),
            ("Revenue churn rate, 12-month average", fmt_pct(r["revenue_churn_rate_12m"], 2),
             "Σ (churned + contraction) / Σ starting MRR over the last 12 months (context: one month is noisy)"),
            ("LTV at the 12-month churn rate", self.money(r["ltv_12m"]),
             "ARPA × gross margin × lifetime at the 12-month revenue churn rate (capped alike)"),
            ("LTV:CAC at the 12-month churn rate", num(r["ltv_12m_to_cac"], "{:.1f}"), "LTV (12-month churn) / CAC"),
        ]
        return style_table(pd.DataFrame(rows, columns=["metric", "value", "How it is computed"]))


def analyze(source, *, period, as_of=None, currency: str = "USD", gross_margin: float = 0.8, cohorts: int = 24,
            quarters: int = 8, movement_months: int = 12, survival_by: str | None = "segment",
            min_cohort_size: int = 20, fiscal_year_start_month: int | None = None,
            ltv_max_months: float = 60) -> RetentionReport:
    """Compute every table of the ``cohort_retention`` report for one period.

    Parameters
    ----------
    source : Source or source spec
        Uses ``subscriptions`` (else ``transactions``), and ``opportunities`` and
        ``marketing_spend`` for CAC when present.
    period : str or Period
    as_of : str or Timestamp, optional
    currency : str
    gross_margin : float, default 0.8
    cohorts : int, default 24
        Monthly cohorts in the heatmaps and published tables.
    quarters : int, default 8
        Quarterly cohorts in the quarterly table.
    movement_months : int, default 12
        Months of MRR movements, KPIs and trailing NRR/GRR.
    survival_by : str, optional
        Survival curves per value of this subscriptions column (default
        ``segment``); without it (or from transactions), per cohort year.
    min_cohort_size : int, default 20
        Cohorts smaller than this are left out of the best/worst findings.
    ltv_max_months : float, default 60
        The cap on the customer lifetime behind LTV (METRICS.md); the uncapped LTV is shown as such.

    Returns
    -------
    RetentionReport
    """
    gross_margin = check_fraction(gross_margin, "gross_margin")
    min_cohort_size = check_int(min_cohort_size, "min_cohort_size", 0)
    src = open_source(source)
    p = parse_period(period, fiscal_year_start_month=fiscal_year_start_month) if not isinstance(period, Period) \
        else period
    cut = resolve_as_of(p, as_of)
    if not (src.has("subscriptions") or src.has("transactions")):
        rr = RetentionReport(period=p, as_of=cut, currency=currency, gross_margin=gross_margin,
                             note=f"No `subscriptions` or `transactions` table in {src.description}: "
                                  "cohort retention cannot be computed.")
        rr.left_out = RetentionReport.plan(src)
        return rr
    basis = "subscriptions" if src.has("subscriptions") else "transactions"
    by = survival_by if basis == "subscriptions" and survival_by else None
    if by is not None and by not in src.table("subscriptions").columns:
        by = None
    cm = customer_mrr(src, period=p, as_of=cut, by=by, cache=True)
    try:
        table = cohort_retention(cm, cohorts=cohorts)
        average = cohort_average(table)
        quarterly = quarterly_retention(cm, quarters=quarters,
                                        fiscal_year_start_month=fiscal_year_start_month or p.fiscal_year_start_month)
        months = max(movement_months, cm.last_month - period_months(p, cm.last_month)[0] + 1)
        movements_all = mrr_movements(cm, months=months)
        movements = movements_all.iloc[-movement_months:].reset_index(drop=True)
        movement_records = mrr_movement_records(cm)
        bridge = arr_bridge(movements)
        kpis = monthly_kpis(movements)
        trailing = trailing_retention(cm, months=movement_months)
        segs = retention_by(cm, by=by) if by is not None else None
        seg_records = retention_records(cm, by=by) if by is not None else None
        if by is not None:
            surv = survival(cm, by=by)
            surv_by = by
        else:
            surv = survival(cm, cohort_group="cohort_year")
            surv_by = "cohort_year"
        unit = unit_economics(cm, period=p, as_of=cut, gross_margin=gross_margin, movements=movements_all,
                              ltv_max_months=ltv_max_months)
    finally:
        cm.release()
    rr = RetentionReport(period=p, as_of=cut, currency=currency, gross_margin=gross_margin, basis=basis,
                         last_month=cm.last_month_label, cohorts=table, average=average, quarterly=quarterly,
                         movements=movements, bridge=bridge, kpis=kpis, trailing=trailing, survival=surv,
                         survival_by=surv_by, unit=unit, min_cohort_size=min_cohort_size,
                         movement_records=movement_records)
    rr.segments, rr.segments_by, rr.segment_records = segs, by, seg_records
    return rr


def build(*, period: str = "", source: str = "../data/demo", as_of: str = "", currency: str = "USD",
          fiscal_year_start_month: int = 1, privacy: str = "names", labels: dict | None = None,
          slices: dict | None = None, output_dir: str = "", preset: str = "", gross_margin: float = 0.8,
          cohorts: int = 24, quarters: int = 8, movement_months: int = 12, survival_by: str = "segment",
          min_cohort_size: int = 20, ltv_max_months: float = 60) -> RetentionReport:
    """The report from the notebook's parameters (an empty ``survival_by``: survival by cohort year)."""
    ctx = context(period=period, as_of=as_of, source=source, currency=currency,
                  fiscal_year_start_month=fiscal_year_start_month, output_dir=output_dir, privacy=privacy,
                  labels=labels, preset=preset, slices=slices)
    rr = analyze(ctx.source, period=ctx.period, as_of=ctx.as_of, currency=currency, gross_margin=gross_margin,
                 cohorts=cohorts, quarters=quarters, movement_months=movement_months, ltv_max_months=ltv_max_months,
                 survival_by=survival_by or None, min_cohort_size=min_cohort_size)
    rr.record_headlines()
    return rr
