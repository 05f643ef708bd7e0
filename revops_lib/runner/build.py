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

With ``slices`` (``--slice segment=enterprise``) or ``by`` (``--by segment``) the reports of a slice, or of
each value, go to ``<out>/<period>/<slice name>/`` (:mod:`revops_lib.runner.slicing`); the notebooks get the
slice as their ``slices`` parameter and the header names it.

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
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from revops_lib.errors import ParameterError
from revops_lib.periods import Period, default_period, parse_period, resolve_as_of
from revops_lib.runner import registry
from revops_lib.runner.export import _exporter, render_html
from revops_lib.runner.index import write_index
from revops_lib.runner.kernels import (
    RESET_CODE,
    KernelPool,
    KernelStartError,
    _last_error_line,
)
from revops_lib.runner.manifest import _now_iso, _record, read_manifest
from revops_lib.runner.registry import footnotes, select_notebooks, title
from revops_lib.runner.runfiles import OutputLock, RunDir, sweep_output
from revops_lib.version import __version__


@dataclass
class Outcome:
    notebook: str
    period: str
    status: str  # ok | failed | skipped (unchanged) | no data | no tables (none of its parts possible)
    seconds: float = 0.0
    error: str = ""
    html: Path | None = None
    executed: Path | None = None
    extra: dict = field(default_factory=dict)
    slice: str = ""  # the slice's folder name ('' for the whole source)

    @property
    def where(self) -> str:
        """``<period>`` or ``<period>/<slice name>``: the folder of the report under ``--out``."""
        return f"{self.period}/{self.slice}" if self.slice else self.period


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


def _source_label(source, preset: str = "") -> str:
    """The source as the pages show it: credentials redacted, and the presets it is read through."""
    from revops_lib.sources import redact

    return redact(str(source)) + (f" (preset {preset})" if preset else "")


def _code_fingerprint(lib: Path | None = None) -> str:
    """Hash of the library's source files (so a library change rebuilds the reports).

    ``lib``: the package folder (default: the installed ``revops_lib``): its ``.py`` files and templates.
    """
    import hashlib

    h = hashlib.sha256(__version__.encode())
    lib = Path(lib) if lib is not None else Path(__file__).resolve().parents[1]
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


def _prepare_notebook(path: Path, validation: Path | None = None):
    """The notebook to execute: a first cell that resets a reused kernel (hidden from the HTML).

    ``validation``: the runner's validation of the source (a pickle), handed to the kernel so the
    data_quality report does not validate the same files again.
    """
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    code = RESET_CODE
    if validation is not None:
        code += (f"\nimport revops_lib.metrics.quality as _rq\n_rq.load_validation({str(validation)!r})\ndel _rq")
    cell = nbformat.v4.new_code_cell(code)
    cell.id = "revops-injected-reset"  # a fixed id (a new cell gets a random one), as the parameters cell's
    cell.metadata["tags"] = ["injected-reset", "remove-cell"]
    nb.cells.insert(0, cell)
    return nb


def run_notebook(notebook: str, period: Period, params: dict, out_dir: Path, *, source_label: str,
                 as_of_label: str, notebooks_dir: Path | None = None, pool: KernelPool | None = None,
                 validation: Path | None = None, slice_label: str = "", slice_note: str = "",
                 index_href: str = "../index.html") -> Outcome:
    """Execute one notebook with Papermill and render it; never raises for notebook errors.

    ``slice_label``: the slice the header names ('' for the whole source), ``slice_note`` what it leaves out;
    ``index_href``: the link to the index.

    Published tables and headlines go to a staging folder first and replace
    ``<out_dir>/tables/<notebook>/`` only when the notebook and its HTML succeeded.
    """
    import json
    import shutil

    import papermill as pm

    nb_dir = Path(notebooks_dir or registry.NOTEBOOKS_DIR)
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
        scope = {}
        if (staging / "scope.json").is_file():
            scope = json.loads((staging / "scope.json").read_text())
        meta = dict(
            left_out=scope.get("left_out") or {},
            scope=scope.get("sentence") or "",
            title=title(notebook),
            period=period.label,
            period_range=f"{period.start_date} to {period.last_day}",
            as_of=as_of_label,
            source=source_label,
            generated=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            version=__version__,
            definitions=footnotes(notebook),
            index_href=index_href,
            slice=slice_label,
            slice_note=slice_note,
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
                       extra={"headlines": headlines, "left_out": meta["left_out"]})
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


