"""Apache Spark as the engine: Spark Connect sessions, their settings, and a local Spark Connect server.

The kit runs its Ibis expressions on Spark through Ibis's PySpark backend, over a Spark Connect
session (``sc://host:15002``) or, in a notebook, over a session of your own. Three ways in:

- ``open_source("sc://host:15002/crm")``: the tables of database ``crm`` (default: the session's
  current database) on a Spark Connect server (:func:`split_url`);
- ``open_source("data/lake", engine="spark")``: a folder (or a lakehouse path such as
  ``s3a://bucket/lake``) read by Spark: Parquet files, Spark-style ``leads/part-*.parquet`` folders,
  CSV files with a header row. The session is the one of ``spark=``, else ``$SPARK_REMOTE``
  (PySpark's own variable: a Spark Connect URL), else a local in-process session;
- ``open_source(my_spark_session)`` or ``open_source(ibis.pyspark.connect(my_spark_session))``.

Every session gets the settings of :class:`SparkSettings`: the UTC session time zone (always: the kit's
instants are UTC), the number of shuffle partitions and, where the kit starts the JVM, the driver
memory. ``revops report --engine spark`` starts one :class:`LocalServer` (a Spark Connect server from
the pyspark wheel, on 127.0.0.1) for all its kernels, so parallel notebooks never start a JVM each.

Install with ``pip install -e '.[spark]'`` (pyspark and the Spark Connect client); Spark 4.0 needs
Java 17 (Debian: ``openjdk-17-jre-headless``).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from revops_lib.errors import ParameterError, SourceError
from revops_lib.schema import repeated_names

__all__ = ["ENGINES", "ENGINE_ENV", "REMOTE_ENV", "CONF_ENV", "SparkSettings", "split_url", "is_spark_url",
           "session", "connect", "kit_backend", "read_csv", "is_spark_session", "LocalServer", "missing",
           "CONNECT_SERVER_CLASS"]

#: Engines that can read a folder source: DuckDB (embedded, the default) or Spark.
ENGINES = ("duckdb", "spark")

#: The engine that reads folder sources when ``open_source`` is not told (the runner sets it for its kernels).
ENGINE_ENV = "REVOPS_ENGINE"

#: PySpark's own variable: the Spark Connect URL a session connects to (``sc://127.0.0.1:15002``).
REMOTE_ENV = "SPARK_REMOTE"

#: The session settings handed to the runner's kernels (JSON of :meth:`SparkSettings.to_json`).
CONF_ENV = "REVOPS_SPARK_CONF"

#: The main class of a Spark Connect server (in the pyspark wheel's jars since Spark 4.0).
CONNECT_SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"

_MEMORY = __import__("re").compile(r"[1-9][0-9]*[kmgtKMGT]")


@dataclass(frozen=True)
class SparkSettings:
    """Settings of the Spark sessions the kit opens (or, for ``driver_memory``, of the JVM it starts).

    ``shuffle_partitions``: ``spark.sql.shuffle.partitions`` (None: 2 × the cores for a local session or
    server, the cluster's own setting for a remote one; Spark's default of 200 is slow on small data).
    ``driver_memory``: ``spark.driver.memory`` of a local session or server, e.g. ``4g`` (None: Spark's
    default, 1g). ``conf``: further ``spark.*`` settings. The session time zone is always UTC.
    ``java_options``: options of the JVM of a local Spark Connect server the kit starts (:class:`LocalServer`),
    e.g. ``-XX:+UseSerialGC -XX:TieredStopAtLevel=1``, which on small data save a third of its CPU
    (``spark.driver.extraJavaOptions`` cannot be given in ``conf``: a session cannot change it).
    """

    shuffle_partitions: int | None = None
    driver_memory: str | None = None
    conf: Mapping[str, str] = field(default_factory=dict)
    java_options: str | None = None

    def __post_init__(self):
        sp = self.shuffle_partitions
        if sp is not None and (isinstance(sp, bool) or not isinstance(sp, int) or sp < 1):
            raise ParameterError(f"`shuffle_partitions` must be a whole number of at least 1, not {sp!r}.")
        if self.driver_memory is not None and not _MEMORY.fullmatch(str(self.driver_memory)):
            raise ParameterError(f"`driver_memory` must be a size such as 2g or 512m, not {self.driver_memory!r}.")
        for k in self.conf:
            if not str(k).startswith("spark."):
                raise ParameterError(f"Spark setting `{k}` must start with `spark.`.")
            if str(k) == "spark.driver.extraJavaOptions":
                raise ParameterError("Give the JVM's options as `java_options` (`--spark-java-options`), not as "
                                     "the Spark setting `spark.driver.extraJavaOptions`.")

    def session_conf(self, *, local: bool) -> dict[str, str]:
        """What every session gets (``local``: the session or server runs on this machine)."""
        conf = {str(k): str(v) for k, v in self.conf.items()}
        conf["spark.sql.session.timeZone"] = "UTC"
        partitions = self.shuffle_partitions or (2 * (os.cpu_count() or 1) if local else None)
        if partitions:
            conf["spark.sql.shuffle.partitions"] = str(partitions)
        return conf

    def to_json(self) -> str:
        return json.dumps({"shuffle_partitions": self.shuffle_partitions, "driver_memory": self.driver_memory,
                           "conf": dict(self.conf), "java_options": self.java_options}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> "SparkSettings":
        if not text:
            return cls()
        data = json.loads(text)
        return cls(shuffle_partitions=data.get("shuffle_partitions"), driver_memory=data.get("driver_memory"),
                   conf=data.get("conf") or {}, java_options=data.get("java_options"))

    @classmethod
    def from_env(cls) -> "SparkSettings":
        return cls.from_json(os.environ.get(CONF_ENV))


def missing() -> str:
    """Why Spark cannot run here ('' when pyspark, its Spark Connect client and Java are all there)."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed (pip install -e '.[spark]')"
    try:
        import google.rpc  # noqa: F401
        import grpc  # noqa: F401
        import grpc_status  # noqa: F401
    except ImportError:
        return "the Spark Connect client (grpcio, grpcio-status, googleapis-common-protos) is not installed " \
               "(pip install -e '.[spark]')"
    if _java() is None:
        return "Java is not installed (Spark 4.0 needs Java 17: Debian openjdk-17-jre-headless; `make system-deps`)"
    return ""


