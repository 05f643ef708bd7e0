"""Output folders: where the kit may write, checked before anything is written.

The kit never writes over data it did not make. Two kinds of output folder:

- **Demo data** (``revops demo-data --out DIR``, :func:`revops_lib.demo.build`)
  replace their folder as a whole. :func:`check_demo_folder` accepts a folder
  that does not exist, an empty folder, or a folder an earlier demo-data run
  made: it holds the marker file ``.revops-demo`` (written by demo-data itself,
  with the seed, scale, end, months and the names of the files it wrote) and
  nothing else but those files and the Makefile's ``.complete`` stamp. Any
  other folder is refused and left untouched, as are the filesystem root, the
  home folder, the current folder and its ancestors (even when empty: a folder
  one is working in cannot be replaced).
- **Reports** (``revops report --out DIR``) add files to their folder
  (``index.html`` and one folder per period), so an existing folder with other
  files is fine. :func:`check_report_folder` refuses only what would destroy or
  mix up other data: the filesystem root, the home folder, the current folder
  and its ancestors unless they are empty or hold earlier reports, and any
  folder whose ``index.html`` was not written by the kit (a run would
  overwrite it).

Both refuse a path that is a file (or a broken link) and a folder the user
cannot write to, with an :class:`~revops_lib.errors.OutputError` whose message
names the path in backticks and says what is allowed.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

from revops_lib.errors import OutputError

#: The marker file demo-data writes into every folder it makes.
DEMO_MARKER = ".revops-demo"
#: The Makefile's stamp in ``data/demo`` (tolerated in a demo folder, never required).
MAKE_STAMP = ".complete"
_MADE_BY = "revops demo-data"
_SHOWN = 3  # names quoted in a message before "and N more"


# --------------------------------------------------------------------------- demo data

def check_demo_folder(out) -> Path:
    """Check that demo data may be written to ``out``; return its absolute path.

    Parameters
    ----------
    out : str or Path
        The folder the demo data will replace as a whole.

    Returns
    -------
    Path
        ``out`` made absolute (``~`` expanded, ``..`` normalised; links are
        not resolved, so a link is replaced, not its target).

    Raises
    ------
    OutputError
        When ``out`` is the filesystem root, the home folder, the current
        folder or one of its ancestors; a file or a broken link; a folder
        that is not empty and holds no demo-data marker, or holds files
        demo-data did not write besides its own; or when it (an existing
        folder) or its parent folder cannot be written to. Nothing is created
        or changed.
    """
    given = _given(out)
    path = _absolute(out)
    special = _special(path, given)
    if special:
        raise OutputError(
            f"`{given}` is {special}: `revops demo-data` replaces its output folder as a whole, so it "
            "writes only into a new or empty folder of its own, or one it made before (e.g. `--out data/demo`)."
        )
    _refuse_non_folder(path, given)
    if path.is_dir():
        entries = _entries(path, given)
        if entries:
            marker = read_demo_marker(path)
            if marker is None:
                raise OutputError(
                    f"`{given}` is not empty and was not made by `revops demo-data` (it holds {_some(entries)}): "
                    "give a new or empty folder, or delete it yourself."
                )
            known = {DEMO_MARKER, MAKE_STAMP, *map(str, marker.get("files") or [])}
            extra = [e for e in entries if e.name not in known]
            if extra:
                raise OutputError(
                    f"`{given}` was made by `revops demo-data` but also holds files it did not write "
                    f"({_some(extra)}), which a new build would delete: move them elsewhere, "
                    "or delete the folder yourself."
                )
        _require_writable(path, given)  # a folder made read-only is not replaced (nor built in vain)
    _require_writable(path.parent, given)
    return path


def write_demo_marker(folder, *, seed: int, scale: float, end, months: int) -> Path:
    """Write the marker that says ``folder`` was made by demo-data (and how).

    Call it last, once every file of the build is in ``folder``: the marker
    lists them, and only those files may be replaced by a later build.

    Parameters
    ----------
    folder : str or Path
        The (temporary) folder holding the demo tables.
    seed, scale, end, months
        The build's parameters, recorded for the reader.

    Returns
    -------
    Path
        The marker file.
    """
    folder = Path(folder)
    files = sorted(p.name for p in folder.iterdir() if p.name != DEMO_MARKER)
    info = {
        "made_by": _MADE_BY,
        "note": "This folder was written by `revops demo-data`; a new build replaces it as a whole.",
        "seed": int(seed),
        "scale": float(scale),
        "end": str(end),
        "months": int(months),
        "files": files,
    }
    path = folder / DEMO_MARKER
    path.write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    return path


def read_demo_marker(folder) -> dict | None:
    """The demo-data marker of ``folder`` as a dict, or None when there is none.

    Parameters
    ----------
    folder : str or Path
        A folder.

    Returns
    -------
    dict or None
        The marker's content when ``folder/.revops-demo`` is a small JSON file
        written by demo-data; None otherwise (no marker, unreadable, or not
        demo-data's).
    """
    path = Path(folder) / DEMO_MARKER
    try:
        if not path.is_file() or path.stat().st_size > 1_000_000:
            return None
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or info.get("made_by") != _MADE_BY:
        return None
    return info


# --------------------------------------------------------------------------- reports

def check_report_folder(out) -> Path:
    """Check that reports may be written into ``out``; return its absolute path.

    Reports add files to ``out`` (``index.html``, one folder per period), so
    an existing folder with earlier reports or other files is accepted.

    Parameters
    ----------
    out : str or Path
        The report run's output folder.

    Returns
    -------
    Path
        ``out`` made absolute (``~`` expanded, ``..`` normalised).

    Raises
    ------
    OutputError
        When ``out`` is a file or a broken link; the filesystem root, the home
        folder, the current folder or one of its ancestors while it holds
        other files and no earlier reports (an empty current folder is fine);
        a folder whose ``index.html`` was not written by the kit; or a folder
        (or, when it does not exist yet, the folder that would hold it) that
        cannot be written to. Nothing is created or changed.
    """
    given = _given(out)
    path = _absolute(out)
    _refuse_non_folder(path, given)
    if path.is_dir():
        entries = _entries(path, given)
        special = _special(path, given)
        if special and entries and not _holds_reports(path, entries):
            raise OutputError(
                f"`{given}` is {special} and holds other files ({_some(entries)}), not earlier reports: "
                "reports go into a folder of their own (`index.html` and one folder per period), "
                "e.g. `--out reports`."
            )
        index = path / "index.html"
        if index.exists() and not _kit_index(index):
            raise OutputError(
                f"`{given}` holds an `index.html` that revops-kit did not write, and a report run would "
                "replace it: give another folder (e.g. `--out reports`), or move that file away."
            )
        _require_writable(path, given)
    else:
        _require_writable(path.parent, given)
    return path


def _holds_reports(path: Path, entries: list[Path]) -> bool:
    """Whether ``path`` holds the output of an earlier report run."""
    if (path / "index.html").is_file() and _kit_index(path / "index.html"):
        return True
    return any(e.is_dir() and (e / "manifest.json").is_file() for e in entries)


def _kit_index(path: Path) -> bool:
    """Whether ``path`` is an ``index.html`` written by :func:`revops_lib.runner.index.write_index`."""
    try:
        with open(path, "rb") as f:
            head = f.read(65536)
    except OSError:
        return False
    return b"<title>RevOps reports</title>" in head and b"revops-kit" in head


# --------------------------------------------------------------------------- shared checks

def _given(out) -> str:
    if not isinstance(out, (str, os.PathLike)) or not str(out).strip():
        raise OutputError(f"`out` must be a folder path, got {out!r}.")
    return str(out)


def _absolute(out) -> Path:
    """``out`` absolute and normalised, without resolving links."""
    return Path(os.path.abspath(Path(out).expanduser()))


def _special(path: Path, given: str) -> str | None:
    """Why ``path`` is a folder no output may take over (``is …`` completes the sentence), or None."""
    try:
        real = path.resolve()
        cwd = Path.cwd().resolve()
    except (OSError, RuntimeError):
        return None
    try:
        home = Path.home().resolve()
    except (OSError, RuntimeError, KeyError):  # no HOME and no password entry
        home = None
    where = "" if given.rstrip("/") == str(real).rstrip("/") else f" ({real})"
    if real.parent == real:
        return f"the filesystem root{where}"
    if real == home:
        return f"your home folder{where}"
    if real == cwd:
        return f"the current folder{where}"
    if real in cwd.parents:
        return f"an ancestor of the current folder{where}, which holds {cwd}"
    return None


def _refuse_non_folder(path: Path, given: str) -> None:
    try:
        if path.is_symlink() and not path.exists():
            raise OutputError(f"`{given}` is a broken link: give a folder path (a new folder is fine).")
        if path.exists() and not path.is_dir():
            raise OutputError(f"`{given}` is a file, not a folder: give a folder path (a new folder is fine).")
    except OSError as exc:
        raise OutputError(f"`{given}` cannot be checked ({exc.strerror or exc}): "
                          "give a folder you can write to.") from None


def _entries(path: Path, given: str) -> list[Path]:
    try:
        return sorted(path.iterdir(), key=lambda p: (p.name.startswith("."), p.name))
    except OSError as exc:
        raise OutputError(f"`{given}` cannot be read ({exc.strerror or exc}): "
                          "give a folder you can write to.") from None


def _some(entries: list[Path]) -> str:
    """``a.xlsx, sub/ and 3 more``: a few names (folders with a slash) and a count."""
    names = [e.name + ("/" if e.is_dir() and not e.is_symlink() else "") for e in entries]
    shown, rest = names[:_SHOWN], len(names) - _SHOWN
    if rest > 0:
        return f"{', '.join(shown)} and {rest} more"
    if len(shown) == 1:
        return shown[0]
    return f"{', '.join(shown[:-1])} and {shown[-1]}"


def _require_writable(folder: Path, given: str) -> None:
    """Refuse when ``folder`` (or, when it does not exist yet, its nearest existing ancestor) is not writable.

    ``os.access`` reads the permission bits for the real user; for root it
    says yes unless the file system is read-only, which is also what writing
    would find.
    """
    probe = folder
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        raise OutputError(f"`{given}` cannot be created: `{probe}` is a file, not a folder.")
    if not os.access(probe, os.W_OK | os.X_OK):
        if probe == _absolute(given):
            raise OutputError(f"`{given}` is read-only for you: give a folder you can write to.")
        raise OutputError(
            f"`{given}` cannot be written: `{probe}` is read-only for you. Give a folder you can write to."
        )


# --------------------------------------------------------------------------- imports

#: The marker file `revops import` writes into every folder it makes.
IMPORT_MARKER = ".revops-import"
_IMPORTED_BY = "revops import"


def check_import_folder(out, *, inputs=None) -> Path:
    """Check that `revops import` may write (replace) the folder ``out``; return its absolute path.

    Accepted: a folder that does not exist, an empty folder, or a folder an earlier import made (it
    holds the marker :data:`IMPORT_MARKER`). Refused (:class:`OutputError`, nothing changed): any
    other folder, a file, the filesystem root, the home folder, the current folder and its ancestors,
    and the input folder ``inputs``, a folder inside it or one holding it (inputs are only read).
    """
    given = _given(out)
    path = _absolute(out)
    special = _special(path, given)
    if special:
        raise OutputError(f"`{given}` is {special}: `revops import` replaces its output folder as a whole, "
                          "so it writes only into a new or empty folder, or one an earlier import made.")
    if inputs is not None:
        src = Path(os.path.abspath(Path(inputs).expanduser())).resolve()
        real = path.resolve()
        if real == src or src in real.parents or real in src.parents:
            raise OutputError(f"`{given}` is the input folder `{inputs}`, inside it or holds it: the kit never "
                              "writes into its inputs; give an output folder elsewhere.")
    _refuse_non_folder(path, given)
    if path.is_dir():
        entries = _entries(path, given)
        if entries and read_import_marker(path) is None:
            raise OutputError(f"`{given}` is not empty and was not made by `revops import` (it holds "
                              f"{_some(entries)}, and no {IMPORT_MARKER} marker): give a new or empty folder, or "
                              "delete it yourself.")
        _require_writable(path, given)
    _require_writable(path.parent, given)
    return path


def write_import_marker(folder, **info) -> Path:
    """Write the marker that says ``folder`` was made by `revops import` (with what, from where)."""
    folder = Path(folder)
    files = sorted(p.name for p in folder.iterdir() if p.name != IMPORT_MARKER)
    data = {"made_by": _IMPORTED_BY,
            "note": "This folder was written by `revops import`; a new import replaces it as a whole.",
            **info, "files": files}
    path = folder / IMPORT_MARKER
    path.write_text(json.dumps(data, indent=1, default=str) + "\n", encoding="utf-8")
    return path


def read_import_marker(folder) -> dict | None:
    """The import marker of ``folder`` as a dict, or None (no marker, unreadable, or not written by an import)."""
    path = Path(folder) / IMPORT_MARKER
    try:
        if not path.is_file() or path.stat().st_size > 1_000_000:
            return None
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and info.get("made_by") == _IMPORTED_BY else None


def move_into_place(tmp: Path, out: Path) -> None:
    """Rename ``tmp`` to ``out``; an existing ``out`` is put back if that fails."""
    if not os.path.lexists(out):
        os.replace(tmp, out)
        return
    old = out.parent / f".{out.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.old"
    os.replace(out, old)
    try:
        os.replace(tmp, out)
    except BaseException:
        os.replace(old, out)
        raise
    remove_built(old)


def remove_built(path: Path) -> None:
    """Delete a folder (or a link) the build made; a Ctrl-C does not stop the deletion half-way."""
    try:
        if path.is_symlink():
            path.unlink()
        else:
            shutil.rmtree(path, ignore_errors=True)
    except KeyboardInterrupt:
        shutil.rmtree(path, ignore_errors=True)
        raise
