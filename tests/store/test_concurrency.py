"""Several processes writing one embedded SQLite database at once lose nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from loopml.tracking import SqlTrackingStore

_WRITER = textwrap.dedent(
    """
    import sys
    import loopml
    loopml.set_experiment("shared")
    for r in range(20):
        with loopml.start_run(run_name=f"{sys.argv[1]}-{r}"):
            loopml.log_params({"writer": sys.argv[1], "r": r})
            for i in range(50):
                loopml.log_metric("m", float(i), step=i)
    """
)


def test_parallel_writer_processes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "LOOPML_HOME": str(home), "LOOPML_TRACKING_FLUSH_INTERVAL_MS": "0"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, f"w{n}"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
    store = SqlTrackingStore(f"sqlite:///{home / 'loopml.db'}", str(home / "artifacts"))
    exp = store.find_experiment_by_name("shared")
    assert exp is not None
    runs = store.search_runs([exp.experiment_id], max_results=1000)
    assert len(runs) == 80
    assert all(r.info.status == "FINISHED" for r in runs)
    for run in runs[:10]:
        assert len(store.get_metric_history(run.info.run_id, "m")) == 50
