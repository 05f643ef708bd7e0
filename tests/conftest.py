"""Shared fixtures: small hand-made frames that satisfy the data contract; the rule for tests that need
a server or a browser (:func:`need`)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pandas as pd
import pytest

from revops_lib.runner import build, registry

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------
# Tests that need something the machine may lack (PostgreSQL, Chromium, make)
# ---------------------------------------------------------------------------

def in_ci() -> bool:
    """Whether this run must run every test: ``CI`` is set (``make test`` and the CI run set ``CI=true``)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def need(condition, reason: str) -> None:
    """Go on when ``condition`` holds; otherwise skip the test, or fail it when :func:`in_ci`.

    Every test that needs a server, a browser or a tool calls this (never a bare skip, which
    ``test_skips.py`` checks), so ``make test`` cannot turn a missing PostgreSQL or Chromium
    into a quiet skip and a green run.
    """
    if condition:
        return
    if in_ci():
        pytest.fail(f"{reason} — CI={os.environ['CI']} (`make test`, CI) runs every test and fails "
                    "what it cannot run; `make test-fast` skips it", pytrace=False)
    pytest.skip(reason)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """One clear line at the end when tests were skipped (after their reasons, before the counts)."""
    result = yield
    skipped = len(terminalreporter.stats.get("skipped", []))
    if skipped:
        terminalreporter.write_line(
            f"{skipped} test{'s' if skipped != 1 else ''} SKIPPED (reasons above): not a full run. "
            "`make test` runs every test (CI=true) and fails any that cannot run.", yellow=True, bold=True)
    return result


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Every test that uses the Spark server is a ``spark`` test (marked here if its author forgot, before ``-m``
    selects): ``make test`` runs the others in parallel (pytest-xdist, ``-m "not spark"``) and the Spark ones
    after them in one process, so one JVM has the machine. With ``--dist loadgroup`` they share one worker."""
    for item in items:
        if "spark_url" in getattr(item, "fixturenames", ()) and not item.get_closest_marker("spark"):
            item.add_marker(pytest.mark.spark)
        if item.get_closest_marker("spark"):
            item.add_marker(pytest.mark.xdist_group("spark"))


NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.timezone.utc)
END = dt.date(2026, 11, 1)


def ts(*values):
    return pd.to_datetime(list(values), utc=True)


def d(*values):
    return [None if v is None else dt.date.fromisoformat(v) for v in values]


def valid_frames() -> dict[str, pd.DataFrame]:
    """One small, valid frame per contract table (3 rows or so)."""
    return {
        "leads": pd.DataFrame({
            "lead_id": ["L1", "L2", "L3"],
            "created_at": ts("2026-10-01 09:00", "2026-10-02 10:00", "2026-10-03 11:00"),
            "source": ["organic_search", "paid_search", "referral"],
            "segment": ["smb", "smb", "enterprise"],
            "mql_at": ts("2026-10-02", None, "2026-10-04"),
            "sql_at": ts("2026-10-03", None, None),
            "opportunity_at": ts("2026-10-04", None, "2026-10-06"),
            "customer_at": ts(None, None, None),
            "account_id": ["A1", "A2", "A3"],
            "opportunity_id": ["O1", None, "O3"],
        }),
        "opportunities": pd.DataFrame({
            "opportunity_id": ["O1", "O2", "O3"],
            "created_at": ts("2026-10-04", "2026-09-01", "2026-10-06"),
            "close_date": d("2026-10-20", "2026-10-10", "2026-12-15"),
            "is_closed": [True, True, False],
            "is_won": [True, False, False],
            "amount": [12000.0, 5000.0, 80000.0],
            "account_id": ["A1", "A2", "A3"],
            "owner": ["ana", "bo", "ana"],
            "team": ["smb", "smb", "enterprise"],
            "segment": ["smb", "smb", "enterprise"],
            "source": ["organic_search", "outbound", "referral"],
            "type": ["new_business", "new_business", "new_business"],
            "stage": ["closed_won", "closed_lost", "proposal"],
            "forecast_category": ["closed", "omitted", "best_case"],
            "product": ["core", "core", "suite"],
        }),
        "opportunity_history": pd.DataFrame({
            "opportunity_id": ["O1", "O1", "O2", "O3"],
            "changed_at": ts("2026-10-04", "2026-10-20", "2026-09-01", "2026-10-06"),
            "stage": ["qualification", "closed_won", "qualification", "proposal"],
            "amount": [10000.0, 12000.0, 5000.0, 80000.0],
            "close_date": d("2026-10-31", "2026-10-20", "2026-10-10", "2026-12-15"),
            "forecast_category": ["pipeline", "closed", "pipeline", "best_case"],
        }),
        "forecast_snapshots": pd.DataFrame({
            "snapshot_date": d("2026-10-05", "2026-10-05", "2026-10-12"),
            "forecast_period": ["2026-10", "2026-Q4", "2026-10"],
            "scope": ["company", "company", "company"],
            "category": ["commit", "commit", "commit"],
            "amount": [10000.0, 90000.0, 11000.0],
        }),
        "subscriptions": pd.DataFrame({
            "customer_id": ["A1", "A1", "A9"],
            "start_date": d("2026-10-20", "2026-10-25", "2025-01-01"),
            "mrr": [1000.0, 200.0, 500.0],
            "end_date": d(None, None, "2026-03-31"),
            "subscription_id": ["S1", "S2", "S3"],
            "product": ["core", "addon", "core"],
            "segment": ["smb", "smb", "smb"],
        }),
        "transactions": pd.DataFrame({
            "customer_id": ["A1", "A9"],
            "occurred_at": ts("2026-10-21", "2026-02-01"),
            "amount": [1000.0, 500.0],
            "transaction_id": ["T1", "T2"],
        }),
        "marketing_spend": pd.DataFrame({
            "date": d("2026-10-01", "2026-10-01", "2026-10-02"),
            "channel": ["paid_search", "sales", "paid_search"],
            "spend": [100.0, 900.0, 120.0],
        }),
        "web_traffic": pd.DataFrame({
            "date": d("2026-10-01", "2026-10-01"),
            "source": ["organic_search", "paid_search"],
            "sessions": [1000, 400],
            "visitors": [800, 350],
            "conversions": [20, 12],
        }),
        "email_campaigns": pd.DataFrame({
            "campaign_id": ["C1", "C2"],
            "sent_date": d("2026-10-06", "2026-10-08"),
            "delivered": [1000, 300],
            "opens": [250, 150],
            "clicks": [40, 30],
            "leads_generated": [5, 0],
            "audience": ["prospects", "customers"],
        }),
        "activities": pd.DataFrame({
            "activity_id": ["X1", "X2"],
            "occurred_at": ts("2026-10-05", "2026-10-15"),
            "type": ["first_meeting", "proposal"],
            "owner": ["ana", "ana"],
            "opportunity_id": ["O1", "O1"],
            "account_id": ["A1", "A1"],
        }),
        "support_tickets": pd.DataFrame({
            "ticket_id": ["K1", "K2"],
            "created_at": ts("2026-10-22 08:00", "2026-10-23 09:00"),
            "customer_id": ["A1", "A1"],
            "first_response_at": ts("2026-10-22 10:00", None),
            "resolved_at": ts("2026-10-23 08:00", None),
            "csat": [5, None],
            "ces": [2, None],
        }),
        "reviews": pd.DataFrame({
            "review_id": ["R1"],
            "posted_at": ts("2026-10-28"),
            "rating": [5],
            "platform": ["g2"],
            "customer_id": ["A1"],
        }),
        "targets": pd.DataFrame({
            "period": ["2026-10", "2026-Q4", "2026-W44"],
            "metric": ["revenue_won", "revenue_won", "leads"],
            "target": [15000.0, 60000.0, 10.0],
            "segment": [None, None, None],
        }),
    }


@pytest.fixture
def frames():
    return valid_frames()


def write_folder(frames: dict[str, pd.DataFrame], path: Path, fmt: str = "parquet") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for name, df in frames.items():
        if fmt == "parquet":
            df.to_parquet(path / f"{name}.parquet", index=False)
        else:
            df.to_csv(path / f"{name}.csv", index=False)
    return path


def period_bounds(label: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """[start, end) of a calendar month ("2026-10"), quarter ("2026-Q3") or ISO week ("2026-W40"), written
    without revops_lib (the tests' independent side)."""
    if "-W" in label:
        year, week = label.split("-W")
        start = pd.Timestamp(dt.date.fromisocalendar(int(year), int(week), 1))
        return start, start + pd.Timedelta(days=7)
    p = pd.Period(label.replace("-Q", "Q"), freq="Q" if "-Q" in label else "M")
    return p.start_time, (p + 1).start_time


def naive_utc(values) -> pd.Series:
    """Times as naive UTC (the kit's convention); dates and naive times unchanged."""
    s = pd.to_datetime(pd.Series(values))
    return s.dt.tz_convert("UTC").dt.tz_localize(None) if s.dt.tz is not None else s


# ---------------------------------------------------------------------------
# PostgreSQL: a throw-away server on 127.0.0.1, started and stopped by the test run
# ---------------------------------------------------------------------------

def _pg_bin(tool: str):
    import glob
    import shutil

    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}"))
    return found[-1] if found else shutil.which(tool)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def pg_url():
    """URL of a fresh PostgreSQL server (Debian's package); see :func:`need` when it is not installed.

    A server that is installed but does not start is an error, never a skip.
    """
    import shutil
    import subprocess
    import time

    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    need(initdb and pg_ctl, "PostgreSQL is not installed (`make system-deps` installs it)")
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="revops-pg-"))
    data = base / "data"
    port = _free_port()
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root: use the postgres user
        runuser = shutil.which("runuser")
        as_user = [runuser, "-u", "postgres", "--"]
        shutil.chown(base, "postgres")
    subprocess.run([*as_user, initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"],
                   check=True, capture_output=True)
    opts = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
    subprocess.run([*as_user, pg_ctl, "-D", str(data), "-o", opts, "-l", str(base / "log"), "-w", "start"],
                   check=True, capture_output=True)
    url = f"postgres://postgres@127.0.0.1:{port}/postgres"
    try:
        deadline = time.time() + 30
        import psycopg

        while True:
            try:
                psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres").close()
                break
            except psycopg.OperationalError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        yield url
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def load_postgres(url: str, frames: dict[str, pd.DataFrame], schema_name: str) -> str:
    """Create a fresh schema holding the frames; return a URL whose search_path points to it."""
    import ibis

    con = ibis.connect(url)
    con.raw_sql(f"DROP SCHEMA IF EXISTS {schema_name} CASCADE").close()
    con.raw_sql(f"CREATE SCHEMA {schema_name}").close()
    for name, df in frames.items():
        df = df.copy()
        for c in df.columns:  # all-null object columns have no type for PostgreSQL: make them text
            if df[c].isna().all() and df[c].dtype == object:
                df[c] = df[c].astype("string")
        con.create_table(name, df, database=schema_name)
    con.disconnect()
    return f"{url}?options=-csearch_path%3D{schema_name}"


# ---------------------------------------------------------------------------
# Spark: a local Spark Connect server on 127.0.0.1, started and stopped by the test run
# ---------------------------------------------------------------------------

def spark_test_settings():
    """Session settings for the tests' small data: one shuffle partition, no code generation (compiling Java
    for each query costs more than it saves on a few thousand rows: ``wholeStage`` off, and ``factoryMode``
    NO_CODEGEN, Spark's interpreted expressions) and no adaptive query execution (it re-plans each stage); the
    server's JVM with the serial garbage collector and only the quick JIT compiler. Measured on the five demo
    reports at a month and a quarter, with a server the runner starts: 161 s and 302 CPU-s (250 in the JVM)
    with the first three settings, 112 s and 186 CPU-s (141 in the JVM) with all of them. The published
    tables are the same bytes either way (``test_the_five_reports_publish_the_same_bytes_on_spark``)."""
    from revops_lib.spark import SparkSettings

    return SparkSettings(shuffle_partitions=1, conf={"spark.sql.codegen.wholeStage": "false",
                                                   "spark.sql.codegen.factoryMode": "NO_CODEGEN",
                                                   "spark.sql.adaptive.enabled": "false"},
                         java_options="-XX:+UseSerialGC -XX:TieredStopAtLevel=1")


@pytest.fixture(scope="session")
def spark_url():
    """URL (``sc://127.0.0.1:PORT``) of a local Spark Connect server from the pyspark wheel; see :func:`need`
    when pyspark or Java is missing. A server that is installed but does not start is an error, never a skip."""
    from revops_lib import spark

    reason = spark.missing()
    need(not reason, f"Spark cannot run here: {reason}")
    server = spark.LocalServer(spark_test_settings())
    url = server.start()
    try:
        yield url
    finally:
        server.stop()


# ---------------------------------------------------------------------------
# Demo data and notebook runs
# ---------------------------------------------------------------------------

DEMO_END = dt.date(2026, 11, 1)  # demo data cover 2023-11 .. 2026-10


#: A folder shared by every pytest process of one ``make test`` (its two runs, and their xdist workers): what
#: :func:`built_once` builds there is built by the first process that needs it and read by the others.
SHARED_ENV = "REVOPS_TEST_SHARED"


def _shared_root(tmp_path_factory) -> Path | None:
    """Where :func:`built_once` keeps its builds: ``$REVOPS_TEST_SHARED``, else the session's temporary folder
    that its xdist workers share (a fresh one per session), else None (one process: nothing to share)."""
    if os.environ.get(SHARED_ENV, "").strip():
        return Path(os.environ[SHARED_ENV])
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return tmp_path_factory.getbasetemp().parent  # pytest-of-<user>/pytest-<n>/: this session's only
    return None


def built_once(tmp_path_factory, name: str, build) -> Path:
    """The folder ``build(folder)`` fills, built once for every process of the test run (see :data:`SHARED_ENV`).

    The first process takes a lock, builds into ``<root>/<name>`` and marks it done; the others wait on the
    lock and use that folder. A failed build leaves no mark, so the next process that needs it tries again
    (and fails its tests the same way). Tests only read what it builds.
    """
    import fcntl
    import shutil

    root = _shared_root(tmp_path_factory)
    if root is None:
        path = tmp_path_factory.mktemp(name)
        build(path)
        return path
    root.mkdir(parents=True, exist_ok=True)
    path, done = root / name, root / f"{name}.done"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes (or the process dies)
        if not done.exists():
            shutil.rmtree(path, ignore_errors=True)
            path.mkdir()
            build(path)
            done.touch()
    return path


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory):
    """A small demo company (scale 0.2, fixed end), built once per test run (:func:`built_once`)."""
    from revops_lib import demo

    return built_once(tmp_path_factory, "demo", lambda p: demo.build(p / "data", seed=7, scale=0.2, end=DEMO_END)) \
        / "data"


