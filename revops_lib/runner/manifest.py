"""Each period's ``manifest.json``: status, duration, headlines and build key of every report."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

from revops_lib.files import atomic_write_bytes


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
            entry = {**entry,
                     "last_ok": old.get("last_ok") or (old if old.get("status") in ("ok", "skipped") else None)}
        m[notebook] = entry
        atomic_write_bytes(_manifest_path(out_dir), json.dumps(m, indent=1, sort_keys=True, default=str).encode())


def _now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
