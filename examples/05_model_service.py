"""The seeds' FastAPI model services (``/predict``, ``/predict/batch``, ``/health``,
``/model/info``, Prometheus ``/metrics``) and BentoML's service, as loopml's inference server.

The seed loaded ``scaler.pkl`` and ``model.pkl`` by hand and wrote the preprocessing (seed 000's
``FeatureTransformer``: ``StandardScaler`` and ``LabelEncoder``) and the confidence levels into
the endpoint. Here the preprocessing is part of one scikit-learn pipeline, the response fields
are a ``PythonModel``, and the server, its routes, input checks and metrics come with loopml.
"""

from __future__ import annotations

import httpx
import numpy as np
import pandas as pd
from _util import FEATURES, churn_frame, serve_in_background, split
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import loopml
from loopml.serving import ModelRuntime, create_serving_app

frame = churn_frame(1_200, seed=2)
frame["contract"] = np.where(frame["tenure_months"] > 24, "yearly", "monthly")
COLUMNS = [*FEATURES, "contract"]
train, test = split(frame)

# Preprocessing and model in one object: the server cannot apply one without the other.
pipeline = Pipeline(
    [
        (
            "prepare",
            ColumnTransformer(
                [
                    ("numeric", StandardScaler(), FEATURES),
                    ("categorical", OneHotEncoder(handle_unknown="ignore"), ["contract"]),
                ]
            ),
        ),
        ("model", GradientBoostingClassifier(n_estimators=50, random_state=0)),
    ]
).fit(train[COLUMNS], train["churned"])


class ChurnService(loopml.pyfunc.PythonModel):
    """The seed's response: prediction, probability and a confidence level."""

    def __init__(self, model: Pipeline) -> None:
        self.model = model

    def predict(self, context, model_input: pd.DataFrame) -> pd.DataFrame:
        probability = self.model.predict_proba(model_input)[:, 1]
        confidence = np.maximum(probability, 1 - probability)
        levels = np.select(
            [confidence >= 0.9, confidence >= 0.7, confidence >= 0.5],
            ["very_high", "high", "medium"],
            "low",
        )
        return pd.DataFrame(
            {
                "prediction": (probability >= 0.5).astype(int),
                "probability": probability,
                "confidence": levels,
            }
        )


with loopml.start_run(run_name="gradient-boosting"):
    loopml.log_metric("accuracy", pipeline.score(test[COLUMNS], test["churned"]))
    info = loopml.log_model(
        ChurnService(pipeline),
        "model",
        registered_model_name="churn-service",
        input_example=train[COLUMNS][:5],
    )
loopml.Client().set_registered_model_alias("churn-service", "production", "1")

# `loopml serve models:/churn-service@production` runs the same app as its own process.
app = create_serving_app(ModelRuntime.load("models:/churn-service@production"))
with serve_in_background(app) as url, httpx.Client(base_url=url) as http:
    print(f"health: {http.get('/health').json()}")
    customer = test[COLUMNS].iloc[0].to_dict()
    answer = http.post("/predict", json=customer).json()
    result = answer["prediction"]  # the PythonModel's columns for this customer
    print(
        f"predict: {result['prediction']} probability {result['probability']:.3f} "
        f"confidence {result['confidence']} (model version {answer['model_version']})"
    )

    batch = http.post("/predict/batch", json={"instances": test[COLUMNS][:4].to_dict("records")})
    print(f"batch: {[p['prediction'] for p in batch.json()['predictions']]}")

    # Bad input is a 400 that names the field, not a 500 from inside the model.
    bad = http.post("/predict", json={**customer, "age": "old"})
    print(f"bad input: {bad.status_code} {bad.json()['message']}")

    model_info = http.get("/model/info").json()
    print(f"model info: {model_info['name']} v{model_info['version']} ({model_info['flavor']})")

    metrics = http.get("/metrics").text
    requests = [line for line in metrics.splitlines() if line.startswith("loopml_requests_total")]
    print("prometheus:", *requests, sep="\n  ")
