"""``validate``: check a source against the data contract (:mod:`revops_lib.schema`).

Every present table is checked in its own engine (one aggregate query per table
plus a few example queries); each problem names the table, the column, a row
count and example ids. ``revops validate`` prints :meth:`ValidationResult.format`.
"""

from __future__ import annotations

from dataclasses import dataclass

from revops_lib.errors import SchemaError, SourceError
from revops_lib.periods import is_period_label
from revops_lib.schema import (
    EVENT_TIME_COLUMNS,
    MAX_LABEL,
    MAX_MONEY,
    PLANNED_TIME_COLUMNS,
    REFERENCES,
    TABLES,
    TableSpec,
)
from revops_lib.sources import KIND_DTYPES, coerce, compatible, open_source

__all__ = ["Problem", "ValidationResult", "validate", "SEVERITIES"]

SEVERITIES = ("error", "warning", "info")


@dataclass(frozen=True)
class Problem:
    """One finding of :func:`validate`.

    ``count`` is the number of rows concerned; ``examples`` up to 5 ids of such
    rows (the table's key; ``k=v`` pairs for a composite key).
    """

    severity: str  # error | warning | info
    table: str
    column: str
    check: str  # missing_column, duplicate_column, wrong_type, null_required, duplicate_key, non_finite,
    #             too_large, negative, out_of_range, stage_order, end_before_start, won_not_closed,
    #             unexpected_value, invalid_period, future, planned_future, long_label, orphan_key,
    #             empty_table (see validate)
    count: int
    message: str
    examples: tuple[str, ...] = ()

    def __str__(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        rows = f"{self.count:,} row{'s' if self.count != 1 else ''}"
        ex = f"; e.g. {', '.join(self.examples)}" if self.examples else ""
        return f"{self.severity.upper():<7} {where}: {self.message} ({rows}{ex})"


@dataclass
class ValidationResult:
    """What :func:`validate` found: problems, row counts of present tables, absent tables."""

    source: str
    problems: list[Problem]
    row_counts: dict[str, int]
    absent: list[str]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings allowed)."""
        return not self.errors

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def to_frame(self):
        """Problems as a DataFrame: severity, table, column, check, count, message, examples."""
        import pandas as pd

        cols = ["severity", "table", "column", "check", "count", "message", "examples"]
        return pd.DataFrame(
            [[p.severity, p.table, p.column, p.check, p.count, p.message, ", ".join(p.examples)]
             for p in self.problems],
            columns=cols,
        )

    def summary(self) -> str:
        e, w = len(self.errors), len(self.warnings)
        return f"{e} error{'s' if e != 1 else ''}, {w} warning{'s' if w != 1 else ''}"

    def format(self) -> str:
        """A human-readable report (what ``revops validate`` prints)."""
        lines = [f"Validated {self.source}"]
        present = ", ".join(f"{n} ({c:,})" for n, c in self.row_counts.items())
        lines.append(f"  tables: {present or 'none'}")
        if self.absent:
            lines.append(f"  absent (reports skip what needs them): {', '.join(self.absent)}")
        for p in self.problems:
            lines.append(str(p))
        lines.append(("OK: " if self.ok else "FAILED: ") + self.summary())
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()

    def raise_for_errors(self) -> None:
        if not self.ok:
            raise SchemaError(f"The data break the contract ({self.summary()}):\n{self.format()}", result=self)


def _examples_expr(t, spec: TableSpec, skip=()):
    key = [k for k in spec.key if k in t.columns and k not in skip]
    if not key:  # no key column present: show the row's first present columns
        key = [c for c in spec.names if c in t.columns and c not in skip][:2]
    return key


def _cut_text(text: str, limit: int = MAX_LABEL) -> str:
    """A text cut to ``limit`` characters: the first ``limit - 1`` and "…" (unchanged when short enough)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fmt_value(v) -> str:
    import pandas as pd

    return "None" if v is None or (not isinstance(v, str) and pd.isna(v)) else _cut_text(str(v))


