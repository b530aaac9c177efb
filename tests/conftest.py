"""Shared fixtures: a clean environment, real PostgreSQL databases, real loopml servers."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import loopml.tracking._fluent as fluent
from loopml.config import reset_settings
from loopml.registry._resolve import clear_cache as clear_registry_cache
from loopml.store import close_databases

PG_ADMIN_URI = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No LOOPML_* or MLFLOW_* variable leaks in; LOOPML_HOME is the test's own folder."""
    for name in list(os.environ):
        if name.startswith(("LOOPML_", "MLFLOW_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("LOOPML_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")  # the mlflow client, where tested
    monkeypatch.setenv("DO_NOT_TRACK", "true")
    monkeypatch.chdir(tmp_path)
    reset_settings()
    fluent.reset()
    clear_registry_cache()
    yield
    fluent.reset()
    clear_registry_cache()
    reset_settings()


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def free_tcp_port() -> int:
    """A free TCP port on 127.0.0.1, for a server a test starts as a process."""
    return free_port()


def _loopml_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("loopml")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "loopml"]


@pytest.fixture
def loopml_cmd() -> list[str]:
    """The ``loopml`` command of this environment, to run as a real process."""
    return _loopml_cmd()


class LoopmlProcess:
    """``loopml ARGS`` as a real process, its output in ``log``; a context manager that waits
    until it is ready and stops it on the way out."""

    def __init__(
        self,
        args: list[str],
        *,
        log: Path,
        env: dict[str, str] | None = None,
        ready: str | None = None,
        timeout: float = 60.0,
    ) -> None:
        import subprocess

        self.log = log
        self.ready = ready
        self.timeout = timeout
        with log.open("w") as sink:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [*_loopml_cmd(), *args],
                env=dict(os.environ) if env is None else env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )

    def output(self) -> str:
        """What the process has written so far."""
        return self.log.read_text()

    def wait_until(self, ready: str, timeout: float | None = None) -> None:
        """Until ``ready`` — a URL answering 200, or a text in the log — holds; fails with the
        log if the process exits or the time runs out."""
        import httpx

        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            if ready.startswith(("http://", "https://")):
                try:
                    if httpx.get(ready, timeout=2).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
            elif ready in self.output():
                return
            assert self.proc.poll() is None, self.output()
            assert time.monotonic() < deadline, f"not ready ({ready}): {self.output()}"
            time.sleep(0.1)

    def stop(self, timeout: float = 30.0) -> None:
        """Terminate the process and wait for it."""
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(timeout=timeout)

    def __enter__(self) -> LoopmlProcess:
        if self.ready is not None:
            try:
                self.wait_until(self.ready)
            except BaseException:
                self.stop()
                raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture(scope="session")
def loopml_process() -> type[LoopmlProcess]:
    """``LoopmlProcess``: ``with loopml_process(["server", "--port", p], log=..., ready=url):``."""
    return LoopmlProcess


# -- PostgreSQL --------------------------------------------------------------------------------
def _pg_available() -> str | None:
    try:
        import psycopg

        with psycopg.connect(
            "host=127.0.0.1 port=5432 user=postgres dbname=postgres", connect_timeout=3
        ):
            return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"PostgreSQL on 127.0.0.1:5432 is not reachable: {exc}"


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True
    ) as conn:
        conn.execute(sql)


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A database migrated to head once per session; tests copy it."""
    reason = _pg_available()
    if reason:
        if IN_CI:
            pytest.fail(reason + " (CI=true: PostgreSQL is required)")
        pytest.skip(reason)
    from loopml.store import Database
    from loopml.store._db import _ensure_schema

    name = f"loopml_tmpl_{uuid.uuid4().hex[:10]}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    db = Database(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}")
    _ensure_schema(db, upgrade=None)
    db.dispose()
    yield name
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_database_factory(pg_template: str) -> Iterator[Callable[..., str]]:
    """Makes PostgreSQL databases of the test's own (migrated, or empty); drops them after."""
    made: list[str] = []

    def make(*, empty: bool = False) -> str:
        name = f"loopml_t_{uuid.uuid4().hex[:12]}"
        template = "template0" if empty else f'"{pg_template}"'
        _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE {template}')
        made.append(name)
        return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"

    yield make
    close_databases()
    for name in made:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_uri(pg_database_factory: Callable[..., str]) -> str:
    """A migrated PostgreSQL database of this test's own."""
    return pg_database_factory()


