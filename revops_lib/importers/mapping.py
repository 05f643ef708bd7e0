"""Mappings: YAML files that say how a vendor's objects become the contract tables (see ``docs/mappings.md``).

A mapping is read with :func:`load_mapping` (a shipped preset, a user file, or a user file that
``extends:`` a preset), merged, and checked: every problem is a :class:`MappingError` naming the file,
the key (``tables.opportunities.columns.type.map``) and what is allowed there.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from revops_lib.errors import ParameterError
from revops_lib.schema import TABLES

__all__ = ["MappingError", "Mapping", "load_mapping", "preset_names", "PRESET_DIR", "FORECAST_CATEGORIES",
           "INTERVAL_MONTHS"]

PRESET_DIR = Path(__file__).with_name("presets")

#: A database schema name (``salesforce``, ``salesforce_prod``; ``catalog.schema`` for Spark/DuckDB catalogs).
SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$-]*(\.[A-Za-z_][A-Za-z0-9_$-]*)?")

#: Forecast categories the kit's forecast and pipeline metrics know (as in the demo data).
FORECAST_CATEGORIES = ("pipeline", "best_case", "commit", "closed", "omitted")

#: Months per billing interval (``derive: mrr``): MRR = price × quantity ÷ (interval_count × months).
INTERVAL_MONTHS = {"month": 1.0, "year": 12.0, "week": 12.0 / 52.0, "day": 12.0 / 365.0}

TOP_KEYS = ("name", "description", "extends", "timezone", "tables", "values", "currency", "schema")
TABLE_KEYS = ("from", "where", "columns", "unpivot", "currency")
SPEC_KEYS = ("column", "coalesce", "value", "lookup", "derive", "map", "field", "default", "otherwise", "scale",
             "minus")
LOOKUP_KEYS = ("from", "key", "by", "value", "where", "agg")
LOOKUP_AGGS = ("first", "min", "max", "sum")
DERIVE_KEYS = ("derive", "amount", "quantity", "interval", "interval_count", "default")
DERIVATIONS = ("mrr",)
UNPIVOT_KEYS = ("id", "prefix", "columns")
WHERE_KEYS = ("in", "not_in", "in_object")
IN_OBJECT_KEYS = ("from", "key", "where")
CURRENCY_KEYS = ("to", "rates")


class MappingError(ParameterError):
    """A mapping file (or preset) that cannot be used: the message names the file, the key and what is allowed."""


@dataclass
class Mapping:
    """A checked mapping: per contract table, where it comes from and how each column is made."""

    name: str
    files: list[str]  # the files it was read from, base preset first
    timezone: str
    tables: dict[str, dict]
    values: dict[str, dict]
    currency: dict = field(default_factory=dict)
    description: str = ""
    schema: str | None = None  # where a database holds the input objects (Fivetran: salesforce, hubspot, stripe)

    @property
    def where(self) -> str:
        return " extending ".join(reversed(self.files))

    def objects(self) -> list[str]:
        """Every input object the mapping reads (tables' ``from`` and its alternatives, lookups at any
        depth, ``in_object`` filters, rates)."""
        found = []

        def where_objects(where):
            for cond in (where or {}).values():
                if isinstance(cond, dict) and isinstance(cond.get("in_object"), dict):
                    found.append(cond["in_object"]["from"])
                    where_objects(cond["in_object"].get("where"))

        def spec_objects(spec):
            for lk in _lookups(spec):
                found.append(lk["from"])
                where_objects(lk.get("where"))
                spec_objects(lk["value"])

        for spec in self.tables.values():
            found += froms(spec["from"])
            where_objects(spec.get("where"))
            for col in spec["columns"].values():
                spec_objects(col)
            if spec.get("currency") is not None:
                spec_objects(spec["currency"])
        if self.currency.get("rates"):
            found.append(self.currency["rates"])
        return list(dict.fromkeys(found))


def froms(value) -> list[str]:
    """A table's ``from``: one object name, or alternatives (the first present is read)."""
    return [value] if isinstance(value, str) else list(value)


def preset_names() -> list[str]:
    """The presets shipped with the kit (``revops_lib/importers/presets/<name>.yaml``)."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def _read(path: Path, shown: str) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MappingError(f"Mapping file `{shown}` cannot be read: {exc.strerror or exc}.") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise MappingError(f"Mapping file `{shown}` is not valid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise MappingError(f"Mapping file `{shown}`: the top level must be a mapping of keys "
                           f"({', '.join(TOP_KEYS)}), not {type(data).__name__}.")
    return data


def _preset_path(name: str, shown_from: str) -> Path:
    path = PRESET_DIR / f"{name}.yaml"
    if not isinstance(name, str) or not name or "/" in name or not path.is_file():
        raise MappingError(f"{shown_from}: unknown preset {name!r}; presets: {', '.join(preset_names())}.")
    return path


def _merge(base: Any, over: Any) -> Any:
    """``over`` on top of ``base``: mappings merge key by key (a key set to null removes it), anything else replaces."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            if v is None:
                out.pop(k, None)
            elif k in out:
                out[k] = _merge(out[k], v)
            else:
                out[k] = copy.deepcopy(v)
        return out
    return copy.deepcopy(over)


