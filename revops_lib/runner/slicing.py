"""The sets of reports a run builds: the whole source, one slice (``--slice``) or one per value (``--by``).

Layout (unsliced paths are unchanged)::

    reports/<period>/<report>.html                          the whole source
    reports/<period>/<slice name>/<report>.html             a slice, e.g. segment-enterprise
    reports/<period>/<slice name>/tables/<report>/<name>.csv
    reports/<period>/<slice name>/manifest.json             its reports' status (each entry names the slice)

A slice's folder name and label come from :func:`revops_lib.slices.slice_name` and
:func:`revops_lib.slices.label`; two values of ``--by`` that would share a folder are an error before any
kernel starts, as is a ``--by`` column with no value in the source.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from revops_lib.errors import ParameterError, SourceError

__all__ = ["SliceSet", "slice_sets", "check_request", "SLICE_PARAMETER"]

#: The notebook parameter that carries the slice (a mapping ``{column: value}``).
SLICE_PARAMETER = "slices"


@dataclass(frozen=True)
class SliceSet:
    """One set of reports: its slice (``()`` for the whole source), folder name, label and source."""

    slice: tuple = ()
    name: str = ""  # folder under reports/<period>/ ('' for the whole source)
    label: str = ""  # as the header and the index show it
    source: Any = None

    def out_dir(self, out: Path, period_label: str) -> Path:
        d = Path(out) / period_label
        return d / self.name if self.name else d

    @property
    def index_href(self) -> str:
        """The link from a report page of this set to ``reports/index.html``."""
        return "../../index.html" if self.name else "../index.html"

    @property
    def note(self) -> str:
        """The header's sentence on the tables the slice leaves out (:func:`revops_lib.slices.not_sliced_sentence`)."""
        from revops_lib.slices import not_sliced_sentence

        return not_sliced_sentence(self.source) if self.name else ""

    @property
    def parameter(self) -> dict:
        """The notebooks' ``slices`` parameter ({} for the whole source)."""
        return dict(self.slice)


def check_request(slices, by) -> tuple[tuple, str | None]:
    """``(slice, by column)`` from ``--slice`` and ``--by``, checked (before any kernel starts)."""
    from revops_lib.slices import check_column, parse

    conditions = parse(slices)
    if by is not None:
        by = check_column(by, option="--by")
        if by in dict(conditions):
            raise ParameterError(f"`--by {by}` and `--slice {by}=…` name the same column: give one of them.")
    return conditions, by


def slice_sets(src, conditions: tuple = (), by: str | None = None, *, privacy: str = "names") -> list[SliceSet]:
    """The sets a run builds from ``src`` (the unsliced source): the whole source when there is no slice and
    no ``by``; else the slice; else one set per value of ``by`` within the slice (values found with one
    query, :func:`revops_lib.slices.distinct_values`)."""
    from revops_lib.slices import apply, distinct_values, label, parse, slice_name

    if not conditions and by is None:
        return [SliceSet((), "", "", src)]
    if by is None:
        return [SliceSet(conditions, slice_name(conditions, privacy), label(conditions, privacy),
                         apply(src, conditions))]
    within = apply(src, conditions)
    values = distinct_values(within, by)
    if not values:
        where = f" in the slice {label(conditions, privacy)}" if conditions else ""
        raise SourceError(f"`--by {by}`: no value of `{by}`{where} in {src.description} (tables leads, "
                          "opportunities, subscriptions): nothing to build.")
    sets, seen = [], {}
    for v in values:
        s = parse({**dict(conditions), by: v})
        name = slice_name(s, privacy)
        if name in seen:
            raise ParameterError(f"Values {seen[name]!r} and {v!r} of `{by}` would share the report folder "
                                 f"`{name}`: rename one in the data, or build them one at a time with `--slice`.")
        seen[name] = v
        sets.append(SliceSet(s, name, label(s, privacy), apply(src, s)))
    return sets
