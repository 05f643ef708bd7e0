"""The base of every report's section object: the numbers it holds, and how it shows them.

A report notebook builds one section object (e.g. :class:`revops_lib.present.sections.funnel.FunnelReport`)
from its parameters, then calls one of its methods per part of the page. The object keeps the
numbers (frames computed by :mod:`revops_lib.metrics`); its methods render them:

- a table method returns a formatted table and publishes the frame behind it
  (``tables/<name>.csv``) with :meth:`Section.table`;
- a chart method publishes the frame behind the chart and draws it with :meth:`Section.chart`;
- :meth:`Section.findings` and other prose methods return rendered prose (:func:`~revops_lib.present.text.md`);
- :meth:`Section.headlines` gives the numbers shown beside the report in ``reports/index.html``.

So what a page shows is exactly what it publishes (as lifelines' ``StatisticalResult`` holds the
numbers that ``print_summary`` and ``to_html`` render).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable, ClassVar

import pandas as pd

from revops_lib.errors import RevOpsWarning
from revops_lib.present.publish import finding, headline, publish, record_chart, record_scope
from revops_lib.present.tables import style_table
from revops_lib.present.text import Prose, md

__all__ = ["Section", "Part", "Truncated", "WithRecords", "RECORDS_SUFFIX", "quiet", "PART_TAG", "needs_part",
           "sliced_why", "NOT_SLICED"]

#: The cell tag prefix that ties a notebook cell to a part of its report (``part:<key>``).
PART_TAG = "part:"


@dataclass(frozen=True)
class Part:
    """A part of a report page and the tables it needs.

    The report notebook tags the cells of a part (its heading and the cells under it) ``part:<key>``; when a
    table the part needs is absent from the source, the part is *left out*: its cells are dropped from the
    HTML and the page says, at the top, which table would bring it back.
    """

    key: str
    title: str  # as the left-out sentence names it ("the deal-stage funnel")
    tables: tuple[str, ...] = ()  # all of these are needed
    any_of: tuple[str, ...] = ()  # and at least one of these
    columns: tuple[str, ...] = ()  # optional contract columns it needs too, as "table.column"

    def missing(self, has: Callable[[str], bool], columns: Callable[[str], set] | None = None) -> str:
        """'' when the part can be built, else the table(s) or column(s) that would bring it ("table `leads`",
        "column `leads.segment`"); ``columns(table)`` gives a present table's columns."""
        absent = [t for t in self.tables if not has(t)]
        if self.any_of and not any(has(t) for t in self.any_of):
            alt = " or ".join(f"`{t}`" for t in self.any_of)
            absent.append(alt if len(self.any_of) == 1 else f"({alt})" if absent else alt)
        if absent:
            names = [a if a.startswith(("`", "(")) else f"`{a}`" for a in absent]
            many = len(names) > 1 or " or " in names[0]
            return ("tables " if many else "table ") + " and ".join(names)
        cols = [c for c in self.columns
                if columns is not None and has(c.split(".")[0]) and c.split(".")[1] not in columns(c.split(".")[0])]
        if cols:
            return ("columns " if len(cols) > 1 else "column ") + " and ".join(f"`{c}`" for c in cols)
        return ""


#: What a left-out part's reason says when a table it needs was left out of a slice (not absent).
NOT_SLICED = ": not sliced"


def sliced_why(src, why: str) -> str:
    """``why`` ("table `x`", "tables `x` and `y`") with, when ``src`` is a slice (:mod:`revops_lib.slices`) that
    left out a table it names, why that table is not sliced: "table `marketing_spend`: not sliced,
    company-wide" (never "absent": the table is there, the slice cannot filter it)."""
    gone = getattr(src, "not_sliced", None) or {}
    named = {t: r for t, r in gone.items() if f"`{t}`" in why}
    if not named:
        return why
    if len(set(named.values())) == 1:
        return f"{why}{NOT_SLICED}, {next(iter(named.values()))}"
    return f"{why}{NOT_SLICED} (" + "; ".join(f"`{t}`: {r}" for t, r in named.items()) + ")"


def needs_part(key: str):
    """Decorate a section method that shows part ``key``: when the part is left out for lack of data the
    method returns the one-line note of :meth:`Section.left_out_note` instead (the HTML drops the cell)."""
    import functools

    def deco(fn):
        @functools.wraps(fn)
        def wrapper(self, *args, **kw):
            if key in self.left_out:
                note = self.left_out_note(key)
                if not fn.__name__.endswith("_chart"):
                    return note
                from IPython.display import display  # a chart cell ends with ';', which would hide a return

                display(note)
                return None
            return fn(self, *args, **kw)
        return wrapper
    return deco