# -- servers -----------------------------------------------------------------------------------
class ServerHandle:
    """A real loopml server on a loopback port, run by uvicorn in a thread."""

    def __init__(self, app: Any, *, lifespan: str = "off") -> None:
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app_database_uri: str | None = None
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="error", lifespan=lifespan
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self) -> ServerHandle:
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("loopml test server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


@pytest.fixture(scope="session")
def server_handle_class() -> type[ServerHandle]:
    """The real-server handle, for fixtures wider than one test (``server_factory`` is per test;
    test modules cannot import it from here: several folders have a conftest)."""
    return ServerHandle


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Callable[..., ServerHandle]]:
    """Starts loopml servers over a database and artifact root (defaults under tmp_path)."""
    from loopml.server import create_app

    started: list[ServerHandle] = []

    def make(
        database_uri: str | None = None,
        artifact_uri: str | None = None,
        *,
        app: Any = None,
        lifespan: str = "off",
    ) -> ServerHandle:
        n = len(started)
        db = database_uri or f"sqlite:///{tmp_path / f'server{n}' / 'loopml.db'}"
        art = artifact_uri or str(tmp_path / f"server{n}" / "artifacts")
        app = app or create_app(database_uri=db, artifact_uri=art)
        handle = ServerHandle(app, lifespan=lifespan).start()
        handle.app_database_uri = db
        started.append(handle)
        return handle

    yield make
    for handle in started:
        handle.stop()


# -- tracking stores, every backend ------------------------------------------------------------
@pytest.fixture(params=["sqlite", "postgres", "rest"])
def tracking_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """The same tracking store contract on SQLite, PostgreSQL and REST (a real server)."""
    from loopml.tracking import RestTrackingStore, SqlTrackingStore

    store: Any
    if request.param == "sqlite":
        store = SqlTrackingStore(f"sqlite:///{tmp_path / 'store.db'}", str(tmp_path / "artifacts"))
    elif request.param == "postgres":
        store = SqlTrackingStore(request.getfixturevalue("pg_uri"), str(tmp_path / "artifacts"))
    else:
        store = RestTrackingStore(request.getfixturevalue("server_factory")().url)
    yield store
    store.close()