def _layers(notebook: str, period: Period, overrides: dict, parameters_dir: Path | None):
    d = Path(parameters_dir or registry.PARAMETERS_DIR)
    layers = [(f"parameters/{f.name}", _read_yaml(f))
              for f in (d / "default.yaml", d / f"{notebook}.yaml", d / f"{period.label}.yaml")]
    return layers + [("-p", dict(overrides or {}))]


def task_parameters(notebook: str, period: Period, overrides: dict, *, notebooks_dir: Path | None = None,
                    parameters_dir: Path | None = None, source: str, preset: str = "") -> dict:
    """The parameters one notebook receives for one period: layered, its declared names only, typed and
    checked (:mod:`revops_lib.runner.parameters`), with the runner's ``period``, ``source`` and ``preset``
    (the latter only to a notebook that declares it: one that does not cannot read a mapped source)."""
    from revops_lib.runner.parameters import checked, declared_parameters

    values: dict = {}
    where: dict = {}
    for label, layer in _layers(notebook, period, overrides, parameters_dir):
        if "slices" in layer:
            raise ParameterError(f"Parameter `slices` (in {label}) is set by the runner: use `--slice COLUMN=VALUE` "
                                 "or `--by COLUMN` of `revops report`.")
        values.update(layer)
        where.update({k: label for k in layer})
    values["period"] = period.label
    path = Path(notebooks_dir or registry.NOTEBOOKS_DIR) / f"{notebook}.ipynb"
    prm = checked(notebook, path, values, where=where)
    prm["period"] = period.label
    prm["source"] = source
    if "preset" in declared_parameters(path):
        prm["preset"] = preset
    elif preset:
        raise ParameterError(f"Notebook `{notebook}` does not declare the parameter `preset`, so it cannot read "
                             f"{source} through `--preset {preset}`: add `preset: str = \"\"` to its parameters "
                             "cell and pass it to its report's build().")
    return prm


