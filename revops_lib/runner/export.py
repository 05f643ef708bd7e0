"""HTML export: an executed notebook to a self-contained page without code (nbconvert, the kit's template)."""

from __future__ import annotations

from pathlib import Path

from revops_lib.files import atomic_write_bytes

TEMPLATES_DIR = Path(__file__).resolve().parents[1] / "templates"


_LOCAL = __import__("threading").local()


def _exporter():
    """One HTML exporter per thread (building one costs about 0.4 s; reusing it ~0.02 s)."""
    exp = getattr(_LOCAL, "exporter", None)
    if exp is None:
        from nbconvert.preprocessors import TagRemovePreprocessor

        exp = _exporter_class()(
            template_name="revops",
            extra_template_basedirs=[str(TEMPLATES_DIR)],
            exclude_input=True,
            exclude_input_prompt=True,
            exclude_output_prompt=True,
            embed_images=True,
        )
        tags = TagRemovePreprocessor(remove_cell_tags={"remove-cell"}, remove_input_tags={"remove-input"},
                                     remove_all_outputs_tags={"remove-output"})
        exp.register_preprocessor(tags, enabled=True)
        _LOCAL.exporter = exp
    return exp


def _exporter_class():
    """nbconvert's HTMLExporter without its BeautifulSoup pass.

    After rendering, ``HTMLExporter.from_notebook_node`` parses the whole page (inline images
    included) with BeautifulSoup to add ``alt`` to images and ``tabindex`` to outputs: about
    0.1–0.2 s per report. The same two attributes are added here with two substitutions.
    """
    import re

    from nbconvert import HTMLExporter
    from nbconvert.exporters.templateexporter import TemplateExporter
    from nbconvert.filters.highlight import Highlight2HTML
    from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter

    img_without_alt = re.compile(r"<img(?![^>]*\salt=)(?=[\s>/])")
    output_div = re.compile(r'(<div\s+class="[^"]*\b(?:jp-OutputArea-output|jp-Cell-inputWrapper)\b[^"]*")')

    class ReportHTMLExporter(HTMLExporter):
        def from_notebook_node(self, nb, resources=None, **kw):
            langinfo = nb.metadata.get("language_info", {})
            lexer = langinfo.get("pygments_lexer", langinfo.get("name", None))
            self.register_filter("highlight_code",
                                 self.filters.get("highlight_code", Highlight2HTML(pygments_lexer=lexer, parent=self)))
            resources = self._init_resources(resources)
            self.register_filter("filter_data_type", WidgetsDataTypeFilter(
                notebook_metadata=self._nb_metadata, parent=self, resources=resources))
            html, resources = TemplateExporter.from_notebook_node(self, nb, resources, **kw)
            html = img_without_alt.sub('<img alt="Chart"', html)
            html = output_div.sub(r'\1 tabindex="0"', html)
            return html, resources

    return ReportHTMLExporter


_H2 = __import__("re").compile(r'<h2 id="([^"]+)">(.*?)<a class="anchor-link"', __import__("re").S)


def add_contents(page: str, *, least: int = 3) -> str:
    """A table of contents under the page's header: one link per section heading (``##``), when there are at
    least ``least`` of them. The headings' ids and texts are nbconvert's (already escaped)."""
    import re

    heads = [(anchor, re.sub(r"<[^>]+>", "", text).strip()) for anchor, text in _H2.findall(page)]
    if len(heads) < least or "</header>" not in page:
        return page
    links = " ".join(f'<li><a href="#{anchor}">{text}</a></li>' for anchor, text in heads)
    nav = f'\n<nav class="revops-toc" aria-label="Contents"><b>Contents</b><ol>{links}</ol></nav>'
    return page.replace("</header>", "</header>" + nav, 1)


def render_html(nb_path, html_path: Path, *, meta: dict | None = None) -> Path:
    """Render an executed notebook (path or node) to self-contained HTML without code (atomic write)."""
    import copy

    import nbformat

    if isinstance(nb_path, (str, Path)):
        nb = nbformat.read(str(nb_path), as_version=4)
    else:
        nb = copy.deepcopy(nb_path)
    exporter = _exporter()
    meta = dict(meta or {})
    for key in ("scope", "slice_note"):  # left-out sentences: table names in `backticks` as code, the rest escaped
        if meta.get(key):
            import html
            import re

            meta[f"{key}_html"] = re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(str(meta[key])))
    resources = {"revops": meta}
    if meta and meta.get("title"):
        nb.metadata["title"] = (f"{meta['title']} — {meta.get('period', '')}"
                                + (f" — {meta['slice']}" if meta.get("slice") else ""))
    gone = {f"part:{k}" for k in (meta or {}).get("left_out") or {}}
    if gone:  # the parts left out for lack of data: their heading and cells leave the page
        nb.cells = [c for c in nb.cells if not gone & set(c.get("metadata", {}).get("tags", []))]
    for cell in nb.cells:  # papermill gives the parameters cell it inserts a random id; the HTML shows cell ids
        if "id" in cell and "injected-parameters" in cell.get("metadata", {}).get("tags", []):
            cell.id = "injected-parameters"
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    body = add_contents(body)
    atomic_write_bytes(Path(html_path), body.encode("utf-8"))
    return Path(html_path)
