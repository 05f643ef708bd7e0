"""The ``revops`` command: demo data, validation and reports.

Run ``revops --help`` or ``revops <command> --help``.
"""

from __future__ import annotations

import argparse
import sys
import time

from revops_lib.errors import ParameterError, RevOpsError
from revops_lib.version import __version__

SOURCE_ENV = "REVOPS_SOURCE"  # as revops_lib.sources.SOURCE_ENV (not imported here: --help stays fast)


def _source(args) -> str:
    import os

    return args.source or os.environ.get(SOURCE_ENV) or "data/demo"

EPILOG = """examples:
  revops demo-data --out data/demo              # a realistic synthetic company (36 months)
  revops validate --source data/demo            # check the data against the contract
  revops report --period 2026-10                # build the reports of October 2026
  revops report --period 2026-Q3 -p as_of 2026-10-05
  revops report --slice segment=enterprise      # the reports of one segment, in reports/<period>/segment-enterprise/
  revops report --by team                       # one set of reports per team
  revops import --preset salesforce --from exports/sfdc --out data/crm
  revops report --source postgres://ana@db/dw --preset fivetran_salesforce,fivetran_stripe

  revops report --period 2026-10 --engine spark  # the same reports computed by Apache Spark

sources: a folder of Parquet/CSV files (one per table), a .duckdb file, an
Ibis URL such as postgres://user@localhost/crm, or a Spark Connect URL such as
sc://spark.local:15002/crm. See DESIGN.md for the tables.
"""


PRESET_HELP = ("read the source through mapping presets at query time, nothing copied: fivetran_salesforce, "
               "fivetran_hubspot, fivetran_stripe for the tables Fivetran lands in a database (schemas salesforce, "
               "hubspot, stripe; the source is its URL or .duckdb file, or a Spark Connect URL sc://host:15002 "
               "whose catalog has databases of those names), salesforce, hubspot, stripe for a folder of "
               "exports; several, comma-separated, when they feed different tables (a CRM and a billing preset); "
               "an item ending in .yaml is your mapping file (e.g. `extends: fivetran_salesforce` with "
               "`schema: salesforce_prod`). See docs/mappings.md")


def _progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def cmd_demo_data(args) -> int:
    from revops_lib import demo

    t0 = time.perf_counter()
    counts = demo.build(args.out, seed=args.seed, scale=args.scale, end=args.end, progress=_progress)
    width = max(len(n) for n in counts)
    for name, n in counts.items():
        print(f"  {name:<{width}}  {n:>12,} rows")
    print(f"Demo data written to {args.out} in {time.perf_counter() - t0:.1f} s "
          f"(seed {args.seed}, scale {args.scale:g}).")
    return 0


def cmd_validate(args) -> int:
    from revops_lib.validation import validate

    tables = [t.strip() for t in args.tables.split(",") if t.strip()] if args.tables else None
    source = _source(args)
    if args.preset:
        from revops_lib.importers.live import open_mapped_source

        spark = source.lower().startswith("sc://")
        if args.engine == "spark" and not spark:
            raise ParameterError("`--preset` with `--engine spark` reads the landed tables of a Spark Connect "
                                 "server: give its URL (`--source sc://host:15002`); a folder of exports or a "
                                 "database URL is read through presets without `--engine spark`.")
        mapped = open_mapped_source(source, args.preset, settings=_spark_settings(args) if spark else None)
        print(mapped.format())
        print()
        source = mapped.source
    elif args.engine == "spark" or source.lower().startswith("sc://"):
        from revops_lib.sources import open_source

        source = open_source(source, engine="spark", settings=_spark_settings(args))
    result = validate(source, tables=tables)  # unknown table names: an error (exit 2)
    print(result.format())
    if args.strict and result.warnings:
        return 1
    return result.exit_code


def cmd_import(args) -> int:
    from revops_lib.importers import import_folder
    from revops_lib.validation import validate

    if args.preset is None and args.mapping is None:
        raise RevOpsError("Give `--preset` (salesforce, hubspot, stripe) or `--mapping FILE`, or both.")
    result = import_folder(args.source_dir, args.out, preset=args.preset, mapping=args.mapping, progress=_progress)
    print(result.format())
    check = validate(str(result.out))
    print()
    print(check.format())
    return check.exit_code