def run(period=None, source="data/demo", notebooks=None, out="reports", jobs=None, params=None,
        force=False, progress=None, *, periods=None, notebooks_dir=None, parameters_dir=None,
        validate_source=True, only=None, preset=None, engine=None, spark_settings=None, slices=None,
        by=None, built_sets: list | None = None) -> int:
    """Build the reports of one period (or several: ``periods``); returns the exit status.

    0 when every notebook succeeded or was skipped as unchanged, 1 otherwise.
    ``only``: an optional set of (notebook, period label) pairs to restrict the run to.
    ``engine``: what reads a folder source, ``duckdb`` (default) or ``spark``; a ``sc://`` source is read
    by Spark on that server. With Spark the kernels share one Spark Connect server: ``$SPARK_REMOTE``'s
    when set, else a local one the run starts on 127.0.0.1 and stops at its end (:mod:`revops_lib.spark`;
    ``spark_settings``: a :class:`revops_lib.spark.SparkSettings`).
    ``slices``: a slice (``["segment=enterprise"]`` or ``{"segment": "enterprise"}``, see
    :mod:`revops_lib.slices`); ``by``: a slice column to build one set of reports per value of (within the
    slice); both write under ``<out>/<period>/<slice name>/`` (:mod:`revops_lib.runner.slicing`).
    ``built_sets``: a list that receives the folder name of each set of reports the run builds (``""`` for the
    whole source), e.g. for the PDF pack of each slice.

    Before any kernel starts: the notebook names, every parameter (declared names only, typed) and
    the output folder (never the source folder or inside it) are checked; then the output folder is
    locked for this run (a second run into it stops with :class:`revops_lib.runner.runfiles.RunLocked`) and
    what a killed run left there is removed.
    A password in a source URL never reaches a kernel's parameters, an executed notebook or a file:
    kernels get the URL without it and the full URL in their environment (``REVOPS_SOURCE``).

    ``preset``: mapping presets or files (``"fivetran_salesforce,fivetran_stripe"``) the source is read
    through at query time (:mod:`revops_lib.importers.live`); checked before anything starts, and handed to
    every notebook as its ``preset`` parameter (files as absolute paths).
    """
    from revops_lib.outdirs import check_report_folder
    from revops_lib.runner.parameters import check_overrides, declared_parameters
    from revops_lib.runner.slicing import SLICE_PARAMETER, check_request
    from revops_lib.sources import SOURCE_ENV, has_credentials, public_url

    check_report_folder(out)  # a file, a read-only folder, a folder of other data: refused before anything starts
    say = progress or (lambda msg: print(msg, file=sys.stderr, flush=True))
    _skip_slow_optional_imports()
    nb_dir = Path(notebooks_dir or registry.NOTEBOOKS_DIR)
    plist = [parse_period(x) for x in periods] if periods else [parse_period(period) if period else default_period()]
    names = select_notebooks(notebooks, nb_dir)
    overrides = dict(params or {})
    check_overrides(overrides, {n: nb_dir / f"{n}.ipynb" for n in names})
    preset_param = _preset_parameter(preset)
    conditions, by = check_request(slices, by)
    if conditions or by:
        lacking = [n for n in names if SLICE_PARAMETER not in declared_parameters(nb_dir / f"{n}.ipynb")]
        if lacking:
            raise ParameterError(f"Notebook(s) {', '.join(f'`{n}`' for n in lacking)} declare no `{SLICE_PARAMETER}` "
                                 "parameter, so they cannot be built for a slice.")
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
                                              source=source_param, preset=preset_param)
                for p in plist for n in names if only is None or (n, p.label) in only}

    n_tasks = max(1, len(prepared)) if by is None else max(1, len(prepared)) * 64  # --by: values not known yet
    jobs = max(1, min(jobs or os.cpu_count() or 1, n_tasks))
    engine = _check_engine(engine, src_text)
    if preset_param and engine == "spark" and not src_text.lower().startswith("sc://"):
        raise ParameterError("`--preset` with `--engine spark` reads the landed tables of a Spark Connect server: "
                             "give its URL (`--source sc://host:15002`); a folder of exports or a database URL is "
                             "read through presets without `--engine spark`.")
    privacy = "masked" if any(prm.get("privacy") == "masked" for prm in prepared.values()) else "names"
    request = (conditions, by, privacy, built_sets)
    with OutputLock(out), RunDir() as rundir:
        sweep_output(out)
        server, engine_env = _spark_server(engine, src_text, spark_settings, say, jobs)
        spark_env = engine_env if engine == "spark" else None
        try:
            kernel_env = {**(kernel_env or {}), **engine_env}
            pool = KernelPool(jobs, nb_dir, rundir=rundir, env=kernel_env)  # kernels warm up during validation
            try:
                if server is not None:
                    server.wait()
                    say(f"Spark: local Spark Connect server ready at {server.url}")
                return _run(plist, names, src_text, out, jobs, force, say, nb_dir, validate_source, prepared, pool,
                            rundir, spark_env, preset_param, request)
            finally:
                pool.close()
        finally:
            if server is not None:
                server.stop()
                say(f"Spark: stopped the local Spark Connect server at {server.url}")


def _preset_parameter(preset) -> str:
    """The ``preset`` parameter of the notebooks: the items of ``preset``, mapping files as absolute paths
    (kernels run in notebooks/), after checking that the mappings load and combine."""
    from revops_lib.importers.live import is_mapping_file, load_mappings, preset_items

    items = [str(Path(i).expanduser().resolve()) if is_mapping_file(i) else i for i in preset_items(preset)]
    if not items:
        return ""
    load_mappings(items)  # MappingError (exit 2) before any kernel starts
    return ",".join(items)


