"""The same pipeline on a local Ray instance started by the test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import steps_for_tests as sft


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A local Ray whose workers count calls in a folder of this test's own."""
    import ray

    counts = tmp_path_factory.mktemp("ray-counts")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"COUNTS": str(counts)}},
    )
    yield counts
    ray.shutdown()


def test_a_pipeline_runs_on_ray(local_ray: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COUNTS", str(local_ray))
    run = sft.where.run(executor="ray")
    assert run.executor == "ray" and run.result != os.getpid()
    run = sft.training.run(n=160, executor="ray")
    assert run.status == "SUCCEEDED" and run.result["metrics"]["rows"] == 40
    assert run.steps["fit"].tracking_runs  # the worker's tracking run is linked
    # retries and timeouts hold on Ray too
    assert sft.retrying.run(fail_times=1, executor="ray").result == "ok after 2"
    slow = sft.sleepy.run(seconds=30, executor="ray", raise_on_failure=False)
    assert "timed out after 0.5 s" in slow.steps["slow_limited"].error
    # and the cache is shared with the local executors
    again = sft.training.run(n=160)
    assert again.cache_hits == ["make_frame", "split", "fit", "score"]
