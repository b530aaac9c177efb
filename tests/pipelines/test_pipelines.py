"""Pipelines: DAG building, running with caching, retries, timeouts, resume, executors,
run history, schedules and alert triggers — against the embedded store."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import steps_for_tests as sft

import loopml
from loopml.errors import InvalidInput, NotFound, PipelineFailed
from loopml.pipelines import (
    Scheduler,
    add_schedule,
    enqueue_run,
    get_pipeline_store,
    get_run,
    list_pipelines,
    list_runs,
    load_pipeline,
    next_time,
    pipeline,
    register_pipeline,
    run_pipeline,
    step,
)


@pytest.fixture(autouse=True)
def counts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "counts"
    monkeypatch.setenv("COUNTS", str(folder))
    return folder


# -- building ---------------------------------------------------------------------------------
def test_a_pipeline_builds_a_dag_of_its_steps() -> None:
    dag = sft.training.build({"n": 50})
    assert list(dag.nodes) == ["make_frame", "split", "fit", "score"]
    assert dag.nodes["make_frame"].params == {"n": 50}
    assert dag.nodes["fit"].upstream == ["split"]
    assert dag.nodes["score"].upstream == ["fit", "split"]
    assert {k: (v.step, v.name) for k, v in dag.nodes["score"].inputs.items()} == {
        "model": ("fit", "output"),
        "test": ("split", "test"),
    }
    assert dag.downstream("split") == {"fit", "score"}
    assert dag.to_dict()["result"] == {
        "model": {"$output": "fit.output"},
        "metrics": {"$output": "score.output"},
    }
    # outside a pipeline a step is just its function
    frame = sft.make_frame(5)
    assert isinstance(frame, pd.DataFrame) and len(frame) == 5


def test_a_step_used_twice_gets_a_second_name() -> None:
    @pipeline
    def twice():
        return [sft.make_frame(10, seed=1), sft.make_frame(20, seed=2)]

    assert list(twice.build().nodes) == ["make_frame", "make_frame_2"]


def test_bad_definitions_are_refused() -> None:
    with pytest.raises(InvalidInput, match="not a JSON value"):
        sft.training.build({"n": object()})
    with pytest.raises(InvalidInput, match="unexpected keyword"):
        sft.training.build({"rows": 5})
    with pytest.raises(InvalidInput, match="finite numbers"):
        sft.training.build({"c": float("nan")})
    with pytest.raises(InvalidInput, match="finite numbers"):
        sft.training.build({"c": [1.0, {"deep": float("inf")}]})
    with pytest.raises(InvalidInput, match="64-bit"):
        sft.training.build({"n": 2**70})
    with pytest.raises(InvalidInput, match="run with .run"):
        sft.training()
    with pytest.raises(InvalidInput, match="retries"):
        step(retries=-1)(lambda: 1)
    with pytest.raises(InvalidInput, match="timeout"):
        step(timeout=0)(lambda: 1)
    with pytest.raises(InvalidInput, match="unknown step option"):
        sft.slow.options(speed=2)

    @pipeline
    def empty():
        return None

    with pytest.raises(InvalidInput, match="calls no step"):
        empty.build()

    @pipeline
    def returns_data():
        sft.make_frame(5)
        return 3

    with pytest.raises(InvalidInput, match="must return step outputs"):
        returns_data.build()

    @pipeline
    def passes_a_frame():
        return sft.split(pd.DataFrame({"x": [1]}))

    with pytest.raises(InvalidInput, match="argument 'frame' of step 'split' is not a JSON"):
        passes_a_frame.build()
    with pytest.raises(InvalidInput, match="outputs must be distinct names"):
        step(outputs=("a.b",))(lambda: 1)


# -- running ----------------------------------------------------------------------------------
def test_a_run_passes_outputs_and_records_everything() -> None:
    run = sft.training.run(n=400, c=0.5)
    assert run.status == "SUCCEEDED" and run.error is None
    assert run.params == {"n": 400, "c": 0.5}
    result = run.result
    assert result["metrics"]["rows"] == 100 and 0.5 < result["metrics"]["accuracy"] <= 1
    assert result["model"].predict(pd.DataFrame({"x": [3.0, -3.0]})).tolist() == [1, 0]
    steps = run.steps
    assert [s.status for s in steps.values()] == ["SUCCEEDED"] * 4
    assert steps["make_frame"].outputs["output"]["kind"] == "dataframe"
    assert steps["make_frame"].outputs["output"]["rows"] == 400
    assert steps["split"].outputs["test"]["rows"] == 100
    assert steps["fit"].outputs["output"]["kind"] == "model"
    assert steps["score"].outputs["output"]["kind"] == "json"
    assert steps["score"].inputs["test"]["from"] == "split.test"
    assert "made 400 rows" in steps["make_frame"].logs
    # the tracking run the step started is linked and tagged
    (tracked,) = steps["fit"].tracking_runs
    tags = loopml.get_run(tracked).data.tags
    assert tags["loopml.pipeline.run_id"] == run.run_id and tags["loopml.pipeline.step"] == "fit"
    assert loopml.get_run(tracked).data.params == {"c": "0.5"}
    # history
    stored = get_run(run.run_id)
    assert stored.to_dict() == run.to_dict()
    assert [r.run_id for r in list_runs("training")] == [run.run_id]
    (info,) = list_pipelines()
    assert info.name == "training" and info.target == "steps_for_tests:training"
    assert info.last_run["status"] == "SUCCEEDED"
    assert run.output("split", "train").shape == (300, 2)
    with pytest.raises(InvalidInput, match="name one"):
        run.output("split")
    with pytest.raises(NotFound):
        run.output("nope")


_barrier = threading.Barrier(2, timeout=20)


@step
def meet(side: str) -> str:
    _barrier.wait()  # returns only when both steps run at the same time
    return side


def test_independent_steps_run_in_parallel() -> None:
    @pipeline
    def both():
        return [meet("left"), meet("right")]

    _barrier.reset()
    assert both.run(max_workers=2).result == ["left", "right"]


def test_unchanged_steps_come_from_the_cache(counts: Path) -> None:
    first = sft.training.run(n=300)
    again = sft.training.run(n=300)
    assert again.cache_hits == ["make_frame", "split", "fit", "score"]
    assert {s.cached_from for s in again.steps.values()} == {first.run_id}
    assert sft.calls("fit") == 1
    assert again.result["metrics"] == first.result["metrics"]
    assert again.steps["fit"].cache_key == first.steps["fit"].cache_key
    # a changed parameter re-runs its step and what depends on it, nothing else
    changed = sft.training.run(n=300, c=0.1)
    assert changed.cache_hits == ["make_frame", "split"]
    assert sft.calls("fit") == 2 and sft.calls("make_frame") == 1
    # caching off for the run
    sft.training.run(n=300, cache=False)
    assert sft.calls("make_frame") == 2
    # caching off for one step

    @pipeline
    def fresh(n: int = 300):
        frame = sft.make_frame.options(cache=False)(n)
        return sft.split(frame)

    fresh.run()
    fresh_again = fresh.run()
    assert fresh_again.steps["make_frame"].status == "SUCCEEDED"
    assert fresh_again.steps["split"].status == "CACHED"  # same data, same key


def test_a_changed_step_source_invalidates_its_cache(tmp_path: Path) -> None:
    def define(body: str) -> Any:
        scope: dict[str, Any] = {"__name__": "generated_steps"}
        code = f"def value() -> int:\n    return {body}\n"
        path = tmp_path / f"v{abs(hash(body))}.py"
        path.write_text(code)
        exec(compile(code, str(path), "exec"), scope)  # noqa: S102 - two versions of one step
        return step(scope["value"])

    import linecache

    one, two = define("1"), define("2")
    linecache.clearcache()
    assert one.function_ref == two.function_ref and one.source_hash != two.source_hash
    assert step(lambda: 1).source_hash != step(lambda: 2).source_hash

    @pipeline
    def first():
        return one()

    @pipeline
    def second():
        return two()

    assert first.run().result == 1
    run = second.run()
    assert run.result == 2 and run.cache_hits == []
    assert one.options(version="b").source_hash != one.source_hash


def test_a_cache_hit_whose_outputs_are_gone_recomputes(counts: Path) -> None:
    import shutil

    from loopml.config import get_settings

    sft.training.run(n=100)
    root = Path(get_settings().resolved_artifact_uri)
    shutil.rmtree(root / "pipelines")
    run = sft.training.run(n=100)
    assert sft.calls("make_frame") == 2 and sft.calls("fit") == 2
    # score's output lives in the database: with inputs of the same content, it is reused
    assert run.cache_hits == ["score"]


def test_retries_with_backoff_then_success() -> None:
    run = sft.retrying.run(fail_times=2)
    flaky = run.steps["flaky"]
    assert run.status == "SUCCEEDED" and run.result == "ok after 3"
    assert flaky.attempts == 3 and flaky.error is None
    assert "--- attempt 1 ---" in flaky.logs and "flaky failure 2" in flaky.logs


def test_a_failure_skips_downstream_and_raises_with_the_run(counts: Path) -> None:
    @step
    def boom(frame: pd.DataFrame) -> int:
        raise ValueError("the data is wrong")

    @pipeline
    def broken():
        frame = sft.make_frame(50)
        side = sft.score(sft.fit(frame), frame)  # an independent branch still runs
        return [sft.split(boom(frame)), side]

    with pytest.raises(
        PipelineFailed, match="step 'boom' failed: ValueError: the data is wrong"
    ) as e:
        broken.run()
    run = e.value.run
    assert run.status == "FAILED"
    statuses = {name: s.status for name, s in run.steps.items()}
    assert statuses == {
        "make_frame": "SUCCEEDED",
        "fit": "SUCCEEDED",
        "score": "SUCCEEDED",
        "boom": "FAILED",
        "split": "SKIPPED",
    }
    assert "upstream step 'boom' failed" in run.steps["split"].error
    assert "Traceback" in run.steps["boom"].error and run.steps["boom"].attempts == 1
    assert get_run(run.run_id).status == "FAILED"
    quiet = broken.run(raise_on_failure=False)
    assert quiet.status == "FAILED"


def test_a_step_over_its_timeout_fails() -> None:
    run = sft.sleepy.run(seconds=3, raise_on_failure=False)
    step_run = run.steps["slow_limited"]
    assert run.status == "FAILED" and step_run.status == "FAILED"
    assert "timed out after 0.5 s" in step_run.error


def test_resume_reruns_from_the_failed_step(tmp_path: Path, counts: Path) -> None:
    flag = tmp_path / "broken"
    flag.touch()

    @step
    def check(frame: pd.DataFrame, flag_path: str) -> int:
        sft.bump("check")
        if Path(flag_path).exists():
            raise RuntimeError("not yet")
        return len(frame)

    @pipeline
    def resumable(flag_path: str):
        frame = sft.make_frame.options(cache=False)(80)
        sft.split(frame)
        return check(frame, flag_path)

    failed = resumable.run(flag_path=str(flag), raise_on_failure=False)
    assert failed.status == "FAILED" and failed.steps["check"].status == "FAILED"
    flag.unlink()
    resumed = resumable.resume(failed.run_id, flag_path=str(flag))
    assert resumed.status == "SUCCEEDED" and resumed.result == 80
    assert resumed.resumed_from == failed.run_id
    # make_frame is never cached, but a resume reuses what already succeeded
    assert resumed.steps["make_frame"].status == "CACHED"
    assert resumed.steps["make_frame"].cached_from == failed.run_id
    assert resumed.steps["check"].status == "SUCCEEDED"
    assert sft.calls("make_frame") == 1 and sft.calls("check") == 2
    with pytest.raises(InvalidInput, match="only a failed run resumes"):
        resumable.resume(resumed.run_id, flag_path=str(flag))
    with pytest.raises(InvalidInput, match="is a run of pipeline 'resumable'"):
        sft.training.resume(failed.run_id)
    with pytest.raises(NotFound):
        resumable.resume("0" * 32, flag_path="x")


def test_outputs_of_every_kind_travel_between_steps() -> None:
    import numpy as np

    @step(outputs=("array", "big", "odd", "nan"))
    def produce():
        return (
            np.arange(6.0).reshape(2, 3),
            {"values": list(range(20_000))},
            {1: "int keys are not JSON"},
            float("nan"),
        )

    @step
    def consume(array, big, odd, nan) -> dict:
        return {
            "sum": float(array.sum()),
            "n": len(big["values"]),
            "odd": odd[1],
            "nan": nan != nan,
        }

    @pipeline
    def kinds():
        return consume(*produce())

    run = kinds.run()
    assert run.result == {"sum": 15.0, "n": 20_000, "odd": "int keys are not JSON", "nan": True}
    outs = run.steps["produce"].outputs
    assert [outs[k]["kind"] for k in ("array", "big", "odd", "nan")] == [
        "ndarray",
        "json_file",
        "pickle",
        "pickle",
    ]


def test_wrong_outputs_fail_the_step() -> None:
    @step(outputs=("a", "b"))
    def one_value():
        return 1

    @step
    def unstorable():
        return threading.Lock()

    @pipeline
    def wrong():
        return [one_value()[0], unstorable()]

    run = wrong.run(raise_on_failure=False)
    assert "declares outputs ['a', 'b'] but returned a int" in run.steps["one_value"].error
    assert "cannot store a lock output" in run.steps["unstorable"].error


def test_the_process_executor_runs_steps_in_other_processes() -> None:
    run = sft.where.run(executor="processes")
    assert run.result != os.getpid() and run.executor == "processes"
    run = sft.training.run(n=120, executor="processes")
    assert run.status == "SUCCEEDED" and run.result["metrics"]["rows"] == 30
    # a process kills a step over its timeout
    run = sft.sleepy.run(seconds=30, executor="processes", raise_on_failure=False)
    assert "timed out" in run.steps["slow_limited"].error

    @step
    def local() -> int:
        return 1

    @pipeline
    def nested():
        return local()

    run = nested.run(executor="processes", raise_on_failure=False)
    assert "define it at the top level of a module" in run.steps["local"].error


def test_bad_run_options_are_refused() -> None:
    with pytest.raises(InvalidInput, match="executor must be"):
        sft.training.run(executor="gpu-farm")
    with pytest.raises(NotFound, match="does not exist"):
        load_pipeline("never-defined")
    with pytest.raises(NotFound, match="cannot import module"):
        load_pipeline("no_such_module_xyz:thing")
    with pytest.raises(NotFound, match="is not a pipeline"):
        load_pipeline("steps_for_tests:make_frame")
    with pytest.raises(NotFound, match="no pipeline file"):
        load_pipeline("missing/file.py:p")
    with pytest.raises(InvalidInput):
        load_pipeline("")
    assert load_pipeline("steps_for_tests:training") is sft.training
    assert load_pipeline("training") is sft.training


def test_a_pipeline_loads_from_a_file(tmp_path: Path) -> None:
    source = tmp_path / "flow.py"
    source.write_text(
        "from loopml.pipelines import pipeline, step\n\n"
        "@step\ndef answer(x: int) -> int:\n    return x * 2\n\n"
        "@pipeline(name='file-flow')\ndef flow(x: int = 21):\n    return answer(x)\n"
    )
    pipe = load_pipeline(f"{source}:flow")
    assert pipe.name == "file-flow" and run_pipeline(pipe).result == 42


# -- schedules, the queue and alert triggers ------------------------------------------------
def test_cron_times() -> None:
    base = 1_767_225_600_000  # 2026-01-01 00:00 UTC
    assert next_time("*/15 * * * *", base) == base + 15 * 60_000
    assert next_time("0 3 * * *", base) == base + 3 * 3_600_000
    assert next_time("@daily", base) == base + 86_400_000
    with pytest.raises(InvalidInput, match="not a cron expression"):
        next_time("every day", base)
    with pytest.raises(InvalidInput, match="not a cron expression"):
        next_time("61 * * * *", base)


def test_a_schedule_queues_runs_that_the_scheduler_starts_once() -> None:
    store = get_pipeline_store()
    register_pipeline(sft.training)
    base = 1_767_225_600_000
    schedule = add_schedule(store, "training", "0 * * * *", {"n": 120}, now_ms=base)
    assert schedule.next_run_at == base + 3_600_000
    first, second = Scheduler(store, worker="a"), Scheduler(store, worker="b")
    assert first.tick(now_ms=base + 60_000) == []  # not due yet
    due = base + 3_600_000 + 1
    assert second.queue_due(due) != [] and first.queue_due(due) == []  # claimed once
    (ran,) = first.tick(now_ms=due)
    assert second.start_queued() == []
    assert ran.status == "SUCCEEDED" and ran.params == {"n": 120, "c": 1.0}
    assert ran.trigger == f"schedule:{schedule.schedule_id}"
    assert ran.result["metrics"]["rows"] == 30
    after = store.get_schedule(schedule.schedule_id)
    assert after.last_run_id == ran.run_id and after.next_run_at == base + 2 * 3_600_000
    store.set_schedule_enabled(schedule.schedule_id, False)
    assert first.tick(now_ms=base + 10 * 3_600_000) == []
    store.delete_schedule(schedule.schedule_id)
    assert store.list_schedules() == []
    with pytest.raises(NotFound):
        store.delete_schedule(schedule.schedule_id)
    with pytest.raises(NotFound, match="pipeline 'ghost'"):
        add_schedule(store, "ghost", "@daily")
    with pytest.raises(InvalidInput, match="not a cron"):
        add_schedule(store, "training", "@sometimes")


def test_a_queued_run_that_cannot_start_is_recorded_as_failed() -> None:
    @pipeline(name="notebook-only")
    def notebook():
        return sft.pid()

    register_pipeline(notebook)
    run_id = enqueue_run("notebook-only", {"unknown": 1})
    (run,) = Scheduler(get_pipeline_store()).start_queued()
    assert run.run_id == run_id and run.status == "FAILED"
    assert run.error.startswith("could not start:") and "unknown" in run.error
    with pytest.raises(NotFound):
        enqueue_run("never-registered")
    with pytest.raises(InvalidInput, match="JSON"):
        enqueue_run("notebook-only", {"x": object()})


def test_a_fired_alert_queues_a_retraining_run() -> None:
    from loopml.monitoring import AlertEngine, AlertRule, Monitor, PredictionLog

    register_pipeline(sft.training)
    now = time.time()
    with PredictionLog() as log:
        for i in range(5):
            log.append(
                deployment="web",
                variant="main",
                model_name="m",
                model_version="1",
                inputs={"x": float(i)},
                outputs=[0],
                latency_ms=1.0,
                time=now - 30,
            )
    engine = AlertEngine(Monitor())
    engine.store.put_rule(
        AlertRule(
            name="traffic",
            deployment="web",
            metric="requests",
            op=">=",
            threshold=1,
            window="1h",
            min_samples=1,
            notifiers=[{"type": "pipeline", "pipeline": "training", "params": {"n": 80}}],
        )
    )
    (status,) = engine.run_once(now=now)
    (delivery,) = status.event.deliveries
    assert delivery["ok"] is True and delivery["pipeline"] == "training"
    queued = get_run(delivery["run_id"])
    assert queued.status == "QUEUED" and queued.trigger.startswith("alert:traffic:")
    (ran,) = Scheduler(get_pipeline_store()).start_queued()
    assert ran.run_id == queued.run_id and ran.status == "SUCCEEDED"
    assert ran.params["n"] == 80 and ran.steps["split"].outputs["test"]["rows"] == 20
    with pytest.raises(InvalidInput, match="needs the name of the pipeline"):
        AlertRule(
            name="x",
            deployment="web",
            metric="requests",
            op=">=",
            threshold=1,
            notifiers=[{"type": "pipeline"}],
        )


def test_history_queries_check_their_arguments() -> None:
    with pytest.raises(InvalidInput, match="status must be"):
        list_runs(status="DONE")
    with pytest.raises(InvalidInput, match="limit"):
        list_runs(limit=0)
    with pytest.raises(NotFound):
        list_runs("ghost")
    with pytest.raises(NotFound):
        get_run("f" * 32)


# -- what the review of the first version found ---------------------------------------------
def scaled_by(factor: int) -> Any:
    @step(name=f"times_{factor}")
    def times(x: int) -> int:
        return x * factor

    return times


def test_values_a_step_closes_over_are_part_of_its_cache_key() -> None:
    double, triple = scaled_by(2), scaled_by(3)
    assert double.function_ref == triple.function_ref
    assert double.source_hash != triple.source_hash
    assert scaled_by(2).source_hash == double.source_hash

    @pipeline
    def doubled():
        return double(10)

    @pipeline
    def tripled():
        return triple(10)

    assert doubled.run().result == 20
    run = tripled.run()
    assert run.result == 30 and run.cache_hits == []


def test_source_hashes_do_not_depend_on_the_hash_seed(tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "seeded.py").write_text(
        "from loopml.pipelines import step\n\n"
        "@step\ndef pick(x: str) -> bool:\n    return x in {'a', 'b', 'c', 'd'}\n"
    )
    code = "import seeded; print(seeded.pick.source_hash)"
    hashes = {
        subprocess.run(
            [sys.executable, "-c", code],
            cwd=tmp_path,
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in (1, 2, 3)
    }
    assert len(hashes) == 1


def test_outputs_come_back_as_they_were_returned() -> None:
    @step(outputs=("tail", "int_columns", "mixed", "level", "nested"))
    def produce():
        frame = pd.DataFrame({"x": range(10)})
        return (
            frame.iloc[6:],
            pd.DataFrame({0: [1, 2], 1: [3, 4]}),
            pd.DataFrame({"m": [1, "a", 2.5]}),
            sft.Level.HIGH,
            {"t": (1, 2)},
        )

    @step
    def check(tail, int_columns, mixed, level, nested) -> list:
        return [
            tail.index.tolist(),
            list(int_columns.columns),
            mixed["m"].tolist(),
            type(level).__name__,
            type(nested["t"]).__name__,
        ]

    @pipeline
    def round_trip():
        return check(*produce())

    run = round_trip.run()
    assert run.result == [[6, 7, 8, 9], [0, 1], [1, "a", 2.5], "Level", "tuple"]
    kinds = {k: v["kind"] for k, v in run.steps["produce"].outputs.items()}
    assert kinds == {
        "tail": "dataframe",
        "int_columns": "pickle",
        "mixed": "pickle",
        "level": "pickle",
        "nested": "pickle",
    }


@step
def exits() -> int:
    raise SystemExit(3)


@step(retries=2, retry_delay=0.01)
def leaves_a_run_open(flag: str) -> str:
    loopml.start_run(run_name="left-open")
    if not Path(flag).exists():
        Path(flag).touch()
        raise RuntimeError("first attempt fails with its run still active")
    return "second attempt"


def test_a_step_cannot_exit_the_process_or_leak_its_tracking_run(tmp_path: Path) -> None:
    @pipeline
    def exiting():
        return exits()

    run = exiting.run(raise_on_failure=False)
    assert run.status == "FAILED" and "SystemExit: 3" in run.steps["exits"].error

    @pipeline
    def leaking(flag: str):
        return leaves_a_run_open(flag)

    run = leaking.run(flag=str(tmp_path / "flag"))
    assert run.result == "second attempt" and run.steps["leaves_a_run_open"].attempts == 2
    tracked = loopml.search_runs(filter_string="tags.`loopml.pipeline.step` = 'leaves_a_run_open'")
    assert sorted(tracked["status"]) == ["FAILED", "FINISHED"]
    assert loopml.active_run() is None


def test_a_timeout_counts_from_the_start_of_the_attempt() -> None:
    waiting = sft.slow.options(name="second", timeout=1.5)

    @pipeline
    def queued_behind():
        return [sft.slow.options(name="first")(0.8), waiting(0.1)]

    run = queued_behind.run(max_workers=1)  # the second waits for the only slot
    assert run.status == "SUCCEEDED", run.error


def test_a_file_pipeline_is_the_same_module_in_every_process(tmp_path: Path) -> None:
    source = tmp_path / "fileflow.py"
    source.write_text(
        "from loopml.pipelines import pipeline, step\n\n"
        "@step\ndef answer(x: int) -> int:\n    return x * 2\n\n"
        "@pipeline(name='file-flow-2')\ndef flow(x: int = 21):\n    return answer(x)\n"
    )
    pipe = load_pipeline(f"{source}:flow")
    first = pipe.run(executor="processes")
    assert first.result == 42 and first.steps["answer"].status == "SUCCEEDED"
    again = run_pipeline("file-flow-2")
    assert again.cache_hits == ["answer"]
    (info,) = [p for p in list_pipelines() if p.name == "file-flow-2"]
    assert info.target == f"{source}:flow"
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "fileflow.py").write_text("x = 1\n")
    with pytest.raises(InvalidInput, match="another module has that name"):
        load_pipeline(f"{tmp_path / 'other' / 'fileflow.py'}:flow")


def test_cached_from_names_the_run_that_computed() -> None:
    first = sft.training.run(n=90)
    sft.training.run(n=90)
    third = sft.training.run(n=90)
    assert {s.cached_from for s in third.steps.values()} == {first.run_id}


def test_abandoned_runs_are_failed_and_can_be_resumed() -> None:
    store = get_pipeline_store()
    register_pipeline(sft.training)
    run_id = enqueue_run("training", {"n": 60})
    assert store.claim_queued("gone-worker", limit=1) == [(run_id, "training")]
    assert store.reap(int(time.time() * 1000) - 60_000) == []  # still beating
    assert store.reap(int(time.time() * 1000) + 1) == [run_id]
    dead = get_run(run_id)
    assert dead.status == "FAILED" and "gone-worker" in dead.error
    resumed = sft.training.resume(run_id, n=60)
    assert resumed.status == "SUCCEEDED" and resumed.resumed_from == run_id


def test_cron_expressions_that_never_fire_are_refused() -> None:
    with pytest.raises(InvalidInput, match="never matches"):
        next_time("0 0 30 2 *", 0)
    with pytest.raises(InvalidInput, match="not a cron expression"):
        next_time("* * * * * *", 0)


def test_a_process_that_cannot_start_fails_the_step(monkeypatch: pytest.MonkeyPatch) -> None:
    import multiprocessing

    def refuse(self: Any) -> None:
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(multiprocessing.get_context("spawn").Process, "start", refuse)
    run = sft.where.run(executor="processes", raise_on_failure=False)
    assert run.status == "FAILED"
    assert "could not run: OSError" in run.steps["pid"].error
