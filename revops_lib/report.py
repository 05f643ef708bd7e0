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

import atexit
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
from revops_lib.runfiles import OutputLock, RunDir, file_mode, sweep_output

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

#: The library module behind each report; its ``FOOTNOTES`` (a list of (name, definition)
#: pairs, from METRICS.md) become the report's footer.
REPORT_MODULES: dict[str, str] = {
    "revops_scorecard": "scorecard",
    "funnel_conversion": "funnel",
    "forecast_accuracy": "forecast",
    "cohort_retention": "retention",
    "data_quality": "quality",
}


def footnotes(notebook: str) -> list[tuple[str, str]]:
    """The metric definitions shown in a report's footer."""
    import importlib

    mod = REPORT_MODULES.get(notebook)
    if not mod:
        return []
    try:
        return list(getattr(importlib.import_module(f"revops_lib.{mod}"), "FOOTNOTES", []))
    except ImportError:
        return []


__all__ = ["run", "layered_parameters", "notebook_names", "render_html", "Outcome", "REPORTS", "context",
           "publish", "headline", "write_index"]


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


def notebook_names(notebooks_dir: Path | None = None) -> list[str]:
    """Report notebooks present in ``notebooks/``, in report order."""
    present = {p.stem for p in Path(notebooks_dir or NOTEBOOKS_DIR).glob("*.ipynb")}
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
    """Parameters for one notebook and period: default → notebook → period → overrides (unchecked;
    :func:`task_parameters` keeps the notebook's declared names and checks their types).

    >>> layered_parameters("data_quality", "2026-10", {"stale_days": 60})["stale_days"]  # doctest: +SKIP
    60
    """
    p = parse_period(period)
    params: dict = {}
    for _, layer in _layers(notebook, p, overrides or {}, parameters_dir):
        params.update(layer)
    params["period"] = p.label
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
        os.chmod(tmp, file_mode())  # what the user's umask allows, never wider
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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


def render_html(nb_path, html_path: Path, *, meta: dict | None = None) -> Path:
    """Render an executed notebook (path or node) to self-contained HTML without code (atomic write)."""
    import copy

    import nbformat

    if isinstance(nb_path, (str, Path)):
        nb = nbformat.read(str(nb_path), as_version=4)
    else:
        nb = copy.deepcopy(nb_path)
    exporter = _exporter()
    resources = {"revops": meta or {}}
    if meta and meta.get("title"):
        nb.metadata["title"] = f"{meta['title']} — {meta.get('period', '')}"
    for cell in nb.cells:  # papermill gives the parameters cell it inserts a random id; the HTML shows cell ids
        if "id" in cell and "injected-parameters" in cell.get("metadata", {}).get("tags", []):
            cell.id = "injected-parameters"
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    _atomic_write_bytes(Path(html_path), body.encode("utf-8"))
    return Path(html_path)


def _last_error_line(exc: BaseException) -> str:
    import re

    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", str(exc)).strip().splitlines()  # no terminal colours
    lines = [ln for ln in text if ln.strip() and not set(ln.strip()) <= set("-")]
    # papermill's message ends with the exception line of the failing cell
    for ln in reversed(lines):
        if ln.strip():
            return ln.strip()[:300]
    return type(exc).__name__


def _source_label(source) -> str:
    from revops_lib.sources import _redact

    return _redact(str(source))