def _fmt_example(row: dict, key: list[str]) -> str:
    if len(key) == 1:
        return _fmt_value(row[key[0]])
    return " ".join(f"{k}={_fmt_value(row[k])}" for k in key)


def validate(source, *, tables=None, now=None, max_examples: int = 5) -> ValidationResult:
    """Check every present table of a source against the data contract.

    Parameters
    ----------
    source : anything :func:`revops_lib.sources.open_source` accepts
    tables : list of str, optional
        Only these tables (default: all present). Orphan keys of these tables are
        checked against their parent tables when the source has them.
    now : datetime, optional
        The clock for the "in the future" check (default: the current UTC time).
    max_examples : int
        Example ids per problem.

    Returns
    -------
    ValidationResult
        ``.ok`` is False when there is at least one error; ``.format()`` reads well.

    Raises
    ------
    SourceError
        When ``tables`` names a table that is not in the contract.

    Checks (``Problem.check``, severity):

    - ``missing_column`` (error): a required column is absent.
    - ``duplicate_column`` (error; warning for a column outside the contract): a
      CSV header names a column twice (case-insensitively). The column's values
      are ignored (null in the typed view) until the header is fixed.
    - ``wrong_type`` (error): values of the wrong type, e.g. text that is not a
      number, or ``inf`` / ``NaN`` / fractions in an integer count column.
    - ``null_required`` (error): nulls in a required column (``opportunities.close_date``: on a closed deal).
    - ``open_without_close_date`` (warning): open deals without an expected close date.
    - ``duplicate_key`` (error; warning for ``opportunity_history``): duplicate ids / keys.
    - ``non_finite`` (error): NaN or ±infinity in a float column (CSV text
      ``NaN``, ``inf``, ``Infinity``, ``1e309``; IEEE NaN in Parquet). NULL in
      an optional column stays allowed.
    - ``too_large`` (error): money (amounts, ``mrr``, ``spend``) above
      :data:`MAX_MONEY` in absolute value.
    - ``negative`` (error): negative amounts, mrr, spend or counts.
    - ``out_of_range`` (error): ratings outside their scale.
    - ``end_before_start`` (error): ``end_date < start_date``.
    - ``won_not_closed`` (error): ``is_won`` true and ``is_closed`` false.
    - ``invalid_period`` (error): a period label that is not ``YYYY-MM``, ``YYYY-Qn`` or ``YYYY-Www``.
    - ``future`` (error): event times after ``now`` (:data:`EVENT_TIME_COLUMNS`).
    - ``planned_future`` (warning): a subscription that starts after today
      (:data:`PLANNED_TIME_COLUMNS`); the metrics count it from its start.
    - ``stage_order`` (warning): stage timestamps out of order.
    - ``unexpected_value`` (warning): category values outside the allowed list.
    - ``long_label`` (warning): text labels longer than :data:`MAX_LABEL`
      characters (examples are the rows' keys; the typed view cuts them).
    - ``orphan_key`` (warning): a non-null foreign key not found in its parent
      table (:data:`REFERENCES`): history, activities and leads pointing at an
      ``opportunity_id`` that ``opportunities`` does not have; opportunities
      whose ``account_id`` is not among the distinct ``leads.account_id``
      values (the accounts known to the source; checked only when leads has
      at least one account_id, since the contract has no accounts table); quota rows of
      ``targets`` whose ``owner`` or ``team`` no opportunity has.
    - ``empty_table`` (warning): a present table without rows.
    """
    import datetime as _dt

    import ibis
    import ibis.expr.datatypes as idt


    if isinstance(tables, str):
        tables = [tables]
    if tables is not None:
        unknown = [t for t in tables if t not in TABLES]
        if unknown:
            raise SourceError(
                f"Unknown table name(s) {', '.join(f'`{u}`' for u in unknown)} to validate; "
                f"canonical names are: {', '.join(TABLES)}."
            )
    src = open_source(source)
    now = now or _dt.datetime.now(_dt.timezone.utc)
    now_ts = ibis.timestamp(_to_naive_utc(now))
    now_date = ibis.date(_to_naive_utc(now).date())
    names = [n for n in src.names if tables is None or n in tables]
    problems: list[Problem] = []
    counts: dict[str, int] = {}

    for name in names:
        spec = TABLES[name]
        raw = src.raw(name)
        dups = src.duplicate_columns(name)  # column -> times named in a CSV header (its values are ignored)
        present = set(raw.columns) - set(dups)
        usable: dict[str, object] = {}  # column -> typed expression
        checks = []  # (severity, column, check, condition, message, example key or None)

        for c in spec.columns:
            if c.name in dups:
                continue
            if c.name not in present:
                if c.required:
                    problems.append(Problem("error", name, c.name, "missing_column", 0,
                                            f"missing required column `{c.name}` ({c.kind})"))
                continue
            rt = raw[c.name].type()
            if not compatible(rt, c.kind):
                checks.append(("error", c.name, "wrong_type", raw[c.name].notnull(),
                               f"wrong type: stored as {rt}, expected {c.kind}", None))
                continue
            typed = coerce(raw[c.name], c.kind, backend=getattr(src.con, "name", None))
            usable[c.name] = typed
            if not rt.is_null() and rt != KIND_DTYPES[c.kind] and not (c.kind == "timestamp" and rt.is_timestamp()):
                checks.append(("error", c.name, "wrong_type", raw[c.name].notnull() & typed.isnull(),
                               f"values that are not a valid {c.kind}", None))
            if c.required and not (c.open_may_be_null and "is_closed" in present):
                checks.append(("error", c.name, "null_required", raw[c.name].isnull(), "null in a required column",
                               None))
            finite = None
            if c.kind == "float":  # NaN compares above every number: keep it out of the other checks
                nonfinite = typed.isnan() | typed.isinf()
                finite = ~nonfinite
                checks.append(("error", c.name, "non_finite", nonfinite,
                               "values that are not finite numbers (NaN or ±infinity)", None))
            if c.money:
                checks.append(("error", c.name, "too_large", finite & (typed.abs() > MAX_MONEY),
                               f"values larger than {MAX_MONEY:,.0f} in absolute value (the money bound)", None))
            if c.nonnegative:
                cond = typed < 0 if finite is None else finite & (typed < 0)
                checks.append(("error", c.name, "negative", cond, "negative values", None))
            if c.range is not None:
                lo, hi = c.range
                checks.append(("error", c.name, "out_of_range", (typed < lo) | (typed > hi),
                               f"values outside {lo:g}–{hi:g}", None))
            if c.label:
                checks.append(("warning", c.name, "long_label", typed.length() > MAX_LABEL,
                               f"labels longer than {MAX_LABEL} characters (cut to {MAX_LABEL} for display)",
                               _examples_expr(raw, spec, skip=set(spec.labels) | set(dups))))

        for group in spec.order:
            cols = [c for c in group if c in usable]
            for j in range(1, len(cols)):
                for i in range(j):
                    a, b = cols[i], cols[j]
                    checks.append(("warning", b, "stage_order", usable[b] < usable[a], f"`{b}` earlier than `{a}`",
                                   None))
        for a, b in spec.strict_order:
            if a in usable and b in usable:
                checks.append(("error", b, "end_before_start", usable[b] < usable[a], f"`{b}` before `{a}`", None))
        if name == "opportunities" and "is_won" in usable and "is_closed" in usable:
            checks.append(("error", "is_won", "won_not_closed", usable["is_won"] & ~usable["is_closed"],
                           "won but not closed (`is_won` true, `is_closed` false)", None))
        for c in spec.columns:  # e.g. close_date: required on closed deals; an open deal may have none yet
            if not (c.open_may_be_null and c.name in usable and "is_closed" in present):
                continue
            if "is_closed" not in usable:  # is_closed unreadable (its own error): every null is an error
                checks.append(("error", c.name, "null_required", raw[c.name].isnull(), "null in a required column",
                               None))
                continue
            closed = usable["is_closed"].fill_null(True)
            checks.append(("error", c.name, "null_required", raw[c.name].isnull() & closed,
                           "null on a closed deal (only an open deal may lack it)", None))
            checks.append(("warning", c.name, "open_without_close_date", raw[c.name].isnull() & ~closed,
                           "open deals without an expected close date: counted in open pipeline and the deal "
                           "funnel, left out of coverage, slippage, the waterfall and the projection", None))
        for col, allowed in spec.allowed.items():
            if col in usable:
                checks.append(("warning", col, "unexpected_value", usable[col].notnull() & ~usable[col].isin(allowed),
                               f"values other than {', '.join(allowed)}", None))
        for col in EVENT_TIME_COLUMNS.get(name, ()):
            if col in usable:
                lim = now_ts if spec.column(col).kind == "timestamp" else now_date
                checks.append(("error", col, "future", usable[col] > lim, "in the future (after now, UTC)", None))
        for col in PLANNED_TIME_COLUMNS.get(name, ()):
            if col in usable:
                lim = now_ts if spec.column(col).kind == "timestamp" else now_date
                checks.append(("warning", col, "planned_future", usable[col] > lim,
                               "starts after today (planned); counted from its start", None))

        aggs = [raw.count().name("__n")] + [
            ibis.ifelse(cond, 1, 0).sum().name(f"__c{i}") for i, (_, _, _, cond, _, _) in enumerate(checks)
        ]
        row = src.con.execute(raw.aggregate(aggs)).iloc[0]
        n = int(row["__n"])
        counts[name] = n
        if n == 0:
            problems.append(Problem("warning", name, "", "empty_table", 0, "the table has no rows"))
        key = _examples_expr(raw, spec, skip=dups)
        for i, (sev, col, check, cond, msg, ex_key) in enumerate(checks):
            k = int(row[f"__c{i}"] or 0)
            if k:
                ex_key = ex_key or key
                ex = src.con.execute(raw.filter(cond).select(*ex_key).limit(max_examples))
                examples = tuple(_fmt_example(r, ex_key) for r in ex.to_dict("records"))
                problems.append(Problem(sev, name, col, check, k, msg, examples))

        # columns named twice in a CSV header
        for col, times in dups.items():
            file = src.files.get(name, ["?"])[0]
            contract = col.lower() in {c.lower() for c in spec.names}
            problems.append(Problem("error" if contract else "warning", name, col, "duplicate_column", n,
                                    f"the header of `{file}` names `{col}` {times} times: its values are ignored "
                                    f"until the header names it once"))

        # duplicate ids / keys
        keycols = [k for k in spec.key if k in present]
        required_key = [k for k in spec.key if spec.column(k).required]
        if keycols and all(k in present for k in required_key):
            t = raw
            if len(keycols) == 1 and not spec.column(keycols[0]).required:
                t = raw.filter(raw[keycols[0]].notnull())
            first, stats = _duplicate_runs(t, keycols)
            stats = src.con.execute(stats).iloc[0]
            if int(stats["keys"] or 0):
                ex = src.con.execute(first.order_by(keycols).select(*keycols).limit(max_examples))
                examples = tuple(_fmt_example(r, keycols) for r in ex.to_dict("records"))
                what = "id" if len(keycols) == 1 else f"key ({', '.join(keycols)})"
                sev = "warning" if name == "opportunity_history" else "error"
                problems.append(Problem(sev, name, ", ".join(keycols), "duplicate_key", int(stats["rows"]),
                                        f"duplicate {what}: {int(stats['keys']):,} "
                                        f"value{'s' if int(stats['keys']) != 1 else ''} repeated",
                                        examples))

        # period labels
        for col in spec.period_columns:
            if col in present:
                vals = src.con.execute(raw.select(v=raw[col].cast(idt.string)).distinct()
                                       .filter(lambda t: t.v.notnull()))["v"]
                bad = [v for v in vals if not is_period_label(v)]
                if bad:
                    nbad = int(src.con.execute(raw.filter(raw[col].cast(idt.string).isin(bad)).count()))
                    problems.append(Problem("error", name, col, "invalid_period", nbad,
                                            "not a period label (YYYY-MM, YYYY-Qn or YYYY-Www)",
                                            tuple(_cut_text(v) for v in sorted(bad)[:max_examples])))

    problems += _orphan_keys(src, names, max_examples)
    order = {s: i for i, s in enumerate(SEVERITIES)}
    problems.sort(key=lambda p: (order[p.severity], list(TABLES).index(p.table), p.column))
    return ValidationResult(src.description, problems, counts, [n for n in TABLES if n not in src.names])


