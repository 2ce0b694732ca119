"""Apache Spark Structured Streaming behind a small surface: a keyed, stateful stream over a Kafka topic.

Pipelines never import pyspark (``tests/unit/test_architecture.py``); they hand this module plain
Python: a *keyed function* ``(key, rows, state) -> (out, state)`` on tuples and bytes, and a
*batch sink* that receives each micro-batch's output as an Arrow table on the driver. In between this
module builds::

    readStream.format("kafka")  (subscribe, startingOffsets)
      → key, value, partition, offset, timestamp_ms
      → mapInArrow(rekey function)  (optional: the keys to group each message by)
      → groupBy(key).transformWithState(keyed function, state: one binary value per key, RocksDB)
      → mapInArrow(batch function)  (optional: stateless, vectorised)
      → writeStream.foreachBatch(sink)  with a checkpoint location, trigger availableNow or processingTime

Spark runs in process (``local[N]``) with pyspark's own jars plus the connectors of
``services/spark/pom.xml`` (:func:`dotjoin.services.spark.ensure_jars`); its Python workers run this
interpreter. Errors leave as :class:`SparkJobError` with the first line of Spark's message.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import pyarrow as pa

from dotjoin.exceptions import MissingDependencyError, TerminalError
from dotjoin.platform.objectstore import use_checksum_env

logger = logging.getLogger(__name__)

#: Columns a keyed function receives, per Kafka message (the key is the group's).
INPUT_COLUMNS = ("key", "value", "partition", "offset", "timestamp_ms")
INPUT_SCHEMA = pa.schema([("key", pa.binary()), ("value", pa.binary()), ("partition", pa.int32()),
                          ("offset", pa.int64()), ("timestamp_ms", pa.int64())])  # fmt: skip
#: ``(key, rows, state) -> (output rows, new state)``: rows are tuples of INPUT_COLUMNS in arrival
#: order (not necessarily offset order), output rows tuples in the output schema's order; a None state
#: removes the key's state.
KeyedFunction = Callable[
    [bytes | None, list[tuple[Any, ...]], bytes | None], tuple[Sequence[tuple[Any, ...]], bytes | None]
]
#: One Arrow batch in, any number out (the same schema): a stateless step after the keyed one.
BatchFunction = Callable[[pa.RecordBatch], Iterator[pa.RecordBatch]]
#: ``(output rows of one micro-batch, batch id)``; runs on the driver, must be idempotent per batch id.
BatchSink = Callable[[pa.Table, int], None]
#: The JVM's logging: Spark's own warnings and errors to stderr, nothing else (its default is chatty).
LOG4J2 = """status = error
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{{HH:mm:ss}} %p %c{{1}}: %m%n
rootLogger.level = {level}
rootLogger.appenderRef.console.ref = console
"""
ROCKSDB = "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider"
Trigger = Literal["available_now"] | float  # a float: processingTime every so many seconds


class SparkJobError(TerminalError):
    """The Spark session or a streaming query failed; the message is Spark's first line."""


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "desc", None) or exc).strip()
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("JVM stacktrace", "at ")):
            return line[:500]
    return type(exc).__name__


@dataclass
class SparkOptions:
    """How the in-process Spark runs. Heaps are capped: one JVM shares a small machine with the stack."""

    master: str = "local[2]"
    driver_memory: str = "1g"
    shuffle_partitions: int = 2
    jars: Sequence[Path] = ()
    log_level: str = "ERROR"
    log_file: Path | None = None  # the JVM's stdout and stderr (None: this process's)
    conf: Mapping[str, str] = field(default_factory=dict)