def _code_fingerprint(lib: Path | None = None) -> str:
    """Hash of the library's source files (so a library change rebuilds the reports).

    ``lib``: the package folder (default: this one's): its ``.py`` files and templates.
    """
    import hashlib

    h = hashlib.sha256(__version__.encode())
    lib = Path(lib) if lib is not None else Path(__file__).resolve().parent
    for f in sorted(lib.rglob("*")):
        if f.is_file() and f.suffix in {".py", ".j2", ".json"}:
            h.update(f.relative_to(lib).as_posix().encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def build_key(notebook_path: Path, params: dict, data_fingerprint: str, code_fingerprint: str) -> str:
    """What a report depends on: notebook, parameters, library and source data."""
    import hashlib
    import json

    h = hashlib.sha256()
    h.update(notebook_path.read_bytes())
    h.update(json.dumps(_json_safe(params), sort_keys=True, default=str).encode())
    h.update(data_fingerprint.encode())
    h.update(code_fingerprint.encode())
    return h.hexdigest()[:20]


def _manifest_path(out_dir: Path) -> Path:
    return out_dir / "manifest.json"


def read_manifest(out_dir: Path) -> dict:
    import json

    p = _manifest_path(out_dir)
    if not p.is_file():
        return {}
    try:
        return json.loads(p.read_text())
    except ValueError:
        return {}


_MANIFEST_LOCK = __import__("threading").Lock()


def _record(out_dir: Path, notebook: str, entry: dict) -> None:
    """Update one notebook's entry of <out>/<period>/manifest.json (atomic, thread-safe)."""
    import json

    with _MANIFEST_LOCK:
        m = read_manifest(out_dir)
        old = m.get(notebook, {})
        if entry["status"] == "failed":  # keep what the last good run was
            entry = {**entry, "last_ok": old.get("last_ok") or (old if old.get("status") in ("ok", "skipped") else None)}
        m[notebook] = entry
        _atomic_write_bytes(_manifest_path(out_dir), json.dumps(m, indent=1, sort_keys=True, default=str).encode())


# ---------------------------------------------------------------------------
# Warm kernels: one real Jupyter kernel per worker thread, reused across notebooks
# ---------------------------------------------------------------------------

#: Imports done once when a kernel starts, so notebooks do not pay for them; inline charts
#: compressed at zlib level 3 (the default 6 takes 15 % longer for 2 % smaller images).
WARMUP_CODE = """%matplotlib inline
%config InlineBackend.print_figure_kwargs = {"bbox_inches": "tight", "pil_kwargs": {"compress_level": 3}}
import numpy, pandas, scipy.stats, matplotlib.pyplot, seaborn, ibis, duckdb
import revops_lib.report, revops_lib.plots, revops_lib.sources, revops_lib.schema, revops_lib.quality
import importlib
for _m in ("funnel", "forecast", "retention", "scorecard"):
    try:
        importlib.import_module("revops_lib." + _m)
    except ImportError:
        pass
revops_lib.plots.set_theme()"""

#: First cell of every run on a reused kernel: a clean namespace (what ``%reset -f`` clears, without
#: its 0.15 s garbage collection), no output history, no figure left open.
RESET_CODE = """_ip = get_ipython()
_ip.history_manager.output_hist.clear()
for _k in [k for k in list(_ip.user_ns) if k not in _ip.user_ns_hidden
           and (not k.startswith("_") or k[1:].isdigit() or k in ("_", "__", "___"))]:
    del _ip.user_ns[_k]
import matplotlib.pyplot as _plt
_plt.close("all")
del _plt, _k, _ip"""

#: A kernel is replaced after this many notebooks (bounded memory growth).
MAX_USES = 25


class KernelStartError(RuntimeError):
    """A warm kernel did not start (its process died, or importing the kit failed).

    ``summary`` is the one line shown in the run's messages, the manifest and the index: what went
    wrong and, when the kernel's log says more, its last line. The message adds the log's tail.
    """

    #: ipykernel's routine warning, which ends most kernel logs and says nothing about a failure
    LOG_NOISE = "Kernel is running over TCP without encryption"

    def __init__(self, cause: BaseException, log_tail: str = ""):
        reason = _last_error_line(cause)
        said = [ln.strip() for ln in log_tail.splitlines() if ln.strip() and self.LOG_NOISE not in ln]
        summary = f"The Jupyter kernel did not start: {reason}"
        if said and said[-1] not in reason:
            summary += f" (kernel log: {said[-1]})"
        self.summary = summary[:400]
        super().__init__(summary + (f"\nKernel log:\n{log_tail}" if log_tail.strip() else ""))


class _Kernel:
    def __init__(self, cwd: Path, rundir: Path | None = None, env: dict | None = None, on_start=None):
        """Start a kernel and import the kit in it. ``on_start(km)`` is called once its process runs and
        before the warm-up, so a pool that is closed meanwhile can stop it (see :meth:`KernelPool.close`)."""
        import uuid

        from jupyter_client.manager import AsyncKernelManager
        from jupyter_client.utils import run_sync

        # the kernel's own log (e.g. ipykernel's transport warning) goes to a file, shown only if it fails;
        # log and connection file live in the run's private folder, removed when the run ends
        self.log = tempfile.NamedTemporaryFile(prefix="revops-kernel-", suffix=".log", delete=False,
                                               dir=str(rundir) if rundir else None)
        from revops_lib._kernel_client import QuickReadyClient

        kw = {"connection_file": str(Path(rundir) / f"kernel-{uuid.uuid4().hex}.json")} if rundir else {}
        self.km = AsyncKernelManager(kernel_name="python3", client_class="revops_lib._kernel_client.QuickReadyClient",
                                     client_factory=QuickReadyClient, **kw)
        self.km.revops_clients = []  # clients to close after each notebook (see close_clients)
        start_kw = {"env": {**os.environ, **env}} if env else {}
        self.cwd = Path(cwd)
        self.uses = 0
        try:
            run_sync(self.km.start_kernel)(cwd=str(cwd), stderr=self.log, stdout=self.log, **start_kw)
            if on_start is not None:
                on_start(self.km)
            self._run_cells([WARMUP_CODE])
        except BaseException as exc:
            tail = self.log_tail()
            self.shutdown()
            if not isinstance(exc, Exception):
                raise
            raise KernelStartError(exc, tail) from exc

    def log_tail(self, n: int = 20) -> str:
        try:
            return "\n".join(Path(self.log.name).read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def _run_cells(self, sources):
        import nbformat
        from nbclient import NotebookClient

        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in sources],
                                      metadata={"kernelspec": {"name": "python3", "language": "python",
                                                               "display_name": "Python 3"}})
        client = NotebookClient(nb, km=self.km, kernel_name="python3", timeout=600)
        try:
            client.execute()
        finally:
            # nbclient leaves its exit hook registered when the kernel dies while its client starts
            # (a pool closed during the warm-up kills it): at exit the hook would fail on a reset client
            atexit.unregister(client._cleanup_kernel)
            self.close_clients()

    def close_clients(self) -> None:
        from revops_lib._kernel_client import close_clients

        close_clients(self.km)

    def shutdown(self):
        from jupyter_client.utils import run_sync

        self.close_clients()
        try:
            run_sync(self.km.shutdown_kernel)(now=True)
        except Exception:  # pragma: no cover - already gone
            pass
        try:
            self.log.close()
            os.unlink(self.log.name)
        except OSError:
            pass


