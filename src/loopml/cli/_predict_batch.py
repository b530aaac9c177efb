"""``loopml predict-batch``: predict every row of a Parquet or CSV file into a Parquet file.

Rows that cannot be predicted are reported (row number and reason) and left out of the output;
they do not make the command fail: it exits 0 with the report, and ``--json`` gives scripts
``rows_failed`` and ``bad_rows``. A problem with the job itself (no such input or model, an
input that does not fit the model, an unwritable output) is one line on stderr and exit code 1.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

__all__ = ["predict_batch_command"]

SHOWN_BAD_ROWS = 5


@contextmanager
def _progress_bar(console: Console) -> Iterator[Any]:
    """A rich progress bar on stderr (only on a terminal), as a ``predict_batch`` callback."""
    bar = Progress(
        TextColumn("predicting"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    task = bar.add_task("predict", total=None)

    def update(done: int, total: int | None) -> None:
        bar.update(task, completed=done, total=total)

    with bar:
        yield update


@click.command("predict-batch")
@click.argument("model_uri")
@click.option(
    "--input",
    "input_path",
    required=True,
    help="A .parquet or .csv (.csv.gz) file; read in chunks.",
)
@click.option(
    "--output",
    "output_path",
    required=True,
    help="The .parquet file to write: the input's columns and the predictions.",
)
@click.option(
    "--executor",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="Threads on this machine, or Ray actors (pip install 'loopml[ray]').",
)
@click.option(
    "--chunk-rows",
    default=10_000,
    show_default=True,
    type=click.IntRange(1, 100_000_000),
    help="Rows per chunk: the unit of parallel work and of memory.",
)
@click.option(
    "--workers",
    default=None,
    type=click.IntRange(1, 4096),
    help="Chunks predicted at once [default: every core, or every CPU of the Ray cluster].",
)
@click.option(
    "--runtime",
    type=click.Choice(["auto", "onnx", "native"]),
    default="auto",
    show_default=True,
    help="ONNX Runtime where the model has an ONNX copy (auto), or force one.",
)
@click.option("--trusted", is_flag=True, help="Allow a model folder from outside the store.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def predict_batch_command(
    model_uri: str,
    input_path: str,
    output_path: str,
    executor: str,
    chunk_rows: int,
    workers: int | None,
    runtime: str,
    trusted: bool,
    as_json: bool,
) -> None:
    """Predict every row of a file with a model (models:/name@alias, runs:/..., a folder)."""
    from loopml.serving import predict_batch

    with _progress_bar(Console(stderr=True)) as progress:
        result = predict_batch(
            model_uri,
            input_path,
            output_path,
            executor=executor,
            chunk_rows=chunk_rows,
            workers=workers,
            runtime=runtime,
            trusted=trusted,
            progress=progress,
        )
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    click.echo(
        f"predicted {result.rows_ok:,} of {result.rows:,} rows in {result.elapsed_seconds:.2f} s "
        f"({result.rows_per_second:,.0f} rows/s) -> {result.output_path}"
    )
    if result.rows_failed:
        rows = "row" if result.rows_failed == 1 else "rows"
        click.echo(f"{result.rows_failed:,} {rows} failed and are not in the output:")
        for row, message in result.bad_rows[:SHOWN_BAD_ROWS]:
            click.echo(f"  row {row}: {message}")
        more = result.rows_failed - min(len(result.bad_rows), SHOWN_BAD_ROWS)
        if more:
            click.echo(f"  ... and {more:,} more (--json lists the first {len(result.bad_rows)})")
