"""Seed 002's KServe ``InferenceService`` and batch ``BatchJob``, without a cluster.

loopml's inference server speaks KServe's Open Inference Protocol (v2), so Triton's official
client ``tritonclient`` calls it as it would call a KServe predictor. The batch job (input file
in, scored file out) is ``loopml.serving.predict_batch`` (``loopml predict-batch`` from a shell).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import tritonclient.http as triton
from _util import FEATURES, churn_frame, serve_in_background, split
from sklearn.ensemble import RandomForestClassifier

import loopml
from loopml.serving import ModelRuntime, create_serving_app, predict_batch

NAME = "ml-model-service"
train, test = split(churn_frame(1_500, seed=3))
model = RandomForestClassifier(n_estimators=30, max_depth=6, random_state=0)
model.fit(train[FEATURES], train["churned"])
with loopml.start_run(run_name="sklearn-predictor"):
    info = loopml.log_model(
        model, "model", registered_model_name=NAME, input_example=train[FEATURES][:20]
    )
loopml.Client().set_registered_model_alias(NAME, "production", info.registered_model_version)

# The predictor (the InferenceService's `sklearn: storageUri: ...`), on a local port.
app = create_serving_app(ModelRuntime.load(f"models:/{NAME}@production"))
with serve_in_background(app) as url:
    client = triton.InferenceServerClient(url=url.removeprefix("http://"))
    print(f"server live: {client.is_server_live()}, model ready: {client.is_model_ready(NAME)}")
    metadata = client.get_model_metadata(NAME)
    print(f"metadata: platform {metadata['platform']}, inputs {len(metadata['inputs'])} columns")

    # One [N, 4] FP64 tensor: its columns are the signature's, in order.
    x = test[FEATURES][:8].to_numpy(dtype=np.float64)
    tensor = triton.InferInput("input-0", list(x.shape), "FP64")
    tensor.set_data_from_numpy(x)  # binary tensor data, as tritonclient sends by default
    result = client.infer(
        NAME, inputs=[tensor], outputs=[triton.InferRequestedOutput("predict", binary_data=True)]
    )
    served = result.as_numpy("predict")
    print(f"v2 infer: {served.tolist()}")
    print(f"matches the local model: {bool((served == model.predict(test[FEATURES][:8])).all())}")
    client.close()

# The BatchJob: a file of inputs in, a Parquet file of inputs and predictions out.
Path("batch").mkdir(exist_ok=True)
churn_frame(20_000, seed=4)[FEATURES].to_parquet("batch/batch-input.parquet")
report = predict_batch(
    f"models:/{NAME}@production", "batch/batch-input.parquet", "batch/batch-output.parquet"
)
scored = pd.read_parquet(report.output_path)
print(f"batch job: {report.rows_ok} of {report.rows} rows predicted, {report.rows_failed} failed")
print(f"churn rate predicted: {scored['prediction'].mean():.3f}")
