"""`revops import`: a folder of exported CSV files in, a Parquet folder of contract tables out.

Inputs are only read. The output is written under a temporary sibling name and moved into place; an
existing output folder is replaced only when an earlier import made it (its ``.revops-import`` marker).
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import ibis

from revops_lib.errors import SourceError
from revops_lib.importers.engine import Mapped, Unmapped, apply_mapping
from revops_lib.importers.mapping import Mapping, load_mapping
from revops_lib.outdirs import check_import_folder, write_import_marker
from revops_lib.outdirs import move_into_place as _move_into_place
from revops_lib.schema import TABLES
from revops_lib.sources import _set_utc, duckdb_config, public_url

__all__ = ["read_folder", "import_folder", "ImportResult", "open_mapped"]


def read_folder(folder, con=None) -> tuple[object, dict]:
    """``(con, {object name: table})``: every ``*.csv`` (as text) and ``*.parquet`` file of a folder.

    The object name is the file name without its extension (``Opportunity.csv`` → ``Opportunity``); a
    mapping matches it case-insensitively. Two files of one name (any case or extension) are an error.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise SourceError(f"Input folder `{folder}` not found: give the folder holding the exported CSV files.")
    con = con or ibis.duckdb.connect(**duckdb_config())
    _set_utc(con)
    tables, seen = {}, {}
    for f in sorted(folder.iterdir()):
        if f.name.startswith((".", "_")) or not f.is_file() or f.suffix.lower() not in (".csv", ".parquet"):
            continue
        key = f.stem.lower()
        if key in seen:
            raise SourceError(f"Input folder `{folder}` has both `{seen[key]}` and `{f.name}`: keep one.")
        seen[key] = f.name
        name = f"in_{uuid.uuid4().hex[:8]}_{len(seen)}"  # unique: several folders may share one connection
        try:
            if f.suffix.lower() == ".csv":
                tables[f.stem] = con.read_csv(str(f), table_name=name, all_varchar=True, header=True)
            else:
                tables[f.stem] = con.read_parquet(str(f), table_name=name)
        except Exception as exc:
            raise SourceError(f"Cannot read `{f}`: {exc}") from exc
    if not tables:
        raise SourceError(f"Input folder `{folder}` holds no .csv or .parquet file.")
    return con, tables


def open_mapped(folder, *, preset: str | None = None, mapping=None) -> Mapped:
    """A mapping applied on the fly over a folder of exports (nothing written)."""
    m = load_mapping(preset, mapping)
    con, tables = read_folder(folder)
    return apply_mapping(m, tables, con=con, description=f"{m.name} import of folder {folder}")


@dataclass
class ImportResult:
    mapping: Mapping
    out: Path
    rows: dict[str, int]  # table -> rows written
    mapped: dict[str, str]  # table -> object
    skipped: dict[str, str]
    missing: list[tuple[str, str, str]]
    unmapped: list[Unmapped]
    objects: dict[str, int]  # input objects -> rows
    unused: list[str]  # input objects the mapping does not read

    def feeds(self) -> dict[str, list[str]]:
        """Report → the imported tables it uses (from :data:`revops_lib.schema.TABLES` ``used_by``)."""
        out: dict[str, list[str]] = {}
        for name in self.rows:
            for report in TABLES[name].used_by:
                out.setdefault(report, []).append(name)
        return dict(sorted(out.items()))

    def format(self) -> str:
        lines = [f"Mapping: {self.mapping.where}"]
        lines.append("Mapped:")
        w = max((len(t) for t in self.rows), default=0)
        for t, n in self.rows.items():
            lines.append(f"  {t:<{w}}  ← {self.mapped[t]:<22} {n:>10,} rows")
        if self.skipped:
            lines.append("Not mapped:")
            for t, why in self.skipped.items():
                lines.append(f"  {t}: {why}")
        if self.missing:
            lines.append("Columns missing from the input (left empty):")
            for t, c, what in self.missing:
                lines.append(f"  {t}.{c} ← {what}")
        if self.unmapped:
            lines.append("Values no map knows (kept as they are in text columns, empty in flags; add them to the "
                         "mapping's `values:`):")
            for u in self.unmapped:
                lines.append(f"  {u.table}.{u.column} ← {u.source} = {u.value!r}: {u.rows:,} row{'s' * (u.rows != 1)}")
        if self.unused:
            lines.append(f"Input files not used by the mapping: {', '.join(self.unused)}")
        feeds = self.feeds()
        if feeds:
            lines.append("Reports these tables can feed (each report also says which of its parts need other tables):")
            for report, tables in feeds.items():
                lines.append(f"  {report}: {', '.join(tables)}")
        lines.append(f"Written: {self.out}")
        return "\n".join(lines)


def _is_database(src) -> bool:
    text = str(src)
    return "://" in text or (Path(text).expanduser().is_file() and Path(text).suffix in {".duckdb", ".ddb", ".db"})


def import_folder(src, out, *, preset: str | None = None, mapping=None, progress=None, mapped=None) -> ImportResult:
    """Map the exports in folder ``src`` (or the tables a connector landed in a database: an Ibis URL such as
    ``postgres://user@host/db`` or a ``.duckdb`` file, read from the schema the mapping names) to the
    contract and write them as Parquet files into ``out``.

    Raises
    ------
    MappingError, SourceError, OutputError
        Before anything is written (a bad mapping, an unreadable input, an output folder the kit may not replace).
    """
    m = load_mapping(preset, mapping)
    if _is_database(src):  # a warehouse: the landed tables read through the mapping (schema: of the preset)
        if mapped is None:
            raise SourceError(f"`{src}` is a database: import it with revops_lib.importers.import_folder "
                              "(which reads it through the preset's schema).")
        target = check_import_folder(out, inputs=None if "://" in str(src) else src)
        result = mapped
        tables = {}
    else:
        target = check_import_folder(out, inputs=src)
        con, tables = read_folder(src)
        result = apply_mapping(m, tables, con=con, description=f"{m.name} import of folder {src}")
    if not result.mapped:
        raise SourceError(f"Nothing to import from `{src}` with mapping {m.where}: "
                          + "; ".join(f"{t}: {why}" for t, why in result.skipped.items())
                          + f". Files found: {', '.join(sorted(tables))}.")
    unmapped = result.unmapped()
    tmp = target.parent / f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.partial"
    rows = {}
    target.parent.mkdir(parents=True, exist_ok=True)  # `--out data/crm` on a fresh checkout: data/ may not exist
    try:
        tmp.mkdir(parents=False)
        import pyarrow.parquet as pq

        for name in result.source.names:
            # the mapped columns only, typed: an optional column the mapping does not make stays absent (an
            # all-null `segment` would make the reports show a "by segment" part of nothing but "unknown")
            made = result.source.raw(name).columns
            t = result.source.table(name)
            t = t.select(*[c for c in TABLES[name].names if c in made])
            data = t.to_pyarrow()
            pq.write_table(data, tmp / f"{name}.parquet")
            rows[name] = data.num_rows
            if progress:
                progress(f"  {name}: {data.num_rows:,} rows")
        write_import_marker(tmp, mapping=m.where, source=public_url(str(src)) if "://" in str(src) else str(src),
                            tables=rows)
        check_import_folder(out, inputs=None if "://" in str(src) else src)  # again: something may have landed
        _move_into_place(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    used = {o.lower() for o in m.objects()}
    objects = {k: int(v.count().to_pyarrow().as_py()) for k, v in tables.items()}
    return ImportResult(m, target, rows, result.mapped, result.skipped, result.missing, unmapped, objects,
                        sorted(k for k in tables if k.lower() not in used))
