"""Never run, show or leak what the data or the command line smuggle in (unit level).

End-to-end runs of the same promises are in tests/test_hostile.py.
"""

from __future__ import annotations

import os
import re

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from revops_lib import files, sources
from revops_lib.errors import ParameterError
from revops_lib.periods import parse_period
from revops_lib.present import publish as publish_mod
from revops_lib.present.text import esc, hide_emails, md, neutralise_csv_cell
from revops_lib.runner import build, parameters, registry, runfiles

from conftest import valid_frames

PAYLOADS = ["<img src=x onerror=alert(1)>", "</script><script>alert(1)</script>", "<b onmouseover=alert(1)>x</b>",
            "\"><svg onload=alert(1)>"]


# --- prose -------------------------------------------------------------------------------------

@pytest.mark.parametrize("payload", PAYLOADS)
def test_prose_escapes_raw_html_from_values(payload):
    html = md(f"**{payload}** converts best").html
    assert "<img" not in html and "<script" not in html and "<svg" not in html and "<b " not in html
    assert "&lt;" in html and "<strong>" in html


def test_prose_has_no_links_or_images_from_values():
    html = md("see [click](http://evil.example/x) <http://evil.example> http://evil.example "
              "![t](http://evil.example/t.png) [js](javascript:alert(1))").html
    assert "<a" not in html and "<img" not in html and "href" not in html and "src=" not in html
    assert "click" in html and "http://evil.example" in html  # the text stays, as text


def test_prose_keeps_the_kits_own_markdown_and_dollars():
    html = md("- **Win rate** rose from $5.2M to *$6.1M*\n- `code`").html
    assert "<li><strong>Win rate</strong> rose from $5.2M to <em>$6.1M</em></li>" in html
    assert "<code>code</code>" in html


def test_emails_are_hidden_in_shown_text():
    assert hide_emails("owner ana.lopez@example.co.uk and bo@x.io") == "owner a…@example.co.uk and b…@x.io"
    assert "ana.lopez" not in md("ana.lopez@example.com").html
    assert str(esc("<ana@example.com>")) == "&lt;a…@example.com&gt;"
    assert hide_emails("no address @ here, 2026-10") == "no address @ here, 2026-10"


# --- tables ------------------------------------------------------------------------------------

def _table_html(df, **kw):
    from revops_lib.present.tables import style_table

    return style_table(df, **kw).to_html()


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("kw", [{}, {"labels": False}, {"index": True}, {"labels": False, "index": True}],
                         ids=["labels", "raw-headers", "index", "raw-headers-index"])
def test_table_cells_and_headers_are_escaped(payload, kw):
    """Cells, headers (labelled or as given) and the index (when shown) are text, never markup."""
    df = pd.DataFrame({"source": [payload, "ana@example.com"], payload: [1.5, 2.0]},
                      index=pd.Index([payload, "x"], dtype=object))
    html = _table_html(df, **kw)
    body = html.split("</style>", 1)[1]
    for tag in ("<img", "<script", "<svg", "<b "):
        assert tag not in body
    assert "&lt;" in body and "ana@example.com" not in body and "a…@example.com" in body


def test_table_html_is_identical_for_identical_data_and_has_no_cell_ids():
    df = pd.DataFrame({"source": ["a", "b"], "n": [1.25, 2.5]})
    one, two = _table_html(df), _table_html(df.copy())
    assert one == two
    assert not re.search(r'id="T_[0-9a-f]{5}_row', one)
    assert _table_html(df.assign(n=[1.25, 2.6])) != one  # another table, another id


def test_kit_built_svg_survives_escaping_and_its_tooltip_is_escaped():
    from revops_lib.present.charts.scorecard import sparkline_svg

    svg = sparkline_svg([1, 2, 3], label=PAYLOADS[0])
    html = _table_html(pd.DataFrame({"kpi": ["x"], "trend": [svg]}), html=["trend"])
    assert "<svg" in html and "<polyline" in html
    assert "<img" not in html and "&lt;img" in html


# --- CSV ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("cell", ["=HYPERLINK(\"http://x\",\"y\")", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"])
def test_csv_cells_a_spreadsheet_would_run_are_neutralised(cell):
    assert neutralise_csv_cell(cell) == "'" + cell
    df = pd.DataFrame({"source": [cell, "organic_search"], "amount": [-5.0, 3.0], "n": [-1, 2]})
    text = publish_mod.csv_bytes(df).decode()
    assert text.endswith("organic_search,3,2\n")
    import csv
    import io

    back = list(csv.reader(io.StringIO(text, newline="")))
    assert back == [["source", "amount", "n"], ["'" + cell.replace("\r", "\n"), "-5", "-1"],
                    ["organic_search", "3", "2"]]


