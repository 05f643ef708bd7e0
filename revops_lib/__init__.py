"""revops-kit: one trustworthy, data-driven view of marketing, sales and customer success.

The library holds every computation behind the notebooks in ``notebooks/``, in layers that import
only downward (a test walks every import):

1. **Foundations** — :mod:`~revops_lib.errors` (errors and warnings), :mod:`~revops_lib.periods`,
   :mod:`~revops_lib.schema` (the data contract), :mod:`~revops_lib.sources`, :mod:`~revops_lib.spark`,
   :mod:`~revops_lib.slices`,
   :mod:`~revops_lib.validation`, :mod:`~revops_lib.stats`, :mod:`~revops_lib.files`,
   :mod:`~revops_lib.outdirs`, :mod:`~revops_lib.demo` (the demo company), :mod:`~revops_lib.importers`
   (vendor exports and warehouse-landed tables mapped to the contract);
2. **Metrics** — :mod:`revops_lib.metrics`: pure computation, one module per family;
3. **Presentation** — :mod:`revops_lib.present`: formats, charts, one section per report;
4. **Runner** — :mod:`revops_lib.runner`: notebooks per period, warm kernels, HTML, the index;
5. **CLI** — :mod:`revops_lib.cli`, the ``revops`` command.

What an analyst calls from a notebook is here, e.g.::

    import revops_lib as rk
    src = rk.open_source("data/demo")
    src = rk.open_source("postgres://ana@db/dw", preset="fivetran_salesforce,fivetran_stripe")  # landed tables
    rk.validate(src).ok
    rk.metrics.lead_funnel.stage_conversion(src, period="2026-10")
    fr = rk.funnel_report(period="2026-10", source="data/demo")   # the report's section object
"""

import importlib
import warnings as _warnings

from revops_lib.version import __version__

# Noise from Ibis 12 running on pandas 3 / DuckDB 1.5 (not actionable by users).
_warnings.filterwarnings("ignore", message="The 'future.infer_string' option is deprecated")
_warnings.filterwarnings("ignore", message=r"fetch_arrow_table\(\) is deprecated")

from revops_lib.errors import (  # noqa: E402
    ApproximationWarning,
    ImmatureWarning,
    OutputError,
    ParameterError,
    PeriodError,
    RevOpsError,
    RevOpsWarning,
    SchemaError,
    SmallSampleWarning,
    SourceError,
)

#: Names imported on first use (``import revops_lib`` stays light): name -> (module, attribute).
_LAZY = {
    "open_source": ("revops_lib.importers", "open_source"),  # sources.open_source, plus preset=…
    "Source": ("revops_lib.sources", "Source"),
    "validate": ("revops_lib.validation", "validate"),
    "parse_period": ("revops_lib.periods", "parse_period"),
    "Period": ("revops_lib.periods", "Period"),
    "wilson_interval": ("revops_lib.stats", "wilson_interval"),
    "funnel_report": ("revops_lib.present.sections.funnel", "build"),
    "forecast_report": ("revops_lib.present.sections.forecast", "build"),
    "retention_report": ("revops_lib.present.sections.retention", "build"),
    "scorecard_report": ("revops_lib.present.sections.scorecard", "build"),
    "quality_report": ("revops_lib.present.sections.quality", "build"),
    "metrics": ("revops_lib.metrics", None),
    "demo": ("revops_lib.demo", None),
}

__all__ = ["__version__", "RevOpsError", "PeriodError", "SchemaError", "SourceError", "ParameterError",
           "OutputError", "RevOpsWarning", "ImmatureWarning", "ApproximationWarning", "SmallSampleWarning",
           *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        module, attr = _LAZY[name]
        mod = importlib.import_module(module)
        if module == "revops_lib.metrics":  # the families, as rk.metrics.lead_funnel
            for fam in ("common", "targets", "kpis", "lead_funnel", "deals", "deal_history", "pipeline", "forecast",
                        "mrr", "cohorts", "economics", "channels", "reps", "stage_time", "scorecard", "quality",
                        "records"):
                importlib.import_module(f"revops_lib.metrics.{fam}")
        return mod if attr is None else getattr(mod, attr)
    raise AttributeError(f"module 'revops_lib' has no attribute {name!r}")
