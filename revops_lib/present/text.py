"""Safe text for the reports: prose, table cells and published CSV cells.

Everything a report shows comes from the kit's own sentences with values from
the data or the parameters written into them. Those values are never trusted:

- :func:`md` renders the kit's Markdown prose to HTML with every raw HTML tag
  escaped (``<img onerror=…>`` shows as text), and with no link or image at all
  (``[x](http://…)`` shows its text; bare URLs are never linked), so nothing in a
  value can run a script, load a resource or lead the reader elsewhere;
- :func:`hide_emails` replaces e-mail addresses in shown text (never shown in
  HTML, whatever the privacy setting);
- :func:`neutralise_csv_cell` applies the OWASP rule for CSV injection to the
  text cells of published tables: a cell that starts with ``=``, ``+``, ``-``,
  ``@``, a tab or a carriage return gets a leading ``'`` so a spreadsheet shows it
  as text instead of running it as a formula;
- :func:`safe_html` marks HTML the kit built itself from escaped parts (such as an
  inline SVG sparkline) so that table escaping leaves it as it is.

>>> md("**Leads** from <img src=x onerror=alert(1)>").html
'<p><strong>Leads</strong> from &lt;img src=x onerror=alert(1)&gt;</p>\\n'
>>> neutralise_csv_cell("=HYPERLINK(\\"http://x\\")")
'\\'=HYPERLINK("http://x")'
"""

from __future__ import annotations

import re
from functools import lru_cache

from markupsafe import Markup, escape

__all__ = ["md", "Prose", "esc", "safe_html", "hide_emails", "neutralise_csv_cell", "CSV_FORMULA_PREFIXES",
           "EMAIL_PATTERN"]

#: First characters that make a spreadsheet read a cell as a formula (OWASP "CSV injection").
CSV_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

#: What counts as an e-mail address in shown text.
EMAIL_PATTERN = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")


def hide_emails(text: str) -> str:
    """``'ana@example.com'`` → ``'a…@example.com'``: the first character and the domain only."""
    return EMAIL_PATTERN.sub(lambda m: m.group(0)[0] + "…@" + m.group(0).split("@", 1)[1], text)


def esc(value) -> Markup:
    """A value as HTML text: escaped, e-mail addresses hidden."""
    if isinstance(value, Markup):
        return value
    return escape(hide_emails(str(value)))


def safe_html(html: str) -> Markup:
    """Mark HTML that the kit built from escaped parts as safe (table escaping keeps it)."""
    return Markup(html)


def neutralise_csv_cell(value):
    """Prefix a text cell that a spreadsheet would execute with ``'`` (other values unchanged)."""
    if isinstance(value, str) and value.startswith(CSV_FORMULA_PREFIXES):
        return "'" + value
    return value


class Prose:
    """Rendered prose: shown as HTML in notebooks and reports, as Markdown text in a terminal."""

    def __init__(self, text: str):
        self.data = self.text = text  # ``data``: as IPython's Markdown object names its source
        self.html = _render(text)

    def _repr_html_(self) -> str:
        return self.html

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text

    def __eq__(self, other) -> bool:
        return isinstance(other, Prose) and other.text == self.text

    __hash__ = None  # type: ignore[assignment]


def md(text: str) -> Prose:
    """The kit's Markdown prose as safe HTML (see the module docstring)."""
    return Prose(str(text))


@lru_cache(maxsize=1)
def _markdown():
    import mistune

    class _NoLinks(mistune.HTMLRenderer):
        """Links and images from Markdown are shown as their text: nothing from data is ever a link."""

        def link(self, text, url, title=None):
            return text

        def image(self, text, url, title=None):
            return text

    return mistune.create_markdown(escape=True, renderer=_NoLinks(escape=True), plugins=["strikethrough", "table"])


def _render(text: str) -> str:
    return _markdown()(hide_emails(text))