def test_csv_floats_are_rounded_so_sum_order_noise_never_reaches_the_file():
    a = sum([0.1] * 10)            # 0.9999999999999999
    b = 1.0
    one = publish_mod.csv_bytes(pd.DataFrame({"x": [a], "amount": [5563000.123456789]}))
    two = publish_mod.csv_bytes(pd.DataFrame({"x": [b], "amount": [5563000.1234567891]}))
    assert one == two == b"x,amount\n1,5563000.12346\n"


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.none()), max_size=30),
       st.sampled_from(["float64", "Float64", "float32"]))
def test_csv_floats_are_written_as_pandas_writes_them_with_the_kits_float_format(values, dtype):
    """csv_bytes formats float columns itself (faster on long records): byte for byte what
    ``to_csv(float_format="%.12g")`` writes, NaN, NA, ±inf, -0.0 and subnormals included."""
    import numpy as np

    if dtype == "float32":
        values = [None if v is None else float(np.float32(v)) if np.isfinite(np.float32(v)) else v
                  for v in values if v is None or abs(v) < 3e38 or not np.isfinite(v)]
    col = pd.Series([np.nan if v is None else v for v in values], dtype="float64").astype(dtype)
    df = pd.DataFrame({"x": col, "label": ["a"] * len(col)})
    expected = df.to_csv(index=False, float_format="%.12g", lineterminator="\n").encode()
    assert publish_mod.csv_bytes(df) == expected


def test_csv_line_breaks_inside_text_and_the_index_and_headers():
    """A carriage return inside a cell (not only at its start) becomes a line feed, so the cell stays quoted and
    whole; a missing text cell is empty; the index (when written) and the headers are neutralised; lines end
    with a line feed."""
    import csv
    import io

    df = pd.DataFrame({"note": ["a\rb", "c\r\nd", None, "plain"], "=total": [1.5, None, 2.0, 3.0]},
                      index=pd.Index(["=x", "y", "z", "w"], dtype=object))
    text = publish_mod.csv_bytes(df, index=True).decode()
    assert "\r" not in text and text.endswith("w,plain,3\n")
    back = list(csv.reader(io.StringIO(text, newline="")))
    assert back == [["", "note", "'=total"], ["'=x", "a\nb", "1.5"], ["y", "c\nd", ""], ["z", "", "2"],
                    ["w", "plain", "3"]]
    assert publish_mod.csv_bytes(df).decode().startswith('note,\'=total\n"a\nb",1.5\n"c\nd",\n,2\n')


# --- credentials -------------------------------------------------------------------------------

@pytest.mark.parametrize("url, shown, public", [
    ("postgres://ana:s3cret@db/crm", "postgres://ana:***@db/crm", "postgres://ana@db/crm"),
    ("postgres://ana:p@ss:w@db:5432/crm", "postgres://ana:***@db:5432/crm", "postgres://ana@db:5432/crm"),
    ("postgres://ana@db/crm?sslmode=require&password=s3cret", "postgres://ana@db/crm?sslmode=require&password=***",
     "postgres://ana@db/crm?sslmode=require"),
    ("snowflake://u:pw@acct/db?private_key=abc&warehouse=w", "snowflake://u:***@acct/db?private_key=***&warehouse=w",
     "snowflake://u@acct/db?warehouse=w"),
    ("duckdb:///data/x.duckdb", "duckdb:///data/x.duckdb", "duckdb:///data/x.duckdb"),
    ("data/demo", "data/demo", "data/demo"),
])
def test_source_urls_are_redacted_by_parsing(url, shown, public):
    assert sources.redact(url) == shown
    assert sources.public_url(url) == public
    assert "s3cret" not in sources.redact(url) and "pw@" not in sources.redact(url)


def test_a_url_without_password_takes_the_full_url_from_the_environment(monkeypatch):
    monkeypatch.setenv("REVOPS_SOURCE", "postgres://ana:s3cret@db/crm")
    assert sources.with_credentials("postgres://ana@db/crm") == "postgres://ana:s3cret@db/crm"
    assert sources.with_credentials("postgres://bo@db/crm") == "postgres://bo@db/crm"  # another source
    monkeypatch.delenv("REVOPS_SOURCE")
    assert sources.with_credentials("postgres://ana@db/crm") == "postgres://ana@db/crm"


def test_a_failed_connection_does_not_echo_the_password():
    from revops_lib.errors import SourceError

    with pytest.raises(SourceError) as err:
        sources.open_source("postgres://ana:s3cret@127.0.0.1:1/crm?connect_timeout=1")
    assert "s3cret" not in str(err.value) and "ana:***@127.0.0.1" in str(err.value)