def load_mapping(preset: str | None = None, mapping: str | Path | None = None) -> Mapping:
    """Read, merge and check a mapping.

    Parameters
    ----------
    preset : str, optional
        A shipped preset (:func:`preset_names`).
    mapping : path, optional
        A user YAML file. It extends its own ``extends:`` preset when it names one, else ``preset``.

    Raises
    ------
    MappingError
        Naming the file, the key and the allowed values.
    """
    if preset is None and mapping is None:
        raise MappingError(f"Give a preset ({', '.join(preset_names())}) or a mapping file.")
    layers: list[tuple[str, dict]] = []
    if mapping is not None:
        path = Path(mapping).expanduser()
        user = _read(path, str(mapping))
        base = user.get("extends", preset)
        if "extends" in user and preset is not None and user["extends"] != preset:
            raise MappingError(f"Mapping file `{mapping}`: key `extends` is {user['extends']!r} but the preset given "
                               f"is {preset!r}; give one of them, or the same.")
        seen = {str(path)}
        while base is not None:
            bpath = _preset_path(base, f"Mapping file `{layers[0][0] if layers else mapping}`: key `extends`")
            if str(bpath) in seen:
                raise MappingError(f"Preset `{base}` extends itself (a loop of `extends`).")
            seen.add(str(bpath))
            data = _read(bpath, f"presets/{base}.yaml")
            layers.insert(0, (f"presets/{base}.yaml", data))
            base = data.get("extends")
        layers.append((str(mapping), user))
    else:
        base = preset
        while base is not None:
            bpath = _preset_path(base, "`--preset`" if not layers else f"`{layers[0][0]}`: key `extends`")
            data = _read(bpath, f"presets/{base}.yaml")
            layers.insert(0, (f"presets/{base}.yaml", data))
            base = data.get("extends")
            if base is not None and any(f"presets/{base}.yaml" == n for n, _ in layers):
                raise MappingError(f"Preset `{base}` extends itself (a loop of `extends`).")
    merged: dict = {}
    for shown, data in layers:
        for k in data:
            if k not in TOP_KEYS:
                raise MappingError(f"Mapping file `{shown}`: unknown key `{k}`; allowed: {', '.join(TOP_KEYS)}.")
        merged = _merge(merged, {k: v for k, v in data.items() if k != "extends"})
    return _check(merged, [n for n, _ in layers])


# --------------------------------------------------------------------------- checks

def _lookups(spec) -> list[dict]:
    """The lookups a column spec uses (at any depth)."""
    out = []
    if isinstance(spec, dict):
        if isinstance(spec.get("lookup"), dict):
            out.append(spec["lookup"])
        for k in ("coalesce",):
            for s in spec.get(k) or []:
                out += _lookups(s)
        for k in ("minus", "amount", "quantity", "interval", "interval_count"):
            if k in spec:
                out += _lookups(spec[k])
    elif isinstance(spec, list):
        for s in spec:
            out += _lookups(s)
    return out


class _Checker:
    def __init__(self, files: list[str]):
        self.file = files[-1]
        self.files = files

    def fail(self, key: str, message: str):
        where = self.file if len(self.files) == 1 else f"{self.file} (with {', '.join(self.files[:-1])})"
        raise MappingError(f"Mapping `{where}`: key `{key}`: {message}")

    def text(self, key: str, value, what="a column name") -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(key, f"must be {what} (text), not {value!r}.")
        return value

    def keys(self, key: str, value: dict, allowed) -> None:
        if not isinstance(value, dict):
            self.fail(key, f"must be a mapping with keys from: {', '.join(allowed)}; got {value!r}.")
        for k in value:
            if k not in allowed:
                self.fail(f"{key}.{k}", f"unknown key; allowed: {', '.join(allowed)}.")


