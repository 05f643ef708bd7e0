"""Tables for people: :func:`style_table` turns a frame into the pandas Styler a report shows.

Every cell and header is HTML-escaped and e-mail addresses are hidden (values from data and
parameters are never markup); a table's id comes from its content and cells carry no ids, so
identical data give identical HTML.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["style_table", "stable_id", "plain_number"]

_ID_FLOATS = "%.12g"


def _format_key(fmt) -> str:
    """A display format as text for a table's id: a function by its name (its repr holds a memory address,
    which differs from run to run)."""
    import functools

    if isinstance(fmt, functools.partial):
        return f"partial({_format_key(fmt.func)}, {fmt.args!r}, {sorted(fmt.keywords.items())!r})"
    if callable(fmt):
        return f"{getattr(fmt, '__module__', '')}.{getattr(fmt, '__qualname__', type(fmt).__name__)}"
    return repr(fmt)


def style_table(df: pd.DataFrame, formats: dict | None = None, *, index: bool = False, html=(), labels: bool = True):
    """A pandas Styler for reports: no index, numbers right-aligned, text left-aligned, blanks as —.

    With ``labels`` (the default) headers that are keys (``won_to_date``) and the key values of category
    columns (``source``: ``organic_search``) are shown by :func:`revops_lib.present.labels.label`
    (``Won to date``, ``Organic search``); the frame's own column names stay, so ``formats`` and later
    ``subset=`` arguments still use them.

    Every cell and header is HTML-escaped (values from data and parameters are never markup) and
    e-mail addresses are hidden (:mod:`revops_lib.present.text`); the columns named in ``html`` hold HTML the kit
    built itself from escaped parts (e.g. sparklines, :func:`sparkline_svg`) and are left as they are. The table's
    id comes from its content (no random ``T_xxxxx``) and cells carry no ids, so identical data give
    identical HTML.
    """
    import hashlib

    from markupsafe import Markup, escape
    from pandas.io.formats.style import Styler

    from revops_lib.present.labels import CATEGORY_COLUMNS, label
    from revops_lib.present.text import hide_emails

    def shown(v):
        return hide_emails(v) if isinstance(v, str) and not isinstance(v, Markup) else v

    raw_html = [c for c in df.columns if c in set(html)
                or (len(df) and df[c].map(lambda v: isinstance(v, Markup)).all())]
    data = df.copy()
    for c in data.columns:
        if c not in raw_html and (data[c].dtype == object or pd.api.types.is_string_dtype(data[c])):
            data[c] = data[c].map(shown)
            if labels and isinstance(c, str) and c.lower() in CATEGORY_COLUMNS:
                data[c] = data[c].map(label)
    data.columns = [shown(c) for c in data.columns] if not isinstance(data.columns, pd.MultiIndex) else data.columns
    if index and data.index.dtype == object:
        data.index = data.index.map(shown)
    digest = hashlib.sha1(df.to_csv(index=index, float_format=_ID_FLOATS).encode("utf-8", "replace")
                          + repr(sorted((str(k), _format_key(v)) for k, v in (formats or {}).items())).encode()
                          ).hexdigest()[:10]
    styler = Styler(data, uuid=digest, cell_ids=False)
    if not index:
        styler = styler.hide(axis="index")
    fm = {shown(k): v for k, v in (formats or {}).items() if shown(k) in data.columns}
    for c in data.columns:  # a float column nobody formatted: plain digits, never 1.287e+05
        if c not in fm and pd.api.types.is_float_dtype(data[c]):
            fm[c] = plain_number
        elif c not in fm and _booleans(data[c]):  # a reader's yes / no, not Python's True
            fm[c] = _yes_no
    styler = styler.format(fm, na_rep="—", escape="html")
    styler = styler.format_index(escape="html", axis=1)
    if labels and not isinstance(data.columns, pd.MultiIndex):
        styler = styler.relabel_index([str(escape(_heading(label(c)))) for c in data.columns], axis=1)
    if index:
        styler = styler.format_index(escape="html", axis=0)
    keep = [shown(c) for c in raw_html]
    if keep:
        styler = styler.format(lambda v: v, subset=keep, escape=None)
    text_cols = [c for c in data.columns
                 if not pd.api.types.is_numeric_dtype(data[c]) or pd.api.types.is_bool_dtype(data[c])]
    if text_cols:
        styler = styler.set_properties(subset=text_cols, **{"text-align": "left"})
        styler = styler.set_table_styles(
            [{"selector": f"th.col_heading.col{data.columns.get_loc(c)}", "props": [("text-align", "left")]}
             for c in text_cols], overwrite=False)
    dates = [i for i, c in enumerate(data.columns) if c in text_cols and _all_dates(data[c])]
    if dates:  # "2025-12" or "2026-10-03" stay on one line (a narrow column broke them at the hyphen)
        styler = styler.set_table_styles([{"selector": f"td.col{i}", "props": [("white-space", "nowrap")]}
                                          for i in dates], overwrite=False)
    status = [i for i, c in enumerate(data.columns) if isinstance(c, str) and c.lower() == "status"]
    if status:  # on a narrow screen a wide table scrolls in its box; its status column stays in view
        i = status[0]
        styler = styler.set_table_styles(
            [{"selector": f"td.col{i}, th.col_heading.col{i}",
              "props": [("position", "sticky"), ("right", "0"), ("background", "#fff"),
                        ("box-shadow", "-6px 0 6px -6px rgba(0,0,0,.25)")]}], overwrite=False)
    return styler


#: A period label or a date as shown in a table cell: 2026-10, 2026-Q4, 2026-W48, 2026-10-03.
_DATE_LIKE = r"\d{4}-(\d{2}(-\d{2})?|Q[1-4]|W\d{2})\*?"


def _all_dates(col: pd.Series) -> bool:
    """Every value of the column (one at least) is a period label or a date."""
    v = col.dropna()
    return bool(len(v)) and bool(v.astype(str).str.fullmatch(_DATE_LIKE).all())


def _heading(text: str) -> str:
    """A column heading starts with a capital ("Ending MRR", "Pro-rated target"), as the labelled keys do;
    a statistic's own symbol stays as written ("n", "p-value")."""
    if text in ("n", "p-value") or not text[:1].islower():
        return text
    return text[0].upper() + text[1:]


def _booleans(col: pd.Series) -> bool:
    """A column of booleans: a bool dtype, or text-less values that are all True / False with blanks."""
    if pd.api.types.is_bool_dtype(col):
        return True
    if col.dtype != object:
        return False
    values = col.dropna()
    return len(values) > 0 and all(isinstance(v, (bool, np.bool_)) for v in values)


def _yes_no(x) -> str:
    return "—" if x is None or x != x else ("yes" if x else "no")


def plain_number(x) -> str:
    """A number with no format of its own: thousands separated, two decimals below 100, never scientific."""
    if x != x:  # NaN
        return "—"
    v = float(x) + 0.0  # -0.0 + 0.0 is 0.0: never "-0"
    if v.is_integer() or abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:,.2f}" if abs(v) >= 0.01 else f"{v:.2g}" if abs(v) >= 1e-4 else "≈0"  # (0 is whole: above)


def stable_id(*parts) -> str:
    """A short id from content (for tables built without :func:`style_table`)."""
    import hashlib

    return hashlib.sha1("|".join(str(p) for p in parts).encode("utf-8", "replace")).hexdigest()[:10]