class Truncated:
    """A table's first rows and a line saying how many more there are (and the CSV that holds them all)."""

    def __init__(self, styler, more: int, csv: str | None):
        self.styler, self.more, self.csv = styler, more, csv

    def __repr__(self) -> str:  # the executed notebook's text/plain: no memory address, same text every run
        return f"<table: first rows shown, {self.more:,} more{' in ' + self.csv if self.csv else ''}>"

    def _repr_html_(self) -> str:
        from markupsafe import escape

        where = (f': all rows in <a href="{escape(self.csv)}">{escape(self.csv)}</a>' if self.csv else "")
        rows = "row" if self.more == 1 else "rows"
        return (self.styler.to_html() + f'<p class="revops-more">… and {self.more:,} more {rows}{where}.</p>')


#: The records behind a published table ``<name>.csv`` are published as ``<name>_records.csv`` beside it.
RECORDS_SUFFIX = "_records"


class WithRecords:
    """A table and, right under it, the link to the CSV of the records behind it (and how many rows it holds).

    ``shown`` is what the table cell displays (a Styler, a :class:`Truncated` …); ``csv`` the link, relative to
    the report's HTML (``tables/<report>/<name>_records.csv``), or None outside a report's known place.
    """

    def __init__(self, shown, csv: str | None, rows: int, what: str = ""):
        self.shown, self.csv, self.rows, self.what = shown, csv, rows, what

    def __repr__(self) -> str:  # the executed notebook's text/plain: no memory address, same text every run
        return f"<table; the {self.rows:,} records behind it{' in ' + self.csv if self.csv else ''}>"

    def _repr_html_(self) -> str:
        from markupsafe import escape

        inner = self.shown
        if hasattr(inner, "_repr_html_"):
            html = inner._repr_html_()
        elif hasattr(inner, "to_html"):
            html = inner.to_html()
        else:
            html = str(escape(str(inner)))
        rows = "row" if self.rows == 1 else "rows"
        name = self.csv.rsplit("/", 1)[-1] if self.csv else ""
        where = (f'<a href="{escape(self.csv)}">{escape(name)}</a> ({self.rows:,} {rows})' if self.csv
                 else f"{self.rows:,} {rows}, published with the report")
        what = f" ({escape(self.what)})" if self.what else ""
        return html + f'<p class="revops-records">Records behind this table{what}: {where}.</p>'


def quiet() -> None:
    """Inside a report page, the kit's own warnings (immature, approximate, small sample) are not printed:
    the page says so in its tables and findings."""
    warnings.simplefilter("ignore", RevOpsWarning)


