"""The reports as a stakeholder reads them: every report of a month, a week and a quarter, opened in a real
headless Chromium at 1400 px and at 400 px.

What a reader must never meet: scientific notation (``1.287e+05``), a Python repr (``'None found.'``,
``None``, ``nan``), two signs or two units for one thing (a typographic minus on a number where the formatters
write ``-$5.0k``; points as ``pts`` where they write ``pp``), a page wider than the screen; and every chart
has the CSV of its data beside it.
"""

from __future__ import annotations

import re

import pytest

from conftest import DEMO_REPORT_PERIODS
from test_browser import browser  # noqa: F401  (fixture reuse)

pytestmark = [pytest.mark.browser, pytest.mark.notebook, pytest.mark.slow]

PERIODS = ["2026-10", "2026-W40", "2026-Q3"]
NOTEBOOKS = ["revops_scorecard", "funnel_conversion", "forecast_accuracy", "cohort_retention", "data_quality"]
SCIENTIFIC = re.compile(r"\d[eE][+-]\d")
REPR = re.compile(r"(?<!\w)'[^'\n]{2,80}'(?!\w)|\bNone\b|\bnan\b|\bNaN\b|\bNaT\b|<NA>|dtype:|Timestamp\(|\bTrue\b"
                  r"|\bFalse\b")
MINUS = re.compile(r"(?<![\w)])\u2212[$€£¥]?\d")  # a signed number, not a formula's "m\u221212" or "1 \u2212 APE"
POINTS = re.compile(r"\d pts\b")
SIGNED_ZERO = re.compile(r"(?<![\w.])[+-][$€£¥]?0(?:\.0+)?(?![\d.])")  # "+0.0 pp", "-0.0%", "-$0": zero is "±"

READ = """() => {
  const text = document.body.innerText;
  return {text, width: document.documentElement.scrollWidth, inner: window.innerWidth,
          images: document.querySelectorAll('img').length,
          toc: Array.from(document.querySelectorAll('nav.revops-toc a')).map(a => a.getAttribute('href')),
          ids: Array.from(document.querySelectorAll('h2[id]')).map(h => '#' + h.id)};
}"""


@pytest.fixture(scope="module")
def built(demo_reports):
    """Every report of the three periods (the session's :func:`conftest.demo_reports`: read, never written)."""
    assert set(PERIODS) <= set(DEMO_REPORT_PERIODS)
    return demo_reports


def problems_of(text: str) -> list[str]:
    found = [f"scientific notation {m.group(0)!r}" for m in SCIENTIFIC.finditer(text)]
    found += [f"a repr {m.group(0)!r}" for m in REPR.finditer(text)]
    found += [f"a typographic minus {m.group(0)!r} (the formatters write '-')" for m in MINUS.finditer(text)]
    found += [f"points as {m.group(0)!r} (the formatters write 'pp')" for m in POINTS.finditer(text)]
    found += [f"a signed zero {m.group(0)!r} (the formatters write '±')" for m in SIGNED_ZERO.finditer(text)]
    return found


def test_the_checks_catch_what_they_look_for():
    """Negative control: each pattern finds its case (and plain prose passes)."""
    assert problems_of("Revenue 1.287e+05 this month")
    assert problems_of("None found") and problems_of("'None found.'") and problems_of("value nan")
    assert problems_of("Period complete False")
    assert problems_of("Change \u2212$5.0k") and problems_of("(\u22125.3%)") and problems_of("+2.1 pts")
    assert problems_of("Win rate +0.0 pp") and problems_of("bias -0.0%") and problems_of("(-$0)")
    assert not problems_of("±0.0 pp, +0.05%, -0.5 days, 2026-01-01, W01-02, ±$0, -$0.30")
    assert not problems_of("Revenue $128.7k, 12.3% of target — no deal slipped; the customer's plan.")
    assert not problems_of("Change -$5.0k, -5.3%, +2.1 pp; MRR in m\u221212; accuracy = max(0, 1 \u2212 APE)")


