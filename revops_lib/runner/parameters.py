"""Report parameters: only the names a notebook declares, each checked against its declared type.

A notebook declares its parameters in the cell tagged ``parameters`` with literal,
type-annotated defaults (``stale_days: int = 90  # help``); papermill reads them
(:func:`papermill.inspect_notebook`). Before any kernel starts, the report runner
checks every value that would reach a notebook — from ``parameters/*.yaml`` and from
``revops report -p NAME VALUE`` — against that declaration:

- a name no selected notebook declares is an error (papermill itself only warns, and
  pastes the name into the code it runs);
- ``period``, ``source``, ``preset``, ``output_dir`` and ``slices`` are set by the runner (``--slice``), never by
  ``-p``;
- a value is converted to the declared type (``-p stale_days 30`` is the int 30, while
  ``-p period 2026`` stays text) or rejected with a message naming the parameter, the
  value and the allowed type;
- a few parameters take only some values (:data:`CHOICES`, :data:`PATTERNS`, :data:`RANGES`; ``as_of``
  must be a date or time that exists).

>>> coerce_value("stale_days", "30", "int")
30
>>> coerce_value("stale_days", "abc", "int")
Traceback (most recent call last):
...
revops_lib.errors.ParameterError: Parameter `stale_days` = 'abc' is not a whole number (declared `stale_days: int`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from revops_lib.errors import ParameterError
from revops_lib.present.context import CHOICES, PATTERNS, RANGES, check_value
from revops_lib.present.context import show_value as _show

__all__ = ["Declared", "declared_parameters", "coerce_value", "check_value", "RUNNER_SET", "CHOICES", "PATTERNS",
           "RANGES"]

#: Set by the runner from its own options; ``-p`` cannot override them.
RUNNER_SET = {"period": "--period", "source": "--source", "output_dir": "--out", "preset": "--preset",
              "slices": "--slice"}

_TYPE_WORDS = {"int": "a whole number", "float": "a number", "bool": "true or false", "str": "text",
               "list": "a list such as [a, b]", "dict": "a mapping such as {a: 1}"}


@dataclass(frozen=True)
class Declared:
    """One parameter of a notebook's ``parameters`` cell."""

    name: str
    type: str  # str, int, float, bool, list, dict (papermill's inferred_type_name) or "None"
    default: str
    help: str = ""


@lru_cache(maxsize=64)
def _inspect(path: str, mtime_ns: int) -> dict[str, Declared]:
    import papermill as pm

    try:
        found = pm.inspect_notebook(path)
    except Exception as exc:  # a notebook without a kernelspec or a broken parameters cell
        raise ParameterError(f"Cannot read the parameters cell of `{path}`: {exc}") from exc
    return {name: Declared(name, str(p.get("inferred_type_name") or "None"), str(p.get("default")),
                           str(p.get("help") or ""))
            for name, p in found.items()}


def declared_parameters(notebook_path) -> dict[str, Declared]:
    """The parameters a notebook declares, by name (read once per file version)."""
    p = Path(notebook_path)
    return _inspect(str(p), p.stat().st_mtime_ns)


def coerce_value(name: str, value, type_name: str):
    """``value`` (text from the command line, or a YAML / Python value) as the declared type.

    Raises
    ------
    ParameterError
        Naming the parameter, the value and the allowed type.
    """
    def bad(extra: str = ""):
        what = _TYPE_WORDS.get(type_name, type_name)
        return ParameterError(f"Parameter `{name}` = {_show(value)} is not {what} (declared `{name}: {type_name}`)"
                              f"{extra}.")

    if type_name in ("None", "", "Any"):  # no annotation: keep what was given
        return value
    if type_name == "str":
        if isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
            raise bad()
        if isinstance(value, (int, float)):
            return str(value)
        return str(value)
    if type_name == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.strip().lower() in ("true", "yes", "1")
        raise bad()
    if type_name == "int":
        if isinstance(value, bool):
            raise bad()
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
            return int(value.strip())
        raise bad()
    if type_name == "float":
        if isinstance(value, bool):
            raise bad()
        if isinstance(value, (int, float)):
            v = float(value)
        elif isinstance(value, str):
            try:
                v = float(value.strip())
            except ValueError:
                raise bad() from None
        else:
            raise bad()
        if not math.isfinite(v):
            raise bad(" (it must be finite)")
        return v
    if type_name in ("list", "dict"):
        want = list if type_name == "list" else dict
        if isinstance(value, str):
            import yaml

            try:
                value_parsed = yaml.safe_load(value)
            except yaml.YAMLError:
                raise bad() from None
        else:
            value_parsed = value
        if not isinstance(value_parsed, want):
            raise bad()
        return value_parsed
    return value


def checked(notebook: str, notebook_path, values: dict, *, where: dict | None = None) -> dict:
    """The values a notebook receives: its declared names only, each typed and checked.

    ``values`` are the layered parameters; names the notebook does not declare are dropped
    (a shared ``parameters/default.yaml`` key may apply to some notebooks only). ``where``
    maps a name to where its value came from, for the message.
    """
    decl = declared_parameters(notebook_path)
    out = {}
    for name, value in values.items():
        if name not in decl:
            continue
        try:
            v = coerce_value(name, value, decl[name].type)
            check_value(name, v)
        except ParameterError as exc:
            src = (where or {}).get(name)
            raise ParameterError(f"{exc} Notebook `{notebook}`" + (f", from {src}" if src else "") + ".") from None
        out[name] = v
    return out


def check_overrides(overrides: dict, notebooks: dict) -> None:
    """Reject ``-p`` names that the runner sets itself or that no selected notebook declares.

    ``notebooks`` maps a notebook name to its path.
    """
    for name in overrides:
        if name in RUNNER_SET:
            raise ParameterError(f"Parameter `{name}` is set by the runner: use `{RUNNER_SET[name]}` instead of -p.")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(name)):
            raise ParameterError(f"Parameter name {_show(name)} is not a name (letters, digits and _ only).")
    known: dict[str, list[str]] = {}
    for nb, path in notebooks.items():
        for name in declared_parameters(path):
            known.setdefault(name, []).append(nb)
    unknown = [n for n in overrides if n not in known]
    if unknown:
        import difflib

        hints = []
        for u in unknown:
            close = difflib.get_close_matches(u, list(known), n=1)
            hints.append(f"`{u}`" + (f" (did you mean `{close[0]}`?)" if close else ""))
        allowed = sorted(n for n in known if n not in RUNNER_SET)
        raise ParameterError(f"Unknown parameter {', '.join(hints)}: no selected notebook declares it. "
                             f"Parameters: {', '.join(allowed)}.")