@pytest.fixture(params=["sqlite", "postgres", "rest"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    """A (tracking store, registry store) pair on one backend: SQLite, PostgreSQL or REST."""
    from loopml.registry import RestRegistryStore, SqlRegistryStore
    from loopml.tracking import RestTrackingStore, SqlTrackingStore

    tracking: Any
    registry: Any
    if request.param == "rest":
        url = request.getfixturevalue("server_factory")().url
        tracking, registry = RestTrackingStore(url), RestRegistryStore(url)
    else:
        uri = (
            f"sqlite:///{tmp_path / 'store.db'}"
            if request.param == "sqlite"
            else request.getfixturevalue("pg_uri")
        )
        tracking = SqlTrackingStore(uri, str(tmp_path / "artifacts"))
        registry = SqlRegistryStore(uri, str(tmp_path / "artifacts"))
    yield tracking, registry
    registry.close()
    tracking.close()


@pytest.fixture(params=["embedded", "server"])
def tracking_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs an SDK test embedded and again against a real ``loopml server``."""
    if request.param == "server":
        server = request.getfixturevalue("server_factory")()
        monkeypatch.setenv("LOOPML_TRACKING_URI", server.url)
        reset_settings()
        fluent.reset()
    return str(request.param)


# -- S3 (moto's server) ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's S3 server on a free loopback port, once per session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fake credentials, and no profile or config file from the developer's machine."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def s3_client(moto_endpoint: str) -> Any:
    """A boto3 client for moto's server, to create buckets and inspect objects."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def s3_bucket(aws_env: None, s3_client: Any) -> tuple[Any, str]:
    """A fresh bucket on moto's server, and a boto3 client to inspect it."""
    bucket = f"loopml-{uuid.uuid4().hex[:12]}"
    s3_client.create_bucket(Bucket=bucket)
    return s3_client, bucket


# -- folders of files (datasets) --------------------------------------------------------------
def _make_tree(root: Path, n: int = 20, *, seed: int = 0) -> Path:
    """A folder of ``n`` small files in a few subfolders (deterministic content)."""
    import random

    rng = random.Random(seed)
    for i in range(n):
        path = root / f"part{i % 3}" / f"f{i:03d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(100 + 37 * i))
    return root


def _same_tree(a: Path, b: Path) -> bool:
    """Both folders hold the same relative paths with the same bytes."""
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    return files_a == files_b and all(
        (a / p).read_bytes() == (b / p).read_bytes() for p in files_a
    )


@pytest.fixture
def make_tree() -> Any:
    """``make_tree(root, n)``: a folder of ``n`` small deterministic files."""
    return _make_tree


@pytest.fixture
def same_tree() -> Any:
    """``same_tree(a, b)``: both folders hold the same files with the same bytes."""
    return _same_tree


# -- Redis -------------------------------------------------------------------------------------
def _redis_available() -> str | None:
    try:
        import redis

        redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=3).ping()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"Redis on 127.0.0.1:6379 is not reachable: {exc}"


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis online-store URI under a key prefix of this test's own (its keys removed after)."""
    reason = _redis_available()
    if reason:
        if IN_CI:
            pytest.fail(reason + " (CI=true: Redis is required)")
        pytest.skip(reason)
    import redis

    prefix = f"loopml_t_{uuid.uuid4().hex[:12]}:"
    yield f"redis://127.0.0.1:6379/0?prefix={prefix}"
    client = redis.Redis(host="127.0.0.1", port=6379)
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    if keys:
        client.unlink(*keys)
    client.close()


# -- feature repositories ----------------------------------------------------------------------
FEATURES_T0 = "2026-11-01"


def driver_rows(n_drivers: int = 5, per: int = 4, *, start: Any = None) -> Any:
    """A small driver-stats source: ``per`` hourly rows per driver."""
    import pandas as pd

    start = pd.Timestamp(FEATURES_T0, tz="UTC") if start is None else start
    rows = []
    for d in range(n_drivers):
        for h in range(per):
            rows.append(
                {
                    "driver_id": 1000 + d,
                    "event_timestamp": start + pd.Timedelta(hours=h),
                    "created": start + pd.Timedelta(hours=h, minutes=1),
                    "conv_rate": float(d * 10 + h),
                    "trips": d * 100 + h,
                    "city": f"c{d % 2}",
                }
            )
    return pd.DataFrame(rows)


@pytest.fixture(name="driver_rows")
def driver_rows_fixture() -> Callable[..., Any]:
    """The ``driver_rows`` builder."""
    return driver_rows


@pytest.fixture
def driver_repo(tmp_path: Path) -> dict[str, Any]:
    """A driver entity, a Parquet source and a view over it (not yet applied)."""
    import datetime as dt

    from loopml.features import Entity, FeatureView, Field, FileSource, Float64, Int64, String

    path = tmp_path / "driver_stats.parquet"
    driver_rows().to_parquet(path)
    driver = Entity(name="driver", join_keys=["driver_id"])
    view = FeatureView(
        name="driver_stats",
        entities=[driver],
        schema=[
            Field(name="conv_rate", dtype=Float64),
            Field(name="trips", dtype=Int64),
            Field(name="city", dtype=String),
        ],
        source=FileSource(
            path=str(path), timestamp_field="event_timestamp", created_timestamp_column="created"
        ),
        ttl=dt.timedelta(days=3650),
    )
    return {"driver": driver, "view": view, "path": path}


# -- a real browser (Debian's Chromium, driven by Playwright) -----------------------------------
CHROMIUM = Path("/usr/bin/chromium")


def _chromium_missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[dev]')"
    if not CHROMIUM.exists():
        return f"Chromium is not at {CHROMIUM} (apt-get install chromium)"
    return None


@pytest.fixture
def chromium_browser() -> Iterator[Any]:
    """A headless Chromium (Debian's, not Playwright's download) as a Playwright ``Browser``."""
    reason = _chromium_missing()
    if reason:
        if IN_CI:
            pytest.fail(reason + " (CI=true: the browser is required)")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield browser
        browser.close()