def _java() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


def is_spark_url(text: str) -> bool:
    return str(text).lower().startswith("sc://")


def split_url(url: str) -> tuple[str, str | None]:
    """``(Spark Connect URL, database)`` of a source URL ``sc://host:port[/database][;key=value…]``.

    Spark Connect's own URLs have no path (``sc://host:port/;token=…``); the kit's may name a database.

    >>> split_url("sc://spark.local:15002/crm;use_ssl=true")
    ('sc://spark.local:15002/;use_ssl=true', 'crm')
    >>> split_url("sc://127.0.0.1:15002")
    ('sc://127.0.0.1:15002', None)
    """
    text = str(url)
    if not is_spark_url(text):
        raise SourceError(f"`{text}` is not a Spark Connect URL (sc://host:port[/database]).")
    rest = text[5:]
    hostport, slash, path = rest.partition("/")
    path, semi, params = path.partition(";")
    database = path.strip("/") or None
    if database is not None and ("/" in database or not database.replace("_", "").replace("-", "").isalnum()):
        raise SourceError(f"Spark Connect URL `sc://{hostport}/…`: the database after the port must be one name "
                          f"(letters, digits, _ and -), not `{database}`.")
    base = f"sc://{hostport}"
    if semi:
        base += f"/;{params}"
    return base, database


def is_spark_session(obj: Any) -> bool:
    """Whether ``obj`` is a SparkSession (classic or Spark Connect)."""
    mod = type(obj).__module__ or ""
    return type(obj).__name__ == "SparkSession" and mod.startswith("pyspark.")


