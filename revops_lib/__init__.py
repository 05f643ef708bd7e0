"""revops-kit: one trustworthy, data-driven view of marketing, sales and customer success.

The library holds every computation behind the notebooks in ``notebooks/``:

- :mod:`revops_lib.periods` — period labels (``2026-10``, ``2026-Q4``, ``2026-W44``);
- :mod:`revops_lib.schema` — the data contract and ``validate``;
- :mod:`revops_lib.sources` — open a folder / DuckDB file / Ibis URL as typed Ibis tables;
- :mod:`revops_lib.demo` — a realistic synthetic B2B SaaS company;
- :mod:`revops_lib.outdirs` — where output may be written (never over data the kit did not make);
- :mod:`revops_lib.funnel` — lifecycle and deal-stage funnels, win rate, cycle, velocity;
- :mod:`revops_lib.forecast` — forecast accuracy, baseline forecast, coverage, slippage, waterfall;
- :mod:`revops_lib.retention` — cohort retention, NRR/GRR, MRR movements, survival, LTV and CAC;
- :mod:`revops_lib.scorecard` — the KPI scorecard with targets and pacing;
- :mod:`revops_lib.quality` — data-quality summaries behind the ``data_quality`` report;
- :mod:`revops_lib.plots` — the charts and number formats;
- :mod:`revops_lib.report` — run notebooks with Papermill and render HTML;
- :mod:`revops_lib.cli` — the ``revops`` command.
"""

import warnings as _warnings
from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("revops-kit")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

# Noise from Ibis 12 running on pandas 3 / DuckDB 1.5 (not actionable by users).
_warnings.filterwarnings("ignore", message="The 'future.infer_string' option is deprecated")
_warnings.filterwarnings("ignore", message=r"fetch_arrow_table\(\) is deprecated")

from revops_lib.errors import OutputError, PeriodError, RevOpsError, SchemaError, SourceError

__all__ = ["__version__", "RevOpsError", "PeriodError", "SchemaError", "SourceError", "OutputError"]
