"""The web UI in a real headless Chromium against a real ``loopml server`` filled by ``loopml
demo``: every page loads without console errors, the runs table filters, sorts and pages,
compare draws its charts, alias and traffic changes made in the browser are seen by the SDK,
and sign-in works when access control is on.

Set ``LOOPML_UI_SCREENSHOTS=<dir>`` to keep a screenshot of each main page (docs/ui/ holds them).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import loopml
from loopml.serving import VariantSpec, get_deployment_store

SHOTS = os.environ.get("LOOPML_UI_SCREENSHOTS")


def _loopml() -> list[str]:
    exe = Path(sys.executable).with_name("loopml")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "loopml"]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory, loopml_process: Any
) -> Iterator[dict[str, Any]]:
    """``loopml demo`` run in a fresh home, then ``loopml server`` over it, both as processes."""
    home = tmp_path_factory.mktemp("ui") / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOPML_", "MLFLOW_"))}
    env["LOOPML_HOME"] = str(home)
    demo = subprocess.run(
        [*_loopml(), "demo"], env=env, capture_output=True, text=True, timeout=600
    )
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-2000:]
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    args = ["server", "--port", str(port)]
    with loopml_process(args, log=home / "server.log", env=env, ready=url + "/health"):
        yield {"url": url, "home": home, "db": f"sqlite:///{home / 'loopml.db'}"}


@pytest.fixture
def page(chromium_browser: Any) -> Iterator[Any]:
    """A fresh browser page that records console errors and uncaught exceptions."""
    context = chromium_browser.new_context(viewport={"width": 1400, "height": 900})
    tab = context.new_page()
    tab.errors = []
    tab.on(
        "console",
        lambda m: m.type in ("error", "warning") and tab.errors.append(f"{m.type}: {m.text}"),
    )
    tab.on("pageerror", lambda e: tab.errors.append(f"uncaught: {e}"))
    tab.set_default_timeout(15_000)
    yield tab
    context.close()


def _shot(page: Any, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"))


def _runs(site: dict) -> list[Any]:
    client = loopml.Client(site["url"])
    experiment = client.get_experiment_by_name("loopml-demo")
    return list(client.search_runs([experiment.experiment_id], max_results=1000))


def _open(page: Any, url: str, heading: str) -> None:
    page.goto(url)
    page.get_by_role("heading", level=1).filter(has_text=heading).wait_for()


def test_every_page_loads_without_console_errors(site: dict, page: Any) -> None:
    url = site["url"]
    runs = _runs(site)
    best = next(r for r in runs if r.info.run_name == "churn-boosted")
    _open(page, url + "/", "Experiments")
    page.locator("table[aria-label=experiments] >> text=loopml-demo").wait_for()
    _shot(page, "experiments")
    page.click("text=loopml-demo")
    page.locator("table[aria-label=runs] tr[data-run]").first.wait_for()
    _shot(page, "runs")
    page.goto(f"{url}/#/runs/{best.info.run_id}")
    page.get_by_role("heading", level=1).filter(has_text="churn-boosted").wait_for()
    page.locator("text=churn v1").first.wait_for()  # the model version it produced
    page.locator("text=churn-training@1").first.wait_for()  # its dataset version
    page.locator("text=trial-0").first.wait_for()  # a child run
    _shot(page, "run")
    page.get_by_role("tab", name="Metric charts").click()
    page.locator("[data-chart^='metric'] canvas").first.wait_for()
    page.get_by_role("tab", name="Artifacts").click()
    page.locator("[aria-label=artifacts] >> text=model").first.click()
    page.locator("[aria-label=artifacts] >> text=MLmodel").first.click()
    page.locator("pre.preview").wait_for()
    _shot(page, "artifacts")
    _open(page, url + "/#/models", "Models")
    page.click("table[aria-label=models] >> text=churn")
    page.locator("table[aria-label=versions] tr[data-version='1']").wait_for()
    _shot(page, "model")
    for tab, ready in (
        ("Alias history", "table[aria-label=history] >> text=first release"),
        ("Compare versions", "table[aria-label='version comparison']"),
        ("Lineage", "[data-chart=lineage] canvas"),
    ):
        page.get_by_role("tab", name=tab).click()
        page.locator(ready).first.wait_for()
    _shot(page, "lineage")
    _open(page, url + "/#/deployments", "Deployments")
    page.click("table[aria-label=deployments] >> text=churn")
    page.locator("[data-chart='traffic split'] canvas").wait_for()
    page.locator("table[aria-label=changes] tr").nth(4).wait_for()
    page.get_by_label("live window").select_option("24h")  # the demo's traffic is minutes old
    live = page.locator("table[aria-label='live traffic'] tr[data-variant=champion] td")
    live.nth(1).wait_for()
    assert int(live.nth(1).inner_text()) > 1000  # requests the demo sent to the champion
    _shot(page, "deployment")
    page.goto(url + "/#/nowhere")
    page.get_by_role("heading", level=1).filter(has_text="Not found").wait_for()
    assert page.errors == []


def test_loop_pages_show_tests_drift_features_data_and_pipelines(site: dict, page: Any) -> None:
    url = site["url"]
    _open(page, url + "/#/abtests", "A/B tests")
    page.click("table[aria-label='ab tests'] >> text=churn-challenger")
    page.locator("[data-verdict='keep running']").wait_for()
    page.locator("[data-srm=ok]").wait_for()
    page.locator("[data-chart=lift] canvas").wait_for()
    assert "p adjusted" in page.inner_text("table[aria-label=analysis]")
    page.get_by_role("tab", name="Bayesian").click()
    page.locator("table[aria-label=analysis] >> text=P(better)").wait_for()
    _shot(page, "abtest")

    _open(page, url + "/#/monitoring?deployment=churn&window=24h&bucket=1s", "Monitoring")
    drifted = page.locator("table[aria-label=drift] >> text=drifted")
    drifted.first.wait_for()
    assert drifted.count() >= 3  # the demo shifts behaviour: several inputs drift
    page.locator("[data-chart=distribution] canvas").wait_for()
    page.locator("[data-chart=quality] canvas").wait_for()
    page.locator("table[aria-label=alerts] >> text=churn-accuracy-drop").wait_for()
    _shot(page, "monitoring")
    page.click("table[aria-label=alerts] >> text=churn-retrain run")  # what the alert started
    page.get_by_role("heading", level=1).filter(has_text="churn-retrain").wait_for()
    page.locator("[data-chart=dag] canvas").wait_for()
    page.locator("tr[data-step=train_model] >> text=Log").click()
    page.locator("pre[aria-label='step log']").wait_for()
    _shot(page, "pipeline-run")
    _open(page, url + "/#/pipelines", "Pipelines")
    page.locator("table[aria-label='pipeline runs'] >> text=alert:churn-accuracy-drop").wait_for()

    _open(page, url + "/#/features", "Features")
    page.locator("[data-service=churn_model]").wait_for()
    page.click("table[aria-label='feature views'] >> text=churn_activity")
    page.locator("table[aria-label=fields] >> text=sessions_7d").wait_for()
    _shot(page, "features")

    _open(page, url + "/#/datasets", "Datasets")
    page.click("table[aria-label=datasets] >> text=churn-training")
    page.locator("table[aria-label=schema] >> text=monthly_charge").wait_for()
    page.locator("table[aria-label=diff] >> text=drifted").first.wait_for()
    assert "11742 → 4275" in page.inner_text("main")  # the retraining set is the recent slice
    _shot(page, "dataset")
    assert page.errors == []


def test_runs_table_filters_sorts_and_pages(site: dict, page: Any) -> None:
    runs = _runs(site)
    experiment_id = runs[0].info.experiment_id
    trials = sorted(
        (r.data.metrics["val_roc_auc"], r.info.run_id)
        for r in runs
        if "val_roc_auc" in r.data.metrics
    )
    rows = page.locator("table[aria-label=runs] tr[data-run]")
    page.goto(f"{site['url']}/#/experiments/{experiment_id}?size=10")
    rows.first.wait_for()
    first_page = [rows.nth(i).get_attribute("data-run") for i in range(rows.count())]
    assert len(first_page) == 10 and len(runs) > 10
    page.get_by_role("button", name="Next →").click()
    page.get_by_label("page").filter(has_text="Page 2").wait_for()
    page.wait_for_function("() => document.querySelectorAll('tr[data-run]').length < 10")
    second_page = [rows.nth(i).get_attribute("data-run") for i in range(rows.count())]
    assert len(second_page) == len(runs) - 10
    assert not set(first_page) & set(second_page)
    page.get_by_role("button", name="← Previous").click()
    page.get_by_label("page").filter(has_text="Page 1").wait_for()

    # the filter, typed with the help of key completion
    box = page.get_by_label("filter")
    box.click()
    box.type("metrics.val_r")
    page.get_by_role("option", name="metrics.val_roc_auc").wait_for()
    box.press("Tab")
    assert box.input_value() == "metrics.val_roc_auc "
    threshold = trials[len(trials) // 2][0]
    box.type(f"> {threshold}")
    box.press("Enter")
    expected = {rid for value, rid in trials if value > threshold}
    page.wait_for_function(
        f"() => document.querySelectorAll('tr[data-run]').length === {len(expected)}"
    )
    assert {rows.nth(i).get_attribute("data-run") for i in range(rows.count())} == expected
    assert "filter=metrics.val_roc_auc" in page.url  # the view can be shared as a link

    # sorting by a metric column: descending, then ascending
    header = page.locator("th[data-key='metrics.val_roc_auc']")
    header.click()
    page.locator("th[data-key='metrics.val_roc_auc']", has_text="▼").wait_for()
    by_value = [rid for _, rid in sorted((v, r) for v, r in trials if r in expected)]
    page.wait_for_function(
        f"() => document.querySelector('tr[data-run]').dataset.run === '{by_value[-1]}'"
    )
    assert [rows.nth(i).get_attribute("data-run") for i in range(rows.count())] == by_value[::-1]
    header.click()
    page.locator("th[data-key='metrics.val_roc_auc']", has_text="▲").wait_for()
    page.wait_for_function(
        f"() => document.querySelector('tr[data-run]').dataset.run === '{by_value[0]}'"
    )

    # a bad filter shows the server's message, naming where it went wrong
    box.fill("metrics.val_roc_auc >> 3")
    box.press("Enter")
    error = page.get_by_role("alert")
    error.wait_for()
    assert "INVALID_PARAMETER_VALUE" in error.inner_text()
    assert page.errors == [] or all("400" in e for e in page.errors)


def test_column_chooser_fetches_only_what_is_shown(site: dict, page: Any) -> None:
    runs = _runs(site)
    experiment_id = runs[0].info.experiment_id
    bodies: list[str] = []
    page.on(
        "request",
        lambda r: r.url.endswith("/api/v1/runs/search") and bodies.append(r.post_data or ""),
    )
    page.goto(f"{site['url']}/#/experiments/{experiment_id}")
    page.locator("tr[data-run]").first.wait_for()
    page.get_by_role("button", name="Columns").click()
    page.get_by_role("button", name="None").click()
    page.get_by_label("find a column").fill("f1")
    page.locator("[aria-label=columns] label", has_text="f1").locator("input").check()
    page.get_by_role("button", name="Done").click()
    page.locator("th[data-key='metrics.f1']").wait_for()
    assert page.locator("th[data-key^='metrics.']").count() == 1
    assert page.locator("th[data-key^='params.']").count() == 0
    assert '"metrics":["f1"]' in bodies[-1] and '"params":[]' in bodies[-1]


def test_compare_shows_charts(site: dict, page: Any) -> None:
    runs = _runs(site)
    experiment_id = runs[0].info.experiment_id
    page.goto(
        f"{site['url']}/#/experiments/{experiment_id}?filter=" + "metrics.val_roc_auc%20%3E%200"
    )
    boxes = page.locator("tr[data-run] input[type=checkbox]")
    boxes.first.wait_for()
    for i in range(3):
        boxes.nth(i).check()
    page.get_by_role("button", name=re.compile("Compare 3")).click()
    page.get_by_role("heading", level=1).filter(has_text="Compare 3 runs").wait_for()
    page.locator("table[aria-label=comparison] tr.diff").first.wait_for()
    page.locator("[data-chart='parallel coordinates'] canvas").wait_for()
    page.locator("[data-chart^='metric'] canvas").first.wait_for()
    _shot(page, "compare")
    assert page.errors == []


def test_alias_promotion_and_rollback_in_the_browser_reach_the_sdk(site: dict, page: Any) -> None:
    client = loopml.Client(site["url"])
    before = client.get_model_version_by_alias("churn", "production").version
    assert before == "3"
    page.goto(site["url"] + "/#/models/churn")
    page.locator("table[aria-label=versions] tr[data-version='2'] >> text=Promote…").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("reason").fill("canary looked better")
    assert "moves from v3 to v2" in dialog.inner_text()
    dialog.get_by_role("button", name="Move alias").click()
    page.get_by_role("status").filter(has_text="@production now points at v2").wait_for()
    assert client.get_model_version_by_alias("churn", "production").version == "2"

    page.locator("[data-alias=production] >> text=Roll back…").click()
    page.get_by_role("dialog").get_by_role("button", name="Roll back").click()
    page.get_by_role("status").filter(has_text="rolled back").wait_for()
    assert client.get_model_version_by_alias("churn", "production").version == "3"
    history = httpx.get(site["url"] + "/api/v1/models/churn/history?alias=production").json()
    moves = [(e["from_version"], e["to_version"], e["reason"]) for e in history["events"][:2]]
    assert moves == [
        ("2", "3", "rolled back from the web UI"),
        ("3", "2", "canary looked better"),
    ]

    # the server's validation reaches the user, and nothing changes
    page.get_by_role("button", name="Set an alias…").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("alias").fill("not an alias!")
    dialog.get_by_role("button", name="Move alias").click()
    dialog.get_by_role("alert").wait_for()
    assert "alias" in dialog.get_by_role("alert").inner_text().lower()
    dialog.get_by_role("button", name="Cancel").click()
    assert client.get_model_version_by_alias("churn", "production").version == "3"


def test_traffic_promote_and_rollback_in_the_browser(site: dict, page: Any) -> None:
    store = get_deployment_store(site["db"])
    store.create_deployment(
        "churn-ui",
        [
            VariantSpec("champion", "models:/churn/3", 90.0, "primary"),
            VariantSpec("challenger", "models:/churn/2", 10.0, "canary"),
        ],
    )
    page.goto(site["url"] + "/#/deployments/churn-ui")
    page.get_by_role("button", name="Change traffic…").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("champion (primary)").fill("150")
    dialog.get_by_role("button", name="Apply").click()
    dialog.get_by_role("alert").wait_for()  # the server refuses, the dialog says why
    assert {v.name: v.weight for v in store.get_deployment("churn-ui").variants} == {
        "champion": 90.0,
        "challenger": 10.0,
    }
    dialog.get_by_label("champion (primary)").fill("70")
    dialog.get_by_label("challenger (canary)").fill("30")
    dialog.get_by_role("button", name="Apply").click()
    page.get_by_role("status").filter(has_text="Traffic changed").wait_for()
    weights = {v.name: v.weight for v in store.get_deployment("churn-ui").variants}
    assert weights == {"champion": 70.0, "challenger": 30.0}

    page.locator("tr[data-variant=challenger] >> text=Promote…").click()
    page.get_by_role("dialog").get_by_role("button", name="Promote").click()
    page.get_by_role("status").filter(has_text="challenger promoted").wait_for()
    promoted = store.get_deployment("churn-ui").variants
    assert [(v.model_uri, v.weight) for v in promoted] == [("models:/churn/2", 100.0)]

    page.get_by_role("button", name="Roll back…").click()
    page.get_by_role("dialog").get_by_role("button", name="Roll back").click()
    page.get_by_role("status").filter(has_text="Rolled back").wait_for()
    after = {v.name: v.weight for v in store.get_deployment("churn-ui").variants}
    assert after == {"champion": 70.0, "challenger": 30.0}
    assert page.errors == [] or all("4" in e for e in page.errors)


def test_stop_an_ab_test_and_queue_a_pipeline_run_in_the_browser(site: dict, page: Any) -> None:
    from loopml.abtest import Experiment, SqlExperimentStore
    from loopml.pipelines import SqlPipelineStore

    tests = SqlExperimentStore(site["db"])
    tests.create(
        Experiment(
            name="ui-stop",
            variants={"control": 50, "treatment": 50},
            metrics=[{"name": "converted", "kind": "binomial"}],
        )
    )
    page.goto(site["url"] + "/#/abtests/ui-stop")
    page.get_by_role("button", name="Stop test…").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("reason").fill("enough data")
    dialog.get_by_role("button", name="Stop test").click()
    page.get_by_text("enough data").wait_for()  # the page shows the stop and its reason
    stopped = tests.get("ui-stop")
    assert stopped.status == "stopped" and stopped.stop_reason == "enough data"
    assert page.get_by_role("button", name="Stop test…").count() == 0

    runs = SqlPipelineStore(site["db"])
    before = {r.run_id for r in runs.list_runs("churn-retrain")}
    _open(page, site["url"] + "/#/pipelines", "Pipelines")
    page.locator("table[aria-label=pipelines] tr", has_text="churn-retrain").get_by_role(
        "button", name="Run…"
    ).click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("params (JSON)").fill("[1]")
    dialog.get_by_role("button", name="Queue run").click()
    dialog.get_by_role("alert").filter(has_text="JSON object").wait_for()  # nothing sent
    assert {r.run_id for r in runs.list_runs("churn-retrain")} == before
    dialog.get_by_label("params (JSON)").fill("{}")
    dialog.get_by_role("button", name="Queue run").click()
    page.get_by_role("status").filter(has_text="queued").wait_for()
    [new] = [r for r in runs.list_runs("churn-retrain") if r.run_id not in before]
    assert new.status == "QUEUED" and new.trigger == "api"
    assert page.errors == [] or all("4" in e for e in page.errors)


def test_sign_in_and_changes_with_the_session(server_factory: Any, chromium_browser: Any) -> None:
    from loopml.config import get_settings
    from loopml.server._identity import SqlIdentityStore

    settings = get_settings()
    ids = SqlIdentityStore(settings.resolved_database_uri)
    ids.create_user("ada", admin=True, password="ada password 1")
    store = get_deployment_store(settings.resolved_database_uri)
    store.create_deployment(
        "d",
        [
            VariantSpec("a", "models:/m/1", 50.0, "primary"),
            VariantSpec("b", "models:/m/2", 50.0, "canary"),
        ],
    )
    server = server_factory(settings.resolved_database_uri, settings.resolved_artifact_uri)
    context = chromium_browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.url + "/#/deployments/d")
    page.get_by_role("heading", name="Sign in to loopml").wait_for()
    _shot(page, "sign-in")
    page.get_by_label("User name").fill("ada")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Sign in").click()
    assert "wrong user name or password" in page.get_by_role("alert").inner_text()
    page.get_by_label("Password").fill("ada password 1")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", level=1).filter(has_text="d").wait_for()
    assert "Signed in as ada" in page.inner_text("nav")
    cookie = next(c for c in context.cookies() if c["name"] == "loopml_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

    page.get_by_role("button", name="Change traffic…").click()
    page.get_by_role("dialog").get_by_label("a (primary)").fill("80")
    page.get_by_role("dialog").get_by_label("b (canary)").fill("20")
    page.get_by_role("dialog").get_by_role("button", name="Apply").click()
    page.get_by_role("status").filter(has_text="Traffic changed").wait_for()
    assert [v.weight for v in store.get_deployment("d").variants] == [80.0, 20.0]
    assert [e.actor for e in ids.audit_log(object_name="d")][:1] == ["ada"]

    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("heading", name="Sign in to loopml").wait_for()
    gone = httpx.get(
        server.url + "/api/v1/deployments", cookies={"loopml_session": cookie["value"]}
    )
    assert gone.status_code == 401
    assert errors == []
    context.close()


def test_two_workspaces_in_the_browser(server_factory: Any, chromium_browser: Any) -> None:
    from loopml.config import get_settings
    from loopml.server._identity import SqlIdentityStore
    from loopml.tracking import SqlTrackingStore

    settings = get_settings()
    ids = SqlIdentityStore(settings.resolved_database_uri)
    ids.create_user("root", admin=True, password="root password 1")
    for user, workspace in (("alice", "team-a"), ("bob", "team-b")):
        ids.create_workspace(workspace)
        ids.create_user(user, password=f"{user} password 1")
        ids.add_grant(user, workspace, "editor")
        store = SqlTrackingStore(
            settings.resolved_database_uri, settings.resolved_artifact_uri, workspace=workspace
        )
        store.create_experiment(f"{workspace}-experiment")
    server = server_factory(settings.resolved_database_uri, settings.resolved_artifact_uri)
    context = chromium_browser.new_context()
    page = context.new_page()
    page.goto(server.url + "/")
    page.get_by_label("User name").fill("alice")
    page.get_by_label("Password").fill("alice password 1")
    page.get_by_role("button", name="Sign in").click()
    menu = page.get_by_label("workspace")
    menu.wait_for()
    assert menu.locator("option").all_inner_texts() == ["(server default)", "team-a"]
    menu.select_option("team-a")
    table = page.locator("table[aria-label=experiments]")
    table.wait_for()
    assert "team-a-experiment" in table.inner_text()
    assert "team-b-experiment" not in table.inner_text()
    # a tampered workspace choice gets the server's refusal, not bob's data
    page.evaluate("() => localStorage.setItem('loopml.workspace', 'team-b')")
    page.reload()
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert "PERMISSION_DENIED" in alert.inner_text() and "team-b" in alert.inner_text()
    assert "team-b-experiment" not in page.inner_text("main")
    context.close()


def test_the_page_preloads_every_module() -> None:
    from loopml.server._ui import UI_ROOT

    page = (UI_ROOT / "index.html").read_text()
    preloaded = set(re.findall(r'rel="modulepreload" href="/ui/([^"]+)"', page))
    modules = {p.relative_to(UI_ROOT).as_posix() for p in UI_ROOT.rglob("*.js")}
    modules -= {"app.js", "vendor/echarts.min.js"}  # the entry point; charts load on first use
    assert preloaded == modules