def _check(m: dict, files: list[str]) -> Mapping:
    c = _Checker(files)
    tz = m.get("timezone", "UTC")
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(c.text("timezone", tz, "an IANA time zone name such as UTC or Europe/Paris"))
    except (ValueError, KeyError, OSError):
        c.fail("timezone", f"unknown time zone {tz!r}; use an IANA name such as UTC, America/New_York, Europe/Paris.")
    values = m.get("values") or {}
    if not isinstance(values, dict):
        c.fail("values", f"must map map names to value maps, not {values!r}.")
    for name, vm in values.items():
        if not isinstance(vm, dict) or not vm:
            c.fail(f"values.{name}", "must be a non-empty mapping of input value → contract value (or attributes).")
    currency = m.get("currency") or {}
    c.keys("currency", currency, CURRENCY_KEYS)
    schema = m.get("schema")
    if schema is not None and (not isinstance(schema, str) or not SCHEMA_NAME.fullmatch(schema)):
        c.fail("schema", f"must be the name of a database schema (letters, digits, _ $ -, optionally "
                         f"catalog.schema), such as salesforce or salesforce_prod; got {schema!r}.")
    tables = m.get("tables")
    if not isinstance(tables, dict) or not tables:
        c.fail("tables", f"must map contract tables ({', '.join(TABLES)}) to their input objects.")
    for tname, spec in tables.items():
        key = f"tables.{tname}"
        if tname not in TABLES:
            c.fail(key, f"unknown contract table; tables: {', '.join(TABLES)}.")
        c.keys(key, spec, TABLE_KEYS)
        what = "the input object (file name without .csv, or table name), or a list of alternatives"
        if isinstance(spec.get("from"), list) and spec["from"]:
            for i, name in enumerate(spec["from"]):
                c.text(f"{key}.from[{i}]", name, what)
        else:
            c.text(f"{key}.from", spec.get("from"), what)
        _check_where(c, f"{key}.where", spec.get("where"))
        if spec.get("unpivot") is not None:
            up = spec["unpivot"]
            c.keys(f"{key}.unpivot", up, UNPIVOT_KEYS)
            c.text(f"{key}.unpivot.id", up.get("id"))
            if not (up.get("prefix") or up.get("columns")):
                c.fail(f"{key}.unpivot", "needs `prefix` (columns named <prefix><key>) or `columns` (column → key).")
        cols = spec.get("columns")
        contract = TABLES[tname]
        if not isinstance(cols, dict) or not cols:
            c.fail(f"{key}.columns", f"must map contract columns ({', '.join(contract.names)}) to input columns.")
        for cname, cspec in cols.items():
            if cname not in contract.names:
                c.fail(f"{key}.columns.{cname}", f"not a column of `{tname}`; columns: {', '.join(contract.names)}.")
            _check_spec(c, f"{key}.columns.{cname}", cspec, values, tname, cname)
        missing = [r for r in contract.required if r not in cols]
        if missing:
            c.fail(f"{key}.columns", f"required column(s) {', '.join(f'`{x}`' for x in missing)} of `{tname}` "
                                     f"not mapped; required: {', '.join(contract.required)}.")
        if spec.get("currency") is not None:
            _check_spec(c, f"{key}.currency", spec["currency"], values, tname, None)
    return Mapping(name=str(m.get("name") or Path(files[-1]).stem), files=files, timezone=tz, tables=tables,
                   values=values, currency=currency, description=str(m.get("description") or ""), schema=schema)


def _check_where(c: _Checker, key: str, where) -> None:
    if where is None:
        return
    if not isinstance(where, dict):
        c.fail(key, f"must map input columns to {{in: [...]}} or {{not_in: [...]}}, not {where!r}.")
    for col, cond in where.items():
        c.keys(f"{key}.{col}", cond, WHERE_KEYS)
        for k, v in cond.items():
            if k == "in_object":
                c.keys(f"{key}.{col}.in_object", v, IN_OBJECT_KEYS)
                for part in ("from", "key"):
                    c.text(f"{key}.{col}.in_object.{part}", v.get(part))
                _check_where(c, f"{key}.{col}.in_object.where", v.get("where"))
            elif not isinstance(v, list):
                c.fail(f"{key}.{col}.{k}", f"must be a list of values, not {v!r}.")


def _allowed_values(tname: str, cname: str | None) -> tuple | None:
    if cname is None:
        return None
    spec = TABLES[tname]
    if cname in spec.allowed:
        return spec.allowed[cname]
    if cname == "forecast_category":
        return FORECAST_CATEGORIES
    if spec.column(cname).kind == "bool":
        return (True, False)
    return None