def _check_engine(engine, src_text: str) -> str:
    from revops_lib.spark import ENGINE_ENV, ENGINES, is_spark_url

    engine = engine or ("spark" if is_spark_url(src_text) else os.environ.get(ENGINE_ENV) or "duckdb")
    if engine not in ENGINES:
        raise ParameterError(f"`engine` must be one of {', '.join(ENGINES)}, not {engine!r}.")
    if is_spark_url(src_text) and engine != "spark":
        raise ParameterError(f"A Spark Connect source (`{_source_label(src_text)}`) is read by Spark: "
                             "leave out `--engine` or give `--engine spark`.")
    return engine


def _spark_server(engine: str, src_text: str, settings, say, jobs: int):
    """``(local server or None, environment of the kernels)`` of a run on Spark: every kernel connects to one
    Spark Connect server (the source's, ``$SPARK_REMOTE``'s, or a local one started here), none starts a JVM."""
    from revops_lib import spark as sp

    if engine != "spark":  # said to the kernels too, whatever their environment holds
        return None, {sp.ENGINE_ENV: engine}
    settings = settings or sp.SparkSettings()
    env = {sp.ENGINE_ENV: "spark", sp.CONF_ENV: settings.to_json()}
    if sp.is_spark_url(src_text):
        say(f"Spark: {jobs} kernel(s) use the Spark Connect server of the source, {_source_label(src_text)}")
        return None, env
    remote = os.environ.get(sp.REMOTE_ENV)
    if remote:
        say(f"Spark: {jobs} kernel(s) use the Spark Connect server at {_source_label(remote)} ($SPARK_REMOTE)")
        return None, {**env, sp.REMOTE_ENV: remote}
    server = sp.LocalServer(settings)
    url = server.launch()
    say(f"Spark: starting a local Spark Connect server at {url} for {jobs} kernel(s) (one JVM; stopped at the end)")
    return server, {**env, sp.REMOTE_ENV: url}


def _run(plist, names, src_text, out, jobs, force, say, nb_dir, validate_source, prepared, pool, rundir,
         spark_env=None, preset="", request=((), None, "names", None)) -> int:
    from revops_lib.importers.live import open_mapped_source
    from revops_lib.sources import open_source
    from revops_lib.validation import validate

    settings = None
    if spark_env:
        from revops_lib import spark as sp

        settings = sp.SparkSettings.from_json(spark_env[sp.CONF_ENV])
    if preset:  # on Spark: a sc:// source (run() refuses a folder), its own server
        mapped = open_mapped_source(src_text, preset, settings=settings)
        say(mapped.format(unmapped=False))
        src = mapped.source
    elif spark_env:
        src = open_source(src_text, engine="spark", spark=spark_env.get(sp.REMOTE_ENV), settings=settings)
    else:
        src = open_source(src_text, engine="duckdb")
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

            from revops_lib.metrics.quality import validation_key

            fd, name = tempfile.mkstemp(prefix="validation-", suffix=".pickle", dir=rundir)
            with os.fdopen(fd, "wb") as f:
                pickle.dump((validation_key(src), result), f)
            shared = Path(name)
    return _build(plist, names, src_text, out, jobs, force, say, nb_dir, prepared, pool, src, shared, preset,
                  request)


def _result(future, poll: float = 0.25):
    """``future.result()``, the main thread waking every ``poll`` seconds while it waits. Linux may deliver a
    Ctrl-C (SIGINT) to any thread of the process; Python raises it in the main thread only when that thread
    runs Python code again, and ``result()`` without a timeout blocks it until the notebook ends (a minute or
    more). Waiting in short slices lets the KeyboardInterrupt through at once."""
    while not wait([future], timeout=poll).done:
        pass
    return future.result()