def _parse_params(pairs) -> dict:
    """``-p NAME VALUE`` pairs as given: each value is read as its notebook declares it (see
    :mod:`revops_lib.runner.parameters`), so ``-p period 2026`` stays text and ``-p stale_days 30`` is a number."""
    return {name: value for name, value in pairs or []}


def _spark_settings(args):
    from revops_lib.spark import SparkSettings

    conf = {}
    for item in args.spark_conf or []:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise RevOpsError(f"`--spark-conf` takes KEY=VALUE (e.g. spark.sql.adaptive.enabled=true), not {item!r}.")
        conf[key.strip()] = value.strip()
    return SparkSettings(shuffle_partitions=args.spark_shuffle_partitions, driver_memory=args.spark_driver_memory,
                         conf=conf, java_options=args.spark_java_options)


def _engine_options(parser) -> None:
    parser.add_argument("--engine", choices=["duckdb", "spark"], default=None,
                        help="what reads a folder source: duckdb (embedded, the default) or spark (a folder or a "
                             "lakehouse path such as s3a://bucket/lake, on $SPARK_REMOTE's Spark Connect server when "
                             "set, else on a local one the run starts); a sc://host:15002[/database] source is "
                             "always read by Spark. Needs pip install -e '.[spark]' and Java 17")
    parser.add_argument("--spark-shuffle-partitions", type=int, default=None, metavar="N",
                        help="Spark: spark.sql.shuffle.partitions of the sessions (default: 2 x cores locally)")
    parser.add_argument("--spark-driver-memory", default=None, metavar="SIZE",
                        help="Spark: driver memory of the local server the run starts, e.g. 4g (default: Spark's, 1g)")
    parser.add_argument("--spark-conf", action="append", default=None, metavar="KEY=VALUE",
                        help="Spark: another spark.* setting of the sessions and the local server (repeatable)")
    parser.add_argument("--spark-java-options", default=None, metavar="OPTIONS",
                        help="Spark: JVM options of the local server the run starts, given with = as in "
                             "--spark-java-options='-XX:+UseSerialGC -XX:TieredStopAtLevel=1' (a third less CPU "
                             "on small data)")


