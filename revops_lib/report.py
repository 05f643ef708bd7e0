"""Run the report notebooks for a period and render self-contained HTML.

``revops report`` and ``make reports`` call :func:`run`:

1. the period is parsed (default: the last complete month) and the source is
   validated — errors stop the run before any notebook starts;
2. each notebook's parameters are layered: ``parameters/default.yaml`` →
   ``parameters/<notebook>.yaml`` → ``parameters/<period>.yaml`` → command line;
3. Papermill executes each notebook in a real Jupyter kernel (several at once,
   ``jobs``), writing ``<out>/<period>/<notebook>.ipynb``;
4. nbconvert renders HTML without code, with the kit's template (no script or
   stylesheet from another host; images inline), a header (report, period,
   ``as_of``, source, generation time, kit version) and a footer of metric
   definitions.

Nothing is half-written: outputs go to temporary names and are moved into
place only on success; a failed notebook leaves the previous good HTML as it
was, keeps its executed notebook as ``<notebook>.failed.ipynb`` and makes the
run exit non-zero, while the other notebooks still run.
"""

from __future__ import annotations

import datetime as _dt
import os
import sys
import tempfile
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from revops_lib import __version__
from revops_lib.errors import ParameterError, RevOpsError
from revops_lib.periods import Period, default_period, parse_period, resolve_as_of

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS_DIR = ROOT / "notebooks"
PARAMETERS_DIR = ROOT / "parameters"
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"

#: Report notebooks in the order they are listed, with their titles.
REPORTS: dict[str, str] = {
    "revops_scorecard": "RevOps scorecard",
    "funnel_conversion": "Funnel conversion",
    "forecast_accuracy": "Forecast accuracy",
    "cohort_retention": "Cohort retention",
    "data_quality": "Data quality",
}

#: Footer definitions per report (from METRICS.md), shown under each report.
DEFINITIONS: dict[str, list[tuple[str, str]]] = {
    "data_quality": [
        ("Rows in period", "rows whose time column (created_at, occurred_at, date, …) falls in [period start, period end); targets: rows for the period label."),
        ("Days since last", "days between the table's latest row and as of; a table is stale when that exceeds `stale_after_days`."),
        ("Stale open deal", "created before as of, not closed by then, with a close date already passed or no change in opportunity_history for `stale_days` days."),
        ("Close date pushed", "a change in opportunity_history that moves the deal's close date later; deals with at least `min_pushes` such changes are listed."),
        ("Missing amount", "open or won deals whose amount is null or zero."),
        ("Contract checks", "revops validate: required columns, types, duplicate ids, nulls, negative amounts, stage order, end before start, rating ranges, dates in the future, period labels."),
    ],
}

__all__ = ["run", "layered_parameters", "notebook_names", "render_html", "Outcome", "REPORTS"]


@dataclass
class Outcome:
    notebook: str
    period: str
    status: str  # ok | failed | skipped
    seconds: float = 0.0
    error: str = ""
    html: Path | None = None
    executed: Path | None = None
    extra: dict = field(default_factory=dict)


def notebook_names() -> list[str]:
    """Report notebooks present in ``notebooks/``, in report order."""
    present = {p.stem for p in NOTEBOOKS_DIR.glob("*.ipynb")}
    return [n for n in REPORTS if n in present] + sorted(present - set(REPORTS))


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ParameterError(f"Cannot read parameters file `{path}`: {exc}") from exc
    if not isinstance(data, dict):
        raise ParameterError(f"Parameters file `{path}` must hold a mapping of name: value, not {type(data).__name__}.")
    return data


def layered_parameters(notebook: str, period: str | Period, overrides: dict | None = None,
                       *, parameters_dir: Path | None = None) -> dict:
    """Parameters for one notebook and period: default → notebook → period → overrides.

    >>> layered_parameters("data_quality", "2026-10", {"stale_days": 60})["stale_days"]  # doctest: +SKIP
    60
    """
    d = Path(parameters_dir or PARAMETERS_DIR)
    label = parse_period(period).label
    params: dict = {}
    for layer in (d / "default.yaml", d / f"{notebook}.yaml", d / f"{label}.yaml"):
        params.update(_read_yaml(layer))
    params.update(overrides or {})
    params["period"] = label
    return params


def _json_safe(params: dict) -> dict:
    out = {}
    for k, v in params.items():
        if isinstance(v, (_dt.date, _dt.datetime)):
            v = v.isoformat()
        out[k] = v
    return out


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def render_html(nb_path: Path, html_path: Path, *, meta: dict | None = None) -> Path:
    """Render an executed notebook to self-contained HTML without code (atomic write)."""
    import nbformat
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    nb = nbformat.read(str(nb_path), as_version=4)
    exporter = HTMLExporter(
        template_name="revops",
        extra_template_basedirs=[str(TEMPLATES_DIR)],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
    )
    tags = TagRemovePreprocessor(remove_cell_tags={"remove-cell"}, remove_input_tags={"remove-input"},
                                 remove_all_outputs_tags={"remove-output"})
    exporter.register_preprocessor(tags, enabled=True)
    resources = {"revops": meta or {}}
    if meta and meta.get("title"):
        nb.metadata["title"] = f"{meta['title']} — {meta.get('period', '')}"
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    _atomic_write_bytes(Path(html_path), body.encode("utf-8"))
    return Path(html_path)