class Section:
    """Base class of a report's section object (see the module docstring)."""

    #: The report (notebook) this section renders; its tables land in ``tables/<report>/``.
    report: ClassVar[str] = ""
    #: (name, definition) pairs, from METRICS.md, shown in the report's footer.
    FOOTNOTES: ClassVar[list[tuple[str, str]]] = []
    #: The id of the page heading above :meth:`findings` (nbconvert's: the heading's words joined by "-").
    FINDINGS_ANCHOR: ClassVar[str] = "The-verdict"
    #: The parts of the page and the tables each needs (empty: the page is one part that always builds).
    PARTS: ClassVar[tuple[Part, ...]] = ()
    #: Left-out part key -> the table(s) that would bring it (set by the report's analysis; see :meth:`plan`).
    left_out: dict[str, str] = {}

    # -- which parts the tables allow ----------------------------------------------------------

    @classmethod
    def plan(cls, src) -> dict[str, str]:
        """``{part key: "table `x`"}`` for each part whose tables or columns ``src`` (a Source) lacks, in page
        order."""
        out = {}
        for part in cls.PARTS:
            why = part.missing(src.has, lambda t: set(src.raw(t).columns))
            if why:
                out[part.key] = sliced_why(src, why)
        return out

    @classmethod
    def buildable(cls, src) -> bool:
        """Whether the tables of ``src`` allow at least one part of the page."""
        return not cls.PARTS or len(cls.plan(src)) < len(cls.PARTS)

    @classmethod
    def unbuildable_reason(cls, src) -> str:
        """Why no part can be built (for the index), '' when one can."""
        if cls.buildable(src):
            return ""
        needs = sorted({why for why in cls.plan(src).values()}, key=len)
        return f"No part of this report can be built from {src.description}: it needs " + "; or ".join(needs) + "."

    def has_part(self, key: str) -> bool:
        """Whether part ``key`` is on the page (its tables are present)."""
        return key not in self.left_out

    def scope_sentence(self) -> str:
        """One sentence (plain text) naming the parts left out and the table that would bring each; '' if none.

        In a slice, the parts that need a table the slice cannot filter come first ("Left out of this slice:
        … (needs table `marketing_spend`: not sliced, company-wide)")."""
        if not self.left_out:
            return ""
        titles = {p.key: p.title for p in self.PARTS}
        sentences = []
        for lead, in_slice in (("Left out of this slice", True), ("Left out for lack of data", False)):
            by_why: dict[str, list[str]] = {}
            for key, why in self.left_out.items():
                if (NOT_SLICED in why) == in_slice:
                    by_why.setdefault(why, []).append(titles.get(key, key))
            groups = []
            for why, names in by_why.items():
                listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
                groups.append(f"{listed} (needs {why})" if len(names) == 1 else f"{listed} (need {why})")
            if groups:
                sentences.append(f"{lead}: " + "; ".join(groups) + ".")
        return " ".join(sentences)

    def left_out_note(self, key: str):
        """What a left-out part's cells show in JupyterLab (the HTML drops them)."""
        title = next((p.title for p in self.PARTS if p.key == key), key)
        return md(f"*Left out: {title} needs {self.left_out.get(key, 'more data')}.*")

    # -- building blocks ----------------------------------------------------------------------

    @staticmethod
    def note(text: str) -> Prose:
        """A sentence or a Markdown list as rendered prose (values in it are escaped)."""
        return md(text)

    @classmethod
    def table(cls, data: pd.DataFrame, name: str | None = None, shown=None, *,
              formats: dict | None = None, html=(), index: bool = False, empty: str | None = None,
              limit: int | None = None, records: pd.DataFrame | None = None):
        """Publish ``data`` as ``tables/<name>.csv`` (when ``name`` is given) and show ``shown`` (default:
        ``data``) as a formatted table; ``empty`` is the sentence shown instead when there is no row.
        ``shown`` may also be a function of rows of ``data`` giving their display frame (one row per row):
        with ``limit`` it formats only the rows shown, not every row of a long table.
        With ``limit``, a longer table shows its first ``limit`` rows and says how many more the CSV holds.
        With ``records`` (and ``name``), the records behind the table are published too and linked under it
        (:meth:`with_records`)."""
        if name is not None:
            publish(data, name, index=index)
        n_rows = None
        if callable(shown):
            n_rows = len(data)
            shown = shown(data if limit is None else data.head(limit))
        frame = data if shown is None else shown
        if n_rows is None:
            n_rows = len(frame)
        if empty is not None and n_rows == 0:
            out = md(empty)
        elif limit is not None and n_rows > limit:
            csv = f"tables/{cls.report}/{name}.csv" if name and cls.report else None
            out = Truncated(style_table(frame.head(limit), formats, index=index, html=html), n_rows - limit, csv)
        else:
            out = style_table(frame, formats, index=index, html=html)
        if records is not None and name is not None:
            return cls.with_records(out, records, name)
        return out

    @classmethod
    def with_records(cls, shown, records: pd.DataFrame, name: str, what: str = "") -> WithRecords:
        """Publish ``records`` (the rows behind table ``name``) as ``tables/<name>_records.csv`` and return
        ``shown`` (the table as displayed) with the link to them under it; ``what`` says which rows they are
        ("the customers behind 2026-10's movements"). Outside a report run nothing is written (the link is shown
        all the same)."""
        publish(records, f"{name}{RECORDS_SUFFIX}", styled=False)
        return cls.link_records(shown, name, len(records), what)

    @classmethod
    def link_records(cls, shown, name: str, rows: int, what: str = "") -> WithRecords:
        """``shown`` with the link to records another table of the report publishes (``tables/<name>_records.csv``,
        written by its :meth:`with_records`): one file of records behind two tables (a column for each grouping)."""
        csv = f"tables/{cls.report}/{name}{RECORDS_SUFFIX}.csv" if cls.report else None
        return WithRecords(shown, csv, rows, what)

    @staticmethod
    def chart(data: pd.DataFrame, name: str, draw: Callable, /, *, published: bool = False, **kw) -> None:
        """Publish the frame behind a chart as ``tables/<name>.csv`` (``published=True``: the table that shows
        the same numbers publishes it under that name) and draw it with ``draw(data, **kw)``; the run's
        ``tables/charts.json`` records which CSV holds each chart's numbers.

        Returns nothing, so a notebook cell that ends with a chart call shows the chart only.
        """
        if not published:
            publish(data, name)
        record_chart(getattr(draw, "__name__", "chart"), name)
        draw(data, **kw)

    # -- what every section has ---------------------------------------------------------------

    def findings(self):
        """The findings of the report, one sentence each (rendered prose)."""
        raise NotImplementedError

    def headlines(self) -> list[tuple[str, str]]:
        """``(label, value)`` pairs shown beside the report in ``reports/index.html``."""
        return []

    def top_finding(self) -> str:
        """The report's first finding as plain text (its first bullet), for the index's executive summary."""
        import re

        try:
            text = str(self.findings())
        except Exception:  # noqa: BLE001 — a summary line is never worth a failed report
            return ""
        first = next((line for line in text.splitlines() if line.strip()), "")
        first = re.sub(r"^\s*[-*]\s+", "", first)
        return re.sub(r"\*\*|__|`|(?<!\w)\*(?=\S)|(?<=\S)\*(?!\w)", "", first).strip()

    def record_headlines(self) -> None:
        """Record :meth:`headlines` and :meth:`top_finding` for the index, and which parts are left out
        (nothing outside a report run)."""
        record_scope(dict(self.left_out), self.scope_sentence())
        for label, value in self.headlines():
            headline(label, value)
        top = self.top_finding()
        if top:
            finding(top, self.FINDINGS_ANCHOR)