def _duplicate_runs(t, keycols: list[str]):
    """Duplicate keys of ``t`` by one sort: ``(first rows of each repeated key, a one-row aggregate)``.

    Sorted by the key, equal keys are neighbours: a row whose key equals its predecessor's is an extra copy,
    a row unlike its predecessor but like its successor starts a repeated key. ``rows`` (every row of a
    repeated key) = extra copies + repeated keys. Keys compare null-safely (two nulls are equal, as in a
    ``GROUP BY``). About twice as fast as a ``GROUP BY`` of millions of distinct string ids, which must
    hash and keep every id (validation of demo scale 100: 5 M leads, 5 M activities).
    """
    import ibis

    t = t.select(*keycols, __one=ibis.literal(1))  # the first row has no predecessor, the last no successor
    w = ibis.window(order_by=[t[k] for k in keycols])
    prev = [t[k].identical_to(t[k].lag().over(w)) for k in keycols]
    nxt = [t[k].identical_to(t[k].lead().over(w)) for k in keycols]
    same_prev = ibis.and_(t["__one"].lag().over(w).notnull(), *prev)
    same_next = ibis.and_(t["__one"].lead().over(w).notnull(), *nxt)
    r = t.select(*keycols, __prev=same_prev.fill_null(False), __next=same_next.fill_null(False))
    starts = ~r["__prev"] & r["__next"]
    extra = ibis.ifelse(r["__prev"], 1, 0).sum()
    keys = ibis.ifelse(starts, 1, 0).sum()
    stats = r.aggregate(rows=(extra + keys).fill_null(0), keys=keys.fill_null(0))
    return r.filter(starts), stats


