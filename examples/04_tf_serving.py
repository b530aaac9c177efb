"""Seed 000's TensorFlow Serving flow: export a versioned model, start a server, and call
``POST /v1/models/my_model:predict`` with ``{"instances": [[1.0, 2.0, 3.0]]}``.

``model.save('/models/my_model/1')`` becomes registering version 1 of ``my_model``;
``docker run tensorflow/serving`` becomes ``loopml serve models:/my_model@production``, which
speaks TF Serving's REST API (and native JSON and KServe v2) on one port. The client code is the
seed's, with httpx for requests.
"""

from __future__ import annotations

import json

import httpx
import numpy as np
import pandas as pd
from _util import loopml_process
from sklearn.linear_model import LinearRegression

import loopml

# Export: a model over three numeric inputs, registered as my_model version 1. It is fitted on
# named columns: TF Serving's list instances are read in the signature's column order. (A model
# fitted on a bare NumPy array gets an unnamed tensor signature, which loopml's TF Serving route
# refuses for list instances today; see examples/README.md.)
rng = np.random.default_rng(0)
X = pd.DataFrame(rng.normal(size=(500, 3)), columns=["x1", "x2", "x3"])
y = X.to_numpy() @ np.array([1.5, -2.0, 0.5]) + 3.0 + rng.normal(scale=0.1, size=500)
with loopml.start_run(run_name="export"):
    info = loopml.log_model(
        LinearRegression().fit(X, y),
        "model",
        registered_model_name="my_model",
        input_example=X[:5],
    )
loopml.Client().set_registered_model_alias("my_model", "production", info.registered_model_version)
print(
    f"exported my_model version {info.registered_model_version} (ONNX copy: {info.onnx_available})"
)

# Start the server, as `docker run -p 8501:8501 -e MODEL_NAME=my_model tensorflow/serving` did;
# it answers /ready once the model is loaded and warm.
with loopml_process("serve", "models:/my_model@production", ready="/ready") as base:
    # The seed's client, unchanged but for the library.
    data = {"instances": [[1.0, 2.0, 3.0]]}
    response = httpx.post(f"{base}/v1/models/my_model:predict", content=json.dumps(data))
    predictions = response.json()["predictions"]
    print(f"predictions: {[round(p, 3) for p in predictions]}")

    # TF Serving's columnar form ("inputs" -> "outputs") and model status.
    columnar = httpx.post(
        f"{base}/v1/models/my_model/versions/1:predict",
        json={"inputs": [[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]},
    ).json()
    print(f"outputs: {[round(p, 3) for p in columnar['outputs']]}")
    status = httpx.get(f"{base}/v1/models/my_model").json()
    print(f"model status: {status['model_version_status'][0]['state']}")
print("server stopped")
