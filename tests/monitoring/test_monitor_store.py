"""The monitoring store on SQLite and PostgreSQL: profiles, outcomes, rules and alert events."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loopml.errors import AlreadyExists, InvalidInput, NotFound
from loopml.monitoring import AlertRule, SqlMonitorStore, profile_reference


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> SqlMonitorStore:
    if request.param == "postgres":
        return SqlMonitorStore(request.getfixturevalue("pg_uri"))
    return SqlMonitorStore(f"sqlite:///{tmp_path / 'm.db'}")


def test_profiles_outcomes_rules_and_events(store: SqlMonitorStore) -> None:
    frame = pd.DataFrame({"x": np.arange(50.0), "c": list("ab") * 25})
    assert store.get_profile("models:/m/1") is None
    store.save_profile("models:/m/1", profile_reference(frame, source="d@1"))
    store.save_profile("models:/m/1", profile_reference(frame.head(30), source="d@2"))
    again = store.get_profile("models:/m/1")
    assert again is not None and again.source == "d@2" and again.n_rows == 30

    stamp = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    ids = [f"p{i}" for i in range(1200)]  # more than one IN-list chunk
    assert store.log_outcomes([{"prediction_id": p, "value": i % 2} for i, p in enumerate(ids)])
    assert store.log_outcomes([{"unit_id": "u1", "value": "spam", "timestamp": stamp}]) == 1
    assert store.log_outcomes([{"prediction_id": "p3", "value": 0.5}]) == 1
    found = store.outcomes(prediction_ids=ids, unit_ids=["u1"])
    assert len(found) == 1202
    latest = found[found.prediction_id == "p3"].iloc[-1]
    assert latest.value == 0.5  # later rows come last: the latest wins
    assert found[found.unit_id == "u1"].iloc[0].time == int(stamp.timestamp() * 1000)
    assert store.outcomes(prediction_ids=["nope"]).empty
    with pytest.raises(InvalidInput, match=r"outcomes\[1\]"):
        store.log_outcomes([{"prediction_id": "a", "value": 1}, {"value": 1}])
    assert store.count_outcomes() == 1202  # the bad batch stored nothing

    rule = AlertRule(name="r", deployment="d", metric="error_rate", op=">", threshold=0.1)
    store.put_rule(rule)
    with pytest.raises(AlreadyExists):
        store.put_rule(rule, replace=False)
    store.put_rule(AlertRule(name="r", deployment="d", metric="error_rate", op=">", threshold=0.2))
    assert store.get_rule("r").threshold == 0.2 and len(store.list_rules()) == 1
    fired = store.add_event("r", "fired", 0.3, {"why": "x"}, [{"type": "log", "ok": True}])
    store.add_event("r", "resolved", 0.05, {})
    events = store.events(rule="r")
    assert [e.state for e in events] == ["resolved", "fired"] and events[1].seq == fired.seq
    assert events[1].evidence == {"why": "x"} and events[1].deliveries[0]["ok"] is True
    with pytest.raises(InvalidInput, match="state"):
        store.add_event("r", "maybe", None, {})
    store.delete_rule("r")
    assert store.events(rule="r") == [] and store.list_rules() == []
    with pytest.raises(NotFound):
        store.delete_rule("r")
    with pytest.raises(NotFound, match="workspace"):
        store.for_workspace("nowhere").log_outcomes([{"prediction_id": "a", "value": 1}])
