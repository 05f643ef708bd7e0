"""The funnel report's channel economics and time-in-deal-stage parts (mixed into
:class:`revops_lib.present.sections.funnel.FunnelReport`), and their definitions for the report's footer."""

from __future__ import annotations

import pandas as pd

from revops_lib.metrics.channels import CHANNEL_COLUMNS, UNATTRIBUTED
from revops_lib.metrics.lead_funnel import TOTAL
from revops_lib.metrics.stage_time import TIME_IN_STAGE_COLUMNS
from revops_lib.present.charts import sales as charts
from revops_lib.present.format import MISSING, fmt_days, fmt_int, fmt_money, fmt_pct, stage_label
from revops_lib.present.labels import label
from revops_lib.present.publish import publish
from revops_lib.present.section import needs_part
from revops_lib.present.tables import style_table
from revops_lib.present.text import md

__all__ = ["ChannelAndStageParts", "FOOTNOTES"]

FOOTNOTES = [
    ("Channel economics", "per lead source, the period's flow as the scorecard counts it: leads created, MQLs and "
     "SQLs entering the stage, opportunities created and pipeline created (Σ their amount), revenue won (Σ amount "
     "won, every type), new customers (accounts whose first won new-business deal closed in the period); the all "
     "row equals the scorecard's blended figures."),
    ("Attributed source", "first touch through the lead → opportunity → account link: the opportunity's own source, "
     "else the source of the earliest lead linked to the opportunity, else of the account's earliest lead, else "
     "unattributed (never dropped)."),
    ("Spend by channel", "marketing_spend of the period per channel, mapped to a lead source by the channel_map "
     "parameter (a channel named like a source maps to it); spend that maps to no source has a row of its own, "
     "unattributed:<channel>; a source no channel maps to has no spend (—)."),
    ("Cost per lead, CAC, ROAS, payback", "cost per lead = spend / leads; CAC = spend / new customers; ROAS = "
     "new-business revenue won / spend; payback months = CAC / (starting MRR per new customer × gross margin), "
     "starting MRR = the MRR of a new customer's first subscriptions."),
    ("Time in deal stage", "from opportunity_history: days from a deal's entry into a stage to its next stage "
     "change, for the deals that left the stage in the period, by their outcome at the cut-off (won, lost, still "
     "open); median and 90th percentile (linear interpolation between order statistics). Closed stages are not "
     "timed."),
    ("Stuck deal", "a deal open at the cut-off whose time in its current stage already exceeds that stage's 90th "
     "percentile in the period."),
]


