"""Seeds 000 and 004: convert a scikit-learn model to ONNX and run it with ONNX Runtime.

``log_model`` with an input example does the seed's ``convert_to_onnx`` itself: it converts
with skl2onnx, checks the copy against the model on the example, and keeps it only if the
answers agree. ``load_model`` then predicts on ONNX Runtime; the kept ``model.onnx`` is also a
plain ONNX file for the seed's ``ort.InferenceSession`` code.
"""

from __future__ import annotations

import time

import numpy as np
import onnxruntime as ort
from _util import FEATURES, churn_frame, split
from sklearn.ensemble import RandomForestClassifier

import loopml

train, test = split(churn_frame(2_000, seed=5))
model = RandomForestClassifier(n_estimators=40, max_depth=8, random_state=0)
model.fit(train[FEATURES], train["churned"])

with loopml.start_run(run_name="onnx-export") as run:
    info = loopml.log_model(model, "model", input_example=train[FEATURES][:50])
print(f"ONNX copy kept: {info.onnx_available}")

fast = loopml.load_model(info.model_uri)  # runtime="auto": ONNX Runtime when a copy exists
native = loopml.load_model(info.model_uri, runtime="native")
print(f"runtimes: {fast.runtime} and {native.runtime}")
same = (fast.predict(test[FEATURES]) == native.predict(test[FEATURES])).all()
print(f"same labels on {len(test)} rows: {bool(same)}")
gap = np.abs(fast.predict_proba(test[FEATURES]) - native.predict_proba(test[FEATURES])).max()
print(f"largest probability difference: {gap:.2e}")


def per_call_microseconds(loaded: loopml.LoadedModel, rows: int = 200) -> float:
    """Mean latency of one-row predictions (the serving case)."""
    one = test[FEATURES][:1]
    started = time.perf_counter()
    for _ in range(rows):
        loaded.predict(one)
    return (time.perf_counter() - started) / rows * 1e6


print(
    f"one-row predict: onnx {per_call_microseconds(fast):.0f} us, "
    f"native {per_call_microseconds(native):.0f} us"
)

# The seed's own ONNX Runtime code, on the file loopml kept.
local = loopml.Client().download_artifacts(run.info.run_id, "model/model.onnx", "onnx")
session = ort.InferenceSession(local, providers=["CPUExecutionProvider"])
dtype = np.float32 if fast.manifest["onnx"]["input_type"] == "tensor(float)" else np.float64
input_data = test[FEATURES][:5].to_numpy(dtype=dtype)
outputs = session.run(None, {session.get_inputs()[0].name: input_data})
print(f"onnxruntime session: labels {outputs[0].tolist()}")
