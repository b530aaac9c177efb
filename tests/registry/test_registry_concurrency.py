"""Concurrent writers on one model: version numbers stay unique and the alias history stays a
chain (each move starts where the previous one ended), on PostgreSQL and SQLite."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from loopml.registry import SqlRegistryStore
from loopml.tracking import SqlTrackingStore


@pytest.fixture(params=["sqlite", "postgres"])
def uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database of the test's own."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'c.db'}"
    return str(request.getfixturevalue("pg_uri"))


def _together(n: int, work: Callable[[int], Any]) -> list[BaseException]:
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            work(i)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return errors


def test_concurrent_versions_and_alias_moves(uri: str, tmp_path: Path) -> None:
    tracking = SqlTrackingStore(uri, str(tmp_path / "art"))
    registry = SqlRegistryStore(uri, str(tmp_path / "art"))
    run_id = tracking.create_run(tracking.create_experiment("c")).info.run_id
    registry.create_registered_model("m")

    errors = _together(8, lambda i: registry.create_model_version("m", f"runs:/{run_id}/model"))
    assert errors == []
    found = registry.search_model_versions(filter_string="name = 'm'")
    assert sorted(int(v.version) for v in found) == list(range(1, 9))

    for _ in range(3):
        errors = _together(
            6, lambda i: registry.set_registered_model_alias("m", "production", i % 8 + 1)
        )
        assert errors == []
    moves = list(reversed(registry.get_model_history("m", alias="production")))
    assert moves[0].from_version is None
    for before, after in zip(moves, moves[1:], strict=False):
        assert after.from_version == before.to_version
    current = registry.get_model_version_by_alias("m", "production").version
    assert moves[-1].to_version == current
    registry.close()
    tracking.close()
