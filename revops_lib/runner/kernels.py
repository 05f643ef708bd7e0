"""Warm kernels: one real Jupyter kernel per worker thread, reused across notebooks.

A :class:`KernelPool` starts its kernels (and imports the kit in them, :func:`warmup_code`) as soon as it
exists, so they are ready while the source is validated. Each notebook starts with :data:`RESET_CODE`
(a clean namespace); a kernel whose notebook failed, or that ran :data:`MAX_USES` notebooks, is replaced.
A pool closed early (invalid data, Ctrl-C, SIGTERM) kills kernels still warming up.
"""

from __future__ import annotations

import atexit
import os
import tempfile
import threading
from pathlib import Path

from revops_lib.runner import registry


#: Imports done once when a kernel starts, so notebooks do not pay for them; inline charts
#: compressed at zlib level 3 (the default 6 takes 15 % longer for 2 % smaller images). Pyplot's own
#: after-cell hook, which draws every open figure, is removed: the inline backend draws each figure
#: again to make its PNG, so that first drawing (about 40 % of a chart's time) was thrown away. The
#: PNGs are byte for byte the same.
def warmup_code() -> str:
    """The first cell of a new kernel: the imports of every registered report's section, the chart theme."""
    sections = tuple(r.section for r in registry.REPORTS.values())
    return f"""%matplotlib inline
%config InlineBackend.print_figure_kwargs = {{"bbox_inches": "tight", "pil_kwargs": {{"compress_level": 3}}}}
import numpy, pandas, scipy.stats, matplotlib.pyplot, seaborn, ibis, duckdb
try:
    get_ipython().events.unregister("post_execute", matplotlib.pyplot._draw_all_if_interactive)
except (AttributeError, ValueError):  # another Matplotlib, or no such hook: figures are drawn twice
    pass
import importlib
for _m in {sections!r}:
    importlib.import_module(_m)
import revops_lib.present.charts.base
revops_lib.present.charts.base.set_theme()
import os
if os.environ.get("REVOPS_ENGINE") == "spark":  # a run on Spark: its client too (the server may still start)
    import ibis.backends.pyspark, pyspark.sql.connect.session
else:  # Ibis loads its DuckDB backend (and every SQL compiler) on first use: here, while the runner validates
    import ibis.backends.duckdb, sqlglot.dialects.duckdb"""


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


def _last_error_line(exc: BaseException) -> str:
    import re

    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", str(exc)).strip().splitlines()  # no terminal colours
    lines = [ln for ln in text if ln.strip() and not set(ln.strip()) <= set("-")]
    # papermill's message ends with the exception line of the failing cell
    for ln in reversed(lines):
        if ln.strip():
            return ln.strip()[:300]
    return type(exc).__name__


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
        from revops_lib.runner.kernel_client import QuickReadyClient

        kw = {"connection_file": str(Path(rundir) / f"kernel-{uuid.uuid4().hex}.json")} if rundir else {}
        self.km = AsyncKernelManager(kernel_name="python3",
                                     client_class="revops_lib.runner.kernel_client.QuickReadyClient",
                                     client_factory=QuickReadyClient, **kw)
        self.km.revops_clients = []  # clients to close after each notebook (see close_clients)
        from revops_lib.sources import ENGINE_TMP_ENV

        # DuckDB spills into the run's folder, and so does any other temporary file of the kernel (TMPDIR): a
        # kernel stopped mid-import (a run refused by validation) leaves nothing beside the run's folder
        env = {**(env or {}), **({ENGINE_TMP_ENV: str(rundir), "TMPDIR": str(rundir)} if rundir else {})}
        start_kw = {"env": {**os.environ, **env}} if env else {}
        self.cwd = Path(cwd)
        self.uses = 0
        self._stopping = threading.Lock()  # shutdown() runs once (see there)
        self._stopped = False
        try:
            run_sync(self.km.start_kernel)(cwd=str(cwd), stderr=self.log, stdout=self.log, **start_kw)
            if on_start is not None:
                on_start(self.km)
            self._run_cells([warmup_code()])
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
        from revops_lib.runner.kernel_client import close_clients

        close_clients(self.km)

    def shutdown(self):
        """Stop the kernel, once: on Ctrl-C the pool's close() and the worker whose notebook it broke both stop
        it, from two threads, and two shutdowns of one kernel manager (each on its own event loop) must not
        run at the same time; the second waits for the first, then returns."""
        from jupyter_client.utils import run_sync

        with self._stopping:
            if self._stopped:
                return
            self._stopped = True
            self._shutdown(run_sync)

    def _shutdown(self, run_sync):
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
        # listed and started under the lock: close() joins only started threads, and a closed pool (Ctrl-C while
        # a failed notebook's kernel is replaced) starts no kernel; a worker waiting for one is told at once
        with self._lock:
            if self._closed:
                self._ready.put(KernelStartError(RuntimeError("the run is stopping: no new kernel starts")))
                return
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
        # every notebook is done and a kernel keeps nothing worth a graceful exit (its engine's spill folder
        # is in the run's folder, removed with the run): killed at once, then its manager cleans up (about
        # 0.01 s each rather than 0.7 s for the polite shutdown of two kernels)
        for k in kernels:
            _kill(k.km)
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