def _build(plist, names, src_text, out, jobs, force, say, nb_dir, prepared, pool, src, shared, preset="",
           request=((), None, "names", None)) -> int:
    from revops_lib.metrics.quality import latest_event
    from revops_lib.runner.slicing import SLICE_PARAMETER, slice_sets

    conditions, by, privacy, built_sets = request
    sets = slice_sets(src, conditions, by, privacy=privacy)
    if built_sets is not None:
        built_sets.extend(s.name for s in sets)
    if by is not None:
        say(f"By {by}: {len(sets)} set(s) of reports ({', '.join(s.name for s in sets)})")
    data_fp = src.fingerprint()
    code_fp = _code_fingerprint()
    no_data = {}  # (period label, slice name) -> why: a period that starts after the latest event is not built
    unbuildable = {}  # (report, slice name) -> why none of its parts can be built from the tables present
    for s in sets:
        latest = latest_event(s.source)
        whose = f"the latest event of the slice {s.label}" if s.name else "the source's latest event"
        for p in plist:
            if latest is not None and latest < p.start_naive:
                no_data[(p.label, s.name)] = (
                    f"{whose[0].upper() + whose[1:]} is on {latest:%Y-%m-%d}, before period {p.label} "
                    f"({p.start_date} to {p.last_day}) starts: there is nothing to report yet.")
                say(f"No data: {whose} ({latest:%Y-%m-%d}) is before period {p.label} "
                    f"({p.start_date} to {p.last_day}); its reports are marked 'no data'. Pick an earlier --period.")
        for n in names:
            cls = registry.section_class(n)
            if cls is not None and not cls.buildable(s.source):
                unbuildable[(n, s.name)] = cls.unbuildable_reason(s.source)
                say(f"Skipped {n}{' of ' + s.name if s.name else ''}: {unbuildable[(n, s.name)]}")

    tasks = [(p, n, {**prepared[(p.label, n)], SLICE_PARAMETER: s.parameter} if s.name else prepared[(p.label, n)],
              s) for p in plist for s in sets for n in names if (p.label, n) in prepared]

    labels = ", ".join(p.label for p in plist)
    say(f"Period {labels}: {len(names)} notebook(s) × {len(plist)} period(s)"
        + (f" × {len(sets)} slice(s)" if len(sets) > 1 else "") + f", {jobs} at a time")
    prog = _Progress(len(tasks), say)

    import threading

    cancelled = threading.Event()

    def one(task):
        p, n, prm, s = task
        where = f"{p.label}/{s.name}" if s.name else p.label
        if cancelled.is_set():
            return Outcome(n, p.label, "cancelled", slice=s.name)
        out_dir = s.out_dir(out, p.label)
        sliced = {"slice": s.label, "slice_name": s.name} if s.name else {}
        if (p.label, s.name) in no_data:
            why = no_data[(p.label, s.name)]
            page = write_no_data_page(out_dir, p, why, source_label=_source_label(src_text, preset),
                                      index_href=s.index_href)
            _record(out_dir, n, {"status": "no data", "seconds": 0.0, "finished_at": _now_iso(), "error": None,
                                 "key": None, "headlines": [], "title": title(n), "page": page.name,
                                 "reason": why, **sliced})
            prog.line(f"  nodata {where} {n}")
            prog.done()
            return Outcome(n, p.label, "no data", slice=s.name)
        cannot = unbuildable.get((n, s.name))
        if cannot:  # no part of the report is possible with the tables present: skipped, not failed
            _record(out_dir, n, {"status": "no tables", "seconds": 0.0, "finished_at": _now_iso(), "error": None,
                                 "key": None, "headlines": [], "title": title(n), "reason": cannot, **sliced})
            prog.line(f"  absent {where} {n} — {cannot}")
            prog.done()
            return Outcome(n, p.label, "no tables", error=cannot, slice=s.name)
        key = build_key(nb_dir / f"{n}.ipynb", prm, data_fp, code_fp)
        prev = read_manifest(out_dir).get(n, {})
        if (not force and prev.get("key") == key and prev.get("status") in ("ok", "skipped")
                and (out_dir / f"{n}.html").is_file()):
            o = Outcome(n, p.label, "skipped", 0.0, html=out_dir / f"{n}.html",
                        extra={"headlines": prev.get("headlines", [])}, slice=s.name)
            _record(out_dir, n, {**prev, "status": "skipped", "checked_at": _now_iso()})
            prog.line(f"  skip   {where} {n} (unchanged since {prev.get('finished_at', '?')})")
            prog.done()
            return o
        prog.line(f"  start  {where} {n}")
        as_of_label = f"{resolve_as_of(p, prm.get('as_of')):%Y-%m-%d %H:%M} UTC (exclusive)"
        o = run_notebook(n, p, prm, out_dir, source_label=_source_label(src_text, preset), as_of_label=as_of_label,
                         notebooks_dir=nb_dir, pool=pool, validation=shared, slice_label=s.label,
                         slice_note=s.note, index_href=s.index_href)
        o.slice = s.name
        if cancelled.is_set():  # interrupted: do not record a failure the notebook did not have
            return Outcome(n, p.label, "cancelled", slice=s.name)
        entry = {"status": o.status, "seconds": round(o.seconds, 2), "finished_at": _now_iso(),
                 "error": o.error, "key": key if o.status == "ok" else None,
                 "headlines": o.extra.get("headlines", []), "title": title(n),
                 "left_out": o.extra.get("left_out") or {},
                 "executed": o.executed.name if o.executed else None, **sliced}
        _record(out_dir, n, entry)
        tail = f" — {o.error}" if o.error else ""
        prog.line(f"  {o.status:<6} {where} {n} ({o.seconds:.1f} s){tail}")
        prog.done()
        return o

    executor = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="revops-report")
    try:
        # longest first, so that no long notebook starts last while the other workers sit idle
        order = sorted(range(len(tasks)), key=lambda i: -_expected_seconds(out, tasks[i]))
        futures = {i: executor.submit(one, tasks[i]) for i in order}
        outcomes = [_result(futures[i]) for i in range(len(tasks))]
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
    empty = [o for o in outcomes if o.status == "no data"]
    absent = [o for o in outcomes if o.status == "no tables"]
    say(f"Done: {len(ok)} built, {len(skipped)} unchanged, {len(failed)} failed"
        + (f", {len(empty)} with no data" if empty else "")
        + (f", {len(absent)} skipped for absent tables" if absent else "") + f" → {Path(out) / 'index.html'}")
    if failed:
        for o in failed:
            say(f"  FAILED {o.where} {o.notebook}: {o.error}"
                + (f" (see {Path(out) / o.where / o.executed.name})" if o.executed else ""))
        return 1
    return 0


