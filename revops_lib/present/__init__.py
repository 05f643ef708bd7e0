"""Presentation: formats and labels, tables, charts, and one section per report.

- :mod:`.format` — one formatter per kind (money, percent, points, days, stage names, KPI values);
- :mod:`.text` — safe prose (:func:`~.text.md`), e-mail hiding, CSV-injection neutralising;
- :mod:`.tables` — :func:`~.tables.style_table`; :mod:`.charts` — ``plot_<thing>(data, *, ax=None)``;
- :mod:`.publish` — the CSV behind every table and chart, headline numbers;
- :mod:`.section` — the base of every report's section object; :mod:`.sections` — one per report;
- :mod:`.context` — what a report page derives from its parameters.

Presentation imports metrics and foundations, never the runner or the CLI.
"""
