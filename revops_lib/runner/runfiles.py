"""The files of one report run: a lock on the output folder, a private temporary folder, no leftovers.

- :class:`OutputLock` — one run per output folder at a time (``<out>/.revops.lock``, an advisory
  ``flock`` that the system releases when the process ends, however it ends). A second run into the
  same folder stops at once with :class:`RunLocked`, naming the run that holds it.
- :class:`RunDir` — a private temporary folder (mode 0700) per run for kernel logs, kernel connection
  files and the validation handed to the kernels; removed at exit. Folders of runs that were killed
  (their process is gone) are removed by the next run.
- :func:`sweep_output` — staging folders and partial files that a killed run left in ``<out>`` (its period
  folders and their slice folders) are removed by the next run (which holds the lock, so they cannot be
  another run's).
- :class:`Terminated` and :func:`on_sigterm` — SIGTERM (what cron, CI and ``kill`` send) stops a run
  the way Ctrl-C does: nothing new starts, the last good reports stay.
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

from revops_lib.errors import RevOpsError
from revops_lib.files import file_mode

__all__ = ["OutputLock", "RunLocked", "RunDir", "sweep_output", "Terminated", "on_sigterm",
           "RUN_DIR_PREFIX", "LOCK_NAME"]

LOCK_NAME = ".revops.lock"
RUN_DIR_PREFIX = "revops-run-"


class RunLocked(RevOpsError):
    """Another run is writing into the same output folder."""

    exit_code = 75  # EX_TEMPFAIL: try again later


class Terminated(KeyboardInterrupt):
    """The run received SIGTERM; handled like Ctrl-C, the command exits 143."""


def on_sigterm() -> None:
    """Make SIGTERM raise :class:`Terminated` in the main thread (call it from the main thread)."""

    def handler(signum, frame):
        raise Terminated()

    signal.signal(signal.SIGTERM, handler)


class OutputLock:
    """An exclusive lock on an output folder for the length of a run (a context manager)."""

    def __init__(self, out: Path):
        self.out = Path(out)
        self.path = self.out / LOCK_NAME
        self.fd: int | None = None

    def __enter__(self) -> "OutputLock":
        import fcntl
        import sys

        self.out.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, file_mode())
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            try:
                holder = os.pread(fd, 300, 0).decode("utf-8", "replace").strip()
            finally:
                os.close(fd)
            raise RunLocked(
                f"Another report run is writing into `{self.out}` ({holder or 'unknown process'}): wait for it to "
                f"finish, or give another `--out`. Nothing was changed.") from None
        os.ftruncate(fd, 0)
        started = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        os.pwrite(fd, f"pid {os.getpid()}, started {started}: {' '.join(sys.argv[:1])}\n".encode(), 0)
        self.fd = fd
        return self

    def __exit__(self, *exc) -> None:
        import fcntl

        if self.fd is not None:
            try:
                os.ftruncate(self.fd, 0)
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            finally:
                os.close(self.fd)
                self.fd = None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


class RunDir:
    """A private temporary folder for one run (a context manager that removes it at exit)."""

    def __init__(self, base: str | os.PathLike | None = None):
        self.base = Path(base or tempfile.gettempdir())
        self.path: Path | None = None

    def __enter__(self) -> Path:
        sweep_run_dirs(self.base)
        self.path = Path(tempfile.mkdtemp(prefix=RUN_DIR_PREFIX, dir=self.base))
        (self.path / "pid").write_text(str(os.getpid()))
        return self.path

    def __exit__(self, *exc) -> None:
        if self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)
            self.path = None


def sweep_run_dirs(base: str | os.PathLike | None = None) -> list[Path]:
    """Remove the temporary folders of runs whose process is gone; returns what was removed."""
    base = Path(base or tempfile.gettempdir())
    removed = []
    for d in base.glob(f"{RUN_DIR_PREFIX}*"):
        try:
            st = d.lstat()
            if not d.is_dir() or d.is_symlink() or st.st_uid != os.getuid():
                continue
            pid = int((d / "pid").read_text().strip())
        except FileNotFoundError:  # no pid yet: being created this very moment, or a run killed right then
            if time.time() - st.st_mtime > 3600:
                shutil.rmtree(d, ignore_errors=True)
                removed.append(d)
            continue
        except (OSError, ValueError):
            continue  # not ours
        if not _pid_alive(pid):
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
    return removed


#: A slice's folder under a period (revops_lib.slices.slice_name): a slice column, "-", the value's name.
_SLICE_DIR = __import__("re").compile(r"(segment|team|owner|source|product|type)-[a-z0-9]")


def sweep_output(out: Path) -> list[Path]:
    """Remove what a killed run left in ``out``: staging folders and partial files of every period.

    Call only while holding the :class:`OutputLock` of ``out``.
    """
    out = Path(out)
    removed: list[Path] = []
    if not out.is_dir():
        return removed
    report_dirs = []  # every period folder, and the slice folders in it (<period>/<slice name>/)
    for period_dir in out.iterdir():
        if not period_dir.is_dir() or period_dir.is_symlink() or period_dir.name.startswith("."):
            continue
        report_dirs.append(period_dir)
        report_dirs += [d for d in period_dir.iterdir()
                        if d.is_dir() and not d.is_symlink() and _SLICE_DIR.match(d.name)]
    for report_dir in report_dirs:
        leftovers = [*report_dir.glob(".staging-*"), *report_dir.glob(".*.partial*"),
                     *(report_dir / "tables").glob(".old-*"), *(report_dir / "tables").glob(".*.partial")]
        for f in leftovers:
            if f.is_dir() and not f.is_symlink():
                shutil.rmtree(f, ignore_errors=True)
            else:
                f.unlink(missing_ok=True)
            removed.append(f)
    for f in out.glob(".*.partial"):
        f.unlink(missing_ok=True)
        removed.append(f)
    return removed