class KernelPool:
    """Warm kernels shared by the worker threads.

    ``size`` kernels start (and import the kit) in the background as soon as the
    pool exists, so they are ready while the source is validated. A worker
    takes one with :meth:`acquire`, runs one notebook, and gives it back with
    :meth:`release`; a kernel whose notebook failed, or that ran ``MAX_USES``
    notebooks, is shut down and replaced in the background.
    """

    def __init__(self, size: int, cwd: Path, *, rundir: Path | None = None, env: dict | None = None):
        import queue
        import threading

        self.cwd = Path(cwd)
        self.rundir, self.env = rundir, env
        self._starting: list[threading.Thread] = []
        self._ready: "queue.Queue[_Kernel | BaseException]" = queue.Queue()
        self._all: list[_Kernel] = []
        self._booting: set = set()  # kernel managers of kernels still warming up
        self._lock = threading.Lock()
        self._closed = False
        for _ in range(size):
            self._spawn()

    def _spawn(self) -> None:
        import threading

        booted = []

        def on_start(km):
            with self._lock:
                booted.append(km)
                self._booting.add(km)
                closed = self._closed
            if closed:
                _kill(km)

        def start():
            try:
                k = _Kernel(self.cwd, self.rundir, self.env, on_start=on_start)
            except BaseException as exc:  # surfaced to the worker that waits for it
                self._ready.put(exc)
                return
            finally:
                with self._lock:
                    self._booting.difference_update(booted)
            with self._lock:
                if self._closed:
                    k.shutdown()
                    return
                self._all.append(k)
            self._ready.put(k)

        t = threading.Thread(target=start, daemon=True, name="revops-kernel-start")
        with self._lock:
            self._starting = [x for x in self._starting if x.is_alive()] + [t]
        t.start()

    def acquire(self) -> _Kernel:
        k = self._ready.get()
        if isinstance(k, BaseException):
            self._spawn()
            raise k
        k.uses += 1
        return k

    def release(self, k: _Kernel, *, healthy: bool = True) -> None:
        if healthy and k.uses < MAX_USES:
            self._ready.put(k)
            return
        with self._lock:
            if k in self._all:
                self._all.remove(k)
        k.shutdown()
        self._spawn()

    def close(self) -> None:
        import threading

        with self._lock:
            self._closed = True
            starting = list(self._starting)
            booting = list(self._booting)
        # a kernel still warming up (the run stops early: invalid data, Ctrl-C, SIGTERM) is not waited
        # for: its process is killed, its warm-up fails at once and its thread cleans up after it
        for km in booting:
            _kill(km)
        for t in starting:
            t.join(timeout=120)
        with self._lock:
            kernels, self._all = self._all, []
        stops = [threading.Thread(target=k.shutdown, name="revops-kernel-stop") for k in kernels]
        for t in stops:  # in parallel: each waits for its process to end
            t.start()
        for t in stops:
            t.join()


def _kill(km) -> None:
    """Kill a kernel's process at once (its manager's shutdown then only removes its files)."""
    process = getattr(getattr(km, "provisioner", None), "process", None)
    try:
        if process is not None and process.poll() is None:
            process.kill()
    except OSError:  # pragma: no cover - already gone
        pass


def _prepare_notebook(path: Path, validation: Path | None = None):
    """The notebook to execute: a first cell that resets a reused kernel (hidden from the HTML).

    ``validation``: the runner's validation of the source (a pickle), handed to the kernel so the
    data_quality report does not validate the same files again.
    """
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    code = RESET_CODE
    if validation is not None:
        code += (f"\nimport revops_lib.quality as _rq\n_rq.load_validation({str(validation)!r})\ndel _rq")
    cell = nbformat.v4.new_code_cell(code)
    cell.id = "revops-injected-reset"  # a fixed id (a new cell gets a random one), as the parameters cell's
    cell.metadata["tags"] = ["injected-reset", "remove-cell"]
    nb.cells.insert(0, cell)
    return nb


