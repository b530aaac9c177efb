"""Driver errors become loopml's errors in the one session scope, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from loopml.errors import InvalidInput
from loopml.tracking import SqlTrackingStore


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlTrackingStore]:
    uri = (
        f"sqlite:///{tmp_path / 'store.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("pg_uri")
    )
    s = SqlTrackingStore(uri, str(tmp_path / "artifacts"))
    yield s
    s.close()


def test_text_no_driver_can_encode_is_invalid_input(store: SqlTrackingStore) -> None:
    # A lone surrogate is a Python str but not text: sqlite3 and psycopg raise
    # UnicodeEncodeError, which reached HTTP callers (the admin routes) as a 500.
    with pytest.raises(InvalidInput, match=r"surrogates not allowed: '\\ud800'"):
        store.create_experiment("a\ud800")
    eid = store.create_experiment("ok")
    with pytest.raises(InvalidInput, match="send valid Unicode text"):
        store.set_experiment_tag(eid, "k", "\udfff")
    assert store.get_experiment(eid).tags == {}