def test_kernels_get_the_source_without_its_password(tmp_path):
    prm = build.task_parameters("data_quality", parse_period("2026-10"), {},
                                 source=sources.public_url("postgres://ana:s3cret@db/crm"))
    assert prm["source"] == "postgres://ana@db/crm"


# --- parameters --------------------------------------------------------------------------------

KIT = {n: registry.NOTEBOOKS_DIR / f"{n}.ipynb" for n in registry.REPORTS}


def test_a_parameter_name_carrying_code_is_refused_before_anything_runs():
    with pytest.raises(ParameterError, match="is not a name"):
        parameters.check_overrides({"x=__import__('os').system('touch pwned');y": "1"}, KIT)


def test_unknown_parameter_names_are_refused_with_a_suggestion():
    with pytest.raises(ParameterError, match=r"Unknown parameter `stale_dayz` \(did you mean `stale_days`\?\)"):
        parameters.check_overrides({"stale_dayz": "30"}, KIT)
    parameters.check_overrides({"stale_days": "30"}, KIT)  # declared by data_quality


def test_a_parameter_only_some_notebooks_declare_goes_to_those():
    p = parse_period("2026-10")
    assert build.task_parameters("data_quality", p, {"stale_days": "30"}, source="s")["stale_days"] == 30
    assert "stale_days" not in build.task_parameters("funnel_conversion", p, {"stale_days": "30"}, source="s")


@pytest.mark.parametrize("name", ["output_dir", "source", "period"])
def test_runner_set_parameters_cannot_be_overridden(name):
    with pytest.raises(ParameterError, match=f"`{name}` is set by the runner"):
        parameters.check_overrides({name: "/etc"}, KIT)


@pytest.mark.parametrize("name, value, message", [
    ("stale_days", "abc", r"`stale_days` = 'abc' is not a whole number \(declared `stale_days: int`\)"),
    ("stale_days", "1.5", "is not a whole number"),
    ("confidence", "high", "is not a number"),
    ("confidence", "inf", "must be finite"),
    ("stages", "created_at", r"is not a list"),
    ("privacy", "nobody", "choose one of: names, masked"),
    ("funnel_mode", "loose", "choose one of: reached, strict"),
    ("currency", "<b>US</b>", "three-letter ISO 4217 code"),
    ("as_of", "next tuesday", "date / time"),
])
def test_parameter_values_are_checked_against_the_declaration(name, value, message):
    nb = "data_quality" if name in ("stale_days",) else "funnel_conversion"
    with pytest.raises(ParameterError, match=message) as err:
        build.task_parameters(nb, parse_period("2026-10"), {name: value}, source="s")
    assert f"`{nb}`" in str(err.value) and "from -p" in str(err.value)


def test_yaml_layer_values_are_checked_and_named(tmp_path):
    (tmp_path / "data_quality.yaml").write_text("stale_days: ninety\n")
    with pytest.raises(ParameterError, match=r"`stale_days` = 'ninety'.*from parameters/data_quality.yaml"):
        build.task_parameters("data_quality", parse_period("2026-10"), {}, parameters_dir=tmp_path, source="s")


@pytest.mark.parametrize("value, expected", [("30", 30), (30, 30), (30.0, 30), ("-2", -2)])
def test_int_parameters_accept_whole_numbers(value, expected):
    assert parameters.coerce_value("n", value, "int") == expected


def test_text_parameters_keep_what_was_typed():
    assert parameters.coerce_value("period", "2026", "str") == "2026"
    assert parameters.coerce_value("flag", "yes", "bool") is True
    with pytest.raises(ParameterError):
        parameters.coerce_value("flag", "maybe", "bool")


@pytest.mark.parametrize("notebooks, message", [
    ([""], "empty report"),
    ("", "empty report"),
    (["../../tmp/evil"], "not paths"),
    (["/abs/evil"], "not paths"),
    (["data_quality", "data_quality"], "more than once"),
    (["funnel_conversions"], r"Unknown notebook\(s\) `funnel_conversions`"),
])
def test_only_report_names_run(notebooks, message):
    with pytest.raises(ParameterError, match=message):
        registry.select_notebooks(notebooks)


def test_a_notebook_dropped_into_the_kits_folder_is_not_a_report(tmp_path):
    assert "evil" not in registry.select_notebooks(None)
    assert registry.select_notebooks(["data_quality", "funnel_conversion"]) == ["data_quality", "funnel_conversion"]


# --- run files ---------------------------------------------------------------------------------

