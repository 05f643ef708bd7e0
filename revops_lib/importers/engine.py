"""Applying a mapping: Ibis expressions over the input objects, one per contract table.

Nothing is computed until asked: :func:`apply_mapping` builds expressions over the input tables (CSV
files read by DuckDB, or a warehouse's landed tables), and :class:`Mapped` hands them out as a
:class:`~revops_lib.sources.Source`. Only :meth:`Mapped.unmapped` (the values no map knows, with their
row counts) and the currency check run queries.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from revops_lib.importers.mapping import INTERVAL_MONTHS, Mapping, MappingError, _lookups, froms
from revops_lib.schema import TABLES
from revops_lib.sources import KIND_DTYPES, Source, coerce

__all__ = ["apply_mapping", "Mapped", "Unmapped"]

_UTC = dt.Timestamp(timezone="UTC")
_OFFSET = r"(Z|z|[+-]\d\d:?\d\d)$"
_EPOCH = r"^\d{9,11}(\.\d+)?$"


@ibis.udf.scalar.builtin(name="timezone")
def _in_zone(zone: str, ts: dt.Timestamp()) -> dt.Timestamp(timezone="UTC"):  # DuckDB, PostgreSQL
    ...


@ibis.udf.scalar.builtin(name="to_utc_timestamp")
def _to_utc(ts: dt.Timestamp(), zone: str) -> dt.Timestamp(timezone="UTC"):  # Spark: wall time in zone -> UTC
    ...


@dataclass
class Unmapped:
    """Values of an input column that no value map knows."""

    table: str
    column: str  # contract column
    source: str  # object.column
    value: str
    rows: int


@dataclass
class Mapped:
    """The result of :func:`apply_mapping`."""

    mapping: Mapping
    source: Source
    mapped: dict[str, str]  # contract table -> input object
    skipped: dict[str, str]  # contract table -> why it could not be mapped
    missing: list[tuple[str, str, str]] = field(default_factory=list)  # (table, contract column, input column(s))
    # (table, contract column, object.column, a one-column table of the raw values, its name, known keys)
    _maps: list[tuple[str, str, str, ir.Table, str, list[str]]] = field(default_factory=list)

    def unmapped(self) -> list[Unmapped]:
        """Each input value that a value map does not know, with its row count (runs one query per mapped column)."""
        found: dict[tuple, Unmapped] = {}
        for table, col, where, t, name, keys in self._maps:
            v = t[name].cast(dt.string).strip()
            q = t.filter(v.notnull() & (v != "") & ~v.lower().isin(keys)).group_by(value=v).agg(rows=ibis._.count())
            for row in q.order_by([ibis.desc("rows"), "value"]).to_pyarrow().to_pylist():
                k = (table, where, row["value"])
                if k in found:  # one input column feeding several contract columns (a stage: stage, is_won …)
                    if col not in found[k].column.split(", "):
                        found[k].column += f", {col}"
                else:
                    found[k] = Unmapped(table, col, where, row["value"], int(row["rows"]))
        return list(found.values())


class _Builder:
    def __init__(self, mapping: Mapping, inputs: dict[str, ir.Table], backend: str | None):
        self.m = mapping
        self.inputs = {k.lower(): v for k, v in inputs.items()}
        self.backend = backend
        self.missing: list[tuple[str, str, str]] = []
        self.maps: list = []
        self.joined: dict[int, str] = {}  # id of a lookup spec -> its column in the joined table
        self.n = 0
        self.current = ""  # the contract column being made (names the values of nested lookups in messages)

    def obj(self, name: str) -> ir.Table | None:
        return self.inputs.get(name.lower())

    @staticmethod
    def col(t: ir.Table, name: str) -> str | None:
        """The input column named ``name`` (exactly, else case-insensitively), or None."""
        if name in t.columns:
            return name
        low = {c.lower(): c for c in t.columns}
        return low.get(name.lower())

    # -- rows ---------------------------------------------------------------------------------------
    def where(self, t: ir.Table, where: dict | None, what: str) -> ir.Table:
        """The rows of ``t`` that every condition keeps. A column the input lacks drops its condition: silently
        for ``not_in`` (no row can hold an excluded value: e.g. ``_fivetran_deleted`` on a table without it),
        reported in :attr:`missing` for ``in`` and ``in_object``."""
        for col, cond in (where or {}).items():
            name = self.col(t, col)
            if name is None:
                if set(cond) - {"not_in"}:
                    self.missing.append((what, "where", col))
                continue
            v = t[name].cast(dt.string).strip().lower()
            if "in" in cond:
                t = t.filter(v.isin([str(x).lower() for x in cond["in"]]))
            if "not_in" in cond:
                t = t.filter(v.isnull() | ~v.isin([str(x).lower() for x in cond["not_in"]]))
            if "in_object" in cond:
                t = self.in_object(t, name, cond["in_object"], what)
        return t

    def in_object(self, t: ir.Table, name: str, spec: dict, what: str) -> ir.Table:
        """Rows whose ``name`` is a ``key`` of object ``from`` (after its ``where``): e.g. HubSpot stage history
        rows of deals that are not deleted."""
        other = self.obj(spec["from"])
        key = None if other is None else self.col(other, spec["key"])
        if key is None:
            self.missing.append((what, "where", f"{spec['from']}.{spec['key']}"))
            return t
        other = self.where(other, spec.get("where"), spec["from"])
        return t.filter(t[name].cast(dt.string).isin(other[key].cast(dt.string)))

    def unpivot(self, t: ir.Table, up: dict, table: str) -> ir.Table:
        idc = self.col(t, up["id"])
        if idc is None:
            raise _Skip(f"the id column `{up['id']}` of the unpivot is not in the input")
        pairs = []
        if up.get("columns"):
            for c, k in up["columns"].items():
                name = self.col(t, c)
                if name is not None:
                    pairs.append((name, str(k)))
        if up.get("prefix"):
            p = up["prefix"].lower()
            pairs += [(c, c[len(p):]) for c in t.columns if c.lower().startswith(p) and len(c) > len(p)]
        if not pairs:
            raise _Skip(f"no column starts with `{up.get('prefix')}`" if up.get("prefix")
                        else "none of the unpivot columns is in the input")
        parts = [t.select(_id=t[idc].cast(dt.string), _key=ibis.literal(k), _value=t[c].cast(dt.string))
                 for c, k in pairs]
        out = parts[0].union(*parts[1:]) if len(parts) > 1 else parts[0]
        return out.filter(out._value.notnull() & (out._value.strip() != ""))

    # -- values -------------------------------------------------------------------------------------
    def raw(self, t: ir.Table, spec, table: str, cname: str, obj: str) -> tuple[ir.Table, ir.Value | None, str]:
        """``(table, expression, what)``: the value of a spec before typing (None: its input column is missing)."""
        if isinstance(spec, str):
            name = self.col(t, spec)
            return t, (None if name is None else t[name]), spec
        if isinstance(spec, list):  # alternatives: the first present
            for s in spec:
                t2, e, w = self.raw(t, s, table, cname, obj)
                if e is not None:
                    return t2, e, w
            return t, None, " or ".join(s if isinstance(s, str) else str(s.get("column", s)) for s in spec)
        if "derive" in spec:
            return self.mrr(t, spec, table, cname, obj)
        if "value" in spec:
            e, what = ibis.literal(spec["value"]), "a fixed value"
        elif "coalesce" in spec:
            exprs, whats = [], []
            for s in spec["coalesce"]:
                t, e, w = self.raw(t, s, table, cname, obj)
                whats.append(w)
                if e is not None:
                    exprs.append(self.typed(e, TABLES[table].column(cname).kind) if cname else e)
            e = ibis.coalesce(*exprs) if len(exprs) > 1 else (exprs[0] if exprs else None)
            what = " then ".join(whats)
        elif "lookup" in spec:
            t, e, what = self.lookup(t, spec["lookup"], table)
        else:
            t, e, what = self.raw(t, spec["column"], table, cname, obj)
        if e is None:
            return t, None, what
        if "scale" in spec:
            e = coerce(e, "float") * float(spec["scale"])
        if "map" in spec:
            e = self.mapped(t, e, spec, table, cname, f"{obj}.{what}")
        if "minus" in spec:
            t, m, _ = self.raw(t, spec["minus"], table, cname, obj)
            if m is not None:
                e = coerce(e, "float") - ibis.coalesce(coerce(m, "float"), 0.0)
        if "default" in spec:
            e = ibis.coalesce(self.typed(e, self.kind(table, cname)), ibis.literal(spec["default"]))
        return t, e, what

    @staticmethod
    def kind(table: str, cname: str | None) -> str:
        return TABLES[table].column(cname).kind if cname else "string"

    def mapped(self, t: ir.Table, e: ir.Value, spec: dict, table: str, cname: str, where: str) -> ir.Value:
        vm = self.m.values[spec["map"]] if isinstance(spec["map"], str) else spec["map"]
        fld = spec.get("field")
        pairs = []
        for raw, target in vm.items():
            target = target.get(fld) if isinstance(target, dict) else target
            pairs.append((str(raw).strip().lower(), target))
        kind = self.kind(table, cname)
        key = e.cast(dt.string).strip().lower()
        # remember the column to count the values no map knows (once per input column and map)
        name = f"__m{self.n}"
        self.n += 1
        self.maps.append((table, cname or self.current, where, t.select(**{name: e}), name, [k for k, _ in pairs]))
        target_type = KIND_DTYPES[kind]
        if "otherwise" in spec:
            other = ibis.literal(spec["otherwise"], type=target_type)
        elif kind == "string":
            other = e.cast(dt.string)
        else:
            other = ibis.null(target_type)
        cases = [(key == k, ibis.literal(v, type=target_type) if v is not None else ibis.null(target_type))
                 for k, v in pairs]
        return ibis.cases(*cases, else_=other)

    def lookup(self, t: ir.Table, lk: dict, table: str) -> tuple[ir.Table, ir.Value | None, str]:
        name = self.joined.get(id(lk))
        value = lk["value"]
        if not isinstance(value, str):  # a column spec over the other object
            value = f"<{value['derive']}>" if isinstance(value, dict) and "derive" in value else "<computed value>"
        return t, (None if name is None else t[name]), f"{lk['from']}.{value}"

    def join_lookup(self, t: ir.Table, lk: dict, table: str) -> ir.Table:
        """``t`` with the looked-up value as a column ``__v<n>`` (``t`` itself when an input is missing).

        ``value`` is a column of the other object, or a column spec over it (a nested lookup, ``derive: mrr``
        …), computed per row of the other object before ``agg`` reduces it to one value per key.
        """
        other = self.obj(lk["from"])
        if other is None:
            return t
        on, key = self.col(t, lk["by"]), self.col(other, lk["key"])
        if on is None or key is None:
            return t
        other = self.where(other, lk.get("where"), lk["from"])
        if isinstance(lk["value"], str):
            value = self.col(other, lk["value"])
            if value is None:
                return t
            val = other[value]
        else:
            for inner in _lookups(lk["value"]):
                other = self.join_lookup(other, inner, table)
            other, val, _ = self.raw(other, lk["value"], table, None, lk["from"])
            if val is None:
                return t
        self.n += 1
        k, v = f"__k{self.n}", f"__v{self.n}"
        agg = lk.get("agg", "first")
        if agg == "sum":
            red = coerce(val, "float").sum()
        elif val.type().is_boolean():  # PostgreSQL has no MAX(boolean): any (max) and all (min)
            red = val.all() if agg == "min" else val.any()
        else:
            red = val.min() if agg == "min" else val.max()  # first: one row per key
        small = other.group_by(**{k: other[key].cast(dt.string)}).agg(**{v: red})
        joined = t.left_join(small, t[on].cast(dt.string) == small[k]).drop(k)
        self.joined[id(lk)] = v
        return joined

    def mrr(self, t: ir.Table, spec: dict, table: str, cname: str, obj: str):
        t, amount, wa = self.raw(t, spec["amount"], table, None, obj)
        t, interval, wi = self.raw(t, spec["interval"], table, None, obj)
        q = c = None
        if "quantity" in spec:
            t, q, _ = self.raw(t, spec["quantity"], table, None, obj)
        if "interval_count" in spec:
            t, c, _ = self.raw(t, spec["interval_count"], table, None, obj)
        if amount is None or interval is None:
            return t, None, wa if amount is None else wi
        key = interval.cast(dt.string).strip().lower()
        name = f"__m{self.n}"
        self.n += 1
        self.maps.append((table, f"{cname or self.current} (billing interval)", f"{obj}.{wi}",
                          t.select(**{name: interval}), name,
                          list(INTERVAL_MONTHS)))
        months = ibis.cases(*[(key == k, ibis.literal(v)) for k, v in INTERVAL_MONTHS.items()],
                            else_=ibis.null(dt.float64))
        qty = ibis.coalesce(coerce(q, "float"), 1.0) if q is not None else ibis.literal(1.0)
        cnt = ibis.coalesce(coerce(c, "float"), 1.0) if c is not None else ibis.literal(1.0)
        e = (coerce(amount, "float") * qty / (cnt * months)).round(2)
        return t, e, wa

    def typed(self, e: ir.Value, kind: str) -> ir.Value:
        """A raw value typed to a contract kind; naive timestamps are read in the mapping's time zone."""
        t = e.type()
        if kind == "timestamp":
            return self.timestamp(e)
        if kind == "date":
            if t.is_string():
                s = e.strip()
                return ibis.cases((s.re_search(_EPOCH), self.timestamp(s).cast(dt.date)),
                                  else_=coerce(s.substr(0, 10), "date"))
            if t.is_timestamp():
                return self.timestamp(e).cast(dt.date)
            return coerce(e, "date", backend=self.backend)
        return coerce(e, kind, backend=self.backend)

    def timestamp(self, e: ir.Value) -> ir.Value:
        t = e.type()
        if t.is_timestamp() and t.timezone is not None:
            return coerce(e, "timestamp", backend=self.backend)
        if t.is_numeric():
            return e.cast(dt.int64).as_timestamp("s").cast(dt.Timestamp())
        if t.is_timestamp() or t.is_date():
            return self.zone(e.cast(dt.Timestamp()))
        s = e.cast(dt.string).strip()
        epoch = s.try_cast(dt.float64).cast(dt.int64).as_timestamp("s").cast(dt.Timestamp())
        with_offset = s.try_cast(_UTC).cast(dt.Timestamp())
        naive = self.zone(s.try_cast(dt.Timestamp()))
        return ibis.cases((s.re_search(_EPOCH), epoch), (s.re_search(_OFFSET), with_offset), else_=naive)

    def zone(self, naive: ir.Value) -> ir.Value:
        """A naive timestamp read as wall time in the mapping's zone, as naive UTC."""
        if self.m.timezone.upper() == "UTC":
            return naive
        if self.backend == "pyspark":  # Spark has no timezone(); its session time zone is UTC (revops_lib.spark)
            return _to_utc(naive, self.m.timezone).cast(dt.Timestamp())
        return _in_zone(self.m.timezone, naive).cast(dt.Timestamp())

    # -- tables -------------------------------------------------------------------------------------
    def source_object(self, spec: dict) -> str:
        """The object a table is read from: ``from``, or the first of its alternatives the input has."""
        names = froms(spec["from"])
        for name in names:
            if self.obj(name) is not None:
                return name
        raise _Skip(f"no input object {' or '.join(f'`{n}`' for n in names)}")

    def table(self, tname: str, spec: dict) -> ir.Table:
        src = self.source_object(spec)
        t = self.where(self.obj(src), spec.get("where"), src)
        if spec.get("unpivot"):
            t = self.unpivot(t, spec["unpivot"], tname)
        contract = TABLES[tname]
        extra = [("currency", spec["currency"])] if spec.get("currency") is not None else []
        for cname, cspec in [*spec["columns"].items(), *extra]:  # lookups first: columns then refer to one table
            self.current = cname
            for lk in _lookups(cspec):
                t = self.join_lookup(t, lk, tname)
        exprs, gone = {}, []
        for cname, cspec in spec["columns"].items():
            t, e, what = self.raw(t, cspec, tname, cname, src)
            if e is None:
                (gone if cname in contract.required else self.missing).append((tname, cname, what))
                continue
            exprs[cname] = e
        if gone:
            self.missing += gone
            raise _Skip("required column(s) missing from the input: "
                        + ", ".join(f"{c} (from {w})" for _, c, w in gone))
        cur = what_cur = None
        if spec.get("currency") is not None:
            t, cur, what_cur = self.raw(t, spec["currency"], tname, None, src)
        # one select: raw expressions may refer to joined lookup columns of `t`
        cols = {c: self.typed(e, contract.column(c).kind).name(c) for c, e in exprs.items()}
        if cur is not None:
            cols["__currency"] = cur.cast(dt.string).strip().upper()
        out = t.select(**cols)
        if cur is not None:
            out = self.convert(out, tname, f"{src}.{what_cur}")
        return out, src

    def convert(self, t: ir.Table, tname: str, where: str) -> ir.Table:
        """Money columns in one currency: converted with the rate table when the mapping names one, else an
        error when more than one currency appears."""
        money = [c.name for c in TABLES[tname].columns if c.money and c.name in t.columns]
        key = TABLES[tname].key[0]
        counts = (t.group_by("__currency").agg(rows=ibis._.count(), example=t[key].min())
                  .order_by(ibis.desc("rows")).to_pyarrow().to_pylist())
        found = [r for r in counts if r["__currency"]]
        target = (self.m.currency.get("to") or "").upper()
        rates_name = self.m.currency.get("rates")
        rates = self.obj(rates_name) if rates_name else None
        if len(found) <= 1 and (not target or not found or found[0]["__currency"] == target):
            return t.drop("__currency")
        listed = ", ".join(f"{r['__currency'] or '(none)'} {r['rows']:,} rows (e.g. {r['example']})" for r in counts)
        if rates is None:
            raise MappingError(
                f"Table `{tname}`: amounts in {len(found)} currencies in `{where}` ({listed}). The contract holds "
                f"money in one currency: add a rate table (an input object with columns currency, rate) and name it "
                f"in the mapping (`currency: {{to: USD, rates: <object>}}`), or import one currency at a time."
                + (f" The mapping names `{rates_name}` but the input has no such object." if rates_name else ""))
        cc, rc = self.col(rates, "currency"), self.col(rates, "rate")
        if cc is None or rc is None:
            raise MappingError(f"Rate table `{rates_name}` needs columns `currency` and `rate` (units of "
                               f"{target or 'the reporting currency'} per unit of the currency); it has "
                               f"{', '.join(rates.columns)}.")
        r = rates.select(__cur=rates[cc].cast(dt.string).strip().upper(), __rate=coerce(rates[rc], "float"))
        known = {row["__cur"] for row in r.to_pyarrow().to_pylist()}
        if target:
            known.add(target)
        lacking = [x for x in found if x["__currency"] not in known]
        if lacking:
            raise MappingError(f"Table `{tname}`: no rate in `{rates_name}` for "
                               + ", ".join(f"{x['__currency']} ({x['rows']:,} rows, e.g. {x['example']})"
                                           for x in lacking) + ".")
        j = t.left_join(r, t["__currency"] == r["__cur"])
        rate = ibis.cases((j["__currency"] == target, 1.0), else_=j["__rate"]) if target else j["__rate"]
        return j.mutate(**{c: (j[c] * rate).round(2) for c in money}).drop("__currency", "__cur", "__rate")


