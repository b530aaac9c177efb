"""Run-search filter: the parser, and its SQL checked against a brute-force Python reference."""

from __future__ import annotations

import math
import os
import random
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, insert, text

from loopml.errors import InvalidInput
from loopml.store.tables import Base, experiments, latest_metrics, params, runs, tags, workspaces
from loopml.tracking import _search_plan
from loopml.tracking._filter import And, Comparison, Or, OrderKey, parse_filter, parse_order_by
from loopml.tracking._search_plan import Tuning, search_run_ids
from loopml.tracking._search_sql import Scope, build_run_search

# ---------------------------------------------------------------------------------------------
# Parser


def test_blank_filter_is_none() -> None:
    assert parse_filter(None) is None
    assert parse_filter("") is None
    assert parse_filter("  \t\n") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("metrics.acc = 1", Comparison("metric", "acc", "=", 1.0)),
        ("metrics.acc == 1", Comparison("metric", "acc", "=", 1.0)),
        ("metrics.acc != -2", Comparison("metric", "acc", "!=", -2.0)),
        ("metrics.acc <> 2.5", Comparison("metric", "acc", "!=", 2.5)),
        ("metrics.acc > 1e-3", Comparison("metric", "acc", ">", 0.001)),
        ("metrics.acc >= -1.5E+2", Comparison("metric", "acc", ">=", -150.0)),
        ("metrics.acc < .5", Comparison("metric", "acc", "<", 0.5)),
        ("metrics.acc<=3", Comparison("metric", "acc", "<=", 3.0)),
        ("metrics.acc IN (1, 2.5)", Comparison("metric", "acc", "IN", (1.0, 2.5))),
        ("metrics.acc not in (1)", Comparison("metric", "acc", "NOT IN", (1.0,))),
        ("metrics.acc IS NULL", Comparison("metric", "acc", "IS NULL", None)),
        ("metrics.acc is not null", Comparison("metric", "acc", "IS NOT NULL", None)),
        ("params.m LIKE 'a%'", Comparison("param", "m", "LIKE", "a%")),
        ("params.m like 'a%'", Comparison("param", "m", "LIKE", "a%")),
        ("params.m ILIKE 'a%'", Comparison("param", "m", "ILIKE", "a%")),
        ("params.m NOT LIKE 'a%'", Comparison("param", "m", "NOT LIKE", "a%")),
        ("params.m not ilike 'a%'", Comparison("param", "m", "NOT ILIKE", "a%")),
        ("params.m IN ('a', \"b\")", Comparison("param", "m", "IN", ("a", "b"))),
        ("params.m NOT IN ('a')", Comparison("param", "m", "NOT IN", ("a",))),
        ("params.m != 'a'", Comparison("param", "m", "!=", "a")),
        ("tags.t IS NULL", Comparison("tag", "t", "IS NULL", None)),
        ("attributes.start_time >= 10", Comparison("attribute", "start_time", ">=", 10)),
        ("attributes.end_time IS NULL", Comparison("attribute", "end_time", "IS NULL", None)),
        (
            "attributes.experiment_id IN (1, '2')",
            Comparison("attribute", "experiment_id", "IN", (1, 2)),
        ),
    ],
)
def test_operators(text: str, expected: Comparison) -> None:
    assert parse_filter(text) == expected


@pytest.mark.parametrize(
    ("text", "kind", "key", "value"),
    [
        ("metrics.`my metric` = 1", "metric", "my metric", 1.0),
        ('metrics."my metric" = 1', "metric", "my metric", 1.0),
        ("metrics.val/loss = 1", "metric", "val/loss", 1.0),
        ("metric.a-b_c = 1", "metric", "a-b_c", 1.0),
        ("params.model.depth = '3'", "param", "model.depth", "3"),
        ("param.`a``b` = 'x'", "param", "a`b", "x"),
        ('parameters.p = "double"', "param", "p", "double"),
        ("tag.t = 'it''s'", "tag", "t", "it's"),
        ("tags.t = 'it\\'s'", "tag", "t", "it's"),
        ('tags.t = "say ""hi"""', "tag", "t", 'say "hi"'),
        ("tags.t = 'a\\\\b'", "tag", "t", "a\\b"),
        ("tags.t = 'a\\%b'", "tag", "t", "a\\%b"),
        ("tags.t = 'ünïcode ✓'", "tag", "t", "ünïcode ✓"),
        ("tags.\"mlflow.runName\" = 'r'", "attribute", "run_name", "r"),
        ("tags.mlflow.runName = 'r'", "attribute", "run_name", "r"),
        ("attributes.run_uuid = 'x'", "attribute", "run_id", "x"),
        ("attribute.created = 5", "attribute", "start_time", 5),
        ("attr.Created = 5", "attribute", "start_time", 5),
        ("run.status = 'finished'", "attribute", "status", "FINISHED"),
        (
            "attributes.STATUS IN ('running', 'Killed')",
            "attribute",
            "status",
            ("RUNNING", "KILLED"),
        ),
        ("Attributes.lifecycle_stage = 'Active'", "attribute", "lifecycle_stage", "active"),
        ("METRICS.acc = 1", "metric", "acc", 1.0),
    ],
)
def test_identifiers_and_values(text: str, kind: str, key: str, value: Any) -> None:
    cmp = parse_filter(text)
    assert isinstance(cmp, Comparison)
    assert (cmp.kind, cmp.key, cmp.value) == (kind, key, value)


