"""Slices: a source whose tables hold one segment, team, owner, source, product or deal type only.

A *slice* is a filter on the source, not on a metric: :func:`apply` returns a :class:`SlicedSource`
whose tables are filtered, so every metric and report honours the slice without knowing about it.
``revops report --slice segment=enterprise`` builds the reports of one slice, ``--by segment`` one set per
value.

Definitions
-----------

- **Slice.** One or more ``column = value`` conditions on the columns :data:`SLICE_COLUMNS` (``segment``,
  ``team``, ``owner``, ``source``, ``product``, ``type``); several conditions are ANDed (one value per
  column). A value matches a row when it equals the row's typed value exactly (case and spaces count);
  a null never matches. Values are data: they reach the engine as Ibis literals, never as SQL text, and
  are escaped wherever they are shown.
- **Direct tables** (the table has the column, see :data:`DIRECT`): the rows whose column equals the value.
  ``leads``: segment, source; ``opportunities``: every slice column (``type`` is the deal type);
  ``subscriptions``: segment, product; ``activities``: owner (``activities.type`` is the activity type,
  not the deal type); ``targets``: segment, owner, team (when the table has the column).
- **Tables that follow keys.** ``opportunity_history``: the rows of the kept opportunities
  (``opportunity_id``). ``activities`` (for a column it lacks): the rows of a kept opportunity, and the
  rows without an opportunity whose ``account_id`` is the account of a kept opportunity.
  ``transactions``, ``support_tickets``, ``reviews``: the rows of a customer with a kept subscription
  (``customer_id``) — for ``segment`` only, a customer's attribute; a product, a team or an owner is not.
- **Targets.** A target row belongs to the slice when each slice column equals the slice's value (a
  row of another segment, or of the whole company, does not). In the sliced table those columns are
  null: the slice's rows act as the totals, so a report of ``segment = enterprise`` compares with the
  enterprise targets. Company targets never act as the slice's (there is no target rather than a
  wrong one). A slice on a column ``targets`` lacks (``source``, ``product``, ``type``) leaves it out.
- **Forecast snapshots.** A submitted forecast belongs to the slice when its ``scope`` is a team, or
  an owner (a scope that is no team), or ``company``, *all of whose deals* (``opportunities``, every
  period) are in the slice, at least one. So ``segment = enterprise`` keeps the scope of a team that
  sells only to enterprise, and drops ``company`` unless every deal is enterprise.
- **Not sliced.** ``marketing_spend``, ``web_traffic`` and ``email_campaigns`` are company-wide: they are
  left out of every slice. A table that can neither be filtered directly nor follow a key (``leads``
  for a team, ``subscriptions`` for an owner, a table whose column is missing from the file) is left
  out too. A left-out table is *not sliced* rather than absent: :attr:`SlicedSource.not_sliced` says
  why, and the reports name it ("not sliced: company-wide") in place of "needs table …".
- **Names.** A slice's label is ``segment = enterprise`` (several joined by ``and``); its file name
  (:func:`slice_name`) is ``segment-enterprise``: the value lower-cased, letters and digits kept, every
  other run of characters a ``-``, at most 60 characters (a value with no letter or digit gets a short
  hash). Reports of a slice go to ``reports/<period>/<slice name>/``. With ``privacy: masked`` an
  owner or team value is shown and named by its pseudonym (``owner = Rep 3f9a1c``).

>>> import pandas as pd
>>> src = apply({"opportunities": pd.DataFrame({"opportunity_id": ["O1", "O2"], "segment": ["smb", "ent"]})},
...             {"segment": "ent"})
>>> src.to_pandas("opportunities").opportunity_id.tolist()
['O2']
>>> slice_name(parse(["segment=Mid Market"]))
'segment-mid-market'
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from typing import Any, Mapping

import ibis
import ibis.expr.types as ir

from revops_lib.errors import ParameterError
from revops_lib.schema import MAX_LABEL, TABLES
from revops_lib.sources import Source, _Deferred, coerce, compatible, cut_label, open_source, pseudonym_text

__all__ = ["SLICE_COLUMNS", "DIRECT", "COMPANY_WIDE", "CUSTOMER_COLUMNS", "Slice", "parse", "apply", "label",
           "slice_name", "SlicedSource", "distinct_values", "check_column", "not_sliced_sentence"]

#: The columns a slice can filter on, in the order names and labels list them.
SLICE_COLUMNS = ("segment", "team", "owner", "source", "product", "type")

#: The slice columns each table is filtered on directly (when the table has the column).
DIRECT: dict[str, tuple[str, ...]] = {
    "leads": ("segment", "source"),
    "opportunities": SLICE_COLUMNS,
    "subscriptions": ("segment", "product"),
    "activities": ("owner",),
    "targets": ("segment", "owner", "team"),
}

#: Tables that follow the kept opportunities (by ``opportunity_id``; activities also by ``account_id``).
VIA_OPPORTUNITIES = ("opportunity_history", "activities")

#: Tables of customers that follow the kept subscriptions (by ``customer_id``), for customer attributes only.
VIA_SUBSCRIPTIONS = ("transactions", "support_tickets", "reviews")

#: Slice columns that are attributes of a customer (so a customer's payments, tickets and reviews follow).
CUSTOMER_COLUMNS = ("segment",)

#: Tables about the whole company: never sliced.
COMPANY_WIDE = ("marketing_spend", "web_traffic", "email_campaigns")

#: A slice: ``((column, value), …)`` in :data:`SLICE_COLUMNS` order, one value per column.
Slice = tuple[tuple[str, str], ...]

_NAME_LIMIT = 60


def check_column(column: Any, *, option: str = "--slice") -> str:
    """``column`` when it is a slice column, else a :class:`ParameterError` naming the allowed ones."""
    if not isinstance(column, str) or column not in SLICE_COLUMNS:
        raise ParameterError(f"`{option}` column {_show(column)} is not a slice column; slice columns: "
                             f"{', '.join(SLICE_COLUMNS)}.")
    return column


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "…"


def parse(spec: Any) -> Slice:
    """A slice from ``{column: value}``, ``["column=value", …]``, one ``"column=value"`` text or pairs.

    Empty (``None``, ``""``, ``{}``, ``[]``) is no slice: ``()``.

    Raises
    ------
    ParameterError
        For text without ``=``, an unknown column, an empty or overlong value, or a column given twice.

    >>> parse({"team": "smb_sales", "segment": "smb"})
    (('segment', 'smb'), ('team', 'smb_sales'))
    >>> parse("segment")
    Traceback (most recent call last):
    ...
    revops_lib.errors.ParameterError: `--slice` takes COLUMN=VALUE such as segment=enterprise, not 'segment'.
    """
    if spec is None or (isinstance(spec, (str, Mapping, list, tuple)) and not spec):
        return ()
    if isinstance(spec, str):
        spec = [spec]
    pairs: list[tuple[Any, Any]] = []
    if isinstance(spec, Mapping):
        pairs = list(spec.items())
    elif isinstance(spec, (list, tuple)):
        for item in spec:
            if isinstance(item, str):
                if "=" not in item:
                    raise ParameterError(f"`--slice` takes COLUMN=VALUE such as segment=enterprise, not {_show(item)}.")
                col, value = item.split("=", 1)
                pairs.append((col.strip(), value))
            elif isinstance(item, (list, tuple)) and len(item) == 2:
                pairs.append((item[0], item[1]))
            else:
                raise ParameterError(f"A slice is COLUMN=VALUE such as segment=enterprise, not {_show(item)}.")
    else:
        raise ParameterError(f"A slice is a mapping such as {{segment: enterprise}} or COLUMN=VALUE texts, "
                             f"not {_show(spec)}.")
    out: dict[str, str] = {}
    for col, value in pairs:
        check_column(col)
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ParameterError(f"Slice `{col}` = {_show(value)} is not allowed: give one text value.")
        text = str(value)
        if not text.strip():
            raise ParameterError(f"Slice `{col}` has an empty value: give COLUMN=VALUE such as segment=enterprise.")
        if len(text) > MAX_LABEL:
            raise ParameterError(f"Slice `{col}` = {_show(text)} is longer than {MAX_LABEL} characters.")
        if col in out:
            raise ParameterError(f"Slice column `{col}` is given twice ({_show(out[col])} and {_show(text)}): "
                                 "several slices are ANDed, so give one value per column.")
        out[col] = text
    return tuple((c, out[c]) for c in SLICE_COLUMNS if c in out)


def _shown_value(column: str, value: str, privacy: str) -> str:
    if privacy == "masked" and column in ("owner", "team"):
        return pseudonym_text(value, "Rep " if column == "owner" else "Team ")
    return value


def label(spec: Any, privacy: str = "names") -> str:
    """How a slice is named in a report: ``segment = enterprise and team = smb_sales`` ('' for none).

    >>> label({"segment": "enterprise"})
    'segment = enterprise'
    """
    return " and ".join(f"{c} = {_shown_value(c, v, privacy)}" for c, v in parse(spec))


def _slug(value: str) -> str:
    folded = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode("ascii").lower()
    slug = re.sub(r"[^a-z0-9]+", "-", folded).strip("-")[:_NAME_LIMIT].strip("-")
    return slug or "v" + hashlib.sha256(value.encode("utf-8")).hexdigest()[:10]


def slice_name(spec: Any, privacy: str = "names") -> str:
    """The slice's folder name under ``reports/<period>/`` (a safe file name; '' for no slice).

    >>> slice_name({"segment": "Enterprise", "owner": "Zoë O'Neil"})
    'segment-enterprise_owner-zoe-o-neil'
    """
    return "_".join(f"{c}-{_slug(_shown_value(c, v, privacy))}" for c, v in parse(spec))


# -- the sliced source -----------------------------------------------------------------------------------


def _typed(raw: ir.Table, table: str, column: str, backend: str | None) -> ir.Value:
    """One column of a raw table as the typed view shows it (:func:`revops_lib.sources.typed_table`); a column
    outside the contract (``targets.team`` before the contract has it) as text."""
    from revops_lib.sources import KIND_DTYPES

    spec = TABLES[table]
    if column not in spec.names:
        return raw[column].cast("string") if column in raw.columns else ibis.null("string")
    c = spec.column(column)
    if column not in raw.columns or not compatible(raw[column].type(), c.kind):
        return ibis.null(KIND_DTYPES[c.kind])
    col = coerce(raw[column], c.kind, backend=backend)
    return cut_label(col) if c.label else col


def _keys(raw: ir.Table, table: str, column: str, backend: str | None) -> ir.Column:
    """The non-null typed values of one column, as text (for ``isin``)."""
    t = raw.select(k=_typed(raw, table, column, backend).cast("string"))
    return t.filter(t.k.notnull()).k


def _matches(raw: ir.Table, table: str, conditions: Slice, backend: str | None) -> ir.BooleanValue:
    pred = ibis.literal(True)
    for col, value in conditions:
        pred = pred & (_typed(raw, table, col, backend) == ibis.literal(value, type="string")).fill_null(False)
    return pred


class SlicedSource(Source):
    """The tables of a :class:`~revops_lib.sources.Source` that belong to a slice (see the module docstring).

    ``base`` is the unsliced source, ``slice`` the conditions, ``not_sliced`` maps each table of ``base``
    left out of the slice to why ("company-wide", "no `team` column" …).
    """

    def __init__(self, base: Source, conditions: Slice):
        if not conditions:
            raise ParameterError("A sliced source needs at least one COLUMN=VALUE condition.")
        self.base = base
        self.slice = conditions
        self.backend = getattr(base.con, "name", None)
        self.not_sliced: dict[str, str] = {}
        plans: dict[str, dict[str, str]] = {}
        for name in base.names:
            plan, why = self._plan(name)
            if why:
                self.not_sliced[name] = why
            else:
                plans[name] = plan
        for name in list(plans):  # a table that follows a key needs that table sliced
            needs = {"via_opportunities": "opportunities", "via_subscriptions": "subscriptions",
                     "scopes": "opportunities"}
            for how in set(plans[name].values()):
                parent = needs.get(how)
                if parent and parent not in plans:
                    why = (f"its rows follow `{parent}`, which is absent" if not base.has(parent)
                           else f"its rows follow `{parent}`, which is not sliced")
                    self.not_sliced[name] = why
                    plans.pop(name)
                    break
        self.plans = plans
        raw = {name: _Deferred(name, f"the slice {label(conditions)}", functools.partial(self._sliced_raw, name))
               for name in plans}
        super().__init__(base.con, raw, description=f"{base.description}, slice {label(conditions, base.privacy)}",
                         files=base.files, location=base.location, privacy=base.privacy)
        self._duplicates = base._duplicates

    # -- which rule each table follows -------------------------------------------------------------------

    def _plan(self, name: str) -> tuple[dict[str, str], str]:
        """``({column: how}, '')`` with how in ``direct``, ``via_opportunities``, ``via_subscriptions``,
        ``scopes``; or ``({}, why not sliced)``."""
        if name in COMPANY_WIDE:
            return {}, "company-wide"
        columns = set(self.base.raw(name).columns) if name in DIRECT else set()
        plan = {}
        for col, _ in self.slice:
            if col in DIRECT.get(name, ()) and col in columns:
                plan[col] = "direct"
            elif name in VIA_OPPORTUNITIES:
                plan[col] = "via_opportunities"
            elif name in VIA_SUBSCRIPTIONS:
                if col not in CUSTOMER_COLUMNS:
                    return {}, f"its rows are per customer, not per {col}"
                plan[col] = "via_subscriptions"
            elif name == "forecast_snapshots":
                plan[col] = "scopes"
            else:
                return {}, f"no `{col}` column"
        return plan, ""

    # -- the filtered tables -----------------------------------------------------------------------------

    def _direct(self, name: str) -> Slice:
        return tuple((c, v) for c, v in self.slice if self.plans[name].get(c) == "direct")

    def _sliced_raw(self, name: str) -> ir.Table:
        raw = self.base.raw(name)
        plan = self.plans[name]
        b = self.backend
        t = raw.filter(_matches(raw, name, self._direct(name), b)) if self._direct(name) else raw
        hows = set(plan.values())
        if "via_opportunities" in hows:
            opps = self.raw("opportunities")
            in_opp = _typed(t, name, "opportunity_id", b).cast("string").isin(
                _keys(opps, "opportunities", "opportunity_id", b)).fill_null(False)
            if name == "activities":
                no_opp = _typed(t, name, "opportunity_id", b).isnull()
                in_account = _typed(t, name, "account_id", b).cast("string").isin(
                    _keys(opps, "opportunities", "account_id", b)).fill_null(False)
                in_opp = in_opp | (no_opp & in_account)
            t = t.filter(in_opp)
        if "via_subscriptions" in hows:
            subs = self.raw("subscriptions")
            t = t.filter(_typed(t, name, "customer_id", b).cast("string").isin(
                _keys(subs, "subscriptions", "customer_id", b)).fill_null(False))
        if "scopes" in hows:
            scope = _typed(t, name, "scope", b)
            kept = self.forecast_scopes()
            t = t.filter(scope.isin(kept).fill_null(False) if kept else ibis.literal(False))
        if name == "targets":  # the slice's rows act as its totals
            t = t.mutate(**{c: ibis.null(raw[c].type()) for c, _ in self._direct(name)})
        return t

    @functools.cached_property
    def _forecast_scopes(self) -> list[str]:
        """The forecast scopes all of whose deals are in the slice (one query)."""
        b = self.backend
        raw = self.base.raw("opportunities")
        inside = _matches(raw, "opportunities", self.slice, b)
        o = raw.select(team=_typed(raw, "opportunities", "team", b), owner=_typed(raw, "opportunities", "owner", b),
                       out=ibis.ifelse(inside, 0, 1))
        total = o.aggregate(n=o.count(), out=o.out.sum())
        parts = [total.select(kind=ibis.literal("company"), name=ibis.literal("company"), n=total.n, out=total.out)]
        for kind in ("team", "owner"):
            k = o.filter(o[kind].notnull())
            g = k.group_by(name=k[kind]).aggregate(n=k.count(), out=k.out.sum())
            parts.append(g.select(kind=ibis.literal(kind), name=g.name, n=g.n, out=g.out))
        df = ibis.union(*parts, distinct=False).to_pandas()
        teams = set(df.loc[df.kind == "team", "name"])
        ok = df[(df.n > 0) & (df.out == 0)]
        return sorted({str(r.name) for r in ok.itertuples(index=False)
                       if r.kind != "owner" or r.name not in teams})

    def forecast_scopes(self) -> list[str]:
        """The ``forecast_snapshots`` scopes kept: ``company``, teams and owners (a scope that is no team) all
        of whose deals are in the slice, at least one (unmasked names)."""
        return list(self._forecast_scopes)

    # -- what changes with the slice -----------------------------------------------------------------------

    def with_privacy(self, privacy: str) -> "Source":
        return SlicedSource(self.base.with_privacy(privacy), self.slice)

    def sliced(self, spec: Any) -> "SlicedSource":
        more = parse(spec)
        mine = dict(self.slice)
        for c, v in more:
            if c in mine and mine[c] != v:
                raise ParameterError(f"Slice column `{c}` is given twice ({_show(mine[c])} and {_show(v)}).")
        return SlicedSource(self.base, parse({**mine, **dict(more)}))

    @property
    def label(self) -> str:
        """The slice as a report names it (pseudonyms for owners and teams under ``privacy: masked``)."""
        return label(self.slice, self.privacy)

    @property
    def name(self) -> str:
        """The slice's folder name (:func:`slice_name`)."""
        return slice_name(self.slice, self.privacy)

    def fingerprint(self) -> str:
        h = hashlib.sha256(self.base.fingerprint().encode())
        h.update(repr(self.slice).encode())
        return h.hexdigest()[:16]

    def __repr__(self) -> str:
        out = f"; not sliced: {', '.join(self.not_sliced)}" if self.not_sliced else ""
        return f"<SlicedSource {self.description}: {len(self.names)} tables{out}>"


