"""``reports/index.html``: every period and report, with status and headlines, newest first.

Within a period, the reports of the whole source come first, then those of each slice
(``reports/<period>/<slice name>/``, :mod:`revops_lib.runner.slicing`) under a row naming the slice.
"""

from __future__ import annotations

from pathlib import Path

from revops_lib.errors import RevOpsError
from revops_lib.files import atomic_write_bytes
from revops_lib.periods import parse_period
from revops_lib.runner import registry
from revops_lib.runner.manifest import _now_iso, read_manifest
from revops_lib.runner.registry import title as report_title
from revops_lib.version import __version__


def executive_summary(periods) -> str:
    """One screen for the latest period with built reports: the scorecard's key KPIs (value, target, change, the
    same period last year, year to date and its target, status; its ``executive_summary.csv``) and the top finding
    of each report, linked to its section."""
    import html

    import pandas as pd

    from revops_lib.present.format import fmt_change, fmt_value

    for p, d in periods:  # newest first
        m = read_manifest(d)
        built = {n: e for n, e in m.items() if e.get("status") in ("ok", "skipped") and (d / f"{n}.html").is_file()}
        if built:
            break
    else:
        return ""
    order = {n: i for i, n in enumerate(registry.REPORTS)}
    parts = [f"<section class=\"summary\" aria-label=\"Executive summary\"><h2>Executive summary — "
             f"{html.escape(p.label)}</h2>"]
    csv = d / "tables" / "revops_scorecard" / "executive_summary.csv"
    if "revops_scorecard" in built and csv.is_file():
        k = pd.read_csv(csv)
        css = {"on track": "ok", "at risk": "risk", "off track": "off"}
        for c in ("last_year_value", "ytd_value", "ytd_target"):  # a summary written before they existed
            if c not in k.columns:
                k[c] = float("nan")

        def cell(v, unit):
            return f"<td class=num>{html.escape(fmt_value(v, unit))}</td>"

        rows = "".join(
            f"<tr><td>{html.escape(str(r.label))}</td><td class=num><b>{html.escape(fmt_value(r.value, r.unit))}</b>"
            f"</td>{cell(r.target, r.unit)}"
            f"<td class=num>{html.escape(fmt_change(r.change, r.unit))}</td>"
            f"{cell(r.last_year_value, r.unit)}{cell(r.ytd_value, r.unit)}{cell(r.ytd_target, r.unit)}"
            f"<td><span class=\"st {css.get(r.status, 'none')}\">{html.escape(str(r.status))}</span></td></tr>"
            for r in k.itertuples(index=False))
        link = f"{html.escape(d.name)}/revops_scorecard.html"
        parts.append(f"<div class=wrap><table><thead><tr><th>KPI</th><th>Value</th><th>Target</th>"
                     f"<th>Change</th><th>Last year</th><th>Year to date</th><th>YTD target</th>"
                     f"<th>Status</th></tr></thead><tbody>{rows}</tbody></table></div>"
                     f"<p class=small>From the <a href=\"{link}\">RevOps scorecard</a>; change against the prior "
                     "period; last year: the same period a year earlier; year to date against the sum of the year's "
                     "targets so far; status counts the pacing views too.</p>")
    items = []
    for n in sorted(built, key=lambda x: (order.get(x, 99), x)):
        top = next((h for h in built[n].get("headlines") or [] if h.get("kind") == "finding"), None)
        if top and top.get("value"):
            href = f"{html.escape(d.name)}/{html.escape(n)}.html"
            if top.get("anchor"):
                href += "#" + html.escape(top["anchor"])
            title = html.escape(built[n].get("title") or report_title(n))
            items.append(f"<li><a href=\"{href}\">{title}</a>: {html.escape(top['value'])}</li>")
    if items:
        parts.append("<h3>Top finding of each report</h3><ul>" + "".join(items) + "</ul>")
    parts.append("</section>")
    return "\n".join(parts)


def slice_folders(period_dir: Path) -> list[tuple[str, Path]]:
    """``(label, folder)`` of each slice built for a period (a folder with a manifest), by folder name."""
    out = []
    for sd in sorted(period_dir.iterdir()) if period_dir.is_dir() else []:
        if sd.is_dir() and not sd.is_symlink() and sd.name != "tables" and (sd / "manifest.json").is_file():
            m = read_manifest(sd)
            label = next((e.get("slice") for e in m.values() if isinstance(e, dict) and e.get("slice")), sd.name)
            out.append((str(label), sd))
    return out