def _quiet() -> None:
    # Ibis hands pandas frames to Spark with verifySchema, which Spark Connect ignores (and says so)
    warnings.filterwarnings("ignore", message="'verifySchema' is ignored")
    # pyspark 4.0's toPandas on pandas 3 (not actionable by users)
    warnings.filterwarnings("ignore", message="The copy keyword is deprecated", module="pyspark")


def session(remote: str | None = None, settings: SparkSettings | None = None):
    """A SparkSession: Spark Connect to ``remote`` (``sc://…``), else to ``$SPARK_REMOTE``, else a local
    in-process session (``local[*]``, which starts a JVM in this process). Settings: :class:`SparkSettings`."""
    reason = missing()
    if reason:
        raise SourceError(f"Spark is not available: {reason}.")
    from pyspark.sql import SparkSession

    _quiet()
    settings = settings or SparkSettings.from_env()
    remote = remote or os.environ.get(REMOTE_ENV)
    if remote:
        url, _ = split_url(remote)
        try:
            spark = SparkSession.builder.remote(url).getOrCreate()
        except Exception as exc:
            raise SourceError(f"Cannot open a Spark Connect session at `{_public(url)}`: {exc}") from None
        _apply(spark, settings.session_conf(local=_is_loopback(url)))
        return spark
    builder = SparkSession.builder.master(f"local[{os.cpu_count() or 1}]").appName("revops-kit")
    conf = settings.session_conf(local=True)
    if settings.driver_memory:
        conf["spark.driver.memory"] = settings.driver_memory
    conf.setdefault("spark.ui.enabled", "false")
    conf.setdefault("spark.driver.host", "127.0.0.1")
    conf.setdefault("spark.driver.bindAddress", "127.0.0.1")
    for k, v in conf.items():
        builder = builder.config(k, v)
    return builder.getOrCreate()


def _apply(spark, conf: Mapping[str, str]) -> None:
    """Set ``conf`` on a session. A setting fixed when the server started (``spark.driver.maxResultSize``,
    ``spark.sql.warehouse.dir``, …), which a session cannot change, is fine when the server already has that
    value (a local server the kit starts gets every setting at launch); another value is a clear error (no
    value is shown: a setting may hold a secret)."""
    for k, v in conf.items():
        try:
            spark.conf.set(k, v)
        except Exception as exc:
            if "CANNOT_MODIFY_CONFIG" not in str(exc):
                raise
            try:
                same = spark.conf.get(k, None) == v
            except Exception:  # (a server that will not say)
                same = False
            if not same:
                raise ParameterError(f"Spark setting `{k}` is fixed when the Spark server starts, and this "
                                     f"server's differs: set it where the server is started, not for the "
                                     f"kit's sessions.") from None


def _is_loopback(url: str) -> bool:
    host = url[5:].split("/", 1)[0].split(":", 1)[0].lower()
    return host in ("127.0.0.1", "localhost", "::1", "[::1]")


def _public(url: str) -> str:
    """A Spark Connect URL without its parameter values that may be secret (``token=…``)."""
    base, semi, params = url.partition(";")
    if not semi:
        return url
    shown = []
    for p in params.split(";"):
        k, eq, v = p.partition("=")
        shown.append(f"{k}=***" if eq and any(w in k.lower() for w in ("token", "secret", "pass", "key", "auth"))
                     else p)
    return base + ";" + ";".join(shown)


def connect(spark: Any = None, settings: SparkSettings | None = None):
    """An Ibis PySpark backend over ``spark`` (a SparkSession, a ``sc://`` URL or None: see :func:`session`)."""
    import ibis

    if spark is None or isinstance(spark, str):
        spark = session(spark, settings)
    else:
        _quiet()
        if settings is not None:
            _apply(spark, settings.session_conf(local=False))
    return kit_backend(ibis.pyspark.connect(spark))


_COMPILER = None


