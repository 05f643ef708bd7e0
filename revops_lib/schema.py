"""The data contract: the 13 canonical tables, their columns and types (``validate`` is in
:mod:`revops_lib.validation`).

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
    "repeated_names",
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
    open_may_be_null: bool = False  # required on closed rows only (`is_closed`): an open deal may lack it


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
                _c("close_date", "date", True, open_may_be_null=True),
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
                _c("owner", "string", label=True),
                _c("team", "string", label=True),
            ),
            key=("period", "metric", "segment", "owner", "team"),
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
# A quota row (``targets.owner`` / ``targets.team``) naming an owner or team that no
# deal has is an orphan too: most often a typo, which would leave the quota unmatched.
REFERENCES: tuple[tuple[str, str, str, str], ...] = (
    ("leads", "opportunity_id", "opportunities", "opportunity_id"),
    ("opportunities", "account_id", "leads", "account_id"),
    ("opportunity_history", "opportunity_id", "opportunities", "opportunity_id"),
    ("activities", "opportunity_id", "opportunities", "opportunity_id"),
    ("targets", "owner", "opportunities", "owner"),
    ("targets", "team", "opportunities", "team"),
)


def repeated_names(header) -> list[list[int]]:
    """The positions of each column name a file's header gives more than once (case and surrounding spaces
    ignored, blank names never), one list per name in header order — what both CSV readers (DuckDB's and
    Spark's) drop as untrustworthy.

    >>> repeated_names(["id", "Source", "x", "source ", ""," "])
    [[1, 3]]
    """
    positions: dict[str, list[int]] = {}
    for i, h in enumerate(header):
        if h.strip():
            positions.setdefault(h.strip().lower(), []).append(i)
    return [p for p in positions.values() if len(p) > 1]
