"""The data contract: the 13 canonical tables, their columns and types, and ``validate``.

Column kinds (``Column.kind``):

========== ============================== ===================================
kind       typed Ibis / pandas dtype      accepted raw input
========== ============================== ===================================
string     string                         anything (cast to text)
timestamp  timestamp (naive, UTC)         timestamps with or without offset,
                                          ISO text (offset honoured, none = UTC),
                                          dates
date       date                           dates, timestamps, ISO text
float      float64                        any number, numeric text
int        int64                          whole numbers, whole-number text
bool       boolean                        booleans, 0/1, true/false text
========== ============================== ===================================

Timestamps are UTC: after typing they are naive timestamps holding UTC time.

Two column flags bound what the kit accepts beyond the kind:

- ``money`` — a float money column (amounts, ``mrr``, ``spend``): NaN and
  ±infinity are errors (as in every float column), and so is an absolute value
  above :data:`MAX_MONEY`.
- ``label`` — a text label shown in reports (a source, stage, owner …, not an
  id or key): a value longer than :data:`MAX_LABEL` characters is a warning and
  the typed view (:meth:`revops_lib.sources.Source.table`) cuts it to that
  length (the first ``MAX_LABEL - 1`` characters and "…").
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "Column",
    "TableSpec",
    "TABLES",
    "EVENT_TIME_COLUMNS",
    "PLANNED_TIME_COLUMNS",
    "REFERENCES",
    "MAX_MONEY",
    "MAX_LABEL",
    "Problem",
    "ValidationResult",
    "validate",
]


# The largest absolute money value accepted (one trillion currency units per value).
# A value at the bound has 1e14 cents, well below 2**53 (about 9.0e15): it and its
# cents are exact in a float64 and in the kit's int64 cent sums (retention and
# forecast sum in cents), and an int64 cent sum (up to about 9.2e18) holds 92,000
# values at the bound without overflow. Real deals, MRR, payments and spend are far
# below it; anything above is a unit or parsing mistake (cents or micro-units read as
# units, a lost decimal separator). Targets are not money-bounded (a yearly company
# target in a currency with small units can exceed it) but must be finite.
MAX_MONEY = 1e12

# The longest text label shown as it is (sources, stages, owners …). Longer values are
# a warning and the typed view cuts them to MAX_LABEL characters (MAX_LABEL - 1 and "…"),
# so no report, chart axis or published CSV carries a pasted e-mail or a 1 MB cell.
MAX_LABEL = 200


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # string | timestamp | date | float | int | bool
    required: bool = False
    nonnegative: bool = False
    range: tuple[float, float] | None = None  # inclusive bounds for numbers
    description: str = ""
    money: bool = False  # float money: |value| <= MAX_MONEY (every float column must be finite)
    label: bool = False  # text label for display: at most MAX_LABEL characters


@dataclass(frozen=True)
class TableSpec:
    name: str
    grain: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]  # unique key: duplicates are errors
    used_by: tuple[str, ...] = ()
    # ordered groups of timestamp/date columns that should not go backwards
    order: tuple[tuple[str, ...], ...] = ()
    # (earlier, later) pairs: later < earlier is an error
    strict_order: tuple[tuple[str, str], ...] = ()
    # columns whose values must be one of these (warning otherwise)
    allowed: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # columns holding a period label (validated through revops_lib.periods)
    period_columns: tuple[str, ...] = ()
    # the column that dates a row (coverage, freshness, future checks)
    time_column: str = ""

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    @property
    def optional(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if not c.required)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def labels(self) -> tuple[str, ...]:
        """The text label columns (``Column.label``): cut to :data:`MAX_LABEL` characters for display."""
        return tuple(c.name for c in self.columns if c.label)


def _c(name, kind, required=False, **kw):
    return Column(name, kind, required, **kw)


TABLES: dict[str, TableSpec] = {
    t.name: t
    for t in [
        TableSpec(
            "leads",
            "one lead/contact",
            (
                _c("lead_id", "string", True),
                _c("created_at", "timestamp", True),
                _c("source", "string", True, label=True),
                _c("segment", "string", label=True),
                _c("mql_at", "timestamp"),
                _c("sql_at", "timestamp"),
                _c("opportunity_at", "timestamp"),
                _c("customer_at", "timestamp"),
                _c("account_id", "string"),
                _c("opportunity_id", "string"),
            ),
            key=("lead_id",),
            used_by=("funnel_conversion", "revops_scorecard"),
            order=(("created_at", "mql_at", "sql_at", "opportunity_at", "customer_at"),),
            time_column="created_at",
        ),
        TableSpec(
            "opportunities",
            "one deal",
            (
                _c("opportunity_id", "string", True),
                _c("created_at", "timestamp", True),
                _c("close_date", "date", True),
                _c("is_closed", "bool", True),
                _c("is_won", "bool", True),
                _c("amount", "float", True, nonnegative=True, money=True),
                _c("account_id", "string"),
                _c("owner", "string", label=True),
                _c("team", "string", label=True),
                _c("segment", "string", label=True),
                _c("source", "string", label=True),
                _c("type", "string", label=True),
                _c("stage", "string", label=True),
                _c("forecast_category", "string", label=True),
                _c("product", "string", label=True),
            ),
            key=("opportunity_id",),
            used_by=("funnel_conversion", "forecast_accuracy", "revops_scorecard"),
            allowed={"type": ("new_business", "expansion", "renewal")},
            time_column="created_at",
        ),
        TableSpec(
            "opportunity_history",
            "one change of a deal's state, valid from changed_at until the deal's next row",
            (
                _c("opportunity_id", "string", True),
                _c("changed_at", "timestamp", True),
                _c("stage", "string", True, label=True),
                _c("amount", "float", nonnegative=True, money=True),
                _c("close_date", "date"),
                _c("forecast_category", "string", label=True),
            ),
            key=("opportunity_id", "changed_at"),
            used_by=("funnel_conversion", "forecast_accuracy"),
            time_column="changed_at",
        ),
        TableSpec(
            "forecast_snapshots",
            "one submitted forecast",
            (
                _c("snapshot_date", "date", True),
                _c("forecast_period", "string", True),
                _c("scope", "string", True, label=True),
                _c("category", "string", True, label=True),
                _c("amount", "float", True, nonnegative=True, money=True),
            ),
            key=("snapshot_date", "forecast_period", "scope", "category"),
            used_by=("forecast_accuracy",),
            period_columns=("forecast_period",),
            time_column="snapshot_date",
        ),
        TableSpec(
            "subscriptions",
            "one subscription interval",
            (
                _c("customer_id", "string", True),
                _c("start_date", "date", True),
                _c("mrr", "float", True, nonnegative=True, money=True),
                _c("end_date", "date"),
                _c("subscription_id", "string"),
                _c("product", "string", label=True),
                _c("segment", "string", label=True),
            ),
            key=("subscription_id",),
            used_by=("cohort_retention", "revops_scorecard"),
            strict_order=(("start_date", "end_date"),),
            time_column="start_date",
        ),
        TableSpec(
            "transactions",
            "one payment/order",
            (
                _c("customer_id", "string", True),
                _c("occurred_at", "timestamp", True),
                _c("amount", "float", True, nonnegative=True, money=True),
                _c("transaction_id", "string"),
            ),
            key=("transaction_id",),
            used_by=("cohort_retention",),
            time_column="occurred_at",
        ),
        TableSpec(
            "marketing_spend",
            "spend per day or month per channel",
            (
                _c("date", "date", True),
                _c("channel", "string", True, label=True),
                _c("spend", "float", True, nonnegative=True, money=True),
            ),
            key=("date", "channel"),
            used_by=("revops_scorecard",),
            time_column="date",
        ),
        TableSpec(
            "web_traffic",
            "visits per day per source",
            (
                _c("date", "date", True),
                _c("source", "string", True, label=True),
                _c("sessions", "int", True, nonnegative=True),
                _c("visitors", "int", nonnegative=True),
                _c("conversions", "int", nonnegative=True),
            ),
            key=("date", "source"),
            used_by=("revops_scorecard",),
            time_column="date",
        ),
        TableSpec(
            "email_campaigns",
            "one send",
            (
                _c("campaign_id", "string", True),
                _c("sent_date", "date", True),
                _c("delivered", "int", True, nonnegative=True),
                _c("opens", "int", True, nonnegative=True),
                _c("clicks", "int", True, nonnegative=True),
                _c("leads_generated", "int", nonnegative=True),
                _c("audience", "string", label=True),
            ),
            key=("campaign_id",),
            used_by=("revops_scorecard",),
            allowed={"audience": ("prospects", "customers")},
            time_column="sent_date",
        ),
        TableSpec(
            "activities",
            "one sales activity",
            (
                _c("activity_id", "string", True),
                _c("occurred_at", "timestamp", True),
                _c("type", "string", True, label=True),
                _c("owner", "string", label=True),
                _c("opportunity_id", "string"),
                _c("account_id", "string"),
            ),
            key=("activity_id",),
            used_by=("revops_scorecard",),
            time_column="occurred_at",
        ),
        TableSpec(
            "support_tickets",
            "one ticket",
            (
                _c("ticket_id", "string", True),
                _c("created_at", "timestamp", True),
                _c("customer_id", "string"),
                _c("first_response_at", "timestamp"),
                _c("resolved_at", "timestamp"),
                _c("csat", "int", range=(1, 5)),
                _c("ces", "int", range=(1, 7)),
            ),
            key=("ticket_id",),
            used_by=("revops_scorecard",),
            order=(("created_at", "first_response_at"), ("created_at", "resolved_at")),
            time_column="created_at",
        ),
        TableSpec(
            "reviews",
            "one online review",
            (
                _c("review_id", "string", True),
                _c("posted_at", "timestamp", True),
                _c("rating", "int", True, range=(1, 5)),
                _c("platform", "string", label=True),
                _c("customer_id", "string"),
            ),
            key=("review_id",),
            used_by=("revops_scorecard",),
            time_column="posted_at",
        ),
        TableSpec(
            "targets",
            "one goal",
            (
                _c("period", "string", True),
                _c("metric", "string", True, label=True),
                _c("target", "float", True),
                _c("segment", "string", label=True),
            ),
            key=("period", "metric", "segment"),
            used_by=("revops_scorecard", "forecast_accuracy"),
            period_columns=("period",),
        ),
    ]
}

# Columns that record when something happened (not planned dates such as
# close_date, end_date or a subscription's start_date): values after "now" are impossible.
EVENT_TIME_COLUMNS: dict[str, tuple[str, ...]] = {
    "leads": ("created_at", "mql_at", "sql_at", "opportunity_at", "customer_at"),
    "opportunities": ("created_at",),
    "opportunity_history": ("changed_at",),
    "forecast_snapshots": ("snapshot_date",),
    "subscriptions": (),
    "transactions": ("occurred_at",),
    "marketing_spend": ("date",),
    "web_traffic": ("date",),
    "email_campaigns": ("sent_date",),
    "activities": ("occurred_at",),
    "support_tickets": ("created_at", "first_response_at", "resolved_at"),
    "reviews": ("posted_at",),
    "targets": (),
}

# Planned dates that a row's figures start from: a value after "now" is a warning
# (a contract signed today that starts next month), and the metrics count the row
# only from that date. close_date and end_date are planned dates too; they are not
# checked, since a future value is their normal state.
PLANNED_TIME_COLUMNS: dict[str, tuple[str, ...]] = {
    "subscriptions": ("start_date",),
}

# Foreign keys: (table, column, parent table, parent column). A non-null value of
# the column that is not among the parent column's values is an orphan (warning),
# checked when both tables are present and the parent column holds at least one
# value. There is no accounts table: the accounts known to a source are the
# distinct non-null ``leads.account_id`` values, so ``opportunities.account_id`` is
# checked only when leads carry account ids (a source without them says nothing).
REFERENCES: tuple[tuple[str, str, str, str], ...] = (
    ("leads", "opportunity_id", "opportunities", "opportunity_id"),
    ("opportunities", "account_id", "leads", "account_id"),
    ("opportunity_history", "opportunity_id", "opportunities", "opportunity_id"),
    ("activities", "opportunity_id", "opportunities", "opportunity_id"),
)


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------

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
            [[p.severity, p.table, p.column, p.check, p.count, p.message, ", ".join(p.examples)] for p in self.problems],
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

    def _repr_html_(self) -> str:
        """The problems as an HTML table (the data_quality report shows it): escaped, and e-mail addresses
        hidden (example ids can be addresses) as everywhere in HTML (:func:`revops_lib.text.hide_emails`)."""
        from revops_lib.text import esc, hide_emails

        status = ('<span style="color:#1e6b3a">passed</span>' if self.ok
                  else '<span style="color:#a1281b">failed</span>')
        head = f"<p><b>Validation of {esc(self.source)}</b>: {status} — {self.summary()}</p>"
        if not self.problems:
            return head
        frame = self.to_frame().map(lambda v: hide_emails(v) if isinstance(v, str) else v)
        return head + frame.to_html(index=False, escape=True)

    def raise_for_errors(self) -> None:
        if not self.ok:
            from revops_lib.errors import SchemaError

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
    - ``null_required`` (error): nulls in a required column.
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
      at least one account_id, since the contract has no accounts table).
    - ``empty_table`` (warning): a present table without rows.
    """
    import datetime as _dt

    import ibis
    import ibis.expr.datatypes as idt

    from revops_lib.errors import SourceError
    from revops_lib.periods import is_period_label
    from revops_lib.sources import KIND_DTYPES, coerce, compatible, open_source

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
            if c.required:
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
            g = t.group_by(keycols).aggregate(__k=t.count())
            dup = g.filter(g["__k"] > 1)
            stats = src.con.execute(dup.aggregate(rows=dup["__k"].sum(), keys=dup.count())).iloc[0]
            if int(stats["keys"] or 0):
                ex = src.con.execute(dup.order_by(keycols).select(*keycols).limit(max_examples))
                examples = tuple(_fmt_example(r, keycols) for r in ex.to_dict("records"))
                what = "id" if len(keycols) == 1 else f"key ({', '.join(keycols)})"
                sev = "warning" if name == "opportunity_history" else "error"
                problems.append(Problem(sev, name, ", ".join(keycols), "duplicate_key", int(stats["rows"]),
                                        f"duplicate {what}: {int(stats['keys']):,} value{'s' if int(stats['keys']) != 1 else ''} repeated",
                                        examples))

        # period labels
        for col in spec.period_columns:
            if col in present:
                vals = src.con.execute(raw.select(v=raw[col].cast(idt.string)).distinct().filter(lambda t: t.v.notnull()))["v"]
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


def _orphan_keys(src, names, max_examples: int) -> list[Problem]:
    """``orphan_key`` warnings of :data:`REFERENCES` (one anti-join count per relation, examples when found)."""
    from revops_lib.sources import coerce

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
                else f"not among the accounts known from `{parent}.{pcol}`")
        problems.append(Problem("warning", child, col, "orphan_key", k, f"`{col}` {what}",
                                tuple(_fmt_example(r, key) for r in ex.to_dict("records"))))
    return problems


def _to_naive_utc(ts):
    import pandas as pd

    t = pd.Timestamp(ts)
    if t.tzinfo is not None:
        t = t.tz_convert("UTC").tz_localize(None)
    return t.to_pydatetime()
