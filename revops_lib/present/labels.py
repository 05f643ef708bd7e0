"""One label map for what a person reads: KPI keys, sources, segments, deal types, stages, column headers.

:func:`label` turns a key into words — ``organic_search`` → ``Organic search``, ``mid_market`` →
``Mid-market``, ``hit_rate_10`` → ``Hit rate (±10 %)``, ``revenue_won:new_business`` → ``Revenue won —
New business`` — from, in this order: the report's ``labels`` parameter (:func:`set_labels`), the KPI
table (:mod:`revops_lib.metrics.kpis`), :data:`LABELS`, the stage names (:func:`stage_label`) and, for any
other lower-case key, its words with known abbreviations in capitals (``cac_payback`` → ``CAC payback``).
Text that is not a key (has capitals or spaces, or is not text) is left as it is: the data's own names
(``Acme Corp``, ``Enterprise Sales``) are never rewritten.

Tables (:func:`revops_lib.present.tables.style_table`: headers, and the values of category columns
such as ``source`` or ``segment``), charts (every tick and legend label that is a key) and the index use
it. Published CSVs keep the raw keys.
"""

from __future__ import annotations

import re

from revops_lib.metrics.kpis import KPI_BY_KEY
from revops_lib.present.format import stage_label

__all__ = ["LABELS", "CATEGORY_COLUMNS", "ABBREVIATIONS", "label", "kpi_label", "is_key", "set_labels",
           "labels_in_use"]

#: Keys whose words are not just the key's words (everything else is humanised by rule).
LABELS: dict[str, str] = {
    # segments, deal types, forecast categories, movements
    "smb": "SMB", "mid_market": "Mid-market", "new_business": "New business", "best_case": "Best case",
    "pipeline": "Pipeline", "commit": "Commit", "omitted": "Omitted", "closed_won": "Closed won",
    "closed_lost": "Closed lost", "reactivation": "Reactivation",
    # sources and channels
    "organic_search": "Organic search", "paid_search": "Paid search", "paid_social": "Paid social",
    "outbound": "Outbound", "referral": "Referral", "events": "Events", "partner": "Partner",
    # forecast accuracy
    "mape": "MAPE", "wape": "WAPE", "hit_rate_10": "Hit rate (±10 %)", "won_to_date": "Won to date",
    "pct_of_target": "% of target", "prior_value": "Prior", "ci_low": "Interval low", "ci_high": "Interval high",
    "p_value": "p-value", "n": "n", "pulled_in": "Pulled in", "pushed_out": "Pushed out",
    "complete": "Period complete", "forecast_period": "Forecast period", "measured_at": "Measured at",
    # KPI functions
    "customer_success": "Customer success",
}

#: Columns whose values are categories (a source, a segment, …) shown through :func:`label`.
CATEGORY_COLUMNS = frozenset({
    "source", "segment", "type", "deal_type", "stage", "from_stage", "to_stage", "scope", "forecast_scope",
    "channel", "forecast_category", "category", "kpi", "function", "indicator", "movement", "product",
    "team", "plan", "web_source", "metric", "group", "step",
})

#: Words shown in capitals.
ABBREVIATIONS = frozenset({"mql", "mqls", "sql", "sqls", "cac", "ltv", "nrr", "grr", "mrr", "arr", "csat", "ces",
                           "kpi", "kpis", "id", "utc", "roas", "crm", "mape", "wape", "smb", "ci", "url"})

_KEY = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
_overrides: dict[str, str] = {}


def is_key(text) -> bool:
    """Whether ``text`` is a lower-case key (``organic_search``, ``revenue_won:expansion``) rather than a name."""
    return isinstance(text, str) and all(_KEY.fullmatch(part) for part in text.split(":", 1))


def set_labels(overrides: dict | None) -> None:
    """The report's own labels (its ``labels`` parameter, e.g. ``{organic_search: SEO}``), used before any other."""
    _overrides.clear()
    _overrides.update({str(k): str(v) for k, v in (overrides or {}).items()})


def labels_in_use() -> dict[str, str]:
    """The labels set with :func:`set_labels` (a copy)."""
    return dict(_overrides)


def _words(key: str) -> str:
    words = [w.upper() if w in ABBREVIATIONS else w for w in key.split("_")]
    first = words[0]
    if first and first[0].islower():
        words[0] = first[0].upper() + first[1:]
    return " ".join(words)


def kpi_label(key, by: str = "") -> str:
    """A KPI key's words; a breakdown's with the column it splits its KPI by, when given:
    ``revenue_won:new_business`` by ``type`` → ``Revenue won by type — New business`` (its type and product
    breakdowns each add up to the KPI; without ``by`` the two would read as one list). The report's own label
    for the whole key comes first."""
    base, breakdown, value = key.partition(":") if isinstance(key, str) else ("", "", "")
    if not (breakdown and by and isinstance(by, str)) or key in _overrides or base not in KPI_BY_KEY:
        return label(key)
    return f"{label(base)} by {label(by).lower()} — {label(value)}"


def label(key) -> str:
    """A reader's name for a key (see the module docstring); anything that is not a key comes back as it is."""
    if not isinstance(key, str):
        return key
    if key in _overrides:
        return _overrides[key]
    base, breakdown, value = key.partition(":")
    if breakdown and base in KPI_BY_KEY:  # a KPI breakdown: revenue_won:new_business, leads:LinkedIn
        return f"{label(base)} — {label(value)}"
    if not is_key(key):
        return key
    if key in KPI_BY_KEY:
        return KPI_BY_KEY[key].label
    if key in LABELS:
        return LABELS[key]
    if key.endswith("_at"):
        return stage_label(key)
    return _words(key)
