"""What a report page derives from its parameters, and the rules its parameter values follow.

:func:`context` is the first call of every report: it checks the parameter values (the same rules
the runner applies before any kernel starts: :data:`CHOICES`, :data:`PATTERNS`, :data:`RANGES`),
resolves the period and the cut-off, opens the source (with the privacy setting and the slice, see
:mod:`revops_lib.slices`), sets the chart theme and where published tables go.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from revops_lib.errors import ParameterError, RevOpsError
from revops_lib.importers import open_source as open_mapped
from revops_lib.periods import Period, default_period, parse_period, resolve_as_of
from revops_lib.present.labels import set_labels
from revops_lib.present.publish import set_output_dir
from revops_lib.present.section import quiet
from revops_lib.sources import Source, open_source

__all__ = ["Context", "context", "check_value", "show_value", "CHOICES", "PATTERNS", "RANGES"]

#: Parameters that take one of a few values.
CHOICES: dict[str, tuple[str, ...]] = {
    "funnel_mode": ("reached", "strict"),
    "privacy": ("names", "masked"),
}

#: Parameters whose text must match a pattern (and what to say when it does not).
PATTERNS: dict[str, tuple[str, str]] = {
    "currency": (r"[A-Z]{3}", "a three-letter ISO 4217 code such as USD, EUR or GBP"),
    "as_of": (r"(\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2})?)?(Z|[+-]\d{2}:?\d{2})?)?",
              "empty or a date / time such as 2026-11-05 or 2026-11-05T12:00"),
}

#: Whole-number parameters that must lie in a range (inclusive).
RANGES: dict[str, tuple[int, int, str]] = {
    "fiscal_year_start_month": (1, 12, "a month from 1 (January) to 12 (December)"),
}


def show_value(value) -> str:
    """A value as shown in a message (its repr, cut to 80 characters)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "…"


def check_value(name: str, value) -> None:
    """The value rules of :data:`CHOICES` and :data:`PATTERNS` (after typing)."""
    if name in CHOICES and value not in CHOICES[name]:
        raise ParameterError(f"Parameter `{name}` = {show_value(value)} is not allowed; "
                             f"choose one of: {', '.join(CHOICES[name])}.")
    if name in PATTERNS and isinstance(value, str):
        pattern, words = PATTERNS[name]
        if not re.fullmatch(pattern, value):
            raise ParameterError(f"Parameter `{name}` = {show_value(value)} is not allowed: give {words}.")
    if name == "as_of" and isinstance(value, str) and value.strip():  # a real day and time (not 2026-02-30)
        try:
            resolve_as_of(None, value)
        except RevOpsError:
            raise ParameterError(f"Parameter `as_of` = {show_value(value)} "
                                 "is not a date or time that exists.") from None
    if name == "slices":  # {column: value}: allowed columns, one text value each (revops_lib.slices.parse)
        from revops_lib.slices import parse

        parse(value)
    if name in RANGES and isinstance(value, int) and not isinstance(value, bool):
        lo, hi, words = RANGES[name]
        if not lo <= value <= hi:
            raise ParameterError(f"Parameter `{name}` = {show_value(value)} is not allowed: give {words}.")


@dataclass
class Context:
    """What a report notebook derives from its parameters (see :func:`context`)."""

    period: Period
    as_of: pd.Timestamp  # naive UTC, exclusive cut-off
    source: Source
    currency: str = "USD"
    slice: str = ""  # the slice's label (revops_lib.slices.label), '' for the whole source

    def __repr__(self) -> str:
        return f"<Context {self.period.label} as of {self.as_of} — {self.source.description}>"


def context(*, period: str = "", as_of: str = "", source: str = "../data/demo", currency: str = "USD",
            fiscal_year_start_month: int = 1, output_dir: str = "", privacy: str = "names",
            labels: dict | None = None, preset: str = "", slices: dict | None = None) -> Context:
    """Derived values of a report page: the period (empty = last complete month), the cut-off and the source.

    ``preset``: mapping presets (or mapping files) the source is read through, comma-separated, e.g.
    ``fivetran_salesforce,fivetran_stripe`` (:func:`revops_lib.importers.open_source`); empty: the source
    holds the contract tables.

    ``privacy``: ``names`` or ``masked`` (owners and teams as pseudonyms, ids hashed; see
    :data:`revops_lib.sources.PRIVACY_MODES`). Also sets the kit's chart theme, has every inline
    chart pass :func:`revops_lib.present.charts.base.sanitize_figure` (no e-mail address, no overlong
    label), and keeps the kit's own warnings out of the page (its tables and findings say so).
    ``labels`` (e.g. ``{organic_search: SEO}``) overrides :mod:`revops_lib.present.labels` for this page.
    ``slices`` (e.g. ``{segment: enterprise}``) restricts every table to a slice (:mod:`revops_lib.slices`).
    """
    for name, value in (("currency", currency), ("as_of", as_of), ("privacy", privacy),
                        ("fiscal_year_start_month", fiscal_year_start_month), ("slices", slices)):
        check_value(name, value)
    # imported here: the runner checks parameters with this module and never draws (seaborn takes ~1.5 s)
    from revops_lib.present.charts.base import install_figure_filter, set_theme

    set_theme()
    install_figure_filter()
    quiet()
    set_output_dir(output_dir)
    if labels is not None and not isinstance(labels, dict):
        raise ParameterError(f"Parameter `labels` = {show_value(labels)} is not allowed: give a mapping such as "
                             "{organic_search: SEO}.")
    set_labels(labels)
    p = (parse_period(period, fiscal_year_start_month=fiscal_year_start_month) if period
         else default_period(fiscal_year_start_month=fiscal_year_start_month))
    if preset is not None and not isinstance(preset, str):
        raise ParameterError(f"Parameter `preset` = {show_value(preset)} is not allowed: give text such as "
                             "fivetran_salesforce or fivetran_salesforce,fivetran_stripe (empty: none).")
    src = open_mapped(source, preset=preset, privacy=privacy) if preset and preset.strip() else \
        open_source(source, privacy=privacy)
    if slices:
        from revops_lib.slices import apply, label

        src = apply(src, slices)
    return Context(period=p, as_of=resolve_as_of(p, as_of), source=src, currency=currency,
                   slice=label(slices, privacy) if slices else "")
