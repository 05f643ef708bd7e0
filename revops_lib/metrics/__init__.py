"""Metrics: pure computation, one module per family (Ibis or pandas in, pandas out).

========================  ===============================================================
module                    family
========================  ===============================================================
``common``                one ratio, engine helpers (cents, microseconds), argument checks
``targets``               the one lookup of ``targets`` rows (scorecard, pacing, coverage) and of quotas
``lead_funnel``           lifecycle funnel: stage conversion, timing, cohort trend, activity
``deals``                 deal-stage funnel, win rate, deal size, cycle, velocity, open pipeline
``deal_history``          every deal's state at any instant (the forecast family's conventions)
``pipeline``              open pipeline by period, coverage, slippage, waterfall, actuals
``forecast``              forecast accuracy and the baseline forecast
``mrr``                   customer MRR, MRR movements, trailing NRR / GRR
``cohorts``               cohort retention and survival
``economics``             spend, new customers, CAC, LTV, payback
``channels``              channel economics: the funnel, revenue, spend, CAC, ROAS, payback per lead source
``reps``                  rep and team performance: quota attainment, win rate, cycle, pipeline, activity
``stage_time``            time in deal stage by outcome, stuck deals
``segments``              segments side by side: win rate and trailing NRR / GRR / logo retention per segment
``scorecard``             KPI definitions, values, targets, pacing and status; last year and year to date
``quality``               coverage, freshness and anomalies of the data
``records``               the customers, deals and leads behind movements, waterfall steps, conversion, rep figures
========================  ===============================================================

Metric modules import foundations (errors, periods, schema, sources, statistics) and each
other, never presentation (formatting, charts, sections) or the runner.
"""
