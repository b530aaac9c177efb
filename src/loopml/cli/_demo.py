"""``loopml demo``: a tracked scikit-learn training on a bundled dataset, its model packaged,
registered, promoted to ``production`` and loaded back by alias.

Later capabilities grow this same command into the whole loop (serving, monitoring).
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

import loopml

MODEL_NAME = "breast-cancer-classifier"


def run_demo(*, tracking_uri: str | None, experiment: str, console: Console) -> str:
    """Train and track a random forest on the breast-cancer dataset; returns the run id."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
    from sklearn.model_selection import train_test_split

    if tracking_uri:
        loopml.set_tracking_uri(tracking_uri)
    exp = loopml.set_experiment(experiment)
    data = load_breast_cancer(as_frame=True)
    x_train, x_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=0.25, random_state=42, stratify=data.target
    )
    n_estimators = 100
    params = {"n_estimators": n_estimators, "max_depth": 6, "random_state": 42}
    console.print(f"[bold]loopml demo[/bold]: training a random forest on {len(x_train)} rows")
    with loopml.start_run(run_name="random-forest") as run:
        loopml.log_params({**params, "dataset": "breast_cancer"})
        loopml.set_tags({"model_family": "random_forest", "demo": "true"})
        model = RandomForestClassifier(
            n_estimators=10, max_depth=6, random_state=42, warm_start=True
        )
        # Grow the forest 10 trees at a time and log the test accuracy at each step.
        for step, trees in enumerate(range(10, n_estimators + 1, 10)):
            model.set_params(n_estimators=trees)
            model.fit(x_train, y_train)
            loopml.log_metric(
                "test_accuracy", accuracy_score(y_test, model.predict(x_test)), step=step
            )
        proba = model.predict_proba(x_test)[:, 1]
        pred = model.predict(x_test)
        final = {
            "accuracy": float(accuracy_score(y_test, pred)),
            "f1": float(f1_score(y_test, pred)),
            "roc_auc": float(roc_auc_score(y_test, proba)),
        }
        loopml.log_metrics(final)
        importance = dict(
            sorted(
                zip(data.feature_names, model.feature_importances_.round(5).tolist(), strict=True),
                key=lambda kv: -kv[1],
            )[:10]
        )
        loopml.log_dict(importance, "feature_importance.json")
        info = loopml.log_model(
            model, "model", registered_model_name=MODEL_NAME, input_example=x_test.iloc[:5]
        )
        _log_figure(model, x_test, y_test)
        run_id = run.info.run_id
    client = loopml.Client()
    client.set_registered_model_alias(
        MODEL_NAME,
        "production",
        info.registered_model_version,
        reason=f"demo: accuracy {final['accuracy']:.4f} on the held-out quarter",
    )
    served = loopml.load_model(f"models:/{MODEL_NAME}@production")
    served_accuracy = float(accuracy_score(y_test, served.predict(x_test)))
    recorded = loopml.get_run(run_id)
    files = client.list_artifacts(run_id)
    table = Table(title=f"run {run_id}")
    table.add_column("what")
    table.add_column("recorded", overflow="fold")
    table.add_row("experiment", f"{exp.name} (id {exp.experiment_id})")
    table.add_row("status", recorded.info.status)
    table.add_row("params", ", ".join(f"{k}={v}" for k, v in sorted(recorded.data.params.items())))
    table.add_row(
        "metrics", ", ".join(f"{k}={v:.4f}" for k, v in sorted(recorded.data.metrics.items()))
    )
    table.add_row("metric history", "test_accuracy over 10 steps")
    table.add_row("artifacts", ", ".join(f.path for f in files))
    onnx = "with an ONNX copy" if info.onnx_available else "no ONNX copy"
    table.add_row(
        "model",
        f"{info.flavor} flavor, {onnx}; registered as {MODEL_NAME} version "
        f"{info.registered_model_version}, alias production",
    )
    table.add_row(
        "served",
        f"models:/{MODEL_NAME}@production loaded with the {served.runtime} runtime: "
        f"accuracy {served_accuracy:.4f}",
    )
    console.print(table)
    console.print(f"tracking store: {loopml.get_tracking_uri()}")
    console.print(f"artifacts:      {recorded.info.artifact_uri}")
    console.print(
        f"explore:        loopml runs show {run_id}   ·   loopml runs list -e {exp.name}"
    )
    console.print(
        f"registry:       loopml models versions {MODEL_NAME}   ·   "
        f"loopml models history {MODEL_NAME}"
    )
    return run_id


def _log_figure(model: object, x_test: object, y_test: object) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from sklearn.metrics import ConfusionMatrixDisplay
    except ImportError:
        return  # matplotlib is optional; the rest of the demo does not need it
    disp = ConfusionMatrixDisplay.from_estimator(model, x_test, y_test)
    loopml.log_figure(disp.figure_, "confusion_matrix.png")
    plt.close(disp.figure_)