NO_DATA_PAGE = "no-data.html"


def write_no_data_page(out_dir: Path, p, reason: str, *, source_label: str, index_href: str = "../index.html") -> Path:
    """The one short page of a period with no data yet (``<out>/<period>/no-data.html``)."""
    import html

    from revops_lib.files import atomic_write_bytes

    body = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>No data yet — {html.escape(p.label)}</title>
<style>body {{ font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; max-width: 720px;
margin: 40px auto; padding: 0 16px; color: #222; }} h1 {{ color: #1d3557; }} a {{ color: #2F5D8C; }}</style></head>
<body><h1>No data yet for {html.escape(p.label)}</h1>
<p>{html.escape(reason)}</p>
<p>Source: {html.escape(source_label)}. No report of this period was built, so none shows zeros as if they were
results. Build an earlier period (e.g. <code>make reports</code> builds the last complete month), or load newer data
and build this one again.</p>
<p><a href="{html.escape(index_href)}">All reports</a></p></body></html>
"""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / NO_DATA_PAGE
    atomic_write_bytes(path, body.encode("utf-8"))
    return path


def _expected_seconds(out: Path, task) -> float:
    p, n = task[0], task[1]
    where = task[3].out_dir(out, p.label) if len(task) > 3 else Path(out) / p.label
    seconds = read_manifest(where).get(n, {}).get("seconds")
    if isinstance(seconds, (int, float)) and seconds > 0:
        return float(seconds)
    return registry.REPORTS[n].typical_seconds if n in registry.REPORTS else 2.0
