"""Where a report's data go: the CSV behind every table and chart, and its headline numbers.

Inside a report run (the runner passes ``output_dir``) :func:`publish` writes
``tables/<name>.csv`` and :func:`headline` adds to ``headlines.json`` in the run's staging folder,
which the runner moves into ``reports/<period>/``; in JupyterLab nothing is written.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from revops_lib.errors import ParameterError
from revops_lib.files import atomic_write_bytes
from revops_lib.present.tables import style_table
from revops_lib.present.text import CSV_FORMULA_PREFIXES, neutralise_csv_cell

__all__ = ["set_output_dir", "output_dir", "publish", "csv_bytes", "normalised", "MONEY_COLUMNS",
           "TABLE_MONEY_COLUMNS", "headline", "record_scope", "record_chart",
           "CSV_SIGNIFICANT_DIGITS"]

_OUTPUT_DIR: Path | None = None


def set_output_dir(path: str | Path | None) -> None:
    """Where :func:`publish` and :func:`headline` write (the runner passes ``output_dir``)."""
    global _OUTPUT_DIR
    _OUTPUT_DIR = Path(path) if path else None


#: Significant digits of the floats in published CSVs: enough for cents up to ten billion, and few enough
#: that the last-digit noise of a float sum (which changes with the order a parallel engine adds in)
#: never reaches the file, so identical inputs give byte-identical CSVs.
CSV_SIGNIFICANT_DIGITS = 12


#: Columns of published tables that hold money, in any table: rounded to the cent before writing (engines
#: sum floats in different orders; Spark, DuckDB and PostgreSQL then publish the same bytes).
MONEY_COLUMNS = frozenset({
    "amount", "arr", "mrr", "starting_mrr", "ending_mrr", "new", "expansion", "reactivation", "contraction",
    "churned", "capped_mrr", "base_mrr", "arpa", "new_customer_arpa", "ltv", "ltv_uncapped", "ltv_12m", "spend",
    "cac", "new_mrr", "won_amount", "closed_amount", "avg_deal_size", "velocity_avg_deal_size", "open_amount",
    "velocity_per_day", "forecast", "actual", "error", "open_pipeline", "weighted_pipeline", "won_to_date",
    "submitted", "pipeline_created", "revenue_won", "cost_per_lead", "quota", "open_pipeline_next", "next_quota",
})

#: Money columns of one published table only (the same name is not money in another table).
TABLE_MONEY_COLUMNS = {
    "coverage": frozenset({"target", "won"}),
    "projection": frozenset({"target"}),
}

#: Columns that hold a value in the unit named by the row's ``unit`` column (``currency``: money).
UNIT_VALUE_COLUMNS = ("value", "target", "prior_value", "change", "last_year_value", "ytd_value", "ytd_target")


def normalised(df, name: str | None = None):
    """A published frame at one resolution on every engine: times as naive UTC microseconds (Spark hands
    pandas nanoseconds), money rounded to the cent (:data:`MONEY_COLUMNS`, :data:`TABLE_MONEY_COLUMNS`,
    and the :data:`UNIT_VALUE_COLUMNS` of rows whose ``unit`` is ``currency``). Other values unchanged."""
    out = df.copy()
    money = MONEY_COLUMNS | TABLE_MONEY_COLUMNS.get(name or "", frozenset())
    for i, c in enumerate(out.columns):
        col = out.iloc[:, i]
        if isinstance(col.dtype, pd.DatetimeTZDtype):
            out.isetitem(i, col.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[us]"))
        elif pd.api.types.is_datetime64_dtype(col.dtype):
            out.isetitem(i, col.astype("datetime64[us]"))
        elif c in money and pd.api.types.is_float_dtype(col.dtype):
            out.isetitem(i, col.round(2))
    if "unit" in out.columns and not isinstance(out.columns, pd.MultiIndex):
        currency = (out["unit"] == "currency").fillna(False).to_numpy(dtype=bool)
        for c in UNIT_VALUE_COLUMNS:
            if c in out.columns and pd.api.types.is_float_dtype(out[c].dtype) and currency.any():
                out.loc[currency, c] = out.loc[currency, c].round(2)
    if isinstance(out.index, pd.DatetimeIndex):
        idx = out.index.tz_convert("UTC").tz_localize(None) if out.index.tz is not None else out.index
        out.index = idx.astype("datetime64[us]")
    return out


def csv_bytes(df, *, index: bool = False) -> bytes:
    """A published table as CSV: floats to :data:`CSV_SIGNIFICANT_DIGITS` significant digits, text cells
    that a spreadsheet would run as a formula neutralised (:func:`revops_lib.present.text.neutralise_csv_cell`),
    carriage returns inside text written as line feeds (so the cell stays quoted and whole)."""
    def cell(v):
        v = neutralise_csv_cell(v)
        # a bare carriage return is not quoted by the CSV writer with "\n" line ends: make it a line feed
        return v.replace("\r\n", "\n").replace("\r", "\n") if isinstance(v, str) else v

    def cells(col):
        try:  # vectorised: only the cells that need it go through `cell` (records may hold a million rows)
            text = col.str
            need = (text.startswith(CSV_FORMULA_PREFIXES, na=False)
                    | text.contains("\r", regex=False, na=False)).to_numpy(dtype=bool)
        except (AttributeError, TypeError):  # not only text (numbers mixed in): every cell
            return col.map(cell)
        if not need.any():
            return col
        col = col.astype(object)
        col[need] = col[need].map(cell)
        return col

    def floats(col):
        # what to_csv(float_format="%.12g") writes, formatted in one pass instead of pandas' per-cell formatter
        # (about twice as fast on the records' long columns); NaN and NA as the empty cell (its na_rep)
        a = col.to_numpy(dtype="float64", na_value=np.nan)
        fmt = f"%.{CSV_SIGNIFICANT_DIGITS}g"
        text = np.array([fmt % v for v in a.tolist()], dtype=object)
        text[np.isnan(a)] = ""
        return text

    out = df.copy()
    for i, c in enumerate(out.columns):
        col = out.iloc[:, i]
        if col.dtype == object or pd.api.types.is_string_dtype(col):
            out.isetitem(i, cells(col))
        elif pd.api.types.is_float_dtype(col.dtype) and len(col):
            out.isetitem(i, floats(col))
    if not isinstance(out.columns, pd.MultiIndex):
        out.columns = [neutralise_csv_cell(c) for c in out.columns]
    if index and out.index.dtype == object:
        out.index = out.index.map(neutralise_csv_cell)
    return out.to_csv(index=index, float_format=f"%.{CSV_SIGNIFICANT_DIGITS}g", lineterminator="\n").encode("utf-8")


def publish(df, name: str, *, formats: dict | None = None, index: bool = False, styled: bool = True):
    """Write the data behind a table or chart as ``tables/<name>.csv`` and return it formatted for display.

    Inside a report run the CSV lands in ``reports/<period>/tables/<notebook>/<name>.csv``;
    in JupyterLab (no ``output_dir``) nothing is written. ``formats`` maps columns to
    format strings or callables for display only. The CSV keeps the raw values (floats to
    12 significant digits; times in microseconds and money to the cent on every engine: :func:`normalised`)
    and neutralises text cells a spreadsheet would execute (see :func:`csv_bytes`). ``styled=False``: write only
    (returns None; for long frames nobody shows, such as the records behind a table).
    """
    if not re.fullmatch(r"[a-z0-9_]+", name):
        raise ParameterError(f"Table name `{name}` must be lower-case letters, digits and underscores.")
    if _OUTPUT_DIR is not None:
        path = _OUTPUT_DIR / "tables" / f"{name}.csv"
        atomic_write_bytes(path, csv_bytes(normalised(df, name), index=index))
    return style_table(df, formats, index=index) if styled else None


def headline(label: str, value, *, fmt: str | None = None) -> None:
    """Record a headline number shown next to the report in ``reports/index.html``."""
    if _OUTPUT_DIR is None:
        return
    path = _OUTPUT_DIR / "headlines.json"
    items = json.loads(path.read_text()) if path.is_file() else []
    text = fmt.format(value) if fmt else str(value)
    items = [i for i in items if i["label"] != label] + [{"label": label, "value": text}]
    atomic_write_bytes(path, json.dumps(items).encode())


def finding(text: str, anchor: str = "") -> None:
    """Record a report's top finding (one sentence) for the executive summary of ``reports/index.html``;
    ``anchor`` is the id of the page section that explains it."""
    if _OUTPUT_DIR is None:
        return
    path = _OUTPUT_DIR / "headlines.json"
    items = json.loads(path.read_text()) if path.is_file() else []
    items = [i for i in items if i.get("kind") != "finding"] + [
        {"label": "Top finding", "value": str(text), "anchor": str(anchor), "kind": "finding"}]
    atomic_write_bytes(path, json.dumps(items).encode())


def record_scope(left_out: dict, sentence: str) -> None:
    """Record the parts of a report left out for lack of data (``scope.json``: ``{"left_out": {key: why},
    "sentence": ...}``); the HTML export drops their cells and shows the sentence at the top."""
    if _OUTPUT_DIR is None:
        return
    atomic_write_bytes(_OUTPUT_DIR / "scope.json",
                       json.dumps({"left_out": {str(k): str(v) for k, v in left_out.items()},
                                   "sentence": str(sentence)}).encode())


def record_chart(chart: str, csv_name: str) -> None:
    """Record that a chart drawn in the run shows the numbers of ``tables/<csv_name>.csv``
    (``tables/charts.json``, in drawing order)."""
    if _OUTPUT_DIR is None:
        return
    path = _OUTPUT_DIR / "tables" / "charts.json"
    items = json.loads(path.read_text()) if path.is_file() else []
    items.append({"chart": str(chart), "csv": f"{csv_name}.csv"})
    atomic_write_bytes(path, json.dumps(items, indent=1).encode())


def output_dir() -> Path | None:
    """The folder :func:`publish` writes into (None outside a report run)."""
    return _OUTPUT_DIR