def _orphan_keys(src, names, max_examples: int) -> list[Problem]:
    """``orphan_key`` warnings of :data:`REFERENCES` (one anti-join count per relation, examples when found)."""

    backend = getattr(src.con, "name", None)
    problems = []
    for child, col, parent, pcol in REFERENCES:
        if child not in names or parent not in src.names:
            continue
        craw, praw = src.raw(child), src.raw(parent)
        if (col not in craw.columns or pcol not in praw.columns
                or col in src.duplicate_columns(child) or pcol in src.duplicate_columns(parent)):
            continue
        known = praw.select(__pk=coerce(praw[pcol], "string", backend=backend))
        known = known.filter(known["__pk"].notnull()).distinct()
        t = craw.mutate(__fk=coerce(craw[col], "string", backend=backend))
        t = t.filter(t["__fk"].notnull())
        orphans = t.anti_join(known, t["__fk"] == known["__pk"])
        # one query: the orphans, and whether the parent column holds any value
        one = known.limit(1)
        stats = orphans.aggregate(__n=orphans.count()).cross_join(one.aggregate(__known=one.count()))
        row = src.con.execute(stats).iloc[0]
        k = int(row["__n"] or 0)
        if not k or not int(row["__known"] or 0):  # no parent value (leads without accounts, no deals): no check
            continue
        key = _examples_expr(craw, TABLES[child], skip=src.duplicate_columns(child))
        ex = src.con.execute(orphans.select(*key).limit(max_examples))
        what = (f"not found in `{parent}`" if TABLES[parent].column(pcol).required
                else f"not among the accounts known from `{parent}.{pcol}`" if pcol == "account_id"
                else f"not among the values of `{parent}.{pcol}` (no deal has it)")
        problems.append(Problem("warning", child, col, "orphan_key", k, f"`{col}` {what}",
                                tuple(_fmt_example(r, key) for r in ex.to_dict("records"))))
    return problems


def _to_naive_utc(ts):
    import pandas as pd

    t = pd.Timestamp(ts)
    if t.tzinfo is not None:
        t = t.tz_convert("UTC").tz_localize(None)
    return t.to_pydatetime()