def apply(source: Any, spec: Any) -> Source:
    """The source of a slice (:class:`SlicedSource`); the source itself when ``spec`` is empty.

    ``source``: anything :func:`~revops_lib.sources.open_source` takes; ``spec``: anything :func:`parse` takes.
    """
    src = open_source(source)
    conditions = parse(spec)
    if not conditions:
        return src
    if isinstance(src, SlicedSource):
        return src.sliced(conditions)
    return SlicedSource(src, conditions)


def not_sliced_sentence(source: Any) -> str:
    """What a slice leaves out, as a report's header says it (plain text, table names in backticks):
    "Not sliced, so left out: `marketing_spend`, `web_traffic` and `email_campaigns` (company-wide)."
    ('' for a source that is not a slice or leaves nothing out)."""
    gone = getattr(source, "not_sliced", None) or {}
    by_why: dict[str, list[str]] = {}
    for table, why in gone.items():
        by_why.setdefault(why, []).append(f"`{table}`")
    groups = [(names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]) + f" ({why})"
              for why, names in by_why.items()]
    return "Not sliced, so left out: " + "; ".join(groups) + "." if groups else ""


def distinct_values(source: Any, column: str) -> list[str]:
    """Every value of a slice column in the tables filtered on it directly (``leads``, ``opportunities``,
    ``subscriptions``; not ``activities`` or ``targets``), sorted, without nulls — one query.

    What ``revops report --by COLUMN`` builds a set of reports for. ``source`` may be sliced already.
    """
    check_column(column, option="--by")
    src = open_source(source)
    backend = getattr(src.con, "name", None)
    parts = []
    for name in ("leads", "opportunities", "subscriptions"):
        if column in DIRECT[name] and src.has(name) and column in src.raw(name).columns:
            raw = src.raw(name)
            parts.append(raw.select(v=_typed(raw, name, column, backend)))
    if not parts:
        return []
    u = parts[0] if len(parts) == 1 else ibis.union(*parts, distinct=True)
    u = u.filter(u.v.notnull()).distinct()
    return sorted(str(v) for v in u.to_pandas()["v"])