class _Skip(Exception):
    pass


def apply_mapping(mapping: Mapping, inputs: dict[str, ir.Table], *, con=None, description: str = "") -> Mapped:
    """The contract tables a mapping makes of the input objects, as Ibis expressions.

    Parameters
    ----------
    mapping : Mapping
        From :func:`revops_lib.importers.load_mapping`.
    inputs : dict of str to Ibis table
        The input objects by name (matched case-insensitively): e.g. ``{"Opportunity": t, "Lead": u}``.
    con : Ibis backend, optional
        The connection the inputs live in (default: that of the first input).

    Returns
    -------
    Mapped
        ``source`` (the mapped tables), ``mapped`` (table ← object), ``skipped`` (table → reason),
        ``missing`` (optional columns whose input column is missing) and :meth:`Mapped.unmapped`.
    """
    backend = getattr(con, "name", None) if con is not None else "duckdb"
    b = _Builder(mapping, inputs, backend)
    out, mapped, skipped = {}, {}, {}
    for tname, spec in mapping.tables.items():
        before = len(b.maps)
        try:
            out[tname], mapped[tname] = b.table(tname, spec)
        except _Skip as why:
            skipped[tname] = str(why)
            b.maps = b.maps[:before]
    if con is None:
        try:
            con = next(iter(inputs.values()))._find_backend(use_default=True)
        except Exception:  # memtables only: DuckDB runs them
            con = ibis.duckdb.connect()
    src = Source(con, out, description=description or f"{mapping.name} mapping")
    return Mapped(mapping, src, mapped, skipped, b.missing, b.maps)
