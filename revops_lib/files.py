"""Writing files safely: whole or not at all, with the user's umask.

- :func:`atomic_write_bytes` — written under a temporary name in the same folder and moved into
  place, so a reader (or a crash) never sees half a file;
- :func:`file_mode` — the mode of every file the kit writes: what the user's umask allows, never
  wider.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write_bytes", "file_mode"]


def _read_umask() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o022)  # no /proc: read it the classic way (once, at import)
    os.umask(old)
    return old


_UMASK = _read_umask()


def file_mode() -> int:
    """``0o666`` less the user's umask (``0o644`` with the usual 022, ``0o600`` with 077)."""
    return 0o666 & ~_UMASK


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` whole or not at all (a temporary sibling, then a rename)."""
    path = Path(path)
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