def _last_error_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    lines = [ln for ln in text if ln.strip() and not set(ln.strip()) <= set("-")]
    # papermill's message ends with the exception line of the failing cell
    for ln in reversed(lines):
        if ln.strip():
            return ln.strip()[:300]
    return type(exc).__name__


def run_notebook(notebook: str, period: Period, params: dict, out_dir: Path, *, source_label: str,
                 as_of_label: str) -> Outcome:
    """Execute one notebook with Papermill and render it; never raises for notebook errors."""
    import papermill as pm

    t0 = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    final_nb = out_dir / f"{notebook}.ipynb"
    final_html = out_dir / f"{notebook}.html"
    failed_nb = out_dir / f"{notebook}.failed.ipynb"
    tmp_nb = out_dir / f".{notebook}.partial.ipynb"
    try:
        pm.execute_notebook(
            str(NOTEBOOKS_DIR / f"{notebook}.ipynb"),
            str(tmp_nb),
            parameters=_json_safe(params),
            kernel_name="python3",
            progress_bar=False,
            cwd=str(NOTEBOOKS_DIR),
        )
        meta = dict(
            title=REPORTS.get(notebook, notebook.replace("_", " ").capitalize()),
            period=period.label,
            period_range=f"{period.start_date} to {period.last_day}",
            as_of=as_of_label,
            source=source_label,
            generated=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            version=__version__,
            definitions=DEFINITIONS.get(notebook, []),
            index_href="../index.html",
        )
        render_html(tmp_nb, final_html, meta=meta)
        os.replace(tmp_nb, final_nb)
        failed_nb.unlink(missing_ok=True)
        return Outcome(notebook, period.label, "ok", time.perf_counter() - t0, html=final_html, executed=final_nb)
    except Exception as exc:  # the notebook (or its rendering) failed: keep the last good HTML
        if tmp_nb.exists():
            os.replace(tmp_nb, failed_nb)
        return Outcome(notebook, period.label, "failed", time.perf_counter() - t0,
                       error=_last_error_line(exc), executed=failed_nb if failed_nb.exists() else None,
                       extra={"traceback": traceback.format_exc()})
    finally:
        tmp_nb.unlink(missing_ok=True)


def _source_label(source) -> str:
    from revops_lib.sources import _redact

    return _redact(str(source))


def run(period=None, source="data/demo", notebooks=None, out="reports", jobs=None, params=None,
        force=False, progress=None) -> int:
    """Build the reports of one period; returns the exit status (0 = every notebook ok)."""
    from revops_lib.schema import validate

    say = progress or (lambda msg: print(msg, file=sys.stderr, flush=True))
    p = parse_period(period) if period else default_period()
    names = notebooks or notebook_names()
    unknown = [n for n in names if not (NOTEBOOKS_DIR / f"{n}.ipynb").is_file()]
    if unknown:
        raise ParameterError(
            f"Unknown notebook(s) {', '.join(f'`{u}`' for u in unknown)}; available: {', '.join(notebook_names())}."
        )
    src_text = str(source)
    source_abs = src_text if "://" in src_text else str(Path(src_text).expanduser().resolve())

    say(f"Validating {source_abs} …")
    result = validate(source_abs)
    if not result.ok:
        say(result.format())
        say("Validation failed: no report was built (the last good reports are untouched).")
        return 1
    if result.warnings:
        say(f"Validation: {result.summary()} (see the data_quality report)")

    out_dir = Path(out) / p.label
    all_params = {n: layered_parameters(n, p, params) for n in names}
    for n in names:
        all_params[n]["source"] = source_abs
    as_of_label = str(resolve_as_of(p, all_params[names[0]].get("as_of") if names else None)) + " UTC"

    jobs = max(1, jobs or os.cpu_count() or 1)
    say(f"Period {p.label} ({p.start_date} to {p.last_day}): {len(names)} notebook(s), {jobs} at a time")

    def one(n):
        say(f"  start  {n}")
        o = run_notebook(n, p, all_params[n], out_dir, source_label=_source_label(src_text), as_of_label=as_of_label)
        tail = f" — {o.error}" if o.error else ""
        say(f"  {o.status:<6} {n} ({o.seconds:.1f} s){tail}")
        return o

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        outcomes = list(pool.map(one, names))
    failed = [o for o in outcomes if o.status == "failed"]
    for o in outcomes:
        if o.status == "ok":
            say(f"  → {o.html}")
    if failed:
        say(f"{len(failed)} of {len(outcomes)} notebook(s) failed; executed notebooks kept as *.failed.ipynb.")
        return 1
    return 0


@dataclass
class Context:
    """What a report notebook derives from its parameters (see :func:`context`)."""

    period: Period
    as_of: "object"  # pandas Timestamp, naive UTC, exclusive cut-off
    source: "object"  # revops_lib.sources.Source
    currency: str = "USD"

    def __repr__(self) -> str:
        return f"<Context {self.period.label} as of {self.as_of} — {self.source.description}>"


def context(*, period: str = "", as_of: str = "", source: str = "../data/demo", currency: str = "USD",
            fiscal_year_start_month: int = 1) -> Context:
    """Derived values of a report notebook: the period (empty = last complete month), the cut-off and the source.

    Also sets the kit's chart theme.
    """
    from revops_lib.plots import set_theme
    from revops_lib.sources import open_source

    set_theme()
    p = (parse_period(period, fiscal_year_start_month=fiscal_year_start_month) if period
         else default_period(fiscal_year_start_month=fiscal_year_start_month))
    return Context(period=p, as_of=resolve_as_of(p, as_of), source=open_source(source), currency=currency)