def test_a_second_lock_on_the_same_output_folder_is_refused(tmp_path):
    with runfiles.OutputLock(tmp_path):
        with pytest.raises(runfiles.RunLocked, match=rf"Another report run is writing into `{tmp_path}` \(pid {os.getpid()}"):
            with runfiles.OutputLock(tmp_path):
                pass
    with runfiles.OutputLock(tmp_path):  # released
        pass


def test_run_dirs_of_dead_runs_are_swept_and_live_ones_kept(tmp_path):
    dead = tmp_path / "revops-run-dead"
    dead.mkdir()
    (dead / "pid").write_text("999999999")
    live = tmp_path / "revops-run-live"
    live.mkdir()
    (live / "pid").write_text(str(os.getpid()))
    with runfiles.RunDir(tmp_path) as d:
        assert d.is_dir() and oct(d.stat().st_mode & 0o777) == "0o700"
        assert not dead.exists() and live.exists()
    assert not d.exists()


def test_leftovers_of_a_killed_run_are_swept_from_the_output(tmp_path):
    period = tmp_path / "2026-10"
    (period / ".staging-alpha-x1y2" / "tables").mkdir(parents=True)
    (period / ".alpha.x1y2.partial.ipynb").write_text("{}")
    (period / "tables" / ".old-alpha").mkdir(parents=True)
    (period / ".alpha.html.abc.partial").write_text("x")
    (period / "alpha.html").write_text("good")
    removed = runfiles.sweep_output(tmp_path)
    assert len(removed) == 4
    assert sorted(p.name for p in period.iterdir()) == ["alpha.html", "tables"]
    assert list((period / "tables").iterdir()) == []


def test_files_are_written_with_the_users_umask(tmp_path):
    files.atomic_write_bytes(tmp_path / "x.html", b"x")
    assert (tmp_path / "x.html").stat().st_mode & 0o777 == files.file_mode()
    assert files.file_mode() & 0o002 == 0  # never world-writable with a usual umask


# --- privacy -----------------------------------------------------------------------------------

def test_masked_privacy_pseudonymises_owners_teams_scopes_and_hashes_ids():
    frames = valid_frames()
    frames["opportunities"] = frames["opportunities"].assign(extra_email=["a@x.io", "b@x.io", "c@x.io"])
    src = sources.open_source(frames, privacy="masked")
    opp = src.to_pandas("opportunities")
    assert "extra_email" not in opp.columns
    assert set(opp["owner"]) == {sources.pseudonym_text("ana", "Rep "), sources.pseudonym_text("bo", "Rep ")}
    assert opp["team"].str.startswith("Team ").all() and opp["opportunity_id"].str.startswith("id-").all()
    hist = src.to_pandas("opportunity_history")
    assert set(hist["opportunity_id"]) <= set(opp["opportunity_id"])  # joins still match
    assert (opp["amount"] == frames["opportunities"]["amount"]).all()  # numbers unchanged
    names = sources.open_source(valid_frames())
    assert set(names.to_pandas("opportunities")["owner"]) == {"ana", "bo"}


def test_masked_scope_matches_the_masked_team():
    frames = valid_frames()
    frames["forecast_snapshots"] = frames["forecast_snapshots"].assign(scope=["company", "smb", "ana"])
    src = sources.open_source(frames, privacy="masked")
    scopes = list(src.to_pandas("forecast_snapshots")["scope"])
    assert scopes == ["company", sources.pseudonym_text("smb", "Team "), sources.pseudonym_text("ana", "Rep ")]


def test_privacy_must_be_a_known_mode():
    with pytest.raises(ParameterError, match="`privacy` must be one of names, masked"):
        sources.open_source(valid_frames(), privacy="hidden")


def test_charts_hide_emails_and_cut_overlong_tick_labels():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from revops_lib.present.charts.base import MAX_CHART_LABEL, sanitize_figure

    fig, ax = plt.subplots()
    ax.barh(["ana@example.com", "X" * 500, "organic_search"], [1000, 2000, 3000])
    ax.set_title("Bias of bo@example.io")
    ax.legend(["c@example.io"])
    sanitize_figure(fig)
    fig.canvas.draw()
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert ticks == ["a…@example.com", "X" * (MAX_CHART_LABEL - 1) + "…", "Organic search"]  # a key by its label
    assert ax.get_title() == "Bias of b…@example.io"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["c…@example.io"]
    plt.close(fig)
    # a legend of the figure (not of one axes) is a legend too: keys by their label, cut to the same length
    from matplotlib.patches import Patch

    fig, ax = plt.subplots()
    legend = fig.legend(handles=[Patch(label="paid_social"), Patch(label="Y" * 500)])
    sanitize_figure(fig)
    assert [t.get_text() for t in legend.get_texts()] == ["Paid social", "Y" * (MAX_CHART_LABEL - 1) + "…"]
    plt.close(fig)
