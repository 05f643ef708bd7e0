"""Open a data source and hand out typed Ibis tables by canonical name.

A *source* is one of:

- a folder with one file per table: ``leads.parquet`` or ``leads.csv`` (also
  ``leads/*.parquet`` for a partitioned table), read by an embedded DuckDB.
  Spark- and Hive-style folders are read too: ``leads.parquet/part-*.parquet``
  and ``leads/year=2026/part-0.parquet`` (partition values become columns);
  entries starting with ``_`` or ``.`` (``_SUCCESS``, ``.crc`` files) are ignored.
  A table in two layouts (``leads.csv`` beside ``leads.parquet``), a broken link,
  a symlink loop or a folder without Parquet parts where a table should be is a
  :class:`~revops_lib.errors.SourceError` naming the path, never an absent table;
- a ``.duckdb`` file holding tables with the canonical names;
- any Ibis connection URL (``postgres://user@host/db``, ``duckdb:///x.duckdb`` …);
- a Spark Connect URL ``sc://host:15002[/database]``, or a folder / lakehouse path read by Spark
  (``engine="spark"``), or a SparkSession (:mod:`revops_lib.spark`);
- an Ibis backend object, or a dict of pandas DataFrames (``Source.from_frames``).

Raw tables are typed to the data contract (:mod:`revops_lib.schema`) on the way
out: timestamps become naive UTC (an offset is honoured, no offset means UTC),
dates become dates, ``true/false/1/0`` become booleans, numeric text becomes
numbers. Values that cannot be typed become null in :meth:`Source.table` and are
reported by :func:`revops_lib.validation.validate`. A missing optional column is
added as a typed null column, so metric code can rely on every contract column.
A missing table is *absent*: :meth:`Source.has` says so and the reports skip the
sections that need it. Text labels (``Column.label``: sources, stages, owners …)
longer than :data:`revops_lib.schema.MAX_LABEL` characters are cut to that length
in the typed view. A column a CSV header names twice is null in both the raw and
the typed view (:meth:`Source.duplicate_columns`; ``validate`` reports it).

>>> from revops_lib.sources import open_source
>>> src = open_source("data/demo")                       # doctest: +SKIP
>>> src.table("leads").count().to_pyarrow().as_py()     # doctest: +SKIP
50213
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from pathlib import Path
from typing import Any, Mapping

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from revops_lib.errors import SourceError
from revops_lib.schema import MAX_LABEL, TABLES, TableSpec, repeated_names

__all__ = ["Source", "open_source", "coerce", "cut_label", "typed_table", "as_table", "to_pandas", "KIND_DTYPES"]

KIND_DTYPES: dict[str, dt.DataType] = {
    "string": dt.string,
    "timestamp": dt.Timestamp(),
    "date": dt.date,
    "float": dt.float64,
    "int": dt.int64,
    "bool": dt.boolean,
}

_UTC = dt.Timestamp(timezone="UTC")

#: DuckDB settings of every source connection: no extension is downloaded. Parquet, JSON and ICU (time
#: zones) are built into DuckDB; a file that looks like another engine's (a SQLite header in a .duckdb
#: file) would otherwise make DuckDB fetch that engine's extension from the internet.
OFFLINE = {"autoinstall_known_extensions": False}

#: How much memory DuckDB may use in one process before it spills to disk (``$REVOPS_ENGINE_MEMORY``,
#: a size such as ``512MB`` or ``4GB``; default :data:`DEFAULT_ENGINE_MEMORY`), and where it spills to: a
#: folder ``revops-engine-<pid>`` of its own per process (DuckDB's spill files have fixed names) inside
#: ``$REVOPS_ENGINE_TMP`` (default: the system's temporary folder), which DuckDB removes when the connection
#: closes. The report runner points its kernels into the run's private folder (removed with the run).
ENGINE_MEMORY_ENV = "REVOPS_ENGINE_MEMORY"
ENGINE_TMP_ENV = "REVOPS_ENGINE_TMP"
#: Keeps every report process under 1 GiB at demo scale 100 (5 M leads, 2.5 M history rows): DuckDB's own
#: default (80 % of the machine's memory, per process) lets two parallel reports each take gigabytes for a
#: sort they can as well spill. 384 MB rather than 512 MB: at scale 100 the busiest process peaks at about
#: 0.79 GiB instead of 0.90–0.99 GiB (the forecast's deal history, a 2.5 M-row temporary table, is the largest
#: thing a report holds), for about 0.3 s more in the scorecard. Raise it for bigger data on a bigger machine.
DEFAULT_ENGINE_MEMORY = "384MB"
_SIZE = re.compile(r"\s*\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*", re.IGNORECASE)


def duckdb_config() -> dict:
    """Settings of every DuckDB connection the kit opens: :data:`OFFLINE`, the memory limit and spill folder."""
    import tempfile

    memory = os.environ.get(ENGINE_MEMORY_ENV, "").strip() or DEFAULT_ENGINE_MEMORY
    if not _SIZE.fullmatch(memory):
        raise SourceError(f"${ENGINE_MEMORY_ENV} = {memory[:40]!r} is not a memory size: give e.g. 512MB or 4GB.")
    base = os.environ.get(ENGINE_TMP_ENV, "").strip() or tempfile.gettempdir()
    tmp = os.path.join(base, f"revops-engine-{os.getpid()}")
    return {**OFFLINE, "memory_limit": memory.replace(" ", ""), "temp_directory": tmp}


@ibis.udf.scalar.builtin(name="epoch_us")
def _epoch_us(x) -> dt.int64:  # DuckDB: microseconds since the epoch of a TIMESTAMP or TIMESTAMPTZ
    ...


@ibis.udf.scalar.builtin(name="make_timestamp")
def _make_timestamp(us: dt.int64) -> dt.Timestamp():  # DuckDB: naive TIMESTAMP from epoch microseconds
    ...


def coerce(col: ir.Value, kind: str, *, backend: str | None = None) -> ir.Value:
    """Type one raw column to a contract column kind (see :mod:`revops_lib.schema`).

    Values that cannot be converted become null (``TRY_CAST``), so the caller
    can count them: ``raw.notnull() & coerce(raw, kind).isnull()``.
    """
    t = col.type()
    if kind == "string":
        if t.is_floating():  # ids landed as floats (HubSpot's numeric ids, a column with gaps): 880001.0 is 880001
            as_text = col.cast(dt.string)
            whole = ibis.ifelse(col == col.floor(), col.cast(dt.int64).cast(dt.string), as_text)
            return ibis.ifelse(col.abs() < 2.0**53, whole, as_text)  # nested: floor() never sees NaN or inf
        return col if t.is_string() else col.cast(dt.string)
    if kind == "timestamp":
        if t.is_timestamp():
            if t.timezone is None:
                return col
            if backend == "duckdb":  # same instant, much faster than CAST(TIMESTAMPTZ AS TIMESTAMP)
                return _make_timestamp(_epoch_us(col))
            return col.cast(dt.Timestamp())
        if t.is_date():
            return col.cast(dt.Timestamp())
        if t.is_string():
            return col.try_cast(_UTC).cast(dt.Timestamp())
        return col.try_cast(dt.Timestamp())
    if kind == "date":
        if t.is_date():
            return col
        if t.is_timestamp():
            return coerce(col, "timestamp", backend=backend).cast(dt.date)
        if t.is_string():
            return ibis.coalesce(col.try_cast(dt.date), col.try_cast(_UTC).cast(dt.Timestamp()).cast(dt.date))
        return col.try_cast(dt.date)
    if kind == "float":
        if t.is_numeric():
            return col.cast(dt.float64)
        if t.is_boolean():
            return col.cast(dt.int64).cast(dt.float64)
        return col.try_cast(dt.float64)
    if kind == "int":
        if t.is_integer():
            return col.cast(dt.int64)
        f = col.cast(dt.float64) if t.is_numeric() else col.try_cast(dt.float64)
        # a whole number within int64; NaN (above every number) and ±inf are not. Nested so that neither
        # floor() (an int64 in Ibis) nor the cast ever sees a value out of range.
        return ibis.ifelse(f.abs() < 2.0**63, ibis.ifelse(f == f.floor(), f.cast(dt.int64), ibis.null(dt.int64)),
                           ibis.null(dt.int64))
    if kind == "bool":
        if t.is_boolean():
            return col
        if t.is_integer():
            return ibis.ifelse(col.isin([0, 1]), col == 1, ibis.null(dt.boolean))
        if t.is_floating():
            return ibis.ifelse(col.isin([0.0, 1.0]), col == 1.0, ibis.null(dt.boolean))
        if t.is_string():
            low = col.strip().lower()
            return low.cases(
                ("true", True), ("t", True), ("1", True), ("yes", True),
                ("false", False), ("f", False), ("0", False), ("no", False),
                else_=ibis.null(dt.boolean),
            )
        return col.try_cast(dt.boolean)
    raise ValueError(f"unknown column kind `{kind}`")


def compatible(t: dt.DataType, kind: str) -> bool:
    """Whether a raw type can hold values of a contract kind at all."""
    if t.is_string() or t.is_null():
        return True
    return {
        "string": True,
        "timestamp": t.is_timestamp() or t.is_date(),
        "date": t.is_timestamp() or t.is_date(),
        "float": t.is_numeric() or t.is_boolean(),
        "int": t.is_numeric(),
        "bool": t.is_boolean() or t.is_integer() or t.is_floating(),
    }[kind]


def cut_label(col: ir.StringValue, limit: int = MAX_LABEL) -> ir.StringValue:
    """A text column whose values longer than ``limit`` characters are cut to the first ``limit - 1`` and "…"."""
    return ibis.ifelse(col.length() > limit, col.substr(0, limit - 1) + "…", col)


def typed_table(raw: ir.Table, spec: TableSpec, *, backend: str | None = None) -> ir.Table:
    """The contract view of a raw table: contract columns first (typed, missing ones null), then extras.

    Label columns (``Column.label``) longer than :data:`revops_lib.schema.MAX_LABEL` characters are cut.
    """
    cols = {}
    for c in spec.columns:
        target = KIND_DTYPES[c.kind]
        if c.name in raw.columns:
            t = raw[c.name].type()
            cols[c.name] = coerce(raw[c.name], c.kind, backend=backend) if compatible(t, c.kind) else ibis.null(target)
            if c.label and compatible(t, c.kind):
                cols[c.name] = cut_label(cols[c.name])
        else:
            cols[c.name] = ibis.null(target)
    extras = [c for c in raw.columns if c not in cols]
    return raw.select(**{k: v.name(k) for k, v in cols.items()}, **{c: raw[c] for c in extras})


def _set_utc(con) -> None:
    name = getattr(con, "name", "")
    try:
        if name == "duckdb":
            con.raw_sql("SET TimeZone='UTC'")
        elif name == "postgres":
            con.raw_sql("SET TIME ZONE 'UTC'")
    except Exception:  # pragma: no cover - best effort for exotic backends
        pass


class Source:
    """Canonical tables of one data source, typed to the contract.

    Use :func:`open_source` to make one.
    """

    def __init__(self, con, raw: Mapping[str, ir.Table], *, description: str,
                 files: Mapping[str, list[Path]] | None = None, location: str | None = None,
                 privacy: str = "names"):
        self.con = con
        self._raw = dict(raw)
        self.description = description
        self.location = location
        self.files = dict(files or {})
        self._typed: dict[str, ir.Table] = {}
        self._duplicates: dict[str, dict[str, int]] = {}
        self.privacy = _check_privacy(privacy)
        #: What else the data depend on, hashed into :meth:`fingerprint` (a mapped source: its mapping files).
        self.salt = ""

    def with_privacy(self, privacy: str) -> "Source":
        """The same tables with another privacy setting (see :data:`PRIVACY_MODES`)."""
        if _check_privacy(privacy) == self.privacy:
            return self
        for name in self.names:
            self.raw(name)  # open deferred files once, so both views share them (and their header checks)
        other = Source(self.con, self._raw, description=self.description, files=self.files,
                       location=self.location, privacy=privacy)
        other._duplicates = self._duplicates
        other.salt = self.salt
        return other

    # -- constructors -------------------------------------------------
    @classmethod
    def from_frames(cls, frames: Mapping[str, Any], *, description: str = "pandas DataFrames") -> "Source":
        """A source made of pandas DataFrames (or Ibis tables) keyed by canonical table name."""
        unknown = sorted(set(frames) - set(TABLES))
        if unknown:
            raise SourceError(
                f"Unknown table name(s) {', '.join(f'`{u}`' for u in unknown)}; "
                f"canonical names are: {', '.join(TABLES)}."
            )
        con = ibis.duckdb.connect(**duckdb_config())
        _set_utc(con)
        raw = {}
        for name, df in frames.items():
            raw[name] = df if isinstance(df, ir.Table) else ibis.memtable(_naive_utc(df))
        return cls(con, raw, description=description)

    # -- access ----------------------------------------------------------
    @property
    def names(self) -> list[str]:
        """Canonical tables present, in contract order."""
        return [n for n in TABLES if n in self._raw]

    @property
    def absent(self) -> list[str]:
        return [n for n in TABLES if n not in self._raw]

    def has(self, name: str) -> bool:
        self._check_name(name)
        return name in self._raw

    def raw(self, name: str) -> ir.Table:
        """The table as stored (untyped)."""
        self._check_name(name)
        if name not in self._raw:
            raise SourceError(
                f"Table `{name}` is absent from {self.description}; "
                f"present: {', '.join(self.names) or 'none'}."
            )
        value = self._raw[name]
        if isinstance(value, _Deferred):  # a file is opened on first use (opening costs a schema read)
            deferred, value = value, value.load()
            self._raw[name] = value
            if deferred.duplicates:
                self._duplicates[name] = deferred.duplicates
        return value

    def duplicate_columns(self, name: str) -> dict[str, int]:
        """Columns whose name a CSV header repeats (as read, with the number of times named).

        Such a column holds nulls in :meth:`raw` and :meth:`table` (neither copy is trusted) and
        :func:`revops_lib.validation.validate` reports it (``duplicate_column``).
        """
        self.raw(name)
        return dict(self._duplicates.get(name, {}))

    def table(self, name: str) -> ir.Table:
        """The table typed to the contract (see the module docstring); masked when ``privacy`` is ``masked``."""
        if name not in self._typed:
            typed = typed_table(self.raw(name), TABLES[name], backend=getattr(self.con, "name", None))
            if self.privacy == "masked":
                typed = _masked(self, name, typed)
            self._typed[name] = typed
        return self._typed[name]

    def __getitem__(self, name: str) -> ir.Table:
        return self.table(name)

    def __contains__(self, name: str) -> bool:
        return name in self._raw

    def to_pandas(self, name: str):
        """The typed table as a pandas DataFrame."""
        return to_pandas(self.table(name))

    def fingerprint(self) -> str:
        """A short hash that changes when the source data change.

        Files: names, sizes and modification times. Databases: row counts and
        the latest value of each table's time column.
        """
        h = hashlib.sha256(self.salt.encode())
        if self.files:
            for name in sorted(self.files):
                for f in self.files[name]:
                    st = os.stat(f)
                    h.update(f"{name}|{f.name}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        else:
            for name in self.names:
                t = self.raw(name)
                spec = TABLES[name]
                aggs = [t.count().name("n")]
                if spec.time_column and spec.time_column in t.columns:
                    aggs.append(t[spec.time_column].cast(dt.string).max().name("latest"))
                row = self.con.execute(t.aggregate(aggs)).iloc[0].tolist()
                h.update(f"{name}|{row}\n".encode())
        return h.hexdigest()[:16]

    def _check_name(self, name: str) -> None:
        if name not in TABLES:
            raise SourceError(f"Unknown table `{name}`; canonical names are: {', '.join(TABLES)}.")

    def __repr__(self) -> str:
        return f"<Source {self.description}: {len(self.names)} tables; absent: {', '.join(self.absent) or 'none'}>"


#: ``names``: owners and teams shown as they are (sales leaders need them); ``masked``: owners and
#: teams as stable pseudonyms (``Rep 3f9a1c``, ``Team 8b2e04``), every id hashed (``id-5d41402abc``),
#: columns outside the contract left out. E-mail addresses are never shown in HTML in either mode.
PRIVACY_MODES = ("names", "masked")

#: Pseudonyms are an MD5 of this salt and the value: set ``REVOPS_PRIVACY_SALT`` to a secret of your
#: own so that nobody can recompute them from a list of names.
PRIVACY_SALT_ENV = "REVOPS_PRIVACY_SALT"


def _check_privacy(privacy: str) -> str:
    if privacy not in PRIVACY_MODES:
        from revops_lib.errors import ParameterError

        raise ParameterError(f"`privacy` must be one of {', '.join(PRIVACY_MODES)}, not {privacy!r}.")
    return privacy


@ibis.udf.scalar.builtin(name="md5")
def _md5(x: str) -> str:  # hex MD5 of text: DuckDB, PostgreSQL and Spark all have it
    ...


def pseudonym(col: ir.StringValue, prefix: str, length: int = 6) -> ir.StringValue:
    """A stable pseudonym of each value: ``prefix`` and the first ``length`` hex digits of a salted MD5
    (null stays null). The same value gets the same pseudonym in every table, so joins still match."""
    salt = os.environ.get(PRIVACY_SALT_ENV, "revops-kit")
    return ibis.literal(prefix) + _md5(ibis.literal(f"{salt}|") + col).substr(0, length)


def pseudonym_text(value: str, prefix: str, length: int = 6) -> str:
    """:func:`pseudonym` of one Python value (same result as in the engine)."""
    salt = os.environ.get(PRIVACY_SALT_ENV, "revops-kit")
    return prefix + hashlib.md5(f"{salt}|{value}".encode()).hexdigest()[:length]


#: Which columns ``privacy: masked`` replaces, by kind.
MASKED_OWNER_COLUMNS = ("owner",)
MASKED_TEAM_COLUMNS = ("team",)


def _masked(src: "Source", name: str, t: ir.Table) -> ir.Table:
    spec = TABLES[name]
    contract = set(spec.names)
    cols = {}
    for c in t.columns:
        if c not in contract:
            continue  # extras may hold anything (e-mails, names): left out
        col = t[c]
        if c.endswith("_id"):
            col = pseudonym(col.cast(dt.string), "id-", 10)
        elif c in MASKED_OWNER_COLUMNS:
            col = pseudonym(col, "Rep ")
        elif c in MASKED_TEAM_COLUMNS:
            col = pseudonym(col, "Team ")
        elif name == "forecast_snapshots" and c == "scope":
            # a scope is `company`, a team, else an owner (as in revops_lib.metrics.pipeline)
            if src.has("opportunities") and "team" in src.raw("opportunities").columns:
                teams = typed_table(src.raw("opportunities"), TABLES["opportunities"]).team
                col = ibis.cases((col == "company", col), (col.isin(teams), pseudonym(col, "Team ")),
                                 else_=pseudonym(col, "Rep "))
            else:
                col = ibis.ifelse(col == "company", col, pseudonym(col, "Rep "))
        cols[c] = col.name(c)
    return t.select(**cols)


def _naive_utc(df):
    """Copy of a DataFrame whose tz-aware datetime columns are converted to naive UTC."""
    import pandas as pd

    out = None
    for c in df.columns:
        s = df[c]
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            if out is None:
                out = df.copy()
            out[c] = s.dt.tz_convert("UTC").dt.tz_localize(None)
    return df if out is None else out


class _Deferred:
    """A table of a folder source, read when first used: opening all thirteen files up front costs
    about 50 ms of schema reads, and most reports use a few tables."""

    def __init__(self, name: str, path: Path, read):
        self.name, self.path, self.read = name, path, read
        self.duplicates: dict[str, int] = {}  # columns a CSV header names more than once

    def load(self) -> ir.Table:
        try:
            table = self.read()
        except Exception as exc:  # unreadable file: say which
            raise SourceError(f"Cannot read table `{self.name}` from `{self.path}`: {exc}") from exc
        if isinstance(table, tuple):  # a CSV file: (table, duplicated columns)
            table, self.duplicates = table
        return table


def _csv_header(path: Path, n_columns: int) -> list[str] | None:
    """The names of a CSV file's header row (its first record), read with :mod:`csv`.

    DuckDB sniffs the delimiter; the first of ``, ; tab |`` that splits the header into
    ``n_columns`` names (DuckDB's count) is taken. None when none does.
    """
    import csv

    with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
        first = f.readline()
        while first.count('"') % 2 and (more := f.readline()):  # a quoted name with a line break
            first += more
    for delimiter in (",", ";", "\t", "|"):
        names = next(csv.reader([first], delimiter=delimiter), [])
        if len(names) == n_columns:
            return names
    return None


def _read_csv(con, name: str, path: Path):
    """``(table, duplicates)``: a CSV file as text columns, and the columns its header names more than once.

    DuckDB renames a repeated header name (``source``, ``source_1``, case-insensitively).
    Neither copy can be trusted to be the intended one, so the renamed copies are dropped
    and the column holds nulls; ``duplicates`` maps its name (as read) to the times it is named.
    """
    if getattr(con, "name", "") == "pyspark":
        from revops_lib.spark import read_csv

        return read_csv(con, name, path)
    t = con.read_csv(str(path), table_name=name, all_varchar=True, header=True)
    header = _csv_header(path, len(t.columns))
    if header is None:
        return t, {}
    groups = repeated_names(header)
    if not groups:
        return t, {}
    duplicates = {t.columns[p[0]]: len(p) for p in groups}
    t = t.drop(*[t.columns[i] for p in groups for i in p[1:]])
    return t.mutate(**{c: ibis.null(dt.string) for c in duplicates}), duplicates


def _probe(path: Path) -> str:
    """What is at a path: ``missing``, ``file``, ``dir``, ``broken`` (a dangling link), ``loop`` or ``other``."""
    import errno
    import stat

    try:
        st = os.stat(path)
    except FileNotFoundError:
        try:
            os.lstat(path)
        except FileNotFoundError:
            return "missing"
        return "broken"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "loop"
        raise SourceError(f"Table file `{path}` cannot be inspected: {exc}") from exc
    if stat.S_ISREG(st.st_mode):
        return "file"
    if stat.S_ISDIR(st.st_mode):
        return "dir"
    return "other"


def _parquet_parts(folder: Path) -> list[Path]:
    """The Parquet files of a table folder, Spark- or Hive-style: ``*.parquet`` at any depth (partition
    folders such as ``year=2026/``), without hidden or bookkeeping entries (a name starting with ``.``
    or ``_``: ``_SUCCESS``, ``_committed_*``, ``.part-0.parquet.crc``, ``_temporary/``)."""
    parts = []
    for root, dirs, files in os.walk(folder):  # linked folders are not followed (no loops, no part read twice)
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
        parts += [Path(root) / f for f in sorted(files) if f.endswith(".parquet") and not f.startswith((".", "_"))]
    return parts


_WHAT = {"broken": "a broken link", "loop": "a symlink loop", "other": "not a regular file"}


def _table_location(path: Path, name: str):
    """``(kind, file or folder, parts)`` of a table in a folder source, or None when it is absent.

    ``kind`` is ``parquet`` or ``csv``. Raises :class:`SourceError` for a path that cannot be a table
    (a broken link, a symlink loop, a folder without Parquet parts) and for two layouts of one table.
    """
    pq, csv, folder = path / f"{name}.parquet", path / f"{name}.csv", path / name
    found = []  # (kind, path, parts)
    kind = _probe(csv)
    if kind == "file":
        found.append(("csv", csv, [csv]))
    elif kind == "dir":
        raise SourceError(f"Table file `{csv}` is a directory, not a CSV file.")
    elif kind != "missing":
        raise SourceError(f"Table file `{csv}` is {_WHAT[kind]}.")
    kind = _probe(pq)
    if kind == "file":
        found.append(("parquet", pq, [pq]))
    elif kind == "dir":
        parts = _parquet_parts(pq)
        if not parts:
            raise SourceError(f"Table file `{pq}` is a directory without Parquet parts.")
        found.append(("parquet", pq, parts))
    elif kind != "missing":
        raise SourceError(f"Table file `{pq}` is {_WHAT[kind]}.")
    kind = _probe(folder)
    if kind == "dir":
        parts = _parquet_parts(folder)
        if parts:
            found.append(("parquet", folder, parts))
        elif not found:
            raise SourceError(f"Table folder `{folder}` is a directory without Parquet parts.")
    elif kind in ("broken", "loop"):
        raise SourceError(f"Table folder `{folder}` is {_WHAT[kind]}.")
    if len(found) > 1:
        both = " and ".join(f"`{p.name}{'/' if p.is_dir() else ''}`" for _, p, _ in found)
        raise SourceError(f"Table `{name}` has both {both} in `{path}`; keep one.")
    return found[0] if found else None


def _folder_source(path: Path) -> Source:
    con = ibis.duckdb.connect(**duckdb_config())
    _set_utc(con)
    raw, files = {}, {}
    for name in TABLES:
        where = _table_location(path, name)
        if where is None:
            continue
        kind, location, parts = where
        if kind == "csv":
            read = functools.partial(_read_csv, con, name, location)
        else:
            # partition folders (`year=2026/`) give columns; a flat folder or file is read as it is
            hive = any("=" in p.name for f in parts for p in f.relative_to(path).parents)
            files_arg = str(parts[0]) if location == parts[0] else [str(p) for p in parts]
            read = functools.partial(con.read_parquet, files_arg, table_name=name, hive_partitioning=hive)
        files[name] = parts
        raw[name] = _Deferred(name, location, read)
    if not raw:
        raise SourceError(
            f"No canonical tables in folder `{path}`: expected files like leads.parquet or leads.csv "
            f"(tables: {', '.join(TABLES)}). Run `revops demo-data --out {path}` for demo data."
        )
    return Source(con, raw, description=f"folder {path}", files=files, location=str(path))


def _backend_source(con, description: str, location: str | None = None,
                    files: Mapping[str, list[Path]] | None = None, database: str | None = None) -> Source:
    """The canonical tables of a database connection (``database``: of that database, not the current one:
    a Spark session is shared by every source a process opens, so none changes its current database)."""
    if getattr(con, "name", "") == "pyspark":
        from revops_lib.spark import kit_backend

        kit_backend(con)
    _set_utc(con)
    try:
        present = set(con.list_tables(database=database) if database else con.list_tables())
    except Exception as exc:
        if database is None:
            raise
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise SourceError(f"Database `{database}` of {description} cannot be read: {first}") from None
    raw = {name: con.table(name, database=database) if database else con.table(name)
           for name in TABLES if name in present}
    return Source(con, raw, description=description, files=files, location=location)


#: Schemes of lakehouse paths that Spark reads (a local folder needs none).
LAKEHOUSE_SCHEMES = ("file", "s3", "s3a", "s3n", "gs", "hdfs", "abfs", "abfss", "wasb", "wasbs", "dbfs", "oss")


def _spark_folder_source(location: str, con) -> Source:
    """A folder (or a lakehouse path) of Parquet / CSV tables, read by Spark (``engine="spark"``).

    A local folder follows the layouts and rules of the DuckDB folder source (:func:`_table_location`);
    Spark reads each table's file or folder itself (partition folders give columns; ``_`` and ``.``
    entries are skipped). A lakehouse path is asked for ``<name>``, ``<name>.parquet`` and ``<name>.csv``.
    """
    scheme = location.split("://", 1)[0].lower() if "://" in location else ""
    if scheme and scheme not in LAKEHOUSE_SCHEMES:
        raise SourceError(f"`{redact(location)}` is not a folder or lakehouse path Spark can read "
                          f"(schemes: {', '.join(LAKEHOUSE_SCHEMES)}).")
    raw, files = {}, {}
    # Spark's temporary views belong to the session, which a kernel keeps for every source it opens:
    # each source's views get their own names, so that two sources never read each other's files
    tag = os.urandom(5).hex()
    if not scheme or scheme == "file":
        path = Path(location.split("://", 1)[1] if scheme else location).expanduser()
        if not path.is_dir():
            raise SourceError(f"Source `{location}` not found: `--engine spark` reads a folder of Parquet/CSV files "
                              f"or a lakehouse path (s3a://…).")
        path = path.resolve()
        for name in TABLES:
            where = _table_location(path, name)
            if where is None:
                continue
            kind, loc, parts = where
            read = (functools.partial(_read_csv, con, f"{name}_{tag}", loc) if kind == "csv" else
                    functools.partial(con.read_parquet, str(loc), table_name=f"{name}_{tag}"))
            files[name] = parts
            raw[name] = _Deferred(name, loc, read)
        where = str(path)
    else:
        base = location.rstrip("/")
        for name in TABLES:
            for kind, loc in (("parquet", f"{base}/{name}"), ("parquet", f"{base}/{name}.parquet"),
                              ("csv", f"{base}/{name}.csv")):
                try:
                    table = (_read_csv(con, f"{name}_{tag}", loc) if kind == "csv"
                             else con.read_parquet(loc, table_name=f"{name}_{tag}"))
                except Exception:  # not there (Spark: PATH_NOT_FOUND)
                    continue
                raw[name] = table[0] if isinstance(table, tuple) else table
                break
        where = base
    if not raw:
        raise SourceError(f"No canonical tables in `{redact(location)}`: expected files like leads.parquet or "
                          f"leads.csv, or folders like leads/part-0.parquet (tables: {', '.join(TABLES)}).")
    return Source(con, raw, description=f"folder {redact(where)} (Spark)", files=files, location=where)


def open_source(source: Any = None, *, privacy: str | None = None, engine: str | None = None, spark: Any = None,
                settings: Any = None) -> Source:
    """Open a data source (see the module docstring).

    Parameters
    ----------
    source : str, Path, Source, Ibis backend, SparkSession or dict of DataFrames
        Folder, ``.duckdb`` file, Ibis URL or Spark Connect URL (``sc://host:15002[/database]``). ``None``
        means ``$REVOPS_SOURCE`` when set, else ``data/demo``.
        A URL without a password gets one from ``$REVOPS_SOURCE`` when that names the same source
        (:func:`with_credentials`), or from the driver's own places (``PGPASSWORD``, ``~/.pgpass``).
    privacy : {"names", "masked"}, optional
        ``masked`` shows owners and teams as pseudonyms and hashes ids (:data:`PRIVACY_MODES`).
    engine : {"duckdb", "spark"}, optional
        What reads a folder source (default: ``$REVOPS_ENGINE`` when set, else DuckDB). With ``spark``
        the source may also be a lakehouse path (``s3a://bucket/lake``, ``hdfs://…``).
    spark : SparkSession or str, optional
        The Spark session of ``engine="spark"``, or its Spark Connect URL (default: ``$SPARK_REMOTE``,
        else a local session); see :func:`revops_lib.spark.session`.
    settings : revops_lib.spark.SparkSettings, optional
        Spark session settings (shuffle partitions, driver memory); the time zone is always UTC.

    Returns
    -------
    Source

    Raises
    ------
    SourceError
        When the folder or file does not exist or cannot be read.
    """
    if privacy is not None:
        return open_source(source, engine=engine, spark=spark, settings=settings).with_privacy(privacy)
    if isinstance(source, Source):
        return source
    if source is None:
        source = os.environ.get(SOURCE_ENV) or "data/demo"
    if isinstance(source, Mapping):
        return Source.from_frames(source)
    if hasattr(source, "list_tables") and hasattr(source, "table"):
        return _backend_source(source, f"{getattr(source, 'name', 'ibis')} connection")
    from revops_lib import spark as sp

    if sp.is_spark_session(source):
        return _backend_source(sp.connect(source, settings), "Spark session")
    engine = engine or os.environ.get(sp.ENGINE_ENV) or "duckdb"
    if engine not in sp.ENGINES:
        from revops_lib.errors import ParameterError

        raise ParameterError(f"`engine` must be one of {', '.join(sp.ENGINES)}, not {engine!r}.")
    text = str(source)
    if sp.is_spark_url(text):
        url, database = sp.split_url(with_credentials(text))
        con = sp.connect(url, settings)
        return _backend_source(con, f"Spark {redact(text)}", location=public_url(text), database=database)
    if engine == "spark":
        return _spark_folder_source(text, sp.connect(spark, settings))
    db = connect(source)
    if db is not None:
        con, description, location, files = db
        return _backend_source(con, description, location=location, files=files)
    path = Path(str(source)).expanduser()
    if path.is_dir():
        return _folder_source(path)
    text = str(source)
    raise SourceError(
        f"Source `{text}` not found: give a folder of Parquet/CSV files, a .duckdb file or an Ibis URL "
        f"(e.g. postgres://user@localhost/db). For demo data run `revops demo-data --out {text}`."
    )


def connect(source: Any):
    """``(con, description, location, files)`` of a database source — an Ibis URL, a ``.duckdb`` file or an
    Ibis backend — or None for anything else (a folder). What :func:`open_source` and the importers' mapped
    sources (:func:`revops_lib.importers.open_source`) connect with.

    A URL gets its password as :func:`with_credentials` says; a DuckDB database is opened read-only and never
    created. ``description`` is fit to show (credentials redacted), ``location`` fit to write.

    Raises
    ------
    SourceError
        When the database cannot be opened (the message never holds a password).
    """
    if hasattr(source, "list_tables") and hasattr(source, "table"):
        return source, f"{getattr(source, 'name', 'ibis')} connection", None, {}
    text = str(source)
    if text.lower().startswith("pyspark://"):  # Ibis's URL: a new in-process session with an empty catalog
        raise SourceError(f"`{redact(text)}` would open an empty Spark catalog: give a Spark Connect URL "
                          "(sc://host:15002/database), or a folder with engine=\"spark\" (`--engine spark`).")
    if "://" in text:
        full = with_credentials(text)
        kwargs = {}
        db = _duckdb_file(text)
        if db is not None:  # read, never created or written (ibis.connect makes a missing file)
            if not db.is_file():
                raise SourceError(f"DuckDB database `{db}` of source `{redact(text)}` not found: give an existing "
                                  f".duckdb file (nothing was created).")
            kwargs.update(read_only=True, **duckdb_config())
        try:
            con = ibis.connect(full, **kwargs)
        except Exception as exc:
            message = str(exc)
            for secret in {full, text}:
                message = message.replace(secret, redact(secret))
            raise SourceError(f"Cannot connect to `{redact(text)}`: {message}") from None
        return con, redact(text), public_url(text), {}
    path = Path(text).expanduser()
    if path.is_file() and path.suffix in {".duckdb", ".ddb", ".db"}:
        try:
            con = ibis.duckdb.connect(str(path), read_only=True, **duckdb_config())
        except Exception as exc:  # not a DuckDB database (another engine's file, a truncated copy …)
            raise SourceError(f"Cannot open DuckDB file `{path}`: {exc}") from None
        return con, f"DuckDB file {path}", str(path), {"*": [path]}
    return None


def _duckdb_file(url: str) -> Path | None:
    """The database file a ``duckdb://`` URL names, as Ibis reads it (None for another scheme, an
    in-memory or a MotherDuck database)."""
    parts = _split_url(url)
    if parts is None or parts.scheme.lower() != "duckdb":
        return None
    path = parts.netloc + parts.path
    if not path or path == ":memory:" or path.startswith(("md:", "motherduck:")):
        return None
    return Path(path).expanduser()


#: Query parameters of a source URL that carry a secret (matched case-insensitively, as substrings).
SECRET_QUERY_KEYS = ("pass", "pwd", "secret", "token", "key", "auth", "credential", "signature")

#: The environment variable that can hold the full source URL, credentials included.
SOURCE_ENV = "REVOPS_SOURCE"


def _is_secret_key(key: str) -> bool:
    k = key.lower()
    return any(word in k for word in SECRET_QUERY_KEYS)


def _split_url(url: str):
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        _ = parts.port  # raises on a malformed port
    except ValueError:
        return None
    return parts


def _has_secret(parts) -> bool:
    from urllib.parse import parse_qsl

    userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
    return (":" in userinfo or any(_is_secret_key(k) for k, _ in parse_qsl(parts.query, keep_blank_values=True))
            or any(_is_secret_key(k) for k, _ in _path_params(parts.path)))


def _path_params(path: str) -> list[tuple[str, str]]:
    """The ``;key=value`` parameters of a URL path (Spark Connect: ``sc://host:15002/;token=…``)."""
    _, semi, params = path.partition(";")
    return [(k, v) for k, _, v in (p.partition("=") for p in params.split(";") if p)] if semi else []


def _rebuild(parts, *, password: str | None, secret_value: str | None) -> str:
    from urllib.parse import parse_qsl, urlencode

    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostinfo = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        has_password = ":" in userinfo
        netloc = f"{user}{':' + password if has_password and password is not None else ''}@{hostinfo}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        kept = [(k, secret_value if _is_secret_key(k) else v) for k, v in pairs
                if secret_value is not None or not _is_secret_key(k)]
        query = urlencode(kept, safe="*/:")
    path = parts.path
    if _path_params(path):
        head = path.partition(";")[0]
        kept = [f"{k}={secret_value if _is_secret_key(k) else v}" for k, v in _path_params(path)
                if secret_value is not None or not _is_secret_key(k)]
        path = head + (";" + ";".join(kept) if kept else "")
    return (f"{parts.scheme}://{netloc}{path}" + (f"?{query}" if query else "")
            + (f"#{parts.fragment}" if parts.fragment else ""))


def redact(url: str) -> str:
    """A source URL fit to show: the password and secret query values replaced by ``***``.

    The URL is parsed (a password may hold ``@`` or ``:``); text that is not a URL is returned as
    it is, and an unparsable URL is cut to its scheme.

    >>> redact("postgres://ana:p@ss:w@db.local:5432/crm?sslmode=require&password=x")
    'postgres://ana:***@db.local:5432/crm?sslmode=require&password=***'
    """
    text = str(url)
    if "://" not in text:
        return text
    parts = _split_url(text)
    if parts is None:
        return text.split("://", 1)[0] + "://***"
    if not _has_secret(parts):
        return text
    return _rebuild(parts, password="***", secret_value="***")


_redact = redact  # the earlier private name


def public_url(url: str) -> str:
    """A source URL without its password and secret query parameters: what may be written to a file.

    >>> public_url("postgres://ana:secret@db.local/crm?password=x&sslmode=require")
    'postgres://ana@db.local/crm?sslmode=require'
    """
    text = str(url)
    if "://" not in text:
        return text
    parts = _split_url(text)
    if parts is None:
        return text.split("://", 1)[0] + "://"
    if not _has_secret(parts):
        return text
    return _rebuild(parts, password=None, secret_value=None)


def has_credentials(url: str) -> bool:
    """Whether a source URL carries a password or a secret query parameter."""
    return "://" in str(url) and public_url(url) != str(url)


def with_credentials(url: str) -> str:
    """The URL to connect with: ``url`` itself, or the full URL of :data:`SOURCE_ENV` when that names the
    same source with credentials (how the report runner hands a password to its kernels without
    writing it into a notebook). Other credentials come from the driver's own places, e.g.
    ``PGPASSWORD`` or ``~/.pgpass`` for PostgreSQL."""
    text = str(url)
    env = os.environ.get(SOURCE_ENV, "")
    if env and "://" in env and not has_credentials(text) and public_url(env) == public_url(text):
        return env
    return text


def as_table(data: Any, name: str | None = None) -> ir.Table:
    """An Ibis table from an Ibis table or a pandas DataFrame (typed to the contract when `name` is given)."""
    t = data if isinstance(data, ir.Table) else ibis.memtable(_naive_utc(data))
    if name is not None:
        t = typed_table(t, TABLES[name])
    return t


def date_windows(los, his) -> ir.Table:
    """A small table of date windows to range-join on: ``w`` (0, 1, … in the order given) and the
    dates ``w_lo`` (inclusive) and ``w_hi`` (exclusive)."""
    import pandas as pd

    cal = ibis.memtable(pd.DataFrame({"w": pd.Series(range(len(los)), dtype="int64"),
                                      "w_lo": pd.to_datetime(list(los)), "w_hi": pd.to_datetime(list(his))}))
    return cal.mutate(w_lo=cal.w_lo.date(), w_hi=cal.w_hi.date())


def to_pandas(expr: ir.Expr):
    """Execute an Ibis expression and return pandas (the backend of the expression, DuckDB for memtables).

    Times come out at one resolution on every engine: microseconds (Spark hands pandas nanoseconds)."""
    out = expr.to_pandas()  # expressions over memtables only run on Ibis's default backend (DuckDB)
    return micro_times(out)


def micro_times(df):
    """A frame (or series) whose naive datetime columns of another resolution are made microseconds (in place
    of a copy only when one is); other columns unchanged."""
    import pandas as pd

    if isinstance(df, pd.Series):
        return df.astype("datetime64[us]") if _finer_than_us(df.dtype) else df
    if not isinstance(df, pd.DataFrame):
        return df
    cols = [c for c in df.columns if _finer_than_us(df[c].dtype)]
    if not cols:
        return df
    df = df.copy()
    for c in cols:
        df[c] = df[c].astype("datetime64[us]")
    return df


def _finer_than_us(dtype) -> bool:
    import numpy as np

    return isinstance(dtype, np.dtype) and dtype.kind == "M" and np.datetime_data(dtype)[0] == "ns"