def run_notebook(notebook: str, period: Period, params: dict, out_dir: Path, *, source_label: str,
                 as_of_label: str, notebooks_dir: Path | None = None, pool: KernelPool | None = None,
                 validation: Path | None = None) -> Outcome:
    """Execute one notebook with Papermill and render it; never raises for notebook errors.

    Published tables and headlines go to a staging folder first and replace
    ``<out_dir>/tables/<notebook>/`` only when the notebook and its HTML succeeded.
    """
    import json
    import shutil

    import papermill as pm

    nb_dir = Path(notebooks_dir or NOTEBOOKS_DIR)
    t0 = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    final_nb = out_dir / f"{notebook}.ipynb"
    final_html = out_dir / f"{notebook}.html"
    failed_nb = out_dir / f"{notebook}.failed.ipynb"
    # a staging folder and partial notebook of this run only (a killed run's leftovers go at the next run)
    staging = Path(tempfile.mkdtemp(dir=out_dir, prefix=f".staging-{notebook}-"))
    tmp_nb = out_dir / f".{notebook}.{staging.name.rsplit('-', 1)[-1]}.partial.ipynb"
    kernel = None
    healthy = False
    try:
        extra = {}
        if pool is not None:
            _exporter()  # built (once per thread) while the kernels may still be warming up
            kernel = pool.acquire()
            extra["km"] = kernel.km
        executed = pm.execute_notebook(
            _prepare_notebook(nb_dir / f"{notebook}.ipynb", validation),
            str(tmp_nb),
            parameters=_json_safe({**params, "output_dir": str(staging)}),
            kernel_name="python3",
            progress_bar=False,
            request_save_on_cell_execute=False,
            cwd=None if pool is not None else str(nb_dir),
            **extra,
        )
        meta = dict(
            title=REPORTS.get(notebook, notebook.replace("_", " ").capitalize()),
            period=period.label,
            period_range=f"{period.start_date} to {period.last_day}",
            as_of=as_of_label,
            source=source_label,
            generated=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            version=__version__,
            definitions=footnotes(notebook),
            index_href="../index.html",
        )
        render_html(executed, final_html, meta=meta)
        os.replace(tmp_nb, final_nb)
        tables = out_dir / "tables" / notebook
        if (staging / "tables").is_dir():
            old = out_dir / "tables" / f".old-{notebook}"
            shutil.rmtree(old, ignore_errors=True)
            tables.parent.mkdir(parents=True, exist_ok=True)
            if tables.exists():
                os.replace(tables, old)
            os.replace(staging / "tables", tables)
            shutil.rmtree(old, ignore_errors=True)
        headlines = []
        if (staging / "headlines.json").is_file():
            headlines = json.loads((staging / "headlines.json").read_text())
        failed_nb.unlink(missing_ok=True)
        healthy = True
        return Outcome(notebook, period.label, "ok", time.perf_counter() - t0, html=final_html, executed=final_nb,
                       extra={"headlines": headlines})
    except Exception as exc:  # the notebook (or its rendering) failed: keep the last good HTML
        if tmp_nb.exists():
            os.replace(tmp_nb, failed_nb)
        error = exc.summary if isinstance(exc, KernelStartError) else _last_error_line(exc)
        return Outcome(notebook, period.label, "failed", time.perf_counter() - t0,
                       error=error, executed=failed_nb if failed_nb.exists() else None,
                       extra={"traceback": traceback.format_exc()})
    finally:
        if pool is not None and kernel is not None:
            kernel.close_clients()
            pool.release(kernel, healthy=healthy)
        tmp_nb.unlink(missing_ok=True)
        shutil.rmtree(staging, ignore_errors=True)


class _Progress:
    """One line per notebook start and finish; a progress bar too when stderr is a terminal."""

    def __init__(self, total: int, say):
        self.say = say
        self.bar = None
        if sys.stderr.isatty():
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, unit="report", leave=False, file=sys.stderr)
            except ImportError:  # pragma: no cover
                self.bar = None
        self.lock = __import__("threading").Lock()

    def line(self, msg: str) -> None:
        with self.lock:
            if self.bar is not None:
                self.bar.write(msg, file=sys.stderr)
            else:
                self.say(msg)

    def done(self) -> None:
        if self.bar is not None:
            with self.lock:
                self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _skip_slow_optional_imports() -> None:
    """Keep jsonschema from importing ``rfc3987_syntax`` in the runner's process.

    Papermill and nbconvert import nbformat, which imports jsonschema; jsonschema imports
    ``rfc3987_syntax`` when it is installed (JupyterLab's dependencies bring it) to check the
    ``iri`` string format, and that module compiles a Lark grammar at import: about 0.9 s of
    every run. Nothing here checks that format (nbformat's schema does not use it), so the module
    is marked as unavailable, which jsonschema handles as "not installed". Done only before
    jsonschema is imported, never in the kernels.
    """
    if "jsonschema" not in sys.modules and "rfc3987_syntax" not in sys.modules:
        sys.modules["rfc3987_syntax"] = None  # type: ignore[assignment]  # import raises ImportError