#: The periods :func:`demo_reports` builds every report for (a month, a quarter, a week).
DEMO_REPORT_PERIODS = ("2026-10", "2026-Q3", "2026-W40")


@pytest.fixture(scope="session")
def demo_reports(demo_dir, tmp_path_factory):
    """The folder of every report of the demo for :data:`DEMO_REPORT_PERIODS`, and the scorecard of 2026-W43,
    built once for the test run (:func:`built_once`) by one run of the real runner (two kernels, reused across
    reports). Tests only read it."""
    names = registry.notebook_names()
    tasks = {(n, p) for n in names for p in DEMO_REPORT_PERIODS} | {("revops_scorecard", "2026-W43")}

    def run(out):
        messages = []
        status = build.run(periods=[*DEMO_REPORT_PERIODS, "2026-W43"], source=demo_dir, out=out, notebooks=names,
                           jobs=2, force=True, progress=messages.append, only=tasks)
        assert status == 0, "\n".join(messages)

    return built_once(tmp_path_factory, "demo-reports", run)


def run_report(source, out, period, notebooks, **params):
    """Run notebooks through the real runner; return (status, messages)."""

    messages = []
    status = build.run(period=period, source=source, out=out, notebooks=notebooks, params=params or None,
                        jobs=2, force=True, progress=messages.append)
    return status, messages