@pytest.mark.parametrize("width", [1400, 400])
@pytest.mark.parametrize("period", PERIODS)
def test_every_report_reads_cleanly(built, browser, period, width):  # noqa: F811
    folder = built / period
    for name in NOTEBOOKS:
        page = browser.new_page(viewport={"width": width, "height": 900})
        page.goto((folder / f"{name}.html").as_uri())
        page.wait_for_load_state("load")
        info = page.evaluate(READ)
        page.close()
        where = f"{period}/{name}.html at {width} px"
        assert problems_of(info["text"]) == [], where
        assert info["width"] <= info["inner"], f"{where}: the page is {info['width']} px wide"
        assert info["toc"] and set(info["toc"]) <= set(info["ids"]), f"{where}: contents missing or broken"


@pytest.mark.parametrize("period", PERIODS)
def test_every_chart_has_its_data_published(built, period):
    """Each chart drawn (an image in the page) is recorded in the report's ``tables/charts.json`` with the CSV
    that holds its numbers (a CSV of its own, or the table that shows the same numbers, as the scorecard's
    bullet charts draw ``kpis.csv``): as many records as images, and every recorded CSV is there, non-empty."""
    import json

    folder = built / period
    for name in NOTEBOOKS:
        html = (folder / f"{name}.html").read_text()
        images = html.count("<img")
        index = folder / "tables" / name / "charts.json"
        records = json.loads(index.read_text()) if index.is_file() else []
        assert len(records) == images, f"{period}/{name}: {images} charts in the page, {len(records)} recorded"
        for r in records:
            csv = folder / "tables" / name / r["csv"]
            assert csv.is_file() and csv.read_text().strip(), f"{period}/{name}: {r['chart']} has no data in {csv}"


@pytest.mark.parametrize("period", PERIODS)
def test_every_column_heading_starts_with_a_capital(built, period):
    """Headings read "Ending MRR", "Pro-rated target", "Cohort" (they read "ending MRR", "pro-rated target" and
    "cohort" beside "Customers"); a statistic's symbol stays as written ("n", "p-value")."""
    import html

    for name in NOTEBOOKS:
        page = (built / period / f"{name}.html").read_text()
        heads = {html.unescape(h).strip() for h in re.findall(r"<th[^>]*>([^<]*)</th>", page)}
        low = sorted(h for h in heads if h[:1].islower() and h not in ("n", "p-value"))
        assert low == [], f"{period}/{name}.html"


@pytest.mark.parametrize("period", PERIODS)
def test_one_name_one_number_across_the_pages(built, period):
    """The same KPI under the same name shows the same value in the index headlines as in the scorecard's
    published kpis.csv (formatted alike), and the funnel's lead count and change as on its page; the index's
    status counts are what the scorecard lists."""
    import json

    import pandas as pd

    from revops_lib.metrics.kpis import KPI_BY_KEY
    from revops_lib.present.format import fmt_value

    folder = built / period
    manifest = json.loads((folder / "manifest.json").read_text())
    heads = {n: {h["label"]: h["value"] for h in e.get("headlines") or []} for n, e in manifest.items()}
    kpis = pd.read_csv(folder / "tables" / "revops_scorecard" / "kpis.csv").set_index("kpi")

    def shown(key):
        return fmt_value(kpis.loc[key, "value"], kpis.loc[key, "unit"])

    for key in ("nrr_12m", "grr_12m"):
        name = KPI_BY_KEY[key].label
        assert heads["cohort_retention"].get(name) == shown(key), (period, name)
    coverage = [v for k, v in heads["forecast_accuracy"].items() if k.startswith("Next-period coverage")]
    if coverage and not pd.isna(kpis.loc["pipeline_coverage", "value"]):
        assert coverage == [shown("pipeline_coverage")], period
    for key, name in (("revenue_won", "Revenue won"), ("new_customers", "New customers"), ("leads", "Leads")):
        assert heads["revops_scorecard"].get(name) == shown(key), (period, name)
    # the funnel's lead count and its change: the same on the index as in the page's headline table
    funnel = (folder / "funnel_conversion.html").read_text()
    cells = re.search(r">Leads created \(cohort\)</td>\s*<td[^>]*>([^<]*)</td>\s*<td[^>]*>[^<]*</td>\s*"
                      r"<td[^>]*>([^<]*)</td>", funnel)
    assert cells, period
    assert heads["funnel_conversion"]["Leads"] == f"{cells[1]} ({cells[2]})", period
    page = (folder / "revops_scorecard.html").read_text()
    listed = len(re.findall(r"is <em>off track</em>", page))
    assert int(heads["revops_scorecard"]["Off track"]) >= listed