def kit_backend(con):
    """An Ibis PySpark backend with two fixes of Ibis 12's Spark SQL, applied to every PySpark backend the kit
    uses (also one given to :func:`revops_lib.sources.open_source`):

    - float literals compile as ``DOUBLE``: Spark SQL reads ``3600.0`` as ``DECIMAL(5,1)``, so
      ``seconds / 3600.0`` would be a decimal cut to 6 places where DuckDB and PostgreSQL give a double;
    - ``strip()`` trims whitespace only: Ibis writes the characters to trim as ``' \t\n\r\v\f'``, and Spark
      reads the unknown escapes ``\v`` and ``\f`` as the letters ``v`` and ``f``, so ``'false'`` became
      ``'alse'`` (a boolean read from text, a value map, a ``where: {not_in: [false]}`` went wrong).
    """
    global _COMPILER
    if getattr(con, "name", "") != "pyspark" or getattr(con.compiler, "_revops_doubles", False):
        return con
    if _COMPILER is None:
        import math

        import ibis.expr.datatypes as dt

        class _DoubleLiterals(type(con.compiler)):
            _revops_doubles = True

            def visit_NonNullLiteral(self, op, *, value, dtype):
                result = super().visit_NonNullLiteral(op, value=value, dtype=dtype)
                if dtype.is_floating() and math.isfinite(value):
                    return self.cast(result, dt.float64)
                return result

            def visit_Strip(self, op, *, arg):
                # vertical tab and form feed as chr(): Spark SQL has no \v or \f escape
                return self.f.trim(arg, self.f.concat(" \t\n\r", self.f.chr(11), self.f.chr(12)))

        _COMPILER = _DoubleLiterals()
    con.compiler = _COMPILER
    return con


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_csv(con, name: str, path):
    """``(table, duplicates)`` as :func:`revops_lib.sources._read_csv` gives them, read by Spark: text
    columns (quoted line breaks and doubled quotes as in RFC 4180), the delimiter of the header
    (``, ; tab |``), a repeated header name's columns null."""
    import csv

    import ibis
    import ibis.expr.datatypes as dt

    local = "://" not in str(path)
    first = ""
    if local:
        with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
            first = f.readline()
            while first.count('"') % 2 and (more := f.readline()):
                first += more
    counts = {d: len(next(csv.reader([first], delimiter=d), [])) for d in (",", ";", "\t", "|")}
    sep = max(counts, key=lambda d: (counts[d], d == ","))
    header = next(csv.reader([first], delimiter=sep), []) if first else []
    t = con.read_csv(str(path), table_name=name, header=True, inferSchema=False, sep=sep, quote='"', escape='"',
                     multiLine=True, encoding="UTF-8")
    cols = list(t.columns)
    if cols and cols[0].startswith("\ufeff"):
        t = t.rename({cols[0].lstrip("\ufeff"): cols[0]})
        cols = list(t.columns)
    if len(header) != len(cols):
        return t, {}
    groups = repeated_names(header)
    if not groups:
        return t, {}
    first_of = {p[0]: header[p[0]].strip() for p in groups}
    dropped = {i for p in groups for i in p[1:]}
    duplicates = {header[p[0]].strip(): len(p) for p in groups}
    t = t.select(*[ibis.null(dt.string).name(first_of[i]) if i in first_of else t[c]
                   for i, c in enumerate(cols) if i not in dropped])
    return t, duplicates


