"""Charts: ``plot_<thing>(data, *, ax=None) -> Axes``, one module per report, the theme in :mod:`.base`.

The chart modules load lazily: ``from revops_lib.present.charts import funnel as charts`` (what every report
section does) gives the module without running it, and the first use of one of its names runs it, with
Matplotlib, seaborn and SciPy (about 2.5 s). So the report runner, which imports the sections only to see
which parts the tables allow, never loads the charting stack; a report kernel loads it at warm-up
(:func:`revops_lib.runner.kernels.warmup_code` sets the theme).
"""

from __future__ import annotations

import importlib.util
import sys

_MODULES = ("base", "forecast", "funnel", "quality", "retention", "sales", "scorecard")


def __getattr__(name: str):
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    full = f"{__name__}.{name}"
    if full in sys.modules:
        return sys.modules[full]
    spec = importlib.util.find_spec(full)
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[full] = module
    spec.loader.exec_module(module)  # (lazy: runs the module at the first use of one of its names)
    return module