@pytest.mark.parametrize("width", [1400, 400])
def test_the_index_opens_with_the_executive_summary(built, browser, width):  # noqa: F811
    """The latest period's key KPIs with value, target, change and status, and one top finding per report,
    each linked to its report's section; the statuses agree with what the scorecard publishes."""
    import pandas as pd

    page = browser.new_page(viewport={"width": width, "height": 900})
    page.goto((built / "index.html").as_uri())
    page.wait_for_load_state("load")
    info = page.evaluate("""() => {
      const s = document.querySelector('section.summary');
      return {first: document.querySelector('body h1 + *') === s, heading: s && s.querySelector('h2').innerText,
              rows: s ? Array.from(s.querySelectorAll('tbody tr')).map(r => Array.from(r.cells).map(c => c.innerText)) : [],
              links: s ? Array.from(s.querySelectorAll('li a')).map(a => a.getAttribute('href')) : [],
              width: document.documentElement.scrollWidth, inner: window.innerWidth, text: document.body.innerText};
    }""")
    page.close()
    assert info["first"], "the index does not open with the executive summary"
    latest = info["heading"].split("—")[-1].strip()
    assert latest in PERIODS
    k = pd.read_csv(built / latest / "tables" / "revops_scorecard" / "executive_summary.csv")
    assert 8 <= len(info["rows"]) == len(k) <= 10
    assert [r[0] for r in info["rows"]] == k["label"].tolist()
    assert [r[-1] for r in info["rows"]] == k["status"].tolist()  # status last (after last year and YTD)
    assert len(info["links"]) == len(NOTEBOOKS)
    for href in info["links"]:
        target, _, anchor = href.partition("#")
        assert anchor and (built / target).is_file(), href
        assert f'id="{anchor}"' in (built / target).read_text(), href
    assert problems_of(info["text"]) == []
    assert info["width"] <= info["inner"]


def test_the_pdf_pack_opens_with_the_summary_and_has_one_section_per_report(built, tmp_path):
    """Printed by Chromium; read back with pypdf: the cover holds the executive summary, each report starts
    on a page of its own with its header, in the registry's order."""
    import shutil

    from pypdf import PdfReader

    from revops_lib.runner.pdf import build_pack
    from revops_lib.runner.registry import REPORTS, title

    out = tmp_path / "reports"  # the pack is written beside the reports: a copy, the shared folder stays as built
    shutil.copytree(built, out)
    pdf = build_pack(out, "2026-10")
    assert pdf == out / "2026-10" / "2026-10-pack.pdf"
    pages = [page.extract_text() for page in PdfReader(str(pdf)).pages]
    assert "RevOps review — 2026-10" in pages[0] and "Executive summary — 2026-10" in pages[0]
    starts = [i for i, text in enumerate(pages) if text.lstrip().startswith("revops-kit report ·")]
    assert len(starts) == len(NOTEBOOKS), starts
    order = [n for n in REPORTS if n in NOTEBOOKS]
    for i, name in zip(starts, order):
        assert pages[i].lstrip().startswith(f"revops-kit report · {title(name)}"), (i, pages[i][:80])
    assert all(problems_of(text) == [] for text in pages)
