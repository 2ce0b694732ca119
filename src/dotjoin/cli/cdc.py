"""``dotjoin cdc setup|connect|status|disconnect``: PostgreSQL → Debezium → Kafka change data capture."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from dotjoin.cli.output import OutputOption, emit_report, emit_rows, lit, progress_bar

if TYPE_CHECKING:
    from dotjoin.config import Settings
    from dotjoin.platform.runs import RunReport

app = typer.Typer(
    help="Change data capture: the source tables in PostgreSQL, Debezium's connector on Kafka Connect.\n\n"
    "Example: dotjoin services up postgres kafka connect && dotjoin --profile stack cdc setup && "
    "dotjoin --profile stack cdc connect",
    no_args_is_help=True,
)


def _settings() -> Settings:
    from dotjoin.cli.main import STATE

    return STATE.settings


@app.command()
def setup(output: OutputOption = "table") -> None:
    """Create the source schema, tables, publication and the connector role's grants (idempotent).

    Example: dotjoin --profile stack cdc setup
    """
    from dotjoin.pipelines.cdc.source import setup as setup_source

    done = setup_source(_settings())
    rows = [{"table": t, "publication": done["publication"], "replication role": done["replication_user"]}
            for t in done["tables"]]  # fmt: skip
    emit_rows(rows, output=output, title="captured tables", json_data=done)


@app.command()
def connect(
    wait: float = typer.Option(60.0, "--wait", help="Seconds to wait for the connector to run (0: don't)."),
    output: OutputOption = "table",
) -> None:
    """Register (or update) Debezium's PostgreSQL connector on Kafka Connect, then wait until it runs.

    Example: dotjoin --profile stack cdc connect
    """
    from dotjoin.pipelines.cdc.connector import register, wait_running

    settings = _settings()
    info = register(settings)
    state = wait_running(settings, wait) if wait > 0 else None
    _emit_status(info["name"], state, output)


@app.command()
def status(output: OutputOption = "table") -> None:
    """The connector's state and its task's (Kafka Connect's view), and the capture's health: exit 1 with
    one line per problem — above all a lost replication slot (then: dotjoin cdc resnapshot).

    Example: dotjoin --profile stack cdc status -o json
    """
    from dotjoin.cli.output import console
    from dotjoin.pipelines.cdc.connector import health
    from dotjoin.pipelines.cdc.connector import status as connector_status

    settings = _settings()
    _emit_status(settings.cdc.connector, connector_status(settings), output)
    problems = health(settings)
    for problem in problems:
        console.print(f"[red]{lit(problem)}[/red]")
    if problems:
        raise typer.Exit(1)


@app.command()
def resnapshot(output: OutputOption = "table") -> None:
    """Start the capture over after a lost slot: reset the connector's offsets, drop what is left of its
    slot, and let Debezium take a new snapshot (the applier adds versions only where rows changed, and
    deletes the keys it no longer finds).

    Example: dotjoin --profile stack cdc resnapshot && dotjoin --profile stack cdc apply --idle-exit 30
    """
    from dotjoin.pipelines.cdc.connector import resnapshot as start_over

    settings = _settings()
    _emit_status(settings.cdc.connector, start_over(settings), output)


@app.command()
def disconnect(
    drop_slot: bool = typer.Option(
        False, "--drop-slot", help="Also drop the replication slot (frees its WAL; next connect snapshots)."
    ),
    output: OutputOption = "table",
) -> None:
    """Delete the connector from Kafka Connect; its replication slot stays (and keeps WAL) unless --drop-slot.

    Example: dotjoin --profile stack cdc disconnect --drop-slot
    """
    from dotjoin.pipelines.cdc.connector import remove

    settings = _settings()
    removed = remove(settings, drop_slot=drop_slot)
    rows = [{"connector": settings.cdc.connector, "removed": removed, "slot dropped": drop_slot}]
    emit_rows(rows, output=output)


def _emit_status(name: str, state: dict[str, Any] | None, output: str) -> None:
    if state is None:
        rows = [{"connector": name, "state": "not registered", "task": "", "worker": ""}]
    else:
        tasks = state.get("tasks") or [{}]
        rows = [{"connector": name, "state": state["connector"]["state"], "task": t.get("state", ""),
                 "worker": t.get("worker_id", "")} for t in tasks]  # fmt: skip
    emit_rows(rows, output=output, json_data=state)


def _key_option(values: list[str]) -> dict[str, list[str]]:
    keys: dict[str, list[str]] = {}
    for value in values:
        table, eq, columns = value.partition("=")
        if not eq or not table or not columns:
            raise typer.BadParameter(f"{value!r}: use schema.table=col[,col]", param_hint="--key")
        keys[table] = [c.strip() for c in columns.split(",") if c.strip()]
    return keys


@app.command()
def replay(
    file: Path = typer.Argument(
        ...,
        help="Recorded Debezium events: kcat -J lines, {key, value} lines, "
        "bare envelopes, or one JSON document (an envelope or a list).",
    ),
    key: list[str] = typer.Option([], "--key", help="schema.table=col[,col]: the key of events without one."),
    batch: int = typer.Option(10_000, "--batch", min=1, help="Events per Iceberg commit."),
    journal: Path | None = typer.Option(None, "--journal", help="The recording's workload journal: verify."),
    output: OutputOption = "table",
) -> None:
    """Apply a recorded Debezium event file to the lake (no PostgreSQL, Kafka or Connect needed).

    Idempotent: replaying a file again adds nothing. Then look: dotjoin cdc show public.customers --history

    Example: kcat -C -b 127.0.0.1:9092 -t cdc.cdc_source.users -J -e > users.jsonl
    && dotjoin cdc replay users.jsonl
    """
    from dotjoin.cli.main import STATE
    from dotjoin.pipelines.cdc.pipeline import replay as replay_file

    with progress_bar(output == "table" and not STATE.quiet, str(file)) as progress:
        report = replay_file(
            _settings(),
            file,
            key_columns=_key_option(key),
            batch_rows=batch,
            journal=journal,
            progress=progress,
        )
    emit_report(report, output, _summary)


@app.command()
def apply(
    idle_exit: float = typer.Option(
        0.0, "--idle-exit", help="Stop after this many quiet seconds (0: never)."
    ),
    batch: int = typer.Option(20_000, "--batch", min=1, help="Most events per Iceberg commit."),
    batch_seconds: float = typer.Option(1.0, "--batch-seconds", help="Longest wait to fill a batch."),
    group: str = typer.Option("dotjoin-cdc-applier", "--group", help="Kafka consumer group."),
    verify: bool = typer.Option(False, "--verify", help="At the end, reconcile the tables with the source."),
    output: OutputOption = "table",
) -> None:
    """Consume Debezium's topics into the lake's change logs (Ctrl-C stops; everything committed stays).

    Example: dotjoin --profile stack cdc apply --idle-exit 30
    """
    from dotjoin.pipelines.cdc.pipeline import follow
    from dotjoin.pipelines.cdc.source import topics

    settings = _settings()
    report = follow(settings, topics=topics(settings), group=group, batch_rows=batch,
                    batch_seconds=batch_seconds, idle_exit=idle_exit or None,
                    verify_source=verify)  # fmt: skip
    emit_report(report, output, _summary)


@app.command()
def show(
    table: str = typer.Argument(..., help="The source table, schema.table (e.g. cdc_source.users)."),
    history: bool = typer.Option(
        False, "--history", help="The SCD type 2 history instead of the current state."
    ),
    as_of: str = typer.Option("", "--as-of", help="The state as of an instant (ISO 8601), from the history."),
    limit: int = typer.Option(20, "--limit", min=0, help="Rows to print (0: all)."),
    columns: str = typer.Option("", "--columns", help="Comma-separated columns to print (default: all)."),
    output: OutputOption = "table",
) -> None:
    """Print a CDC'd table's current state, its history, or its state as of a time.

    Long text is shortened in the table view (not with -o json).

    Example: dotjoin cdc show cdc_source.users --as-of 2026-12-01T12:00:00Z --columns user_id,tier,email
    """
    from dotjoin.pipelines.cdc.tables import current_state, state_as_of
    from dotjoin.pipelines.cdc.tables import history as table_history
    from dotjoin.platform.lake import open_lake

    with open_lake(_settings()) as lake:
        if as_of:
            rows = state_as_of(lake, table, _instant(as_of))
        else:
            rows = (table_history if history else current_state)(lake, table)
    shown = rows.slice(0, limit) if limit else rows
    if columns:
        wanted = [c.strip() for c in columns.split(",") if c.strip()]
        unknown = [c for c in wanted if c not in shown.column_names]
        if unknown:
            raise typer.BadParameter(f"no column {', '.join(unknown)} in {table}", param_hint="--columns")
        shown = shown.select(wanted)
    records = shown.to_pylist()
    if output == "table":
        records = [{k: _short(v) for k, v in r.items()} for r in records]
    emit_rows(records, output=output, title=f"{table}: {rows.num_rows:,} rows")


@app.command()
def query(
    name: str = typer.Argument("", help="The history query (see --list), e.g. changes_per_day."),
    param: list[str] = typer.Option(
        [], "--param", "-P", help="name=value of a query parameter (repeatable)."
    ),
    engine: str = typer.Option(
        "duckdb", "--engine", "-e", help="duckdb (in process) or trino (the stack's)."
    ),
    schema: str = typer.Option("", "--schema", help="The source schema (default: [cdc] source_schema)."),
    list_queries: bool = typer.Option(False, "--list", help="List the queries and their parameters."),
    output: OutputOption = "table",
) -> None:
    """Run a CDC history query (SQL in pipelines/cdc/sql) on DuckDB or Trino: same SQL, same answer.

    Example: dotjoin cdc query user_as_of -P user_id=7 -P as_of=2026-12-01T12:00:00Z

    Example: dotjoin cdc replay recording.jsonl.gz && dotjoin cdc query changes_per_day --schema cdc_demo

    Example: dotjoin --profile stack cdc query current_inventory --engine trino
    """
    from dotjoin.pipelines.cdc import history_queries
    from dotjoin.platform.lake import open_lake

    if list_queries or not name:
        rows = [{"query": n, "parameters": ", ".join(f"{k} ({t})" for k, t in
                 history_queries.parameters(history_queries.text(n)).items()) or "-"}
                for n in history_queries.names()]  # fmt: skip
        emit_rows(rows, output=output, title="CDC history queries")
        return
    if engine not in ("duckdb", "trino"):
        raise typer.BadParameter(f"must be duckdb or trino, not {engine!r}", param_hint="--engine")
    values = {}
    for item in param:
        key, eq, value = item.partition("=")
        if not eq:
            raise typer.BadParameter(f"{item!r} is not name=value", param_hint="--param")
        values[key.strip()] = value
    settings = _settings()
    if schema:
        settings = settings.model_copy(
            update={"cdc": settings.cdc.model_copy(update={"source_schema": schema})}
        )
    with open_lake(settings) as lake:
        rows = history_queries.run(lake, settings, name, values, engine=engine)  # type: ignore[arg-type]
    emit_rows(rows.to_pylist(), output=output, title=f"{name} ({engine}): {rows.num_rows:,} rows")


@app.command()
def verify(
    tables: list[str] = typer.Argument(None, help="Source tables (default: every CDC'd table in the lake)."),
    journal: Path | None = typer.Option(
        None, "--journal", help="The workload's journal: check the history too."
    ),
    output: OutputOption = "table",
) -> None:
    """Reconcile the source tables with the lake: row counts, digests, missing/extra/different keys.

    Exit 1 on any mismatch. Example: dotjoin --profile stack cdc verify --journal workload.jsonl
    """
    from dotjoin.exceptions import NotFoundError
    from dotjoin.pipelines.cdc.tables import cdc_tables
    from dotjoin.pipelines.cdc.verify import verify as run_verify
    from dotjoin.platform.lake import open_lake

    settings = _settings()
    with open_lake(settings) as lake:
        names = tables or [t.source for t in cdc_tables(lake)]
        if not names:
            raise NotFoundError(
                "no CDC'd tables in the lake yet: run `dotjoin cdc apply` (or `cdc replay`) first"
            )
        verdicts = [v.as_dict() for v in run_verify(settings, lake, names, journal)]
    rows = [{k: v[k] for k in ("table", "source_rows", "lake_rows", "missing", "extra", "different",
                               "history_checked", "mismatches")} for v in verdicts]  # fmt: skip
    emit_rows(rows, output=output, title="cdc verify", json_data=verdicts)
    if any(v["mismatches"] for v in verdicts):
        raise typer.Exit(1)


@app.command()
def workload(
    tps: float = typer.Option(50.0, "--tps", min=0.1, help="Transactions per second."),
    duration: float = typer.Option(60.0, "--duration", min=0.1, help="Seconds to run."),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed, the same transactions."),
    journal: Path | None = typer.Option(
        None, "--journal", help="Write each committed change here (JSON lines)."
    ),
    populate: int = typer.Option(0, "--populate", min=0, help="First bulk-load this many users (COPY)."),
    burst: int = typer.Option(1, "--burst", min=1, help="Movements per stock transaction (more changes/s)."),
    output: OutputOption = "table",
) -> None:
    """Run OLTP transactions on the source tables: inserts, updates, deletes, delete + re-insert, key
    updates, TOASTed values, multi-table transactions.

    Example: dotjoin --profile stack cdc workload --tps 200 --duration 600 --seed 7 --journal wl.jsonl
    """
    from dotjoin.cli.main import STATE
    from dotjoin.simulate.cdc_workload import Workload
    from dotjoin.simulate.cdc_workload import populate as bulk_load

    settings = _settings()
    if populate:
        bulk_load(settings, users=populate, seed=seed)
    handle = journal.open("a", encoding="utf-8") if journal else None
    run = Workload(settings, seed=seed, journal=handle, burst=burst)
    try:
        with progress_bar(output == "table" and not STATE.quiet, "workload") as progress:
            done = run.run(tps=tps, duration=duration, progress=progress).as_dict()
    finally:
        run.close()
        if handle:
            handle.close()
    rows = [{"kind": k, "transactions": n} for k, n in sorted(done["kinds"].items())]
    title = (f"{done['transactions']:,} transactions, {done['changes']:,} changes in {done['seconds']} s "
             f"({done['transactions_per_s']}/s)")  # fmt: skip
    emit_rows(rows, output=output, title=title, json_data=done)


def _short(value: Any, width: int = 24) -> Any:
    return value[: width - 1] + "…" if isinstance(value, str) and len(value) > width else value


def _instant(text: str) -> Any:
    import datetime as dt

    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not an ISO 8601 instant", param_hint="--as-of") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _summary(report: RunReport) -> str:
    counts = report.counts
    return (f"{counts.get('input', 0):,} events: {counts.get('output', 0):,} applied, "
            f"{counts.get('duplicates', 0):,} duplicates, "
            f"{counts.get('not_row_changes', 0):,} not row changes")  # fmt: skip
