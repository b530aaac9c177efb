"""Run → dataset version → model version lineage, embedded and against a real server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.linear_model import LogisticRegression

import loopml
import loopml.data as ld


def test_active_run_links_dataset_and_registered_model(tracking_mode: str, tmp_path: Path) -> None:
    df = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "y": [0, 0, 1, 1]})
    with loopml.start_run() as run:
        version = ld.log_dataset(df, "train", context="training", aliases=["train-latest"])
        model = LogisticRegression().fit(df[["x"]], df["y"])
        loopml.sklearn.log_model(model, "model")
    assert version.run_id == run.info.run_id
    assert version.aliases == ("train-latest",)
    assert [v.ref for v in ld.run_datasets(run.info.run_id)] == ["train@1"]

    mv = loopml.register_model(f"runs:/{run.info.run_id}/model", "clf")
    assert mv.dataset_versions == ["train@1"]

    # a second run that reuses the same data links to the same version, not a new one
    with loopml.start_run() as second:
        again = ld.log_dataset(df, "train")
    assert again.version == 1 and again.run_id == run.info.run_id  # the creator stays
    assert [v.ref for v in ld.run_datasets(second.info.run_id)] == ["train@1"]


def test_sdk_roundtrip_in_both_modes(
    tracking_mode: str, tmp_path: Path, make_tree: Any, same_tree: Any
) -> None:
    src = make_tree(tmp_path / "src", 12)
    v = ld.log_dataset(src, "files", description="raw", tags={"source": "test"})
    assert ld.get_version("files").ref == "files@1"
    assert ld.get_version("files@1").description == "raw"
    assert len(ld.list_files("files@1")) == 12
    out = ld.restore("files@1", tmp_path / "out")
    assert same_tree(src, out)
    assert [d.name for d in ld.list_datasets()] == ["files"]
    assert ld.get_dataset("files").latest_version == v.version
    ld.set_alias("files", "gold", 1)
    assert ld.get_version("files@gold").version == 1
    ld.delete_version("files@1")
    assert ld.collect_garbage(grace_seconds=0).deleted_blobs == 12
