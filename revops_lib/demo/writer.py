"""Writing the demo data: column builders (ids, categories, timestamps, dates as Arrow arrays), one
Parquet writer per table of the data contract (:data:`revops_lib.schema.TABLES`), appending row groups,
and the folder they go to (built aside, marked and moved into place with :mod:`revops_lib.outdirs`)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from revops_lib.demo.calendar import SECOND
from revops_lib.errors import OutputError
from revops_lib.outdirs import check_demo_folder, write_demo_marker
from revops_lib.outdirs import move_into_place as _move_into_place
from revops_lib.outdirs import remove_built as _remove
from revops_lib.schema import TABLES

# --------------------------------------------------------------------------- columns

# id widths: enough for scale 100 with a wide margin
_W = {"L": 8, "O": 7, "A": 7, "S": 7, "T": 9, "AC": 9, "TK": 8, "R": 7, "C": 5}

_PA_TYPES = {
    "string": pa.string(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "date": pa.date32(),
    "float": pa.float64(),
    "int": pa.int64(),
    "bool": pa.bool_(),
}


def _ids(prefix: str, nums) -> pa.Array:
    s = pc.utf8_lpad(pc.cast(pa.array(np.asarray(nums, dtype=np.int64)), pa.string()), _W[prefix], padding="0")
    return pc.binary_join_element_wise(prefix, s, "")


def _cat(names, codes, mask=None) -> pa.Array:
    codes = np.asarray(codes, dtype=np.int32)
    return pc.take(pa.array(list(names), pa.string()), pa.array(codes, mask=mask))


def _ts(us, mask=None) -> pa.Array:
    """Timestamps at whole seconds (as CRMs export them)."""
    us = np.asarray(us, dtype=np.int64)
    return pa.array(us - us % SECOND, type=_PA_TYPES["timestamp"], mask=mask)


def _dates(days, mask=None) -> pa.Array:
    return pa.array(np.asarray(days, dtype=np.int32), type=pa.date32(), mask=mask)


def _schema(name: str) -> pa.Schema:
    return pa.schema([pa.field(c.name, _PA_TYPES[c.kind]) for c in TABLES[name].columns])


# --------------------------------------------------------------------------- tables

class _Writers:
    """One ParquetWriter per table; each ``write`` call appends a row group."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.schemas = {name: _schema(name) for name in TABLES}
        self.writers = {
            name: pq.ParquetWriter(folder / f"{name}.parquet", schema, compression="zstd")
            for name, schema in self.schemas.items()
        }
        self.counts = {name: 0 for name in TABLES}

    def write(self, name: str, columns: dict) -> None:
        schema = self.schemas[name]
        assert list(columns) == schema.names, (name, list(columns))
        arrays = [pa.array(columns[f.name], type=f.type) if not isinstance(columns[f.name], pa.Array)
                  else columns[f.name].cast(f.type) for f in schema]
        table = pa.Table.from_arrays(arrays, schema=schema)
        if table.num_rows:
            self.writers[name].write_table(table)
            self.counts[name] += table.num_rows

    def close(self) -> None:
        for w in self.writers.values():
            w.close()


# --------------------------------------------------------------------------- the folder

def write_folder(out, fill: Callable[[Path], dict[str, int]], *, seed: int, scale: float, end: str,
                 months: int) -> dict[str, int]:
    """Make the demo folder ``out`` as a whole: ``fill(tmp)`` writes the tables into a temporary sibling
    folder and returns the rows written per table; the marker file (with ``seed``, ``scale``, ``end``,
    ``months``) is added and the folder renamed into place, replacing an earlier demo folder.

    ``out`` is checked with :func:`revops_lib.outdirs.check_demo_folder` before anything is written
    and again before the rename. A failed or interrupted ``fill`` (Ctrl-C included) leaves neither a
    half-written folder nor the temporary one behind; an ``OSError`` becomes an ``OutputError``.
    """
    out = check_demo_folder(out)  # before anything is written: never over data demo-data did not make
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"`{out.parent}` cannot be created ({exc.strerror or exc}): give a folder you can write to."
        ) from None
    # a sibling: the final rename stays on one file system; permissions follow the umask
    tmp = out.parent / f".{out.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.partial"
    try:
        try:
            tmp.mkdir()
        except OSError as exc:
            raise OutputError(
                f"`{out.parent}` cannot be written ({exc.strerror or exc}): give a folder you can write to."
            ) from None
        try:
            counts = fill(tmp)
            write_demo_marker(tmp, seed=seed, scale=scale, end=end, months=months)
            check_demo_folder(out)  # again: files may have landed there during the build
            _move_into_place(tmp, out)
        except OSError as exc:  # disk full, a folder that cannot be renamed (a mount point), …
            raise OutputError(
                f"Writing the demo data to `{out}` failed ({exc.strerror or exc}); nothing was changed there."
            ) from exc
    finally:  # any failure, Ctrl-C included: no temporary folder outlives the build
        if tmp.exists():
            _remove(tmp)
    return counts