def cmd_report(args) -> int:
    from revops_lib import runner
    from revops_lib.periods import default_period, parse_period, periods_between

    notebooks = args.notebooks.split(",") if args.notebooks is not None else None
    periods = None
    if args.from_period or args.to_period:
        if not (args.from_period and args.to_period):
            raise RevOpsError("Give both `--from` and `--to` (e.g. --from 2026-01 --to 2026-10).")
        if args.period:
            raise RevOpsError("Give either `--period` or `--from`/`--to`, not both.")
        periods = periods_between(args.from_period, args.to_period)
    from revops_lib.runner.slicing import check_request

    check_request(args.slices, args.by)  # a bad --slice or --by stops here, before anything is opened
    period = args.period
    if period is None and periods is None:
        period = default_period(kind=args.cadence).label
    else:
        period = parse_period(period).label if period else None
    sets: list[str] = []  # the folder of each set of reports built ('' for the whole source)
    status = runner.run(
        period=period,
        periods=periods,
        source=_source(args),
        notebooks=notebooks,
        out=args.out,
        jobs=args.jobs,
        params=_parse_params(args.param),
        force=args.force,
        progress=_progress,
        preset=args.preset,
        engine=args.engine,
        spark_settings=_spark_settings(args) if args.engine == "spark" or _source(args).startswith("sc://") else None,
        slices=args.slices,
        by=args.by,
        built_sets=sets,
    )
    if args.pdf and status == 0:
        from revops_lib.runner.pdf import build_pack

        for label in [p.label for p in periods] if periods else [period]:
            for name in sets or [""]:  # the whole source (""), or each slice built
                where = f"{label}/{name}" if name else label
                _progress(f"Printing the PDF pack of {where} …")
                _progress(f"PDF pack → {build_pack(args.out, label, slice_name=name)}")
    elif args.pdf:
        _progress("No PDF pack: the build did not succeed (the last good pack is untouched).")
    return status


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="revops",
        description="revops-kit: RevOps reports (funnel, forecast accuracy, retention, scorecard) "
        "from your CRM, billing and marketing data.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"revops-kit {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    d = sub.add_parser(
        "demo-data",
        help="build the demo company's data (Parquet files)",
        description="Build a realistic synthetic B2B SaaS company: 36 months ending with the last "
        "complete month, all 13 contract tables, one Parquet file each. Same seed, same files.",
    )
    d.add_argument("--out", required=True, metavar="DIR",
                   help="folder to write: a new or empty folder, or one an earlier `revops demo-data` made "
                        "(marked by its .revops-demo file), which is then replaced. Any other folder, the "
                        "current folder, its parents, the home folder and / are refused and left untouched")
    d.add_argument("--seed", type=int, default=42, metavar="N", help="random seed (default: 42)")
    d.add_argument("--scale", type=float, default=1.0, metavar="X",
                   help="volume multiplier: 1 = about 50k leads, 5k opportunities, 2k customers; "
                        "100 = millions of rows for benchmarks (default: 1)")
    d.add_argument("--end", default=None, metavar="YYYY-MM-DD",
                   help="exclusive end of the data (default: first day of the current month)")
    d.set_defaults(func=cmd_demo_data)

    v = sub.add_parser(
        "validate",
        help="check a source against the data contract",
        description="Check every present table against the data contract: required columns, repeated CSV "
        "headers, types, duplicate ids, nulls, non-finite or too large money, negative amounts, stage order, "
        "end before start, rating ranges, future dates, period labels, long labels, orphan keys. Prints "
        "table, column, row count and example ids per problem. With --preset the source is read through the "
        "mappings first, and what each mapped (table ← object), could not map (a missing table or column) and "
        "the values no map knows (with row counts) are printed before the checks. "
        "Exit status 1 when there are errors, 0 with warnings only.",
    )
    v.add_argument("--source", default=None, metavar="S",
                   help=f"folder of Parquet/CSV files, .duckdb file or Ibis URL (default: ${SOURCE_ENV} when set, "
                        f"else data/demo)")
    v.add_argument("--preset", default=None, metavar="A,B", help=PRESET_HELP)
    v.add_argument("--tables", default=None, metavar="T1,T2",
                   help="only these tables (canonical names; an unknown name is an error)")
    v.add_argument("--strict", action="store_true", help="exit 1 on warnings too")
    _engine_options(v)
    v.set_defaults(func=cmd_validate)

    r = sub.add_parser(
        "report",
        help="run the report notebooks for a period and render HTML",
        description="Validate the source, run each notebook with Papermill in a real Jupyter kernel and "
        "render self-contained HTML (no code) into OUT/<period>/. Parameters are layered: "
        "parameters/default.yaml, parameters/<notebook>.yaml, parameters/<period>.yaml, then -p. With --preset "
        "the source is a warehouse (or a folder of exports) read through mapping presets at query time: every "
        "notebook's kernel opens the same mapped source, and nothing is copied.",
    )
    r.add_argument("--period", default=None, metavar="P",
                   help="YYYY-MM, YYYY-Qn or YYYY-Www (default: the last complete month)")
    r.add_argument("--cadence", choices=["week", "month", "quarter"], default="month",
                   help="without --period: report the last complete week, month or quarter (default: month)")
    r.add_argument("--from", dest="from_period", default=None, metavar="P",
                   help="first period of a backfill (with --to): every period from P to --to, in parallel")
    r.add_argument("--to", dest="to_period", default=None, metavar="P", help="last period of a backfill")
    r.add_argument("--source", default=None, metavar="S",
                   help=f"data source (default: ${SOURCE_ENV} when set, else data/demo); a password is best given "
                        f"in ${SOURCE_ENV} or PGPASSWORD / ~/.pgpass rather than on the command line")
    r.add_argument("--preset", default=None, metavar="A,B", help=PRESET_HELP)
    r.add_argument("--notebooks", default=None, metavar="A,B", help="only these notebooks (default: all)")
    r.add_argument("--out", default="reports", metavar="DIR",
                   help="output folder, created when absent; earlier reports in it are kept (default: reports). "
                        "Refused: a file, a read-only folder, a folder whose index.html the kit did not write, "
                        "the source folder or a folder inside it, and the current folder, its parents, the home "
                        "folder and / unless they are empty or hold earlier reports")
    r.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="notebooks run at once (default: number of cores)")
    r.add_argument("-p", "--param", nargs=2, action="append", metavar=("NAME", "VALUE"),
                   help="override a notebook parameter, e.g. -p as_of 2026-11-05 (repeatable)")
    r.add_argument("--slice", dest="slices", action="append", default=None, metavar="COLUMN=VALUE",
                   help="only the rows of a slice, e.g. --slice segment=enterprise; repeatable (ANDed). Columns: "
                        "segment, team, owner, source, product, type. Reports go to OUT/<period>/<slice>/ "
                        "(e.g. segment-enterprise); tables a slice cannot filter (marketing spend, web traffic, "
                        "email) are left out and the reports say so")
    r.add_argument("--by", default=None, metavar="COLUMN",
                   help="one set of reports per value of COLUMN (within --slice), built in parallel, e.g. --by segment")
    r.add_argument("--force", action="store_true", help="rebuild even when nothing changed")
    _engine_options(r)
    r.add_argument("--pdf", action="store_true",
                   help="also print <out>/<period>/<period>-pack.pdf: the executive summary and every report; "
                        "with --slice/--by one pack per slice, in its folder (needs Chromium: make system-deps)")
    r.set_defaults(func=cmd_report)

    i = sub.add_parser(
        "import",
        help="map a CRM or billing export (Salesforce, HubSpot, Stripe) to the contract tables",
        description=("Read a folder of exported CSV files (one per object, e.g. Opportunity.csv, deals.csv, "
                     "subscriptions.csv; matched by object name, case-insensitively) or the tables a connector "
                     "landed in a database (--from postgres://…, a .duckdb file, sc://…; with a fivetran_* "
                     "preset), map them to the contract with a preset and/or your own mapping file, write one "
                     "Parquet file per contract table into OUT, then validate OUT. Prints what was mapped (table ←"
                     " object, rows), what could not be (missing columns, values no map knows, with row counts) "
                     "and which reports the result can feed. Inputs are only read. OUT is written under a "
                     "temporary name and moved into place; an existing OUT is replaced only when an earlier import"
                     " made it (its .revops-import marker). Exit status 1 when validation finds errors, 2 on a bad"
                     " mapping or folder."),
        epilog="examples:\n"
        "  revops import --preset salesforce --from exports/sfdc --out data/crm\n"
        "  revops import --preset hubspot --mapping my_hubspot.yaml --from exports/hubspot --out data/crm\n"
        "  revops import --preset stripe --from exports/stripe --out data/billing\n"
        "  revops import --preset fivetran_salesforce --from postgres://ana@db/warehouse --out data/crm\n\n"
        "mapping format: docs/mappings.md (a file may `extends: salesforce` and override keys)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    i.add_argument("--preset", default=None, metavar="NAME",
                   help="a shipped mapping: salesforce (Data Export / Data Loader files), hubspot (CRM exports), "
                        "stripe (Dashboard exports)")
    i.add_argument("--mapping", default=None, metavar="FILE",
                   help="your mapping YAML; it extends --preset (or its own `extends:`) with custom fields, stages, "
                        "types and sources")
    i.add_argument("--from", dest="source_dir", required=True, metavar="DIR|URL",
                   help="folder of the exported files, or a database URL / .duckdb file holding the landed tables "
                        "(only read, never changed; a password is best given in $REVOPS_SOURCE or ~/.pgpass)")
    i.add_argument("--out", required=True, metavar="DIR",
                   help="output folder: new, empty, or an earlier import (marked by .revops-import), which is replaced")
    i.set_defaults(func=cmd_import)
    return p


def main(argv=None) -> int:
    """Run the command; exit status 0 ok, 1 data or report errors, 2 usage errors, 75 output folder busy,
    130 interrupted (Ctrl-C), 143 terminated (SIGTERM)."""
    from revops_lib.runner.runfiles import Terminated, on_sigterm

    parser = build_parser()
    args = parser.parse_args(argv)
    import threading

    if threading.current_thread() is threading.main_thread():
        on_sigterm()  # SIGTERM (cron, CI, kill) stops a run as Ctrl-C does
    try:
        return int(args.func(args) or 0)
    except RevOpsError as exc:
        print(f"revops {args.command}: error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", None) or (2 if not getattr(exc, "result", None) else 1)
    except Terminated:
        print(f"revops {args.command}: terminated (SIGTERM): stopped; the last good reports are kept.",
              file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print(f"revops {args.command}: interrupted: stopped; the last good reports are kept.", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