def test_precedence_and_grouping() -> None:
    a, b, c = (Comparison("metric", k, ">", 0.0) for k in "abc")
    assert parse_filter("metrics.a > 0 OR metrics.b > 0 AND metrics.c > 0") == Or((a, And((b, c))))
    assert parse_filter("(metrics.a > 0 or metrics.b > 0) and metrics.c > 0") == And(
        (Or((a, b)), c)
    )
    assert parse_filter("metrics.a > 0 And (metrics.b > 0 AND metrics.c > 0)") == And((a, b, c))
    assert parse_filter("((metrics.a > 0))") == a


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ("metrics.acc > 1 AND metrics.acc foo", 32, "expected a comparison operator after"),
        ("status = 'RUNNING'", 0, "use attributes.status"),
        ("metrics.acc > 'high'", 14, "compares with numbers"),
        ("params.lr = 0.1", 12, "compares with quoted strings"),
        ("params.lr = 'abc", 12, "unterminated string"),
        ('params.lr = "abc', 12, "unterminated string"),
        ("metrics.`abc = 1", 8, "unterminated quoted key"),
        ("metrics.acc IN ()", 16, "empty IN list"),
        ("params.p NOT IN ()", 17, "empty NOT IN list"),
        ("params.p IN ('a' 'b')", 17, "expected ',' or ')'"),
        ("params.p IN 'a'", 12, "expected '(' after IN"),
        ("metrics.acc = 1 garbage", 16, "expected AND, OR or end of filter"),
        ("metrics.acc = 1)", 15, "expected AND, OR or end of filter"),
        ("(metrics.acc = 1", 16, "expected ')' to close '(' at position 0"),
        ("(metrics.acc = 1 x", 17, "expected AND, OR or ')'"),
        ("metrics.acc >", 13, "expected a value"),
        ("metrics.acc = 1 AND", 19, "expected an identifier"),
        ("AND metrics.acc = 1", 0, "expected an identifier"),
        ("metrics.acc = 1 OR OR metrics.b = 1", 19, "expected an identifier"),
        ("()", 1, "expected an identifier"),
        ("attributes.foo = 'x'", 0, "unknown attribute 'foo'"),
        ("datasets.x = 'y'", 0, "unknown identifier type 'datasets'"),
        ("metrics. = 1", 8, "expected a key after 'metrics.'"),
        ("metrics.`` = 1", 8, "empty key"),
        ("metrics.acc LIKE 'a'", 12, "operator LIKE is not valid for metric 'acc'"),
        ("params.p > 'a'", 9, "operator > is not valid for param 'p'"),
        ("attributes.run_name < 'a'", 20, "operator < is not valid"),
        ("attributes.status = 'DONE'", 20, "invalid status 'DONE'"),
        ("attributes.lifecycle_stage = 'gone'", 29, "invalid lifecycle_stage"),
        ("attributes.start_time > '5'", 24, "compares with numbers"),
        ("attributes.experiment_id = 'x'", 27, "integer ids"),
        ("attributes.experiment_id = 1.5", 27, "integer ids"),
        ("metrics.acc = 1x", 14, "malformed number '1x'"),
        ("metrics.acc = 1.2.3", 14, "malformed number"),
        ("metrics.acc = -", 14, "unexpected character '-'"),
        ("metrics.acc ! 1", 12, "unexpected character '!'"),
        ("metrics.acc ~ 1", 12, "unexpected character '~'"),
        ("params.p IS 'x'", 12, "expected NULL after IS"),
        ("params.p IS NOT 'x'", 16, "expected NULL after IS NOT"),
        ("params.p NOT = 'x'", 13, "expected LIKE, ILIKE or IN after NOT"),
        ("params.p LIKE 'x\\\\'", 14, "unpaired escape"),
        ("params.p = `x`", 11, "unexpected character '`'"),
        ("params.p = x", 11, "compares with quoted strings, found 'x'"),
    ],
)
def test_malformed_filter(text: str, position: int, fragment: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_filter(text)
    message = str(info.value)
    assert message.startswith(f"invalid filter at position {position}: "), message
    assert fragment in message, message


def test_parse_order_by() -> None:
    assert parse_order_by(None) == []
    assert parse_order_by(
        ["metrics.acc", "metrics.`my loss` desc", "params.lr ASC", 'tags."mlflow.runName" DESC']
    ) == [
        OrderKey("metric", "acc", True),
        OrderKey("metric", "my loss", False),
        OrderKey("param", "lr", True),
        OrderKey("attribute", "run_name", False),
    ]
    assert parse_order_by(["attributes.created"]) == [OrderKey("attribute", "start_time")]


@pytest.mark.parametrize(
    ("item", "position", "fragment"),
    [
        ("", 0, "expected an identifier"),
        ("start_time DESC", 0, "use attributes.start_time"),
        ("metrics.acc DOWN", 12, "expected ASC, DESC or end of item"),
        ("metrics.acc DESC x", 17, "expected ASC, DESC or end of item"),
        ("attributes.nope", 0, "unknown attribute"),
    ],
)
def test_malformed_order_by(item: str, position: int, fragment: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_order_by(["metrics.ok", item])
    message = str(info.value)
    assert message.startswith(f"invalid order_by item {item!r} at position {position}: ")
    assert fragment in message, message


# ---------------------------------------------------------------------------------------------
# SQL, against a reference evaluated in Python on the same generated runs


@dataclass(frozen=True)
class _Run:
    run_id: str
    experiment_id: int
    workspace: str
    name: str
    user_id: str
    status: str
    start_time: int
    end_time: int | None
    lifecycle_stage: str
    params: dict[str, str]
    tags: dict[str, str]
    metrics: dict[str, float]


_MODELS = ["ResNet", "resnet", "resnet_50", "res%net", "resXnet", "vgg16", "VGG16", "mlp"]
_NOTES = ["it's", 'say "hi"', "a\\b", "50%", "a*b", "q?", "[x]", "under_score", "Under"]
# A NaN metric row stores this placeholder value; no comparison may ever see it.
_NAN_PLACEHOLDER = 0.5


def _generate(count: int = 300) -> list[_Run]:
    rnd = random.Random(20240601)
    out = []
    for i in range(count):
        workspace, experiment_id = ("other", 3) if i % 25 == 0 else ("default", 1 + i % 2)
        prm = {
            "model": rnd.choice(_MODELS),
            "lr": rnd.choice(["0.1", "0.01", "0.001"]),
            "model.depth": str(rnd.randrange(1, 5)),
        }
        tgs = {
            "team": rnd.choice(["Alpha", "alpha", "beta", "Beta_2"]),
            "note": rnd.choice(_NOTES),
        }
        acc = rnd.choice([math.nan, _NAN_PLACEHOLDER, *(round(rnd.random(), 1) for _ in range(4))])
        mts = {"acc": acc, "val/loss": round(rnd.uniform(-1, 3), 2), "my metric": rnd.random()}
        for mapping in (prm, tgs, mts):
            for key in list(mapping):
                if rnd.random() < 0.2:
                    del mapping[key]
        start = rnd.randrange(40) * 1000  # many ties, to exercise the tie-break
        out.append(
            _Run(
                run_id=uuid.UUID(int=rnd.getrandbits(128)).hex,
                experiment_id=experiment_id,
                workspace=workspace,
                name=f"{rnd.choice(['train', 'Train', 'eval'])}-{i % 7}",
                user_id=rnd.choice(["ann", "bob"]),
                status=rnd.choice(["RUNNING", "FINISHED", "FAILED", "KILLED"]),
                start_time=start,
                end_time=None if rnd.random() < 0.3 else start + rnd.randrange(5000),
                lifecycle_stage="deleted" if rnd.random() < 0.1 else "active",
                params=prm,
                tags=tgs,
                metrics=mts,
            )
        )
    return out


_RUNS = _generate()


def _populate(engine: Engine) -> None:
    Base.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            insert(workspaces), [{"name": n, "created_at_ms": 0} for n in ("default", "other")]
        )
        conn.execute(
            insert(experiments),
            [
                {
                    "experiment_id": e,
                    "workspace": "other" if e == 3 else "default",
                    "name": f"exp-{e}",
                    "artifact_location": f"file:///a/{e}",
                    "lifecycle_stage": "active",
                    "creation_time": 0,
                    "last_update_time": 0,
                }
                for e in (1, 2, 3)
            ],
        )
        conn.execute(
            insert(runs),
            [
                {
                    "run_uuid": r.run_id,
                    "experiment_id": r.experiment_id,
                    "workspace": r.workspace,
                    "name": r.name,
                    "user_id": r.user_id,
                    "status": r.status,
                    "start_time": r.start_time,
                    "end_time": r.end_time,
                    "lifecycle_stage": r.lifecycle_stage,
                    "artifact_uri": f"file:///a/{r.experiment_id}/{r.run_id}",
                }
                for r in _RUNS
            ],
        )
        for table, attr in ((params, "params"), (tags, "tags")):
            rows = [
                {"run_uuid": r.run_id, "key": k, "value": v}
                for r in _RUNS
                for k, v in getattr(r, attr).items()
            ]
            conn.execute(insert(table), rows)
        metric_rows = [
            {
                "run_uuid": r.run_id,
                "key": k,
                "value": _NAN_PLACEHOLDER if math.isnan(v) else v,
                "is_nan": math.isnan(v),
                "timestamp": 0,
                "step": 0,
            }
            for r in _RUNS
            for k, v in r.metrics.items()
        ]
        conn.execute(insert(latest_metrics), metric_rows)


def _postgres_engine() -> Iterator[Engine]:
    """Yield an engine on a fresh PostgreSQL database (C collation), dropped afterwards."""
    admin_url = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    admin = create_engine(
        admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 2}
    )
    try:
        with admin.connect() as conn:
            name = f"loopml_filter_{uuid.uuid4().hex[:12]}"
            conn.execute(
                text(f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C'")
            )
    except Exception as exc:  # any failure to connect means "not reachable"
        admin.dispose()
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL on 127.0.0.1:5432 is required in CI: {exc}")
        pytest.skip(f"PostgreSQL not reachable on 127.0.0.1:5432 (user postgres): {exc}")
    engine = create_engine(admin_url.rsplit("/", 1)[0] + f"/{name}")
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    if request.param == "sqlite":
        eng = create_engine("sqlite://")
        _populate(eng)
        yield eng
        eng.dispose()
        return
    for eng in _postgres_engine():
        _populate(eng)
        with eng.connect() as conn:  # without statistics every plan is a nested loop
            conn.execute(text("ANALYZE"))
        yield eng


# The planner's thresholds are made for 100k-run experiments; on these 300 runs the defaults
# always sort from a small driver. The other tunings force each path of the planner: walks in
# chunks of 5 index entries that always walk on (and search tie groups of 8 entries by the next
# keys), or that always sort after the first chunk, or one walk over the whole index.
_TUNINGS = {
    "default": Tuning(),
    "walk": Tuning(
        small_driver=0, first_chunk=5, tie_group=8, walk_cost=0, walk_cost_postgresql=0
    ),
    "walk-then-sort": Tuning(
        small_driver=0,
        first_chunk=5,
        tie_group=8,
        walk_cost=math.inf,
        walk_cost_postgresql=math.inf,
    ),
    "walk-whole": Tuning(small_driver=0, first_chunk=100_000),
}


@pytest.fixture(params=list(_TUNINGS))
def tuning(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(_search_plan, "TUNING", _TUNINGS[request.param])
    return str(request.param)


def _search(
    engine: Engine,
    filter_string: str | None,
    order_by: list[str] | None = None,
    *,
    workspace: str = "default",
    experiment_ids: tuple[int, ...] = (1, 2),
    stages: tuple[str, ...] = ("active",),
    offset: int = 0,
    limit: int = 10_000,
    check: bool = True,
) -> list[str]:
    args: dict[str, Any] = {
        "workspace": workspace,
        "experiment_ids": list(experiment_ids),
        "expr": parse_filter(filter_string),
        "order_by": parse_order_by(order_by),
        "lifecycle_stages": list(stages),
        "offset": offset,
        "limit": limit,
    }
    with engine.connect() as conn:
        found = search_run_ids(conn, **args)
        if check:  # the one-statement search agrees
            assert found == list(conn.execute(build_run_search(**args)).scalars())
        return found


# -- the reference: plain Python over _RUNS, written without the code under test --------------

Pred = Callable[[_Run], bool]


def _like(pattern: str, *, ci: bool = False) -> Callable[[str], bool]:
    """SQL LIKE with escape character backslash, as a regular expression."""
    regex, i = "", 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 1
            regex += re.escape(pattern[i])
        else:
            regex += {"%": ".*", "_": "."}.get(ch, re.escape(ch))
        i += 1
    compiled = re.compile(regex, re.DOTALL | (re.IGNORECASE if ci else 0))
    return lambda value: compiled.fullmatch(value) is not None


def _metric(key: str, test: Callable[[float], bool]) -> Pred:
    """The run has the metric, its value is not NaN, and ``test`` holds."""
    return lambda r: key in r.metrics and not math.isnan(r.metrics[key]) and test(r.metrics[key])


def _param(key: str, test: Callable[[str], bool]) -> Pred:
    return lambda r: key in r.params and test(r.params[key])


def _tag(key: str, test: Callable[[str], bool]) -> Pred:
    return lambda r: key in r.tags and test(r.tags[key])


_FILTER_CASES: list[tuple[str, Pred]] = [
    ("metrics.acc > 0.5", _metric("acc", lambda v: v > 0.5)),
    ("metrics.acc >= 0.5", _metric("acc", lambda v: v >= 0.5)),
    ("metrics.acc = 0.5", _metric("acc", lambda v: v == 0.5)),
    ("metrics.acc != 0.5", _metric("acc", lambda v: v != 0.5)),
    ("metrics.acc < 0.3", _metric("acc", lambda v: v < 0.3)),
    ("metrics.acc <= 0.3", _metric("acc", lambda v: v <= 0.3)),
    ("metrics.acc IN (0.1, 0.5, 0.9)", _metric("acc", lambda v: v in (0.1, 0.5, 0.9))),
    ("metrics.acc NOT IN (0.1, 0.5)", _metric("acc", lambda v: v not in (0.1, 0.5))),
    ("metrics.acc IS NULL", lambda r: "acc" not in r.metrics),
    ("metrics.acc IS NOT NULL", lambda r: "acc" in r.metrics),
    ("metrics.val/loss > -0.25", _metric("val/loss", lambda v: v > -0.25)),
    ("metrics.`my metric` <= 5e-1", _metric("my metric", lambda v: v <= 0.5)),
    ("params.model = 'resnet'", _param("model", lambda v: v == "resnet")),
    ("params.model != 'resnet'", _param("model", lambda v: v != "resnet")),
    ("params.model LIKE 'res%'", _param("model", lambda v: v.startswith("res"))),
    ("params.model ILIKE 'res%'", _param("model", lambda v: v.lower().startswith("res"))),
    ("params.model LIKE '%Net'", _param("model", _like("%Net"))),
    ("params.model NOT LIKE 'res%'", _param("model", lambda v: not v.startswith("res"))),
    ("params.model NOT ILIKE 'vgg%'", _param("model", lambda v: not v.lower().startswith("vgg"))),
    ("params.model LIKE 'res_net'", _param("model", _like("res_net"))),
    ("params.model LIKE 'res\\%net'", _param("model", lambda v: v == "res%net")),
    ("params.model LIKE 'resnet\\_%'", _param("model", lambda v: v.startswith("resnet_"))),
    ("params.model IN ('mlp', 'VGG16')", _param("model", lambda v: v in ("mlp", "VGG16"))),
    ("params.model NOT IN ('mlp', 'vgg16')", _param("model", lambda v: v not in ("mlp", "vgg16"))),
    ("params.model IS NULL", lambda r: "model" not in r.params),
    ("params.`model.depth` = '3'", _param("model.depth", lambda v: v == "3")),
    ("params.model.depth IN ('1', '2')", _param("model.depth", lambda v: v in ("1", "2"))),
    ("params.lr = '0.1'", _param("lr", lambda v: v == "0.1")),
    ("tags.team = 'alpha'", _tag("team", lambda v: v == "alpha")),
    ("tags.team ILIKE 'ALPHA'", _tag("team", lambda v: v.lower() == "alpha")),
    ("tags.team LIKE 'Beta\\_%'", _tag("team", lambda v: v.startswith("Beta_"))),
    ("tags.team IS NOT NULL", lambda r: "team" in r.tags),
    ("tags.note = 'it''s'", _tag("note", lambda v: v == "it's")),
    ('tags.note = "say \\"hi\\""', _tag("note", lambda v: v == 'say "hi"')),
    ("tags.note = 'a\\\\b'", _tag("note", lambda v: v == "a\\b")),
    ("tags.note LIKE '%*%'", _tag("note", lambda v: "*" in v)),
    ("tags.note LIKE '_?'", _tag("note", _like("_?"))),
    ("tags.note LIKE '[%'", _tag("note", lambda v: v.startswith("["))),
    ("tags.note LIKE '%\\%'", _tag("note", lambda v: v.endswith("%"))),
    ("tags.note LIKE 'under%'", _tag("note", lambda v: v.startswith("under"))),
    ("tags.note ILIKE 'under%'", _tag("note", lambda v: v.lower().startswith("under"))),
    ("attributes.status = 'running'", lambda r: r.status == "RUNNING"),
    ("attributes.status IN ('FAILED', 'killed')", lambda r: r.status in ("FAILED", "KILLED")),
    ("attributes.status != 'FINISHED'", lambda r: r.status != "FINISHED"),
    ("attributes.run_name LIKE 'Train%'", lambda r: r.name.startswith("Train")),
    ("attributes.run_name ILIKE 'train%'", lambda r: r.name.lower().startswith("train")),
    ("tags.\"mlflow.runName\" = 'eval-3'", lambda r: r.name == "eval-3"),
    ("attributes.user_id != 'ann'", lambda r: r.user_id != "ann"),
    ("attributes.start_time >= 20000", lambda r: r.start_time >= 20000),
    ("attributes.created < 5000", lambda r: r.start_time < 5000),
    ("attributes.end_time IS NULL", lambda r: r.end_time is None),
    ("attributes.end_time > 30000", lambda r: r.end_time is not None and r.end_time > 30000),
    ("attributes.experiment_id = 2", lambda r: r.experiment_id == 2),
    (
        f"attributes.run_id IN ('{_RUNS[1].run_id}', '{_RUNS[2].run_id}')",
        lambda r: r.run_id in (_RUNS[1].run_id, _RUNS[2].run_id),
    ),
    ("attributes.artifact_uri LIKE 'file:///a/1/%'", lambda r: r.experiment_id == 1),
    (
        "metrics.acc > 0.3 AND params.model ILIKE 'resnet%' AND tags.team != 'beta'",
        lambda r: (
            _metric("acc", lambda v: v > 0.3)(r)
            and _param("model", lambda v: v.lower().startswith("resnet"))(r)
            and _tag("team", lambda v: v != "beta")(r)
        ),
    ),
    (
        "metrics.acc < 0.2 OR params.lr = '0.1' AND attributes.status = 'FAILED'",
        lambda r: (
            _metric("acc", lambda v: v < 0.2)(r)
            or (_param("lr", lambda v: v == "0.1")(r) and r.status == "FAILED")
        ),
    ),
    (
        "(metrics.acc < 0.2 OR params.lr = '0.1') AND attributes.status = 'FAILED'",
        lambda r: (
            (_metric("acc", lambda v: v < 0.2)(r) or _param("lr", lambda v: v == "0.1")(r))
            and r.status == "FAILED"
        ),
    ),
    (
        "params.model IS NULL OR (tags.team IS NULL AND metrics.acc IS NOT NULL)",
        lambda r: "model" not in r.params or ("team" not in r.tags and "acc" in r.metrics),
    ),
]


def _visible(
    workspace: str = "default",
    experiment_ids: tuple[int, ...] = (1, 2),
    stages: tuple[str, ...] = ("active",),
) -> list[_Run]:
    return [
        r
        for r in _RUNS
        if r.workspace == workspace
        and r.experiment_id in experiment_ids
        and r.lifecycle_stage in stages
    ]


SortKey = Callable[[_Run], tuple[int, Any]]  # (rank: 0 value, 1 NaN, 2 missing; value)


def _reference_order(rows: list[_Run], keys: list[tuple[SortKey, bool]]) -> list[str]:
    """Stable sorts from the least significant key: run id, start_time DESC, then user keys."""
    rows = sorted(rows, key=lambda r: r.run_id)
    rows = sorted(rows, key=lambda r: r.start_time, reverse=True)
    for sort_key, ascending in reversed(keys):
        rows = sorted(rows, key=lambda r: sort_key(r)[1], reverse=not ascending)
        rows = sorted(rows, key=lambda r: sort_key(r)[0])
    return [r.run_id for r in rows]


@pytest.mark.parametrize(
    ("filter_string", "predicate"), _FILTER_CASES, ids=[c[0] for c in _FILTER_CASES]
)
def test_filter_matches_reference(
    engine: Engine, tuning: str, filter_string: str, predicate: Pred
) -> None:
    expected = _reference_order([r for r in _visible() if predicate(r)], [])
    assert _search(engine, filter_string) == expected


def test_data_exercises_the_semantics() -> None:
    """Guard: the generated runs contain what the cases above are meant to tell apart."""
    visible = _visible()
    models = {r.params.get("model") for r in visible}
    assert {"ResNet", "resnet", "res%net", "resXnet", None} <= models
    assert any(math.isnan(r.metrics.get("acc", 0.0)) for r in visible)
    assert any(r.metrics.get("acc") == _NAN_PLACEHOLDER for r in visible)
    assert {"acc", "val/loss"} - set.intersection(*(set(r.metrics) for r in visible))
    assert len({r.start_time for r in visible}) < len(visible) / 3


def _metric_key(key: str) -> SortKey:
    def sort_key(r: _Run) -> tuple[int, Any]:
        if key not in r.metrics:
            return 2, 0.0
        return (1, 0.0) if math.isnan(r.metrics[key]) else (0, r.metrics[key])

    return sort_key


def _string_key(get: Callable[[_Run], str | None]) -> SortKey:
    return lambda r: (1, "") if get(r) is None else (0, get(r))


_ORDER_CASES: list[tuple[list[str], list[tuple[SortKey, bool]]]] = [
    ([], []),
    (["metrics.acc"], [(_metric_key("acc"), True)]),
    (["metrics.acc DESC"], [(_metric_key("acc"), False)]),
    (["metrics.`val/loss` desc"], [(_metric_key("val/loss"), False)]),
    (["params.model"], [(_string_key(lambda r: r.params.get("model")), True)]),
    (["params.model DESC"], [(_string_key(lambda r: r.params.get("model")), False)]),
    (["tags.team DESC"], [(_string_key(lambda r: r.tags.get("team")), False)]),
    (["attributes.end_time DESC"], [(lambda r: (r.end_time is None, r.end_time or 0), False)]),
    (["attributes.end_time"], [(lambda r: (r.end_time is None, r.end_time or 0), True)]),
    (["attributes.start_time"], [(lambda r: (0, r.start_time), True)]),
    (['tags."mlflow.runName" DESC'], [(lambda r: (0, r.name), False)]),
    (
        ["params.lr", "metrics.acc DESC"],
        [(_string_key(lambda r: r.params.get("lr")), True), (_metric_key("acc"), False)],
    ),
    (
        ["metrics.acc", "metrics.acc DESC", "attributes.status"],
        [(_metric_key("acc"), True), (lambda r: (0, r.status), True)],
    ),
]


@pytest.mark.parametrize(
    ("order_by", "keys"), _ORDER_CASES, ids=[repr(c[0]) for c in _ORDER_CASES]
)
def test_order_matches_reference(
    engine: Engine, tuning: str, order_by: list[str], keys: list[tuple[SortKey, bool]]
) -> None:
    assert _search(engine, None, order_by) == _reference_order(_visible(), keys)


def test_filter_with_order_and_pages(engine: Engine, tuning: str) -> None:
    predicate = _param("model", lambda v: v.lower().startswith("res"))
    keys: list[tuple[SortKey, bool]] = [(_metric_key("acc"), False)]
    expected = _reference_order([r for r in _visible() if predicate(r)], keys)
    args = ("params.model ILIKE 'RES%'", ["metrics.acc DESC"])
    pages = [_search(engine, *args, offset=o, limit=7) for o in range(0, len(expected) + 7, 7)]
    assert [run_id for page in pages for run_id in page] == expected
    assert all(len(page) == 7 for page in pages[: len(expected) // 7])


def test_missing_keys_sort_last(engine: Engine, tuning: str) -> None:
    for direction in ("ASC", "DESC"):
        found = _search(engine, None, [f"metrics.acc {direction}"])
        ranks = [_metric_key("acc")(next(r for r in _RUNS if r.run_id == i))[0] for i in found]
        assert ranks == sorted(ranks) and ranks[-1] == 2 and 1 in ranks


def test_scoping_by_workspace_experiment_and_stage(engine: Engine, tuning: str) -> None:
    both = ("active", "deleted")
    assert _search(engine, None, stages=both) == _reference_order(_visible(stages=both), [])
    assert _search(engine, None, experiment_ids=(2,)) == _reference_order(
        _visible(experiment_ids=(2,)), []
    )
    other = _visible("other", (3,))
    assert other and _search(engine, None, workspace="other", experiment_ids=(3,)) == (
        _reference_order(other, [])
    )
    assert _search(engine, None, workspace="other", experiment_ids=(1, 2)) == []
    assert _search(engine, None, experiment_ids=()) == []
    deleted = _search(engine, "attributes.lifecycle_stage = 'deleted'", stages=both)
    assert deleted == _reference_order(_visible(stages=("deleted",)), [])
    many = tuple(range(1, 12))  # more experiments than a walk bounds one by one
    lr = _param("lr", lambda v: v != "0.1")
    expected = _reference_order([r for r in _visible(experiment_ids=many) if lr(r)], [])
    for offset in (0, 40):
        found = _search(engine, "params.lr != '0.1'", experiment_ids=many, offset=offset)
        assert found == expected[offset:]


_PAGED_ORDERS: list[tuple[list[str], list[tuple[SortKey, bool]]]] = [
    (["metrics.acc DESC"], [(_metric_key("acc"), False)]),
    (["metrics.acc"], [(_metric_key("acc"), True)]),
    (
        ["params.model", "metrics.acc DESC"],
        [(_string_key(lambda r: r.params.get("model")), True), (_metric_key("acc"), False)],
    ),
    (["tags.team DESC"], [(_string_key(lambda r: r.tags.get("team")), False)]),
    ([], []),
    (["attributes.start_time"], [(lambda r: (0, r.start_time), True)]),
]
_PAGED_FILTERS: list[tuple[str | None, Pred]] = [
    (None, lambda r: True),
    ("params.lr != '0.1'", _param("lr", lambda v: v != "0.1")),
    ("metrics.acc IS NOT NULL", lambda r: "acc" in r.metrics),
    (
        "metrics.acc >= 0.3 AND tags.team != 'beta'",
        lambda r: _metric("acc", lambda v: v >= 0.3)(r) and _tag("team", lambda v: v != "beta")(r),
    ),
]


@pytest.mark.parametrize(
    ("order_by", "keys"), _PAGED_ORDERS, ids=[repr(c[0]) for c in _PAGED_ORDERS]
)
def test_pages_straddle_parts(
    engine: Engine, tuning: str, order_by: list[str], keys: list[tuple[SortKey, bool]]
) -> None:
    """Pages that start at, or sit across, the switch from runs with a value to NaN to none."""
    for filter_string, predicate in _PAGED_FILTERS:
        matching = [r for r in _visible() if predicate(r)]
        expected = _reference_order(matching, keys)
        by_id = {r.run_id: r for r in matching}
        ranks = [tuple(k(by_id[i])[0] for k, _ in keys) for i in expected]
        switches = [i for i in range(1, len(ranks)) if ranks[i] != ranks[i - 1]]
        offsets = {0, len(expected) - 1, len(expected)}
        offsets |= {max(0, s + d) for s in switches[:3] for d in (-2, 0)}
        for offset in sorted(offsets):
            found = _search(engine, filter_string, order_by, offset=offset, limit=3, check=False)
            assert found == expected[offset : offset + 3], (filter_string, offset)
    expected = _reference_order(_visible(), keys)
    pages = [
        _search(engine, None, order_by, offset=o, limit=23, check=False)
        for o in range(0, len(expected) + 23, 23)
    ]
    assert [run_id for page in pages for run_id in page] == expected


def test_no_page_for_empty_scope_or_limit(engine: Engine, tuning: str) -> None:
    assert _search(engine, None, ["metrics.acc"], limit=0) == []
    assert _search(engine, None, ["metrics.acc"], stages=()) == []
    assert _search(engine, "params.model = 'nope'", ["metrics.acc"]) == []
    assert (
        _search(engine, None, ["metrics.nope DESC"], offset=5, limit=4)
        == (_reference_order(_visible(), [])[5:9])
    )


class _ListSegment:
    """A segment of known run ids, as the planner pages through them."""

    def __init__(self, ids: list[str], *, count_first: bool) -> None:
        self.ids, self.count_first, self.counted = ids, count_first, 0

    def fetch(self, offset: int, limit: int) -> list[str]:
        return self.ids[offset : offset + limit]

    def count(self) -> int:
        self.counted += 1
        return len(self.ids)


class _GivingUpWalk(_search_plan._Walk):
    """A walk that finds sorting cheaper at once, so the planner sorts its rows instead."""

    def __init__(self, planner: Any, ids: list[str]) -> None:
        super().__init__(planner, [], [])
        self.ids, self.walked = ids, [Comparison("tag", f"walk-{id(self)}", "IS NOT NULL", None)]

    def fetch(self, offset: int, limit: int) -> Any:
        return _search_plan._Sort(None, len(self.ids))

    def count(self) -> int:
        return len(self.ids)


def test_pages_concatenate_segments(monkeypatch: pytest.MonkeyPatch) -> None:
    """Paging across parts: a part is counted only when the page starts past it, and a later
    walk that gives up is sorted on its own."""
    engine = create_engine("sqlite://")
    with engine.connect() as conn:
        planner = _search_plan._Planner(conn, Scope("default", (1,), ("active",)), Tuning())
        walks: dict[str, _GivingUpWalk] = {}

        def sort(conjuncts: Any, keys: Any, how: Any, offset: int, limit: int) -> list[str]:
            return walks[conjuncts[0].key].ids[offset : offset + limit]

        monkeypatch.setattr(planner, "sort", sort)
        for sizes in ([3, 0, 4, 2, 5], [0, 0, 6], [7]):
            expected = [f"r{n}" for n in range(sum(sizes))]
            starts = [sum(sizes[:i]) for i in range(len(sizes) + 1)]
            for offset in range(len(expected) + 2):
                for limit in (1, 2, 4, 30):
                    segments: list[Any] = []
                    for i in range(len(sizes)):
                        ids = expected[starts[i] : starts[i + 1]]
                        if i % 3 == 2:  # a walk that gives up, never first
                            segments.append(_GivingUpWalk(planner, ids))
                            walks[segments[-1].walked[0].key] = segments[-1]
                        else:
                            segments.append(_ListSegment(ids, count_first=i % 2 == 1))
                    found = planner._concat(iter(segments), offset, limit)
                    assert found == expected[offset : offset + limit], (sizes, offset, limit)
                    if offset < sizes[0]:
                        assert segments[0].counted == 0
        verdict = _search_plan._Sort(None, 5)
        first_gives_up = [verdict, _ListSegment(["x"], count_first=False)]
        assert planner._concat(iter(first_gives_up), 0, 3) == verdict


def test_pathological_filters_are_invalid_input_not_crashes() -> None:
    from loopml.errors import InvalidInput
    from loopml.tracking._filter import parse_filter

    for filter_text, words in [
        ("(" * 5000 + "metrics.a > 1" + ")" * 5000, "nest deeper"),
        (" AND ".join(["metrics.m > 1"] * 300), "at most 200"),
        ("metrics.a > 1 OR " * 2000 + "metrics.a > 1", "at most"),
    ]:
        with pytest.raises(InvalidInput, match=words):
            parse_filter(filter_text)
    assert parse_filter("((metrics.a > 1))") is not None