def select_notebooks(notebooks, notebooks_dir: Path | None = None) -> list[str]:
    """The report names to build: all when ``notebooks`` is None, else exactly these (checked).

    Only report names are accepted — from the kit's registry (:data:`REPORTS`) for the kit's own
    ``notebooks/``, or the notebooks present in another ``notebooks_dir`` (tests, a fork) — never a
    path; no name twice; an empty list is an error.
    """
    import re

    nb_dir = Path(notebooks_dir or NOTEBOOKS_DIR)
    kit = nb_dir.resolve() == NOTEBOOKS_DIR.resolve()
    available = [n for n in notebook_names(nb_dir) if not kit or n in REPORTS]
    if notebooks is None:
        return available
    if isinstance(notebooks, str):
        notebooks = notebooks.split(",")
    names = [str(n).strip() for n in notebooks]
    if not names or any(not n for n in names):
        raise ParameterError(f"`--notebooks` names an empty report; give report names separated by commas "
                             f"(available: {', '.join(available)}), or leave the option out to build all.")
    odd = [n for n in names if not re.fullmatch(r"[a-z0-9_]+", n)]
    if odd:
        raise ParameterError(f"`--notebooks` takes report names, not paths: {', '.join(repr(n) for n in odd[:3])} "
                             f"(available: {', '.join(available)}).")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ParameterError(f"`--notebooks` names {', '.join(f'`{d}`' for d in dup)} more than once.")
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ParameterError(
            f"Unknown notebook(s) {', '.join(f'`{u}`' for u in unknown)}; available: {', '.join(available)}."
        )
    return names


def _layers(notebook: str, period: Period, overrides: dict, parameters_dir: Path | None):
    d = Path(parameters_dir or PARAMETERS_DIR)
    layers = [(f"parameters/{f.name}", _read_yaml(f))
              for f in (d / "default.yaml", d / f"{notebook}.yaml", d / f"{period.label}.yaml")]
    return layers + [("-p", dict(overrides or {}))]


def task_parameters(notebook: str, period: Period, overrides: dict, *, notebooks_dir: Path | None = None,
                    parameters_dir: Path | None = None, source: str) -> dict:
    """The parameters one notebook receives for one period: layered, its declared names only, typed and
    checked (:mod:`revops_lib.parameters`), with the runner's ``period`` and ``source``."""
    from revops_lib.parameters import checked

    values: dict = {}
    where: dict = {}
    for label, layer in _layers(notebook, period, overrides, parameters_dir):
        values.update(layer)
        where.update({k: label for k in layer})
    values["period"] = period.label
    path = Path(notebooks_dir or NOTEBOOKS_DIR) / f"{notebook}.ipynb"
    prm = checked(notebook, path, values, where=where)
    prm["period"] = period.label
    prm["source"] = source
    return prm


def run(period=None, source="data/demo", notebooks=None, out="reports", jobs=None, params=None,
        force=False, progress=None, *, periods=None, notebooks_dir=None, parameters_dir=None,
        validate_source=True, only=None) -> int:
    """Build the reports of one period (or several: ``periods``); returns the exit status.

    0 when every notebook succeeded or was skipped as unchanged, 1 otherwise.
    ``only``: an optional set of (notebook, period label) pairs to restrict the run to.

    Before any kernel starts: the notebook names, every parameter (declared names only, typed) and
    the output folder (never the source folder or inside it) are checked; then the output folder is
    locked for this run (a second run into it stops with :class:`revops_lib.runfiles.RunLocked`) and
    what a killed run left there is removed.
    A password in a source URL never reaches a kernel's parameters, an executed notebook or a file:
    kernels get the URL without it and the full URL in their environment (``REVOPS_SOURCE``).
    """
    from revops_lib.outdirs import check_report_folder
    from revops_lib.parameters import check_overrides
    from revops_lib.sources import SOURCE_ENV, has_credentials, public_url

    check_report_folder(out)  # a file, a read-only folder, a folder of other data: refused before anything starts
    say = progress or (lambda msg: print(msg, file=sys.stderr, flush=True))
    _skip_slow_optional_imports()
    nb_dir = Path(notebooks_dir or NOTEBOOKS_DIR)
    plist = [parse_period(x) for x in periods] if periods else [parse_period(period) if period else default_period()]
    names = select_notebooks(notebooks, nb_dir)
    overrides = dict(params or {})
    check_overrides(overrides, {n: nb_dir / f"{n}.ipynb" for n in names})
    src_text = str(source)
    kernel_env = None
    if "://" in src_text:
        source_param = public_url(src_text)  # what kernels, notebooks and manifests see
        if has_credentials(src_text):
            kernel_env = {SOURCE_ENV: src_text}
    else:
        source_param = str(Path(src_text).expanduser().resolve())
    out = Path(out).expanduser().resolve()  # kernels run in notebooks/: every path they get must be absolute
    src_dir = Path(source_param) if "://" not in src_text else None
    if src_dir is not None and src_dir.is_dir() and (out == src_dir or src_dir in out.parents):
        from revops_lib.errors import OutputError

        where = "the source folder" if out == src_dir else "inside the source folder"
        raise OutputError(f"`--out` `{out}` is {where} `{src_dir}`: reports never go into the data they read; "
                          "give another folder (e.g. `--out reports`).")
    prepared = {(p.label, n): task_parameters(n, p, overrides, notebooks_dir=nb_dir, parameters_dir=parameters_dir,
                                              source=source_param)
                for p in plist for n in names if only is None or (n, p.label) in only}

    n_tasks = max(1, len(prepared))
    jobs = max(1, min(jobs or os.cpu_count() or 1, n_tasks))
    with OutputLock(out), RunDir() as rundir:
        sweep_output(out)
        pool = KernelPool(jobs, nb_dir, rundir=rundir, env=kernel_env)  # kernels warm up during validation
        try:
            return _run(plist, names, src_text, out, jobs, force, say, nb_dir, validate_source, prepared, pool,
                        rundir)
        finally:
            pool.close()


