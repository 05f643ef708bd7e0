"""Mapped sources: a warehouse (or a folder of exports) read through presets at query time — no copy.

``revops report --source postgres://… --preset fivetran_salesforce,fivetran_stripe`` and
``open_source(url, preset="fivetran_salesforce")`` read the tables a connector landed (Fivetran: schemas
``salesforce``, ``hubspot``, ``stripe``; on a Spark Connect server ``sc://host:15002``, the databases of those
names) and hand out the contract tables as lazy Ibis expressions over them: every query of a report runs in the
warehouse, and nothing is written anywhere.

- A *preset list* is one name or file, or several separated by commas. Each item is a shipped preset
  (:func:`~revops_lib.importers.preset_names`) or a mapping YAML file (a path ending in ``.yaml``/``.yml``,
  usually one that ``extends:`` a preset and changes its ``schema:``, stages or fields).
- Several mappings combine when they feed different contract tables (a CRM and a billing preset). Two that
  map the same table are a :class:`~revops_lib.importers.MappingError` naming both and the table.
- Where the inputs are read: for a database (a URL, a ``.duckdb`` file, an Ibis backend) the tables of the
  mapping's ``schema:`` (the default schema when it names none); for a folder, its sub-folder named like the
  schema when there is one, else the folder itself (``revops report --source exports/sfdc --preset salesforce``).
- Credentials are handled as :func:`revops_lib.sources.connect` does: descriptions are redacted, and the
  kernels of a report run get the password from their environment, never from a parameter.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ibis

from revops_lib.errors import SourceError
from revops_lib.importers import run as _run
from revops_lib.importers.engine import Mapped, apply_mapping
from revops_lib.importers.mapping import PRESET_DIR, Mapping, MappingError, load_mapping, preset_names
from revops_lib.importers.run import read_folder
from revops_lib.sources import (
    SOURCE_ENV,
    Source,
    _set_utc,
    connect,
    duckdb_config,
    public_url,
    redact,
    with_credentials,
)
from revops_lib.sources import open_source as _open_plain

__all__ = ["open_source", "open_mapped_source", "MappedSource", "load_mappings", "preset_items",
           "is_mapping_file"]

MAPPING_SUFFIXES = (".yaml", ".yml")


def preset_items(preset) -> list[str]:
    """The items of a preset list: ``"a, b"`` or ``["a", "b"]`` → ``["a", "b"]`` (empty items dropped)."""
    if preset is None:
        return []
    if isinstance(preset, (list, tuple)):
        parts = [str(p) for p in preset]
    elif isinstance(preset, str):
        parts = preset.split(",")
    else:
        raise MappingError(f"`preset` must be text such as fivetran_salesforce or fivetran_salesforce,fivetran_stripe "
                           f"(or a list of names), not {type(preset).__name__}.")
    return [p.strip() for p in parts if p.strip()]


def is_mapping_file(item: str) -> bool:
    """Whether a preset-list item names a mapping file (``….yaml`` / ``….yml``) rather than a shipped preset."""
    return str(item).lower().endswith(MAPPING_SUFFIXES)


def load_mappings(preset=None, mapping=None) -> list[Mapping]:
    """The checked mappings of a preset list (and an optional mapping file extending its one preset).

    Raises
    ------
    MappingError
        For an unknown preset, a bad mapping file (naming the file, the key and the allowed values), or two
        mappings that feed the same contract table (naming both and the table).
    """
    items = preset_items(preset)
    if mapping is not None:
        if len(items) > 1 or any(is_mapping_file(i) for i in items):
            raise MappingError(f"`mapping` extends one preset; with several ({', '.join(items)}) list your file among "
                               f"them instead (e.g. `--preset my_salesforce.yaml,fivetran_stripe`).")
        found = [load_mapping(items[0] if items else None, mapping)]
    else:
        if not items:
            raise MappingError(f"Give a preset ({', '.join(preset_names())}) or a mapping file (….yaml).")
        found = [load_mapping(mapping=i) if is_mapping_file(i) else load_mapping(i) for i in items]
    for i, a in enumerate(found):
        for b in found[i + 1:]:
            both = [t for t in a.tables if t in b.tables]
            if both:
                raise MappingError(
                    f"Presets `{a.where}` and `{b.where}` both map table `{both[0]}`"
                    + (f" (and {', '.join(f'`{t}`' for t in both[1:])})" if len(both) > 1 else "")
                    + ": combine presets that feed different tables (a CRM and a billing preset), or drop the "
                    f"table from one with a mapping file (`extends: {b.name}` and `tables: {{{both[0]}: null}}`).")
    return found


@dataclass
class MappedSource:
    """A source read through mappings: the contract tables (:attr:`source`) and how each was made."""

    source: Source
    parts: list[Mapped]
    where: list[str]  # per part: where its inputs were read (a schema of a database, a folder)

    @property
    def mappings(self) -> list[Mapping]:
        return [p.mapping for p in self.parts]

    def format(self, *, unmapped: bool = True) -> str:
        """What was mapped from where, what could not be, and (``unmapped``: one query per mapped column) the
        input values no map knows, with their row counts."""
        lines = []
        for p, where in zip(self.parts, self.where):
            lines.append(f"Mapping {p.mapping.where}, inputs from {where}:")
            w = max((len(t) for t in p.mapped), default=0)
            for t, obj in p.mapped.items():
                lines.append(f"  {t:<{w}}  ← {obj}")
            for t, why in p.skipped.items():
                lines.append(f"  {t}: not mapped ({why})")
            for t, c, what in p.missing:
                if t in p.skipped:  # said above
                    continue
                lines.append(f"  {t}.{c} ← {what}: not in the input (left empty)")
            if unmapped:
                for u in p.unmapped():
                    lines.append(f"  {u.table}.{u.column} ← {u.source} = {u.value!r}: no map knows it, "
                                 f"{u.rows:,} row{'s' * (u.rows != 1)} (add it to the mapping's `values:`)")
        return "\n".join(lines)


def _schema_tables(con, schema: str | None, names: list[str], shown: str) -> dict:
    """``{object: table}`` for the objects of ``names`` that the schema holds (matched case-insensitively)."""
    db = tuple(schema.split(".")) if schema and "." in schema else schema
    try:
        present = con.list_tables(database=db) if db else con.list_tables()
    except Exception as exc:
        raise SourceError(f"Cannot list the tables of schema `{schema}` in {shown}: "
                          f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    low: dict[str, str] = {}
    for t in present:
        low.setdefault(t.lower(), t)
    return {n: (con.table(low[n.lower()], database=db) if db else con.table(low[n.lower()]))
            for n in names if n.lower() in low}


def _schemas(con) -> str:
    try:
        names = [d for d in con.list_databases() if d not in ("information_schema", "pg_catalog", "pg_toast")]
    except Exception:  # pragma: no cover - a backend without schemas
        return ""
    return f" Schemas there: {', '.join(sorted(names)) or 'none'}."


def _salt(mappings: list[Mapping]) -> str:
    """A hash of the mapping files' text: a changed stage map changes the source's fingerprint."""
    h = hashlib.sha256()
    for m in mappings:
        for f in m.files:
            path = PRESET_DIR / f.split("/", 1)[1] if f.startswith("presets/") else Path(f).expanduser()
            h.update(f.encode())
            try:
                h.update(path.read_bytes())
            except OSError:
                pass
    return h.hexdigest()[:16]


def _connect(source: Any, settings=None):
    """``(con, description, location, default database)`` of a database source, or None (a folder): what
    :func:`revops_lib.sources.connect` gives, plus Spark — a Spark Connect URL ``sc://host:15002[/database]``
    (its database is where a mapping without ``schema:`` reads; the presets' schemas are databases of the
    session's catalog), a SparkSession, or an Ibis PySpark backend. The session is shared, so its current
    database is never changed."""
    from revops_lib import spark as sp

    if sp.is_spark_session(source):
        return sp.connect(source, settings), "Spark session", None, None
    if not hasattr(source, "list_tables") and sp.is_spark_url(str(source)):
        text = str(source)
        url, database = sp.split_url(with_credentials(text))
        return sp.connect(url, settings), f"Spark {redact(text)}", public_url(text), database
    db = connect(source)
    if db is None:
        return None
    con, shown, location, _ = db
    if getattr(con, "name", "") == "pyspark":
        sp.kit_backend(con)
    return con, shown, location, None


def open_mapped_source(source: Any = None, preset=None, mapping=None, *, settings=None) -> MappedSource:
    """Read ``source`` through the mappings of ``preset`` (see the module docstring).

    Parameters
    ----------
    source : str, Path, Ibis backend or SparkSession
        An Ibis URL (``postgres://user@host/db``), a ``.duckdb`` file, a Spark Connect URL
        (``sc://host:15002``: the schemas are databases of its catalog), a folder of exported files, or a
        connection. ``None`` means ``$REVOPS_SOURCE`` when set, else ``data/demo``.
    preset : str or list of str
        Presets and/or mapping files, e.g. ``"fivetran_salesforce,fivetran_stripe"``.
    mapping : path, optional
        A mapping file extending the (single) preset, as ``revops import --mapping`` takes it.
    settings : revops_lib.spark.SparkSettings, optional
        For a Spark source: the session settings (default: ``$REVOPS_SPARK_CONF``, as the runner sets it).

    Raises
    ------
    MappingError
        A bad preset list or mapping (before anything is read).
    SourceError
        A source that cannot be opened, or a mapping none of whose tables could be made from it.
    """
    mappings = load_mappings(preset, mapping)
    if source is None:
        source = os.environ.get(SOURCE_ENV) or "data/demo"
    if isinstance(source, Source):
        raise SourceError(f"{source.description} already holds contract tables: a preset maps a vendor's objects "
                          "(give the database URL, .duckdb file or folder they are in).")
    db = _connect(source, settings)
    inputs, where = [], []
    if db is not None:
        con, shown, location, default = db
        _set_utc(con)
        kind = "database" if getattr(con, "name", "") == "pyspark" else "schema"
        for m in mappings:
            schema = m.schema or default
            inputs.append(_schema_tables(con, schema, m.objects(), shown))
            where.append(f"{kind} `{schema}` of {shown}" if schema else shown)
    else:
        folder = Path(str(source)).expanduser()
        if not folder.is_dir():
            raise SourceError(f"Source `{source}` not found: give a database URL (postgres://user@host/db), a .duckdb "
                              "file or a folder of exported files.")
        con = ibis.duckdb.connect(**duckdb_config())
        shown, location, read = f"folder {folder}", str(folder), {}
        for m in mappings:
            sub = folder / m.schema if m.schema and (folder / m.schema).is_dir() else folder
            if sub not in read:
                read[sub] = read_folder(sub, con)[1]
            inputs.append(read[sub])
            where.append(f"folder {sub}")
    parts = []
    for m, objects, place in zip(mappings, inputs, where):
        part = apply_mapping(m, objects, con=con, description=f"{m.name} mapping of {shown}")
        if not part.mapped:
            found = sorted(objects)
            raise SourceError(
                f"Nothing mapped with {m.where} from {place}: "
                + "; ".join(f"{t}: {why}" for t, why in part.skipped.items())
                + f". Objects found: {', '.join(found) or 'none'}."
                + (_schemas(con) if db is not None and m.schema else "")
                + (" When the connector lands them in another schema, set it in a mapping file "
                   f"(`extends: {m.name}` and `schema: <name>`)." if m.schema else ""))
        parts.append(part)
    raw = {name: p.source.raw(name) for p in parts for name in p.source.names}
    src = Source(con, raw, description=f"{shown} through {' + '.join(m.name for m in mappings)}", location=location)
    src.salt = _salt(mappings)
    return MappedSource(src, parts, where)


def open_source(source: Any = None, *, preset=None, mapping=None, privacy: str | None = None,
                settings=None) -> Source:
    """:func:`revops_lib.sources.open_source`, or with ``preset`` (and/or ``mapping``) the source read through
    those mappings at query time (:func:`open_mapped_source`).

    >>> src = open_source("postgres://ana@db/warehouse", preset="fivetran_salesforce,fivetran_stripe")  # doctest: +SKIP
    >>> src = open_source("sc://spark.local:15002", preset="fivetran_salesforce")  # doctest: +SKIP
    >>> src.table("opportunities")                                                                     # doctest: +SKIP
    """
    if not preset_items(preset) and mapping is None:
        return _open_plain(source, privacy=privacy, settings=settings)
    src = open_mapped_source(source, preset, mapping, settings=settings).source
    return src.with_privacy(privacy) if privacy is not None else src


def import_folder(src, out, *, preset=None, mapping=None, progress=None):
    """``revops import``: :func:`revops_lib.importers.run.import_folder`, for a database (an Ibis URL or a
    ``.duckdb`` file) the landed tables read through the preset's schema first."""
    mapped = None
    if _run._is_database(src):
        load_mapping(preset, mapping)  # one preset (+ a file extending it): the same rule as for a folder
        mapped = open_mapped_source(src, preset, mapping).parts[0]
    return _run.import_folder(src, out, preset=preset, mapping=mapping, progress=progress, mapped=mapped)