class ChannelAndStageParts:
    """Channel economics (part ``channels``) and time in deal stage (part ``stage_time``) of the funnel report.

    Reads the report's ``channels`` (:func:`revops_lib.metrics.channels.channel_economics`), ``stage_times``
    (:func:`revops_lib.metrics.stage_time.time_in_stage`) and ``stuck``
    (:func:`revops_lib.metrics.stage_time.stuck_deals`).
    """

    def more_findings(self) -> list[str]:
        """One sentence on the channels' returns and one on stuck deals, for the report's findings."""
        out = []
        c = self.channels
        if "channels" not in self.left_out and c is not None and self._has_spend():
            rows = c[(c["source"] != TOTAL) & ~c["source"].str.startswith(f"{UNATTRIBUTED}:") & c["roas"].notna()
                     & (c["spend"] > 0)].sort_values("roas", ascending=False)
            tot = c[c["source"] == TOTAL].iloc[0]
            if len(rows) >= 2:
                best, worst = rows.iloc[0], rows.iloc[-1]
                out.append(f"Of the sources with spend, {label(best['source'])} returned the most new-business "
                           f"revenue per unit of spend ({best['roas']:,.2f}×) and {label(worst['source'])} the least "
                           f"({worst['roas']:,.2f}×); blended CAC {fmt_money(tot['cac'], self.currency)}.")
        s = self.stuck
        if "stage_time" not in self.left_out and s is not None and len(s):
            amount = fmt_money(s["amount"].sum(), self.currency)
            out.append(f"{len(s):,} open deal{'s' if len(s) != 1 else ''} ({amount}) {'has' if len(s) == 1 else 'have'}"
                       f" sat in a stage longer than 90% of the deals that left it in "
                       f"{self.period}: see Stuck deals.")
        return out

    # -- channel economics ------------------------------------------------------------------------

    def _has_spend(self) -> bool:
        return self.channels is not None and self.channels["spend"].notna().any()

    @needs_part("channels")
    def channel_note(self):
        """What the channel table rests on: the spend mapping and what is unattributed (Markdown)."""
        c = self.channels
        if c is None or c.empty:
            return md(f"No lead, deal or spend in {self.period}: nothing to attribute.")
        lines = []
        mapping = c.attrs.get("channels", {})
        if mapping:
            mapped = [f"{label(ch)} → {label(row)}" for ch, row in mapping.items() if not row.startswith(UNATTRIBUTED)]
            own = [label(ch) for ch, row in mapping.items() if row.startswith(UNATTRIBUTED)]
            text = "Spend channels: " + ("; ".join(mapped) if mapped else "none maps to a lead source")
            if own:
                one = len(own) == 1
                names = own[0] if one else ", ".join(own[:-1]) + " and " + own[-1]
                text += (f". {names} map{'s' if one else ''} to no lead source and {'stands' if one else 'stand'} on a "
                         f"row of {'its' if one else 'their'} own (set `channel_map` to attribute "
                         f"{'it' if one else 'them'})")
            lines.append(text + ".")
        else:
            lines.append("No `marketing_spend` table: spend, cost per lead, CAC, ROAS and payback are left out.")
        tot = c[c["source"] == TOTAL]
        un = c[c["source"] == UNATTRIBUTED]
        if len(un) and len(tot):
            u, t = un.iloc[0], tot.iloc[0]
            share = [f"{fmt_pct(u[k] / t[k])} of {what}" for k, what in (("leads", "leads"),
                                                                        ("pipeline_created", "pipeline"))
                     if pd.notna(u[k]) and pd.notna(t[k]) and t[k]]
            if share:
                lines.append(f"Unattributed (no source on the lead, the deal or its account): {', '.join(share)}.")
        if self._has_spend():
            lines.append("A source's CAC and payback rest on its few new customers of the period: read them over a "
                         "quarter before moving budget.")
        return md("\n".join(f"- {x}" for x in lines))

    @needs_part("channels")
    def channel_table(self):
        """Per source: leads to revenue, spend and its returns (published as ``channel_economics.csv``)."""
        c = self.channels
        if c is None or c.empty:
            publish(pd.DataFrame(columns=CHANNEL_COLUMNS), "channel_economics")
            return md(f"No lead, deal or spend in {self.period}.")
        publish(c[CHANNEL_COLUMNS], "channel_economics")
        money = lambda x: fmt_money(x, self.currency)  # noqa: E731
        shown = pd.DataFrame({
            "source": c["source"].map(lambda s: "All (blended)" if s == TOTAL else s),
            "Leads": c["leads"].map(fmt_int), "MQLs": c["mqls"].map(fmt_int), "SQLs": c["sqls"].map(fmt_int),
            "Opportunities": c["opportunities"].map(fmt_int), "Pipeline created": c["pipeline_created"].map(money),
            "Revenue won": c["revenue_won"].map(money), "New customers": c["new_customers"].map(fmt_int),
        })
        if self._has_spend():
            shown["Spend"] = c["spend"].map(money)
            shown["Cost per lead"] = c["cost_per_lead"].map(money)
            shown["CAC"] = c["cac"].map(money)
            shown["ROAS"] = c["roas"].map(lambda v: MISSING if pd.isna(v) else f"{v:,.2f}×")
            shown["Payback"] = c["payback_months"].map(lambda v: MISSING if pd.isna(v) else f"{v:,.1f} months")
        bold = c["source"].eq(TOTAL).to_numpy()
        styled = style_table(shown).apply(lambda r: ["font-weight: bold" if bold[r.name] else "" for _ in r], axis=1)
        if self.channel_records is None:
            return styled
        return self.with_records(styled, self.channel_records, "channel_economics",
                                 f"the deals behind each source's opportunities, pipeline, revenue and new customers "
                                 f"in {self.period}")

    @needs_part("channels")
    def channel_chart(self) -> None:
        """CAC and ROAS of each source with spend (the numbers of ``channel_economics.csv``)."""
        if not self._has_spend():
            from IPython.display import display

            display(md("*No spend mapped to a lead source: no CAC or ROAS to chart.*"))
            return
        self.chart(self.channels, "channel_economics", charts.plot_channel_economics, published=True,
                   currency=self.currency)

    # -- time in deal stage ---------------------------------------------------------------------

    @needs_part("stage_time")
    def stage_time_table(self):
        """Median and 90th-percentile days per deal stage and outcome (published as ``time_in_stage.csv``)."""
        t = self.stage_times
        if t is None:
            t = pd.DataFrame(columns=TIME_IN_STAGE_COLUMNS)
        publish(t[TIME_IN_STAGE_COLUMNS], "time_in_stage")
        if t.empty:
            return md(f"No deal left a stage in {self.period}.")
        shown = pd.DataFrame({
            "Stage": t["stage"].map(stage_label),
            "Outcome": t["outcome"].map(lambda o: "all deals" if o == TOTAL else o),
            "Deals": t["n"].map(fmt_int), "Median": t["median_days"].map(fmt_days),
            "90th percentile": t["p90_days"].map(fmt_days),
            "Note": [f"fewer than {self.min_sample} deals" if n < self.min_sample else "" for n in t["n"]],
        })
        bold = t["outcome"].eq(TOTAL).to_numpy()
        return style_table(shown).apply(lambda r: ["font-weight: bold" if bold[r.name] else "" for _ in r], axis=1)

    @needs_part("stage_time")
    def stage_time_chart(self) -> None:
        """Median days by stage and outcome, p90 ticked (the numbers of ``time_in_stage.csv``)."""
        if self.stage_times is None or self.stage_times.empty:
            from IPython.display import display

            display(md(f"*No deal left a stage in {self.period}.*"))
            return
        self.chart(self.stage_times, "time_in_stage", charts.plot_time_in_stage, published=True)

    def _stuck(self) -> pd.DataFrame:
        return self.stuck if self.stuck is not None else pd.DataFrame(
            columns=["opportunity_id", "stage", "entered_at", "days_in_stage", "stage_p90_days", "times_p90",
                     "amount", "close_date", "owner", "team"])

    @needs_part("stage_time")
    def stuck_note(self):
        """How many open deals are stuck and how much pipeline they hold (Markdown)."""
        s = self._stuck()
        if s.empty:
            return md("No open deal has been in its stage longer than that stage's 90th percentile.")
        return md(f"**{len(s):,} open deal{'s' if len(s) != 1 else ''}** "
                  f"({fmt_money(s['amount'].sum(), self.currency)}) "
                  f"{'has' if len(s) == 1 else 'have'} been in a stage longer than its 90th percentile at the cut-off.")

    @needs_part("stage_time")
    def stuck_table(self, limit: int = 15):
        """Open deals in a stage longer than its p90, longest first (all published as ``stuck_deals.csv``)."""
        def shown(s):  # only the rows shown are formatted (a big pipeline has tens of thousands of stuck deals)
            return pd.DataFrame({
                "Deal": s["opportunity_id"], "Stage": s["stage"].map(stage_label),
                "In stage since": pd.to_datetime(s["entered_at"]).dt.strftime("%Y-%m-%d"),
                "Days in stage": s["days_in_stage"].map(fmt_days), "Stage p90": s["stage_p90_days"].map(fmt_days),
                "Amount": s["amount"].map(lambda v: fmt_money(v, self.currency)),
                "Owner": s["owner"].fillna(MISSING), "team": s["team"],
            })

        return self.table(self._stuck(), "stuck_deals", shown, limit=limit, empty="No stuck deal.")