def _run(plist, names, src_text, out, jobs, force, say, nb_dir, validate_source, prepared, pool, rundir) -> int:
    from revops_lib.schema import validate
    from revops_lib.sources import open_source

    src = open_source(src_text)
    shared = None  # the validation, handed to the kernels (file sources)
    if validate_source:
        say(f"Validating {src.description} …")
        result = validate(src)
        if not result.ok:
            say(result.format())
            say("Validation failed: no report was built (the last good reports are untouched).")
            return 1
        if result.warnings:
            say(f"Validation: {result.summary()} (details in the data_quality report)")
        if src.files:
            import pickle

            from revops_lib.quality import validation_key

            fd, name = tempfile.mkstemp(prefix="validation-", suffix=".pickle", dir=rundir)
            with os.fdopen(fd, "wb") as f:
                pickle.dump((validation_key(src), result), f)
            shared = Path(name)
    return _build(plist, names, src_text, out, jobs, force, say, nb_dir, prepared, pool, src, shared)


def _build(plist, names, src_text, out, jobs, force, say, nb_dir, prepared, pool, src, shared) -> int:
    from revops_lib.quality import latest_event

    latest = latest_event(src)
    for p in plist:
        if latest is not None and latest < p.start_naive:
            say(f"Warning: the source's latest event ({latest:%Y-%m-%d}) is before period {p.label} "
                f"({p.start_date} to {p.last_day}): its figures will be empty. Pick an earlier --period.")
    data_fp = src.fingerprint()
    code_fp = _code_fingerprint()

    tasks = [(p, n, prepared[(p.label, n)]) for p in plist for n in names if (p.label, n) in prepared]

    labels = ", ".join(p.label for p in plist)
    say(f"Period {labels}: {len(names)} notebook(s) × {len(plist)} period(s), {jobs} at a time")
    prog = _Progress(len(tasks), say)

    import threading

    cancelled = threading.Event()

    def one(task):
        p, n, prm = task
        if cancelled.is_set():
            return Outcome(n, p.label, "cancelled")
        out_dir = Path(out) / p.label
        key = build_key(nb_dir / f"{n}.ipynb", prm, data_fp, code_fp)
        prev = read_manifest(out_dir).get(n, {})
        if (not force and prev.get("key") == key and prev.get("status") in ("ok", "skipped")
                and (out_dir / f"{n}.html").is_file()):
            o = Outcome(n, p.label, "skipped", 0.0, html=out_dir / f"{n}.html", extra={"headlines": prev.get("headlines", [])})
            _record(out_dir, n, {**prev, "status": "skipped", "checked_at": _now_iso()})
            prog.line(f"  skip   {p.label} {n} (unchanged since {prev.get('finished_at', '?')})")
            prog.done()
            return o
        prog.line(f"  start  {p.label} {n}")
        as_of_label = f"{resolve_as_of(p, prm.get('as_of')):%Y-%m-%d %H:%M} UTC (exclusive)"
        o = run_notebook(n, p, prm, out_dir, source_label=_source_label(src_text), as_of_label=as_of_label,
                         notebooks_dir=nb_dir, pool=pool, validation=shared)
        if cancelled.is_set():  # interrupted: do not record a failure the notebook did not have
            return Outcome(n, p.label, "cancelled")
        entry = {"status": o.status, "seconds": round(o.seconds, 2), "finished_at": _now_iso(),
                 "error": o.error, "key": key if o.status == "ok" else None,
                 "headlines": o.extra.get("headlines", []), "title": REPORTS.get(n, n),
                 "executed": o.executed.name if o.executed else None}
        _record(out_dir, n, entry)
        tail = f" — {o.error}" if o.error else ""
        prog.line(f"  {o.status:<6} {p.label} {n} ({o.seconds:.1f} s){tail}")
        prog.done()
        return o

    executor = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="revops-report")
    try:
        # longest first, so that no long notebook starts last while the other workers sit idle
        order = sorted(range(len(tasks)), key=lambda i: -_expected_seconds(out, tasks[i]))
        futures = {i: executor.submit(one, tasks[i]) for i in order}
        outcomes = [futures[i].result() for i in range(len(tasks))]
        executor.shutdown(wait=True)
    except KeyboardInterrupt:
        # Ctrl-C: start nothing new, stop the kernels (running notebooks fail and write nothing
        # in place of a good report), keep the index consistent, then let the caller exit.
        cancelled.set()
        executor.shutdown(wait=False, cancel_futures=True)
        pool.close()
        prog.close()
        write_index(Path(out))
        raise
    finally:
        prog.close()
    write_index(Path(out))
    failed = [o for o in outcomes if o.status == "failed"]
    ok = [o for o in outcomes if o.status == "ok"]
    skipped = [o for o in outcomes if o.status == "skipped"]
    say(f"Done: {len(ok)} built, {len(skipped)} unchanged, {len(failed)} failed → {Path(out) / 'index.html'}")
    if failed:
        for o in failed:
            say(f"  FAILED {o.period} {o.notebook}: {o.error}"
                + (f" (see {Path(out) / o.period / o.executed.name})" if o.executed else ""))
        return 1
    return 0


