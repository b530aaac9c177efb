"""The ``loopml`` command: parse arguments, call the library, print tables or JSON."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from loopml.errors import LoopmlError

F = TypeVar("F", bound=Callable[..., Any])
console = Console()


class _Group(click.Group):
    """Turns a ``LoopmlError`` anywhere below into one line on stderr and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LoopmlError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)


def _json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(f)


def _uri_option(f: F) -> F:
    return click.option(
        "--tracking-uri",
        default=None,
        help="A loopml server (http://...) or database URI; default: the configured one.",
    )(f)


def _ms(value: int | None) -> str:
    if value is None:
        return "-"
    return dt.datetime.fromtimestamp(value / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


@click.group(cls=_Group)
@click.version_option(package_name="loopml")
def cli() -> None:
    """loopml: track, register, serve and monitor models in one tool."""


# -- server and demo ---------------------------------------------------------------------------
@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option(
    "--insecure",
    is_flag=True,
    help="Listen beyond loopback although no user exists (anyone reaching it can change it).",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="warning",
    show_default=True,
    help="info adds the access log.",
)
def server(host: str, port: int, workers: int, insecure: bool, log_level: str) -> None:
    """Run the loopml server (JSON API under /api/v1, OpenAPI at /docs)."""
    import ipaddress

    from loopml.server import run_server

    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and not insecure:
        from loopml.config import get_settings
        from loopml.server import SqlIdentityStore

        if not SqlIdentityStore(get_settings().resolved_database_uri).has_users():
            raise LoopmlError(
                f"refusing to listen on {host} without access control: create an admin first "
                "(loopml users create NAME --admin; loopml tokens create NAME), or pass --insecure"
            )

    click.echo(f"loopml server listening on http://{host}:{port} (API docs at /docs)", err=True)
    run_server(host, port, workers=workers, log_level=log_level)


@cli.command()
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--no-browser", is_flag=True, help="Print the address instead of opening it.")
def ui(port: int, no_browser: bool) -> None:
    """Open the web UI: of the server LOOPML_TRACKING_URI names, else of a local server started
    here on loopback (over LOOPML_HOME's database, until Ctrl-C)."""
    import threading
    import webbrowser

    from loopml.config import get_settings

    remote = get_settings().tracking_uri or ""
    if remote.startswith(("http://", "https://")):
        url = remote.rstrip("/") + "/"
        click.echo(url)
        if not no_browser:
            webbrowser.open(url)
        return
    from loopml.server import run_server

    url = f"http://127.0.0.1:{port}/"

    def announce() -> None:
        import httpx

        for _ in range(300):  # until the server answers (about 30 s at most)
            try:
                httpx.get(url + "health", timeout=1)
                break
            except httpx.HTTPError:
                threading.Event().wait(0.1)
        click.echo(f"loopml UI at {url}", err=True)
        if not no_browser:
            webbrowser.open(url)

    threading.Thread(target=announce, daemon=True).start()
    run_server("127.0.0.1", port, workers=1)


@cli.command()
@click.option(
    "--tracking-uri",
    default=None,
    help="A database URI instead of LOOPML_HOME's (not a server: the demo runs embedded).",
)
@click.option("--experiment", default="loopml-demo", show_default=True)
def demo(tracking_uri: str | None, experiment: str) -> None:
    """Run loopml's whole loop, embedded, on a simulated churn problem (about 20 s)."""
    from loopml.cli._demo import run_demo

    run_demo(tracking_uri=tracking_uri, experiment=experiment, console=console)


@cli.command()
@click.argument("target")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option(
    "--runtime",
    type=click.Choice(["auto", "onnx", "native"]),
    default="auto",
    show_default=True,
    help="ONNX Runtime where the model has an ONNX copy (auto), or force one.",
)
@click.option("--trusted", is_flag=True, help="Allow a model folder from outside the store.")
@click.option("--max-batch-size", type=click.IntRange(1, 100_000), help="Rows per model call.")
@click.option(
    "--max-latency-ms",
    type=click.FloatRange(0, 10_000),
    help="Wait up to this long for a batch to fill (default 0: batch what is waiting).",
)
@click.option("--max-queue", type=click.IntRange(1, 1_000_000), help="Requests that may wait.")
@click.option("--max-body-mb", default=16.0, show_default=True, type=click.FloatRange(0.001, 4096))
@click.option("--no-prediction-log", is_flag=True, help="Do not log predictions.")
@click.option("--prediction-log-uri", default=None, help="Where predictions are logged.")
@click.option(
    "--follow-interval",
    default=2.0,
    show_default=True,
    type=click.FloatRange(0.1, 3600),
    help="Seconds between checks of the deployment for changes.",
)
def serve(
    target: str,
    host: str,
    port: int,
    workers: int,
    runtime: str,
    trusted: bool,
    max_batch_size: int | None,
    max_latency_ms: float | None,
    max_queue: int | None,
    max_body_mb: float,
    no_prediction_log: bool,
    prediction_log_uri: str | None,
    follow_interval: float,
) -> None:
    """Serve a model (models:/name@alias, models:/name/3, runs:/..., a folder) or a deployment
    (by name) over HTTP: native JSON, TF Serving v1 and KServe v2 on one port."""
    from loopml.serving import ServeOptions, build_app, settle
    from loopml.serving import serve as run

    options = ServeOptions(
        target=target,
        runtime=runtime,
        trusted=trusted,
        max_batch_size=max_batch_size,
        max_latency_ms=max_latency_ms,
        max_queue=max_queue,
        max_body_bytes=int(max_body_mb * 1024 * 1024),
        log_predictions=not no_prediction_log,
        prediction_log_uri=prediction_log_uri,
        follow_interval=follow_interval,
    )
    if workers == 1:
        app = settle(build_app(options))  # load and warm up before saying where we listen
        info = app.state.service.info()
        click.echo(
            f"serving {target} ({info['flavor']}, {info['runtime']} runtime, loaded in "
            f"{info['load_seconds']:.2f} s) on http://{host}:{port}",
            err=True,
        )
        import uvicorn

        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
        return
    click.echo(f"serving {target} with {workers} workers on http://{host}:{port}", err=True)
    run(options, host=host, port=port, workers=workers)


# -- experiments -------------------------------------------------------------------------------
@cli.group(cls=_Group)
def experiments() -> None:
    """Experiments."""


@experiments.command("list")
@click.option("--view", type=click.Choice(["active", "deleted", "all"]), default="active")
@_uri_option
@_json_option
def experiments_list(view: str, tracking_uri: str | None, as_json: bool) -> None:
    """List experiments."""
    from loopml.tracking import Client

    client = Client(tracking_uri)
    view_type = {"active": "ACTIVE_ONLY", "deleted": "DELETED_ONLY", "all": "ALL"}[view]
    exps: list[Any] = []
    token = None
    while True:
        page = client.search_experiments(view_type, 1000, None, None, token)
        exps.extend(page)
        token = page.token
        if not token:
            break
    if as_json:
        _print_json([e.to_dict() for e in exps])
        return
    table = Table(title=f"Experiments ({len(exps)})")
    for col in ("id", "name", "stage", "created", "artifact location"):
        table.add_column(col)
    for e in exps:
        table.add_row(
            e.experiment_id, e.name, e.lifecycle_stage, _ms(e.creation_time), e.artifact_location
        )
    console.print(table)


# -- runs --------------------------------------------------------------------------------------
@cli.group(cls=_Group)
def runs() -> None:
    """Runs: list, show, search."""


def _experiment_ids(client: Any, experiment: str | None) -> list[str]:
    from loopml.errors import ExperimentNotFound

    if experiment is None:
        return [client.store.get_default_experiment_id()]
    if experiment.isdigit():
        return [client.get_experiment(experiment).experiment_id]
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise ExperimentNotFound(f"experiment {experiment!r} does not exist")
    return [found.experiment_id]


def _runs_table(found: list[Any], title: str) -> Table:
    table = Table(title=title)
    for col in ("run id", "name", "status", "started", "metrics", "params"):
        table.add_column(col, overflow="fold")
    for r in found:
        metrics = ", ".join(f"{k}={v:.4g}" for k, v in sorted(r.data.metrics.items())[:6])
        params = ", ".join(f"{k}={v}" for k, v in sorted(r.data.params.items())[:6])
        table.add_row(
            r.info.run_id, r.info.run_name, r.info.status, _ms(r.info.start_time), metrics, params
        )
    return table


def _search(
    experiment: str | None,
    filter_string: str,
    order_by: tuple[str, ...],
    max_results: int,
    tracking_uri: str | None,
    as_json: bool,
) -> None:
    from loopml.tracking import Client

    client = Client(tracking_uri)
    ids = _experiment_ids(client, experiment)
    found = client.search_runs(
        ids, filter_string, max_results=max_results, order_by=list(order_by)
    )
    if as_json:
        _print_json({"runs": [r.to_dict() for r in found], "next_page_token": found.token})
        return
    more = " (more: raise --max-results)" if found.token else ""
    console.print(_runs_table(list(found), f"Runs of experiment {ids[0]} ({len(found)}){more}"))


@runs.command("list")
@click.option("--experiment", "-e", default=None, help="Experiment name or id (default: Default).")
@click.option("--max-results", default=100, show_default=True, type=click.IntRange(1, 50_000))
@_uri_option
@_json_option
def runs_list(
    experiment: str | None, max_results: int, tracking_uri: str | None, as_json: bool
) -> None:
    """List the newest runs of an experiment."""
    _search(experiment, "", (), max_results, tracking_uri, as_json)


@runs.command("search")
@click.option("--experiment", "-e", default=None, help="Experiment name or id (default: Default).")
@click.option("--filter", "filter_string", default="", help='e.g. "metrics.acc > 0.9".')
@click.option("--order-by", multiple=True, help='e.g. "metrics.acc DESC"; repeatable.')
@click.option("--max-results", default=100, show_default=True, type=click.IntRange(1, 50_000))
@_uri_option
@_json_option
def runs_search(
    experiment: str | None,
    filter_string: str,
    order_by: tuple[str, ...],
    max_results: int,
    tracking_uri: str | None,
    as_json: bool,
) -> None:
    """Search runs with MLflow's filter grammar."""
    _search(experiment, filter_string, order_by, max_results, tracking_uri, as_json)


@runs.command("show")
@click.argument("run_id")
@_uri_option
@_json_option
def runs_show(run_id: str, tracking_uri: str | None, as_json: bool) -> None:
    """Show one run: info, params, latest metrics, tags, artifacts."""
    from loopml.tracking import Client

    client = Client(tracking_uri)
    run = client.get_run(run_id)
    files = client.list_artifacts(run_id)
    if as_json:
        _print_json({**run.to_dict(), "artifacts": [f.to_dict() for f in files]})
        return
    info = run.info
    console.print(f"[bold]{info.run_name}[/bold]  {info.run_id}")
    console.print(
        f"experiment {info.experiment_id} · {info.status} · started {_ms(info.start_time)}"
        f" · ended {_ms(info.end_time)}"
    )
    console.print(f"artifacts: {info.artifact_uri}")
    for title, values in (
        ("params", run.data.params),
        ("metrics", run.data.metrics),
        ("tags", run.data.tags),
    ):
        table = Table(title=title)
        table.add_column("key")
        table.add_column("value", overflow="fold")
        for k, v in sorted(values.items()):
            table.add_row(k, str(v))
        console.print(table)
    if files:
        table = Table(title="artifacts")
        table.add_column("path")
        table.add_column("size")
        for f in files:
            table.add_row(f.path + ("/" if f.is_dir else ""), "" if f.is_dir else str(f.file_size))
        console.print(table)


# -- database ----------------------------------------------------------------------------------
@cli.group(cls=_Group)
def db() -> None:
    """The metadata database."""


@db.command("upgrade")
@click.option("--database-uri", default=None, help="Default: the configured database.")
def db_upgrade(database_uri: str | None) -> None:
    """Upgrade the database schema to this loopml's revision."""
    from loopml.config import get_settings
    from loopml.store import upgrade_database

    uri = database_uri or get_settings().resolved_database_uri
    before, after = upgrade_database(uri)
    click.echo(f"database schema: {before or 'empty'} -> {after}")


@db.command("current")
@click.option("--database-uri", default=None, help="Default: the configured database.")
def db_current(database_uri: str | None) -> None:
    """Print the database's schema revision."""
    from loopml.config import get_settings
    from loopml.store import Database

    database = Database(database_uri or get_settings().resolved_database_uri)
    try:
        click.echo(database.current_revision() or "empty")
    finally:
        database.dispose()


def main() -> None:
    """Entry point of the ``loopml`` console script."""
    cli(prog_name="loopml")


# -- batch prediction (its own module) --------------------------------------------------------
from loopml.cli._predict_batch import predict_batch_command  # noqa: E402

cli.add_command(predict_batch_command)
