"""The monthly-review PDF pack: the executive summary and every built report of a period, in one PDF.

``revops report … --pdf`` (and ``make pdf``) writes ``reports/<period>/<period>-pack.pdf`` after the
build; with ``--slice`` or ``--by``, one pack per slice built, in the slice's folder
(``reports/<period>/segment-smb/<period>-pack.pdf``), its cover naming the slice. The pack is one HTML
document — a cover with the period's executive summary, then each report's page, each starting on a new
sheet — printed by a real engine: Debian's headless Chromium (installed by ``make system-deps``), offline,
with no header or footer of the browser's own. The PDF is written atomically: a failed print leaves the
last good pack as it was.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from revops_lib.errors import RevOpsError
from revops_lib.files import atomic_write_bytes
from revops_lib.periods import parse_period
from revops_lib.runner import registry
from revops_lib.runner.index import executive_summary
from revops_lib.runner.manifest import read_manifest

__all__ = ["build_pack", "pack_path", "chromium", "PRINT_CSS"]

#: How the pack is laid out on paper (added to the reports' own styles).
PRINT_CSS = """
@page { size: A4; margin: 12mm 10mm; }
body.jp-Notebook { max-width: none; padding: 0; }
.revops-pack-part { break-before: page; }
.revops-toc, a.anchor-link, .revops-header a { display: none !important; }
.jp-OutputArea-output { overflow: visible !important; }
img { max-width: 100%; height: auto; break-inside: avoid; }
tr, li, .revops-more, .revops-records { break-inside: avoid; }
h1, h2, h3 { break-after: avoid; }
.revops-cover h1 { color: #1d3557; border-bottom: 3px solid #2F5D8C; padding-bottom: 8px; }
.revops-cover table { border-collapse: collapse; } .revops-cover td, .revops-cover th { padding: 4px 10px;
  border-bottom: 1px solid #ddd; text-align: left; } .revops-cover .num { text-align: right; }
.revops-cover .st { padding: 1px 6px; border-radius: 8px; font-size: 0.85em; }
"""

#: A slice's folder name (revops_lib.slices.slice_name): lower-case letters, digits, "-" and "_", never a path.
_SLICE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")
_HEAD = re.compile(r"<head>(.*?)</head>", re.S)
_BODY = re.compile(r"<body[^>]*>(.*)</body>", re.S)


def pack_path(out: Path, period: str, slice_name: str = "") -> Path:
    """``<out>/<period>/<period>-pack.pdf``; a slice's in its folder, ``<out>/<period>/<slice>/<period>-pack.pdf``."""
    folder = Path(out) / period / slice_name if slice_name else Path(out) / period
    return folder / f"{period}-pack.pdf"


def chromium() -> str:
    """The Chromium executable (Debian's ``chromium``), or a clear error naming how to install it."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise RevOpsError("The PDF pack is printed by Chromium, which is not installed: run `make system-deps` "
                      "(Debian: apt-get install chromium).")


def _cover(folder: Path, p, names: list[str], slice_label: str = "") -> str:
    import html

    summary = executive_summary([(p, folder)])
    listing = "".join(f"<li>{html.escape(registry.title(n))}</li>" for n in names)
    title = f"{p.label} — {slice_label}" if slice_label else p.label
    return (f'<div class="revops-cover"><h1>RevOps review — {html.escape(title)}</h1>'
            f"<p>{html.escape(p.start_date.isoformat())} to {html.escape(p.last_day.isoformat())}. "
            f"This pack holds the executive summary and {len(names)} reports:</p><ol>{listing}</ol>"
            f"{summary}</div>")


def build_pack(out: Path, period: str, *, slice_name: str = "", timeout: float = 300) -> Path:
    """Print the period's built reports (status ok or unchanged) into ``<out>/<period>/<period>-pack.pdf``;
    with ``slice_name`` (a slice's folder, e.g. ``segment-smb``) the slice's reports into its folder, the cover
    naming the slice."""
    p = parse_period(period)
    if slice_name and not _SLICE_NAME.fullmatch(slice_name):
        raise RevOpsError(f"`{slice_name}` is not the folder name of a slice (e.g. segment-smb).")
    target = pack_path(out, p.label, slice_name)
    folder = target.parent
    manifest = read_manifest(folder)
    names = [n for n in registry.REPORTS if manifest.get(n, {}).get("status") in ("ok", "skipped")
             and (folder / f"{n}.html").is_file()]
    if not names:
        what = f"{p.label}/{slice_name}" if slice_name else p.label
        raise RevOpsError(f"No built report for {what} in {folder}: build the period first, then the pack.")
    slice_label = next((str(manifest[n].get("slice", "")) for n in names if manifest[n].get("slice")), slice_name)
    pages = [(folder / f"{n}.html").read_text(encoding="utf-8") for n in names]
    head = _HEAD.search(pages[0])
    parts = [_cover(folder, p, names, slice_label)]
    for text in pages:
        body = _BODY.search(text)
        parts.append(f'<div class="revops-pack-part">{body.group(1) if body else ""}</div>')
    document = (f'<!DOCTYPE html><html lang="en"><head>{head.group(1) if head else ""}'
                f"<style>{PRINT_CSS}</style></head><body class=\"jp-Notebook\">{''.join(parts)}</body></html>")
    exe = chromium()
    with tempfile.TemporaryDirectory(prefix="revops-pdf-") as tmp:
        src, pdf = Path(tmp) / "pack.html", Path(tmp) / "pack.pdf"
        src.write_text(document, encoding="utf-8")
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--no-pdf-header-footer", "--print-to-pdf-no-header", f"--user-data-dir={Path(tmp) / 'profile'}",
               f"--print-to-pdf={pdf}", src.as_uri()]
        try:
            run = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                 env={**os.environ, "HOME": tmp})
        except subprocess.TimeoutExpired as exc:
            raise RevOpsError(f"Chromium did not print the pack within {timeout:.0f} s.") from exc
        if not pdf.is_file() or pdf.stat().st_size == 0:
            raise RevOpsError(f"Chromium did not print the pack (exit {run.returncode}): "
                              + (run.stderr.strip().splitlines() or ["no message"])[-1][:300])
        atomic_write_bytes(target, pdf.read_bytes())
    return target