#: Rough seconds per notebook (demo data, warm kernel), used to start the longest first when a
#: period has no earlier build to go by.
TYPICAL_SECONDS = {"funnel_conversion": 2.3, "forecast_accuracy": 2.2, "revops_scorecard": 2.0,
                   "cohort_retention": 1.5, "data_quality": 1.3}


def _expected_seconds(out: Path, task) -> float:
    p, n, _ = task
    seconds = read_manifest(Path(out) / p.label).get(n, {}).get("seconds")
    if isinstance(seconds, (int, float)) and seconds > 0:
        return float(seconds)
    return TYPICAL_SECONDS.get(n, 2.0)


def _now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


# ---------------------------------------------------------------------------
# Inside notebooks: publish tables, record headline numbers
# ---------------------------------------------------------------------------

_OUTPUT_DIR: Path | None = None


def set_output_dir(path: str | Path | None) -> None:
    """Where :func:`publish` and :func:`headline` write (the runner passes ``output_dir``)."""
    global _OUTPUT_DIR
    _OUTPUT_DIR = Path(path) if path else None


#: Significant digits of the floats in published CSVs: enough for cents up to ten billion, and few enough
#: that the last-digit noise of a float sum (which changes with the order a parallel engine adds in)
#: never reaches the file, so identical inputs give byte-identical CSVs.
CSV_SIGNIFICANT_DIGITS = 12


def csv_bytes(df, *, index: bool = False) -> bytes:
    """A published table as CSV: floats to :data:`CSV_SIGNIFICANT_DIGITS` significant digits, text cells
    that a spreadsheet would run as a formula neutralised (:func:`revops_lib.text.neutralise_csv_cell`),
    carriage returns inside text written as line feeds (so the cell stays quoted and whole)."""
    import pandas as pd

    from revops_lib.text import neutralise_csv_cell

    def cell(v):
        v = neutralise_csv_cell(v)
        # a bare carriage return is not quoted by the CSV writer with "\n" line ends: make it a line feed
        return v.replace("\r\n", "\n").replace("\r", "\n") if isinstance(v, str) else v

    out = df.copy()
    for c in out.columns:
        col = out[c]
        if col.dtype == object or pd.api.types.is_string_dtype(col):
            out[c] = col.map(cell)
    if not isinstance(out.columns, pd.MultiIndex):
        out.columns = [neutralise_csv_cell(c) for c in out.columns]
    if index and out.index.dtype == object:
        out.index = out.index.map(neutralise_csv_cell)
    return out.to_csv(index=index, float_format=f"%.{CSV_SIGNIFICANT_DIGITS}g", lineterminator="\n").encode("utf-8")


def publish(df, name: str, *, formats: dict | None = None, index: bool = False):
    """Write the data behind a table or chart as ``tables/<name>.csv`` and return it formatted for display.

    Inside a report run the CSV lands in ``reports/<period>/tables/<notebook>/<name>.csv``;
    in JupyterLab (no ``output_dir``) nothing is written. ``formats`` maps columns to
    format strings or callables for display only. The CSV keeps the raw values (floats to
    12 significant digits) and neutralises text cells a spreadsheet would execute (see :func:`csv_bytes`).
    """
    import re

    if not re.fullmatch(r"[a-z0-9_]+", name):
        raise ParameterError(f"Table name `{name}` must be lower-case letters, digits and underscores.")
    if _OUTPUT_DIR is not None:
        path = _OUTPUT_DIR / "tables" / f"{name}.csv"
        _atomic_write_bytes(path, csv_bytes(df, index=index))
    from revops_lib.plots import style_table

    return style_table(df, formats, index=index)


def headline(label: str, value, *, fmt: str | None = None) -> None:
    """Record a headline number shown next to the report in ``reports/index.html``."""
    import json

    if _OUTPUT_DIR is None:
        return
    path = _OUTPUT_DIR / "headlines.json"
    items = json.loads(path.read_text()) if path.is_file() else []
    text = fmt.format(value) if fmt else str(value)
    items = [i for i in items if i["label"] != label] + [{"label": label, "value": text}]
    _atomic_write_bytes(path, json.dumps(items).encode())


# ---------------------------------------------------------------------------
# reports/index.html
# ---------------------------------------------------------------------------