def _check_spec(c: _Checker, key: str, spec, values: dict, tname: str, cname: str | None) -> None:
    if spec is None:
        c.fail(key, "is null; leave the column out instead (a user file removes a preset's column with null).")
    if isinstance(spec, str):
        return
    if isinstance(spec, list):
        if not spec:
            c.fail(key, "an empty list of alternatives.")
        for i, s in enumerate(spec):
            _check_spec(c, f"{key}[{i}]", s, values, tname, cname)
        return
    if not isinstance(spec, dict):
        c.fail(key, f"must be an input column name, a list of alternative names, or a mapping with keys from "
                    f"{', '.join(SPEC_KEYS)}; got {spec!r}.")
    if "derive" in spec:
        c.keys(key, spec, DERIVE_KEYS)
        if spec["derive"] not in DERIVATIONS:
            c.fail(f"{key}.derive", f"unknown derivation {spec['derive']!r}; allowed: {', '.join(DERIVATIONS)}.")
        for part in ("amount", "interval"):
            if part not in spec:
                c.fail(f"{key}.{part}", "missing: `derive: mrr` needs `amount` and `interval` "
                                        "(and optionally `quantity`, `interval_count`).")
        for part in ("amount", "quantity", "interval", "interval_count"):
            if part in spec:
                _check_spec(c, f"{key}.{part}", spec[part], values, tname, None)
        return
    c.keys(key, spec, SPEC_KEYS)
    sources = [k for k in ("column", "coalesce", "value", "lookup") if k in spec]
    if len(sources) != 1:
        c.fail(key, "needs exactly one of `column`, `coalesce`, `value`, `lookup` (or `derive`).")
    if "column" in spec:
        _check_spec(c, f"{key}.column", spec["column"], values, tname, cname if "map" not in spec else None)
    if "coalesce" in spec:
        if not isinstance(spec["coalesce"], list) or not spec["coalesce"]:
            c.fail(f"{key}.coalesce", "must be a list of column specs (the first non-null value is taken).")
        for i, s in enumerate(spec["coalesce"]):
            _check_spec(c, f"{key}.coalesce[{i}]", s, values, tname, cname)
    if "lookup" in spec:
        lk = spec["lookup"]
        c.keys(f"{key}.lookup", lk, LOOKUP_KEYS)
        for k in ("from", "key", "by"):
            c.text(f"{key}.lookup.{k}", lk.get(k))
        if "value" not in lk:
            c.fail(f"{key}.lookup.value", "missing: the column of the other object to take (or a column spec over "
                                          "it, e.g. a nested lookup or `derive: mrr`).")
        _check_spec(c, f"{key}.lookup.value", lk["value"], values, tname, None)
        if lk.get("agg", "first") not in LOOKUP_AGGS:
            c.fail(f"{key}.lookup.agg", f"unknown aggregate {lk['agg']!r}; allowed: {', '.join(LOOKUP_AGGS)}.")
        _check_where(c, f"{key}.lookup.where", lk.get("where"))
    if "minus" in spec:
        _check_spec(c, f"{key}.minus", spec["minus"], values, tname, None)
    if "scale" in spec and not isinstance(spec["scale"], (int, float)):
        c.fail(f"{key}.scale", f"must be a number (e.g. 0.01 for amounts in cents), not {spec['scale']!r}.")
    allowed = _allowed_values(tname, cname)
    if "map" in spec:
        vm = spec["map"]
        if isinstance(vm, str):
            if vm not in values:
                known = ", ".join(values) or "none (add a `values:` block)"
                c.fail(f"{key}.map", f"names no value map; maps: {known}.")
            vm_key, vm = f"values.{spec['map']}", values[vm]
        elif isinstance(vm, dict) and vm:
            vm_key = f"{key}.map"
        else:
            c.fail(f"{key}.map", "must name a map of `values:` or be a mapping of input value → contract value.")
        fld = spec.get("field")
        for raw, target in vm.items():
            if isinstance(target, dict):
                if fld is None:
                    c.fail(f"{key}.field", f"map `{vm_key}` holds attributes ({', '.join(target)}): say which one "
                                           f"with `field`.")
                if fld not in target:
                    c.fail(f"{vm_key}.{raw}", f"has no attribute `{fld}` (asked by `{key}.field`).")
                target = target[fld]
            if allowed is not None and target is not None and target not in allowed:
                c.fail(f"{vm_key}.{raw}" + (f".{fld}" if fld else ""),
                       f"value {target!r} is not allowed for `{tname}.{cname}`; allowed: "
                       f"{', '.join(str(a).lower() if isinstance(a, bool) else str(a) for a in allowed)}.")
    for k in ("default", "otherwise"):
        if k in spec and allowed is not None and spec[k] not in allowed:
            c.fail(f"{key}.{k}", f"value {spec[k]!r} is not allowed for `{tname}.{cname}`; allowed: "
                                 f"{', '.join(str(a).lower() if isinstance(a, bool) else str(a) for a in allowed)}.")