class SparkEngine:
    """One SparkSession for the process (:meth:`stop` ends it).

    Raises:
        MissingDependencyError: pyspark is not installed.
        SparkJobError: the JVM did not start (no Java 17+, a bad option).
    """

    def __init__(self, app: str, options: SparkOptions | None = None) -> None:
        opts = options or SparkOptions()
        try:
            from pyspark import SparkConf, SparkContext
            from pyspark.java_gateway import launch_gateway
            from pyspark.sql import SparkSession
        except ImportError as exc:
            raise MissingDependencyError("pyspark", "spark") from exc
        # The Python workers must run this interpreter (its packages: dotjoin, pandas, scikit-learn).
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # loopback only, like every service here
        use_checksum_env()  # the JVM inherits it: Iceberg's S3FileIO (AWS SDK v2) on an S3-compatible store
        logging.getLogger("py4j").setLevel(logging.WARNING)  # one INFO line per gateway call otherwise
        self._scratch = scratch = Path(tempfile.mkdtemp(prefix="dotjoin-spark-"))  # removed by stop()
        log_config = scratch / "log4j2.properties"
        log_config.write_text(LOG4J2.format(level=opts.log_level.lower()))
        conf = {
            "spark.driver.memory": opts.driver_memory,
            "spark.driver.host": "127.0.0.1",
            "spark.driver.bindAddress": "127.0.0.1",
            "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile=file:{log_config}",
            "spark.sql.shuffle.partitions": str(opts.shuffle_partitions),
            "spark.sql.session.timeZone": "UTC",
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.sql.warehouse.dir": str(scratch / "warehouse"),
            "spark.local.dir": str(scratch / "local"),
            "spark.sql.execution.arrow.pyspark.enabled": "true",
            "spark.sql.streaming.stopGracefullyOnShutdown": "true",
            # transformWithState keeps its state in RocksDB (the only provider it supports)
            "spark.sql.streaming.stateStore.providerClass": ROCKSDB,
            **({"spark.jars": ",".join(str(j) for j in opts.jars)} if opts.jars else {}),
            **dict(opts.conf),
        }
        began = time.monotonic()
        spark_conf = SparkConf().setMaster(opts.master).setAppName(app).setAll(list(conf.items()))
        # The JVM's output (its log, and what its Python workers print: the stateful operator's
        # planning worker prints five lines a query) goes to the log file when there is one.
        self._log: IO[bytes] | None = None
        popen: dict[str, Any] = {}
        if opts.log_file is not None:
            opts.log_file.parent.mkdir(parents=True, exist_ok=True)
            self._log = opts.log_file.open("ab")
            popen = {"stdout": self._log, "stderr": subprocess.STDOUT}
        try:
            gateway = launch_gateway(spark_conf, popen_kwargs=popen)
            self.session: Any = SparkSession(SparkContext(conf=spark_conf, gateway=gateway))
        except Exception as exc:  # py4j / JVM launch errors have no common base
            self._close_log()
            where = f" (log: {opts.log_file})" if opts.log_file else ""
            raise SparkJobError(f"Spark did not start: {_first_line(exc)}{where}") from exc
        self.session.sparkContext.setLogLevel(opts.log_level)
        self.start_s = time.monotonic() - began
        logger.info("Spark %s session %s started in %.1f s", self.session.version, app, self.start_s)

    @property
    def version(self) -> str:
        return str(self.session.version)

    def keyed_kafka_stream(
        self,
        *,
        bootstrap_servers: str,
        topic: str,
        func: KeyedFunction,
        output_schema: pa.Schema,
        sink: BatchSink,
        rekey: BatchFunction | None = None,
        then: BatchFunction | None = None,
        checkpoint: Path,
        trigger: Trigger = "available_now",
        starting_offsets: str = "earliest",
        max_offsets_per_trigger: int | None = None,
        name: str | None = None,
    ) -> StreamHandle:
        """Start the query (see the module docstring); :meth:`StreamHandle.wait` blocks on it.

        ``rekey`` maps each Arrow batch of messages (:data:`INPUT_COLUMNS`, :data:`INPUT_SCHEMA`) to the
        rows to group, before the keyed function: it may replace a message's key, or send one message
        to several keys (a payment to its card's and its merchant's). ``then`` maps each Arrow batch of
        the keyed function's output (``mapInArrow``: stateless, vectorised, in the workers) before the
        sink; its output has ``output_schema`` too.
        """
        from pyspark.sql import functions as F
        from pyspark.sql.pandas.types import from_arrow_schema

        reader = (
            self.session.readStream.format("kafka")
            .option("kafka.bootstrap.servers", bootstrap_servers)
            .option("subscribe", topic)
            .option("startingOffsets", starting_offsets)
            .option("failOnDataLoss", "true")
        )
        if max_offsets_per_trigger:
            reader = reader.option("maxOffsetsPerTrigger", str(max_offsets_per_trigger))
        messages = reader.load().select(
            "key", "value", "partition", "offset", F.unix_millis("timestamp").alias("timestamp_ms")
        )
        if rekey is not None:
            messages = messages.mapInArrow(_batches(rekey), from_arrow_schema(INPUT_SCHEMA))
        keyed = messages.groupBy("key").transformWithState(
            _processor(func, output_schema.names),
            outputStructType=from_arrow_schema(output_schema),
            outputMode="Append",
            timeMode="None",
        )
        if then is not None:
            keyed = keyed.mapInArrow(_batches(then), from_arrow_schema(output_schema))

        def each_batch(frame: Any, batch_id: int) -> None:
            sink(frame.toArrow(), batch_id)

        writer = keyed.writeStream.foreachBatch(each_batch).option("checkpointLocation", str(checkpoint))
        if name:
            writer = writer.queryName(name)
        if trigger == "available_now":
            writer = writer.trigger(availableNow=True)
        else:
            writer = writer.trigger(processingTime=f"{float(trigger)} seconds")
        return StreamHandle(writer.start)

    def has_catalog(self, name: str) -> bool:
        """Whether the session was started with Spark catalog ``name`` configured."""
        return self.session.conf.get(f"spark.sql.catalog.{name}", None) is not None

    def merge(self, table: str, data: pa.Table, *, key: Sequence[str]) -> None:
        """``MERGE INTO table`` (a catalog table, e.g. ``dotjoin.curated.payment_alerts``) the rows of
        ``data`` on ``key``: matched rows are updated, the others inserted — a replayed batch changes
        nothing. Runs on the driver (a foreachBatch sink); ``data`` has the table's columns."""
        if not data.num_rows:
            return
        view = f"dotjoin_merge_{os.getpid()}_{time.monotonic_ns()}"
        source = self.session.createDataFrame(data)
        source.createOrReplaceTempView(view)
        on = " AND ".join(f"t.{_quote(k)} = s.{_quote(k)}" for k in key)
        target = ".".join(_quote(part) for part in table.split("."))
        try:
            self.session.sql(
                f"MERGE INTO {target} t USING {view} s ON {on} "
                "WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *"
            )
        except Exception as exc:  # py4j / analysis errors have no common base
            raise SparkJobError(f"MERGE INTO {table} failed: {_first_line(exc)}") from exc
        finally:
            self.session.catalog.dropTempView(view)

    def stop(self) -> None:
        self.session.stop()
        self._close_log()

    def _close_log(self) -> None:
        """Close the log file and remove the scratch directory (log config, spark.local.dir)."""
        if self._log is not None:
            self._log.close()
            self._log = None
        shutil.rmtree(self._scratch, ignore_errors=True)

    def __enter__(self) -> SparkEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _batches(then: BatchFunction) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    def apply(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            yield from then(batch)

    return apply


def _processor(func: KeyedFunction, names: Sequence[str]) -> Any:
    """A ``StatefulProcessor`` around a plain keyed function (pickled by value into the workers).

    The state is one ``ValueState`` holding the function's bytes; per key and micro-batch that is two
    calls to the JVM's state server (get, update), on RocksDB.
    """
    from pyspark.sql import Row
    from pyspark.sql.streaming import StatefulProcessor

    class KeyedProcessor(StatefulProcessor):
        def init(self, handle: Any) -> None:
            self.state = handle.getValueState("state", "state binary")

        def handleInputRows(self, key: Any, rows: Iterator[Any], timerValues: Any = None) -> Iterator[Any]:
            before = self.state.get()
            out, after = func(key[0], [tuple(row) for row in rows], None if before is None else before[0])
            if after is None:
                self.state.clear()
            else:
                self.state.update((after,))
            make = Row(*names)
            return iter([make(*values) for values in out])

        def close(self) -> None:
            """Nothing to release."""

    return KeyedProcessor()


def _is_recovery_npe(exc: BaseException) -> bool:
    """Spark 4.1.1's SPARK-55271: after re-running a batch that a crash left uncommitted, the Kafka
    source's progress metrics hit a null and the query fails — after the batch and its commit are
    written. Starting the query again from the checkpoint goes on normally."""
    texts, seen = [], 0
    cause: BaseException | None = exc
    while cause is not None and seen < 5:
        texts += [str(getattr(cause, "_stackTrace", "") or ""), str(cause)]
        cause, seen = getattr(cause, "_cause", None) or cause.__cause__, seen + 1
    blob = "\n".join(texts)
    return "KafkaMicroBatchStream" in blob and "metrics" in blob and "Option.get()" in blob


class StreamHandle:
    """A running streaming query; started by ``start`` (again, on Spark's recovery bug: see below)."""

    MAX_RESTARTS = 2

    def __init__(self, start: Callable[[], Any]) -> None:
        self._start = start
        self._past: list[dict[str, Any]] = []
        self.restarts = 0
        self.query = self._begin()

    def _begin(self) -> Any:
        try:
            return self._start()
        except Exception as exc:
            raise SparkJobError(f"the streaming query did not start: {_first_line(exc)}") from exc

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until the query ends (availableNow: all data read) or ``timeout_s``; True if it ended.

        A failure that is Spark 4.1.1's SPARK-55271 (:func:`_is_recovery_npe`) restarts the query from
        its checkpoint, at most ``MAX_RESTARTS`` times.

        Raises:
            SparkJobError: the query failed (a batch, the sink or the source raised).
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            try:
                if deadline is None:
                    self.query.awaitTermination()
                    return True
                return bool(self.query.awaitTermination(max(0.0, deadline - time.monotonic())))
            except Exception as exc:
                if self.restarts >= self.MAX_RESTARTS or not _is_recovery_npe(exc):
                    raise SparkJobError(f"the streaming query failed: {_first_line(exc)}") from exc
                self.restarts += 1
                logger.warning("restarting the query from its checkpoint (Spark 4.1.1 bug SPARK-55271)")
                self._past += [json.loads(p.json) for p in self.query.recentProgress]
                self.query = self._begin()

    def stop(self) -> None:
        self.query.stop()

    def finish(self, timeout_s: float | None) -> None:
        """:meth:`wait`, then stop the query unless it ended (a processingTime query at its time limit,
        or a failure on its way out)."""
        ended = False
        try:
            ended = self.wait(timeout_s)
        finally:
            if not ended:
                self.stop()

    @property
    def progress(self) -> list[dict[str, Any]]:
        """The recent progress reports (Spark's JSON: rows, durations, offsets), restarts included."""
        return self._past + [json.loads(p.json) for p in self.query.recentProgress]


def _quote(identifier: str) -> str:
    """A Spark SQL identifier in backticks (a backtick inside is doubled)."""
    return "`" + identifier.replace("`", "``") + "`"