def write_index(out: Path) -> Path:
    """Rebuild ``<out>/index.html`` from every period's manifest (newest period first)."""
    import html

    out = Path(out)
    rows = []
    periods = []
    for d in out.iterdir() if out.is_dir() else []:
        if d.is_dir() and (d / "manifest.json").is_file():
            try:
                periods.append((parse_period(d.name), d))
            except RevOpsError:
                continue
    periods.sort(key=lambda x: (x[0].end, x[0].start), reverse=True)
    order = {n: i for i, n in enumerate(REPORTS)}
    for p, d in periods:
        m = read_manifest(d)
        for n in sorted(m, key=lambda k: (order.get(k, 99), k)):
            e = m[n]
            status = e.get("status", "?")
            css = {"ok": "ok", "skipped": "skip", "failed": "fail"}.get(status, "")
            label = {"skipped": "skipped-unchanged"}.get(status, status)
            title = html.escape(e.get("title") or REPORTS.get(n, n))
            links = []
            if (d / f"{n}.html").is_file():
                links.append(f'<a href="{html.escape(d.name)}/{html.escape(n)}.html">{title}</a>')
            else:
                links.append(title)
            if status == "failed" and e.get("executed"):
                links.append(f'<a class="small" href="{html.escape(d.name)}/{html.escape(e["executed"])}">executed notebook</a>')
                if (d / f"{n}.html").is_file():
                    links.append('<span class="small">(link above: last good report)</span>')
            if (d / "tables" / n).is_dir():
                links.append(f'<a class="small" href="{html.escape(d.name)}/tables/{html.escape(n)}/">tables (CSV)</a>')
            heads = " · ".join(f"{html.escape(h['label'])}: <b>{html.escape(str(h['value']))}</b>"
                               for h in (e.get("headlines") or [])[:4])
            err = f'<div class="err">{html.escape(e.get("error") or "")}</div>' if status == "failed" else ""
            secs = e.get("seconds")
            rows.append(
                f"<tr><td>{html.escape(p.label)}</td><td>{' '.join(links)}{err}</td>"
                f'<td><span class="st {css}">{label}</span></td>'
                f"<td class=num>{'' if secs is None else f'{secs:.1f} s'}</td>"
                f"<td>{heads}</td><td class=small>{html.escape(e.get('finished_at') or '')}</td></tr>"
            )
    body = "\n".join(rows) or '<tr><td colspan="6">No report yet: run <code>make reports</code>.</td></tr>'
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>RevOps reports</title>
<style>
 body {{ font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; max-width: 1150px;
        margin: 24px auto; padding: 0 24px; color: #222; }}
 h1 {{ color: #1d3557; border-bottom: 3px solid #2F5D8C; padding-bottom: 8px; }}
 table {{ border-collapse: collapse; width: 100%; font-size: 0.92em; }}
 th, td {{ text-align: left; padding: 7px 8px; border-bottom: 1px solid #e3e3e3; vertical-align: top; }}
 th {{ background: #f3f6fa; }}
 td.num {{ text-align: right; white-space: nowrap; }}
 a {{ color: #2F5D8C; }}
 .small {{ font-size: 0.85em; color: #666; margin-left: 6px; }}
 .st {{ padding: 2px 8px; border-radius: 10px; font-size: 0.85em; white-space: nowrap; }}
 .ok {{ background: #dff3e6; color: #1e6b3a; }} .skip {{ background: #eef0f3; color: #555; }}
 .fail {{ background: #fbe0dd; color: #a1281b; }}
 .err {{ color: #a1281b; font-size: 0.85em; margin-top: 3px; font-family: monospace; }}
</style></head>
<body>
<h1>RevOps reports</h1>
<p>Every period and report, newest first. Status <i>skipped-unchanged</i> means notebook, parameters,
library and data were unchanged since the last successful build. Generated {_now_iso()} by revops-kit {__version__}.</p>
<table><thead><tr><th>Period</th><th>Report</th><th>Status</th><th>Duration</th><th>Headlines</th><th>Finished</th></tr></thead>
<tbody>
{body}
</tbody></table>
</body></html>
"""
    out.mkdir(parents=True, exist_ok=True)
    _atomic_write_bytes(out / "index.html", page.encode("utf-8"))
    return out / "index.html"


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
            fiscal_year_start_month: int = 1, output_dir: str = "", privacy: str = "names") -> Context:
    """Derived values of a report notebook: the period (empty = last complete month), the cut-off and the source.

    ``privacy``: ``names`` or ``masked`` (owners and teams as pseudonyms, ids hashed; see
    :data:`revops_lib.sources.PRIVACY_MODES`). Also sets the kit's chart theme, and has every inline
    chart pass :func:`revops_lib.plots.sanitize_figure` (no e-mail address, no overlong label).
    """
    from revops_lib.parameters import check_value
    from revops_lib.plots import install_figure_filter, set_theme
    from revops_lib.sources import open_source

    for name, value in (("currency", currency), ("as_of", as_of), ("privacy", privacy)):
        check_value(name, value)
    set_theme()
    install_figure_filter()
    set_output_dir(output_dir)
    p = (parse_period(period, fiscal_year_start_month=fiscal_year_start_month) if period
         else default_period(fiscal_year_start_month=fiscal_year_start_month))
    return Context(period=p, as_of=resolve_as_of(p, as_of), source=open_source(source, privacy=privacy),
                   currency=currency)