def write_index(out: Path) -> Path:
    """Rebuild ``<out>/index.html`` from every period's manifest (newest period first; in a period the whole
    source's reports, then each slice's)."""
    import html

    out = Path(out)
    rows = []
    periods = []  # periods with reports of the whole source (the executive summary's)
    groups = []  # (period, folder, slice label or '', href prefix) in the order the table lists them
    for d in out.iterdir() if out.is_dir() else []:
        if not d.is_dir():
            continue
        try:
            p = parse_period(d.name)
        except RevOpsError:
            continue
        if (d / "manifest.json").is_file():
            periods.append((p, d))
            groups.append((p, d, "", d.name))
        groups += [(p, sd, label, f"{d.name}/{sd.name}") for label, sd in slice_folders(d)]
    periods.sort(key=lambda x: (x[0].end, x[0].start), reverse=True)
    groups.sort(key=lambda g: (g[0].end, g[0].start), reverse=True)  # stable: whole source, then slices
    order = {n: i for i, n in enumerate(registry.REPORTS)}
    for p, d, slice_label, rel in groups:
        m = read_manifest(d)
        if slice_label:
            rows.append(f'<tr class="slice"><td>{html.escape(p.label)}</td><td colspan="5">Slice '
                        f'<b>{html.escape(slice_label)}</b> <span class="small">only its rows; '
                        f'<code>{html.escape(rel)}/</code></span></td></tr>')
        for n in sorted(m, key=lambda k: (order.get(k, 99), k)):
            e = m[n]
            status = e.get("status", "?")
            css = {"ok": "ok", "skipped": "skip", "failed": "fail", "no data": "nodata",
                   "no tables": "nodata"}.get(status, "")
            label = {"skipped": "skipped-unchanged", "no tables": "skipped: tables absent"}.get(status, status)
            title = html.escape(e.get("title") or report_title(n))
            links = []
            if status == "no data" and e.get("page") and (d / e["page"]).is_file():
                links.append(f'<a href="{html.escape(rel)}/{html.escape(e["page"])}">{title}</a>')
            elif status != "no tables" and (d / f"{n}.html").is_file():
                links.append(f'<a href="{html.escape(rel)}/{html.escape(n)}.html">{title}</a>')
            else:
                links.append(title)
            if status == "failed" and e.get("executed"):
                links.append(f'<a class="small" href="{html.escape(rel)}/{html.escape(e["executed"])}">'
                             'executed notebook</a>')
                if (d / f"{n}.html").is_file():
                    links.append('<span class="small">(link above: last good report)</span>')
            if (d / "tables" / n).is_dir():
                links.append(f'<a class="small" href="{html.escape(rel)}/tables/{html.escape(n)}/">tables (CSV)</a>')
            heads = " · ".join(f"{html.escape(h['label'])}: <b>{html.escape(str(h['value']))}</b>"
                               for h in [h for h in (e.get("headlines") or []) if h.get("kind") != "finding"][:5])
            err = f'<div class="err">{html.escape(e.get("error") or "")}</div>' if status == "failed" else ""
            if status in ("no data", "no tables"):
                heads = html.escape(e.get("reason") or "no data in this period")
            elif e.get("left_out"):
                k = len(e["left_out"])
                heads += (" · " if heads else "") + (f'<span class="small">{k} part{"s" if k != 1 else ""} left out '
                                                     f'for lack of data</span>')
            secs = e.get("seconds")
            rows.append(
                f"<tr><td>{html.escape(p.label)}</td><td>{' '.join(links)}{err}</td>"
                f'<td><span class="st {css}">{label}</span></td>'
                f"<td class=num>{'' if secs is None else f'{secs:.1f} s'}</td>"
                f"<td>{heads}</td><td class=small>{html.escape(e.get('finished_at') or '')}</td></tr>"
            )
    summary = executive_summary(periods)
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
 .fail {{ background: #fbe0dd; color: #a1281b; }} .nodata {{ background: #fff4d6; color: #7a5b00; }}
 .summary {{ background: #f7f9fc; border: 1px solid #dfe6ef; border-radius: 6px; padding: 4px 16px 12px;
             margin-bottom: 24px; }}
 .summary h2 {{ margin: 10px 0 6px; color: #1d3557; }} .summary table {{ width: auto; min-width: 60%; }}
 .summary ul {{ padding-left: 18px; }} .summary li {{ margin: 4px 0; }}
 .wrap {{ overflow-x: auto; max-width: 100%; }}
 .st.off {{ background: #fbe0dd; color: #a1281b; }} .st.risk {{ background: #fff4d6; color: #7a5b00; }}
 .st.none {{ background: #eef0f3; color: #555; }}
 @media (max-width: 640px) {{ body {{ padding: 0 8px; }} table {{ font-size: 0.85em; }} }}
 .err {{ color: #a1281b; font-size: 0.85em; margin-top: 3px; font-family: monospace; }}
 tr.slice td {{ background: #f7f9fc; border-top: 2px solid #dfe6ef; }}
</style></head>
<body>
<h1>RevOps reports</h1>
{summary}
<h2>All reports</h2>
<p>Every period and report, newest first. Status <i>skipped-unchanged</i> means notebook, parameters,
library and data were unchanged since the last successful build; <i>no data</i> means that the period starts after the
source's latest event (nothing was built, rather than a report of zeros). Reports of a slice (one segment, team,
owner …: only its rows) follow those of the whole source, under a row naming the slice. \
Generated {_now_iso()} by revops-kit {__version__}.</p>
<div class="wrap"><table><thead><tr><th>Period</th><th>Report</th><th>Status</th><th>Duration</th>\
<th>Headlines</th><th>Finished</th></tr></thead>
<tbody>
{body}
</tbody></table></div>
</body></html>
"""
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "index.html", page.encode("utf-8"))
    return out / "index.html"
