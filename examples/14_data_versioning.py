"""The seeds' DVC flow: ``dvc add`` a data folder, change it and add it again, ``dvc push`` /
``dvc pull``, and ``git checkout v1.0 && dvc checkout`` to get the old data back.

``loopml.data`` keeps content-addressed versions in the same store as runs and models (the DVC
remote's role: ``LOOPML_ARTIFACT_URI=s3://bucket/prefix`` for S3 or MinIO). Only new files are
uploaded, a version is named by number or alias, and a restore checks every byte.
"""

from __future__ import annotations

import filecmp
import shutil
from pathlib import Path

from _util import churn_frame

import loopml
import loopml.data as ld

# data/: the training table, as a CSV file per month.
data = Path("data")
data.mkdir(exist_ok=True)
for month in (1, 2, 3):
    churn_frame(2_000, seed=month).to_csv(data / f"training_2026-{month:02d}.csv", index=False)

# `dvc add data/ && git commit -m "training data v1"`, linked to the run that used it.
with loopml.start_run(run_name="train-on-v1"):
    first = ld.add(data, "training-data", aliases=["v1.0"], description="three months")
print(
    f"version {first.version.version}: {first.version.num_files} files, "
    f"{first.version.num_rows} rows, uploaded {first.uploaded_blobs} blobs"
)
shutil.copytree(data, "data-v1")  # kept aside to compare with the restore below

# A new month arrives and one month is corrected; `dvc add` again.
churn_frame(2_000, seed=4).to_csv(data / "training_2026-04.csv", index=False)
fixed = churn_frame(2_000, seed=1)
fixed.loc[:5, "support_calls"] = 0.0
fixed.to_csv(data / "training_2026-01.csv", index=False)
second = ld.add(data, "training-data", aliases=["v2.0"])
print(
    f"version {second.version.version}: {second.version.num_files} files, "
    f"uploaded {second.uploaded_blobs} blobs (unchanged files are not sent again)"
)

# Adding unchanged content makes no new version.
again = ld.add(data, "training-data")
print(f"same content again: new version created = {again.created}")

changes = ld.diff("training-data@v1.0", "training-data@v2.0")
print(
    f"diff: added {changes['files']['added']}, changed {changes['files']['changed']}, "
    f"rows {changes['rows']['a']} -> {changes['rows']['b']}"
)

# `git checkout v1.0 && dvc checkout`: the v1.0 files back, byte for byte.
restored = ld.restore("training-data@v1.0", "restored")
same = filecmp.dircmp("data-v1", restored)
print(f"restored v1.0 into {restored}: identical = {not same.diff_files and not same.left_only}")
print(f"versions: {[v.version for v in ld.list_versions('training-data')]}")