class LocalServer:
    """A Spark Connect server on this machine, started from the pyspark wheel, bound to 127.0.0.1.

    ``with LocalServer(settings) as url:`` starts it (about 10 s), yields ``sc://127.0.0.1:PORT`` and
    stops it at the end, also on an error or Ctrl-C. Its log goes to a temporary file, named in the
    error when the server does not start.
    """

    def __init__(self, settings: SparkSettings | None = None, *, port: int | None = None, timeout: float = 120.0,
                 cores: int | None = None):
        self.settings = settings or SparkSettings()
        self.port = port
        self.timeout = timeout
        self.cores = cores or os.cpu_count() or 1
        self.proc: subprocess.Popen | None = None
        self.url: str | None = None
        self.workdir: Path | None = None

    def command(self, port: int, workdir: Path) -> list[str]:
        import pyspark

        home = Path(pyspark.__file__).parent
        conf = self.settings.session_conf(local=True)
        conf.update({
            "spark.connect.grpc.binding.address": "127.0.0.1",
            "spark.connect.grpc.binding.port": str(port),
            "spark.driver.host": "127.0.0.1",
            "spark.driver.bindAddress": "127.0.0.1",
            "spark.ui.enabled": "false",
            "spark.local.dir": str(workdir / "tmp"),
            "spark.sql.warehouse.dir": str(workdir / "warehouse"),
            "spark.driver.extraJavaOptions": f"-Dderby.system.home={workdir / 'derby'} "
                                             f"{self.settings.java_options or ''}".strip(),
        })
        cmd = [str(home / "bin" / "spark-submit"), "--class", CONNECT_SERVER_CLASS, "--master",
               f"local[{self.cores}]", "--name", "revops-kit Spark Connect"]
        if self.settings.driver_memory:
            cmd += ["--driver-memory", self.settings.driver_memory]
        for k, v in conf.items():
            cmd += ["--conf", f"{k}={v}"]
        return cmd

    def start(self) -> str:
        """Start the server and wait until it accepts sessions; returns its URL."""
        self.launch()
        return self.wait()

    def launch(self) -> str:
        """Start the server's process and return the URL it will serve (:meth:`wait` until it does)."""
        reason = missing()
        if reason:
            raise SourceError(f"Cannot start a local Spark Connect server: {reason}.")
        import pyspark

        self.workdir = Path(tempfile.mkdtemp(prefix="revops-spark-"))
        port = self.port or _free_port()
        env = dict(os.environ)
        env["SPARK_HOME"] = str(Path(pyspark.__file__).parent)
        env.pop(REMOTE_ENV, None)
        env.pop("SPARK_CONNECT_MODE_ENABLED", None)
        env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        log = open(self.workdir / "server.log", "wb")
        try:
            # its own session: a Ctrl-C in the terminal reaches the runner, which stops the server itself
            self.proc = subprocess.Popen(self.command(port, self.workdir), stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=env, cwd=self.workdir,
                                         start_new_session=True)
        finally:
            log.close()
        self.port = port
        self.url = f"sc://127.0.0.1:{port}"
        return self.url

    def wait(self) -> str:
        """Wait until the launched server accepts sessions (or raise :class:`SourceError` with its log)."""
        if self.proc is None:
            raise SourceError("The local Spark Connect server was not launched.")
        port = self.port
        deadline = time.monotonic() + self.timeout
        while True:
            if self.proc.poll() is not None:
                tail = self.log_tail()
                self._cleanup()
                raise SourceError(f"The local Spark Connect server stopped at start (exit {self.proc.returncode}):"
                                  f"\n{tail}")
            if self._ready(port):
                break
            if time.monotonic() > deadline:
                tail = self.log_tail()
                self.stop()
                raise SourceError(f"The local Spark Connect server did not start within {self.timeout:.0f} s:\n{tail}")
            time.sleep(0.25)
        return self.url

    def _ready(self, port: int) -> bool:
        # the port accepts connections only once the gRPC service runs (the log says so too)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                pass
        except OSError:
            return False
        log = self.workdir / "server.log" if self.workdir else None
        return log is None or "Spark Connect server started" in log.read_text(errors="replace")

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = (self.workdir / "server.log").read_text(errors="replace")
        except (OSError, TypeError):
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the server (SIGTERM to its process group, SIGKILL after ``timeout`` seconds) and remove its files."""
        import signal

        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(5)
        self._cleanup()

    def _cleanup(self) -> None:
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"running at {self.url}" if self.proc is not None and self.url else "stopped"
        return f"<LocalServer {state}>"
