"""Side-by-side serving benchmark: loopml's inference server, ``mlflow models serve``, floors.

Usage::

    bash benchmarks/setup_mlflow.sh          # once: MLflow in benchmarks/.venv-mlflow
    apt-get install -y wrk                   # the load generator (else --client python)
    python benchmarks/serving.py [--quick] [--only loopml,mlflow,floor] [--json out.json]

A RandomForest (100 trees, depth 10) and a LogisticRegression on 20 float features are trained
from a fixed seed in each tool's interpreter, logged and registered with loopml and saved with
``mlflow.sklearn.save_model``. Each server runs one worker in its own process group on a free
127.0.0.1 port; one row per request is sent at each concurrency for ``--seconds``, and the
figures are compared with MLflow's and with two floors: a minimal Starlette app under uvicorn
(the HTTP floor) and predict on one row in-process (the compute floor). See
``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# benchmarks/ is on sys.path when this file is run as a script.
from tracking import clean_env, free_port, log, render_table, tail

HERE = Path(__file__).resolve().parent
MLFLOW_VENV = HERE / ".venv-mlflow"
WRK_SCRIPT = HERE / "serving_wrk.lua"
N_FEATURES = 20
COLUMNS = [f"f{i}" for i in range(N_FEATURES)]
MODELS = {"rf": "bench-serve-rf", "lr": "bench-serve-lr"}
TARGETS = ("floor", "loopml", "loopml-native", "mlflow", "compute")
# MLflow 3.17 saves with skops by default and asks for the tree type to be trusted explicitly.
SKOPS_TRUSTED = ["sklearn.tree._tree.Tree"]
NOISY_CORES = 0.25  # CPU used by other processes during a run above which it is flagged


# -- workers: run in the tool's own interpreter (`--worker NAME`) -------------------------------
def _data() -> tuple[Any, Any]:
    import numpy as np
    import pandas as pd
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=5000, n_features=N_FEATURES, n_informative=10, random_state=7
    )
    return pd.DataFrame(x.astype(np.float64), columns=COLUMNS), y


def _train(key: str, x: Any, y: Any) -> Any:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    if key == "rf":
        model = RandomForestClassifier(n_estimators=100, max_depth=10, random_state=7, n_jobs=1)
    else:
        model = LogisticRegression(max_iter=1000, random_state=7)
    return model.fit(x, y)


def _timings(fn: Callable[[], Any], repeats: int) -> dict[str, float]:
    """Median and p99 of ``repeats`` calls, in ms, after a warm-up."""
    for _ in range(max(20, repeats // 20)):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return {
        "median_ms": times[len(times) // 2] * 1000,
        "p99_ms": times[min(len(times) - 1, int(len(times) * 0.99))] * 1000,
        "repeats": repeats,
    }


def _ort_call(onnx_file: Path, row: Any) -> Callable[[], Any]:
    """ONNX Runtime on one row, configured as loopml configures it (one thread, sequential),
    fetching only the first output (the label)."""
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
    types = {"tensor(float)": np.float32, "tensor(double)": np.float64}
    inputs = sess.get_inputs()
    arr = row.to_numpy()
    if len(inputs) == 1:
        feed = {inputs[0].name: arr.astype(types.get(inputs[0].type, np.float32))}
    else:  # one input per column
        feed = {
            i.name: arr[:, n : n + 1].astype(types.get(i.type, np.float32))
            for n, i in enumerate(inputs)
        }
    names = [sess.get_outputs()[0].name]
    return lambda: sess.run(names, feed)


def prepare_loopml(out_dir: Path, keys: list[str], repeats: int) -> dict[str, Any]:
    """Train, log and register the models with loopml; time the in-process compute floors
    (``repeats`` calls each; none if 0)."""
    import copy

    import onnxruntime
    import sklearn

    import loopml

    x, y = _data()
    row = x.iloc[[0]]
    out: dict[str, Any] = {
        "loopml_version": loopml.__version__,
        "sklearn_version": sklearn.__version__,
        "onnxruntime_version": onnxruntime.__version__,
        "python": platform.python_version(),
        "row": {c: float(v) for c, v in row.iloc[0].items()},
        "models": {},
    }
    home = Path(os.environ["LOOPML_HOME"])
    loopml.set_experiment("bench-serving")
    for key in keys:
        name = MODELS[key]
        model = _train(key, x, y)
        with loopml.start_run():
            info = loopml.log_model(
                model, "model", registered_model_name=name, input_example=x.iloc[:5]
            )
        entry: dict[str, Any] = {
            "uri": f"models:/{name}/{info.registered_model_version}",
            "registered_name": name,
            "onnx_available": bool(info.onnx_available),
            "onnx_reason": info.onnx_reason,
            "expected": model.predict(row).tolist()[0],
        }
        out["models"][key] = entry
        if not repeats:
            continue
        # The same fitted model without its column names, so that an array input does not warn.
        bare = copy.copy(model)
        del bare.feature_names_in_
        arr = row.to_numpy()
        compute = {
            "sklearn_frame": _timings(lambda m=model: m.predict(row), repeats),
            "sklearn_array": _timings(lambda m=bare, a=arr: m.predict(a), repeats),
        }
        onnx_files = [p for p in home.rglob("model.onnx") if info.run_id in str(p)]
        if onnx_files:
            compute["onnxruntime"] = _timings(_ort_call(onnx_files[0], row), repeats)
            entry["onnx_file"] = str(onnx_files[0])
        for runtime in ("native", "onnx") if info.onnx_available else ("native",):
            loaded = loopml.load_model(entry["uri"], runtime=runtime)
            compute[f"loopml_wrapper_{runtime}"] = _timings(
                lambda m=loaded: m.predict(row), repeats
            )
        entry["compute"] = compute
    return out


def prepare_mlflow(out_dir: Path, keys: list[str], repeats: int) -> dict[str, Any]:
    """Train the same models in MLflow's interpreter and save them for ``mlflow models serve``."""
    import mlflow
    import mlflow.sklearn
    import sklearn

    x, y = _data()
    row = x.iloc[[0]]
    out: dict[str, Any] = {
        "mlflow_version": mlflow.__version__,
        "sklearn_version": sklearn.__version__,
        "python": platform.python_version(),
        "models": {},
    }
    for key in keys:
        model = _train(key, x, y)
        path = out_dir / f"mlflow-{key}"
        mlflow.sklearn.save_model(
            model, str(path), input_example=x.iloc[:5], skops_trusted_types=SKOPS_TRUSTED
        )
        loaded = mlflow.pyfunc.load_model(str(path))
        out["models"][key] = {
            "path": str(path),
            "expected": model.predict(row).tolist()[0],
            "pyfunc_agrees": bool(
                (loaded.predict(x.iloc[:256]) == model.predict(x.iloc[:256])).all()
            ),
        }
    return out


def serve_floor(host: str, port: int) -> None:
    """The HTTP floor: a Starlette app that reads the body and answers a constant, run by
    uvicorn with the settings ``loopml serve`` uses."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    answer = b'{"prediction":0}'

    async def predict(request: Request) -> Response:
        await request.body()
        return Response(answer, media_type="application/json")

    async def ready(request: Request) -> Response:
        return Response(b'{"ready":true}', media_type="application/json")

    app = Starlette(routes=[Route("/predict", predict, methods=["POST"]), Route("/ready", ready)])
    uvicorn.run(app, host=host, port=port, log_level="warning")


def python_load(url: str, body_file: Path, concurrency: int, seconds: float) -> dict[str, Any]:
    """The fallback load generator (aiohttp, closed loop, ``concurrency`` connections); run in
    its own process, in the same JSON shape as serving_wrk.lua's summary."""
    import asyncio

    import aiohttp

    body = body_file.read_bytes()
    headers = {"Content-Type": "application/json"}
    latencies: list[float] = []
    errors = {"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0}

    async def run() -> float:
        connector = aiohttp.TCPConnector(limit=concurrency)
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            deadline = time.perf_counter() + seconds

            async def loop() -> None:
                while time.perf_counter() < deadline:
                    t0 = time.perf_counter()
                    try:
                        async with session.post(url, data=body, headers=headers) as resp:
                            await resp.read()
                            if resp.status >= 400:
                                errors["status"] += 1
                    except TimeoutError:
                        errors["timeout"] += 1
                        continue
                    except aiohttp.ClientError:
                        errors["read"] += 1
                        continue
                    latencies.append(time.perf_counter() - t0)

            t0 = time.perf_counter()
            await asyncio.gather(*(loop() for _ in range(concurrency)))
            return time.perf_counter() - t0

    try:
        import uvloop

        duration = uvloop.run(run())
    except ImportError:
        duration = asyncio.run(run())
    lat = sorted(latencies) or [0.0]

    def pct(p: float) -> int:
        return int(lat[min(len(lat) - 1, int(len(lat) * p / 100))] * 1e6)

    return {
        "requests": len(latencies) + errors["status"],
        "duration_us": int(duration * 1e6),
        "errors": errors,
        "latency_us": {
            "min": int(lat[0] * 1e6),
            "mean": sum(lat) / len(lat) * 1e6,
            "max": int(lat[-1] * 1e6),
            "p50": pct(50),
            "p90": pct(90),
            "p99": pct(99),
            "p999": pct(99.9),
        },
    }


# -- the driver: servers, load, resident memory ------------------------------------------------
def _tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (from the parent ids in /proc/*/stat)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def tree_rss(pid: int) -> dict[str, Any]:
    """VmRSS of ``pid`` and its descendants, in MB (10^6 bytes), total and per process."""
    procs = []
    for p in _tree(pid):
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        kib = int(fields.get("VmRSS", "0 kB").split()[0])
        procs.append({"pid": p, "name": fields.get("Name", "").strip(), "rss_mb": kib * 1.024e-3})
    return {"total_mb": sum(p["rss_mb"] for p in procs), "processes": procs}


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by ``pid`` and its descendants."""
    total = 0
    for p in _tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / os.sysconf("SC_CLK_TCK")


def _machine_cpu_seconds() -> tuple[float, float]:
    """CPU seconds all cores have spent since boot (/proc/stat) running processes (user, nice,
    system, steal) and in interrupts (irq, softirq: where loopback traffic is handled)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    hz = os.sysconf("SC_CLK_TCK")
    return (ticks[0] + ticks[1] + ticks[2] + ticks[7]) / hz, (ticks[5] + ticks[6]) / hz


def _cpu_sample(pid: int) -> tuple[float, ...]:
    """(wall, server tree, load generator (reaped children), machine, interrupts) seconds."""
    import resource

    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    machine, irq = _machine_cpu_seconds()
    return (
        time.perf_counter(),
        tree_cpu_seconds(pid),
        kids.ru_utime + kids.ru_stime,
        machine,
        irq,
    )


def _cpu_shares(a: tuple[float, ...], b: tuple[float, ...]) -> dict[str, float]:
    """CPU used during a run, in cores: by the server, by the load generator, by interrupts
    and by every other process on the machine (competing for the 2 cores: noise)."""
    wall = b[0] - a[0]
    server, client, machine, irq = (b[i] - a[i] for i in (1, 2, 3, 4))
    return {
        "server_cpu": server / wall,
        "client_cpu": client / wall,
        "irq_cpu": irq / wall,
        "other_cpu": max(0.0, machine - server - client) / wall,
    }


def wait_idle(max_seconds: float, busy_below: float = 0.3) -> dict[str, float]:
    """Wait up to ``max_seconds`` for the machine to be idle (under ``busy_below`` cores busy
    over half a second): other work on the 2 cores would be measured with the server."""
    t0 = time.perf_counter()
    while True:
        b0, w0 = sum(_machine_cpu_seconds()), time.perf_counter()
        time.sleep(0.5)
        busy = (sum(_machine_cpu_seconds()) - b0) / (time.perf_counter() - w0)
        if busy < busy_below or time.perf_counter() - t0 >= max_seconds:
            return {"waited_seconds": time.perf_counter() - t0, "busy_cores": busy}


def post(port: int, path: str, body: bytes, timeout: float = 10.0) -> tuple[int, bytes]:
    """POST ``body`` as JSON to 127.0.0.1:``port``; (status, response body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def get_json(port: int, path: str) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        data = resp.read()
        return json.loads(data) if resp.status == 200 else None
    except (OSError, ValueError):
        return None
    finally:
        conn.close()


@dataclass
class Route:
    """One way of asking a server for a prediction."""

    name: str
    path: str
    bodies: list[tuple[str, bytes]]  # (label, body): the first one the server accepts is used
    answer: Callable[[Any], Any] | None  # the predicted label from the parsed response
    chosen: str | None = None


@dataclass
class ServerProcess:
    """A server in its own process group; ``stop`` kills the whole group, even if the leader
    has already exited."""

    cmd: list[str]
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    launched_at: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def launch(self) -> None:
        with open(self.log_path, "wb") as out:
            self.launched_at = time.perf_counter()
            self.proc = subprocess.Popen(
                self.cmd,
                env=self.env,
                cwd=self.log_path.parent,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def wait_first_prediction(self, port: int, route: Route, timeout: float) -> float:
        """Seconds from launch to the first 200 on ``route`` (its first body)."""
        assert self.proc is not None
        while time.perf_counter() - self.launched_at < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"server exited with {self.proc.returncode}:\n{tail(self.log_path)}"
                )
            try:
                status, _ = post(port, route.path, route.bodies[0][1], timeout=5)
            except OSError:
                status = 0
            if status == 200:
                return time.perf_counter() - self.launched_at
            time.sleep(0.02)
        raise RuntimeError(f"no prediction after {timeout:.0f} s:\n{tail(self.log_path)}")

    def stop(self) -> None:
        if self.proc is None:
            return
        for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
            # the leader is gone; give its children the same signal's grace, then check
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                try:
                    os.killpg(self.proc.pid, 0)
                except ProcessLookupError:
                    return
                time.sleep(0.1)


def run_load(
    client: str, port: int, path: str, body_file: Path, concurrency: int, seconds: int
) -> dict[str, Any]:
    """One closed-loop load run; the load generator's summary plus requests/s."""
    url = f"http://127.0.0.1:{port}{path}"
    if client == "wrk":
        cmd = [
            "wrk",
            "-t1",
            f"-c{concurrency}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "--latency",
            "-s",
            str(WRK_SCRIPT),
            url,
        ]
        env = {**os.environ, "SERVING_BODY_FILE": str(body_file)}
    else:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "load", "--url", url]
        cmd += ["--body-file", str(body_file), "--conc", str(concurrency)]
        cmd += ["--seconds", str(seconds)]
        env = dict(os.environ)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 120)
    return wrk_result(proc, "load generator")


def wrk_result(proc: subprocess.CompletedProcess[str], what: str) -> dict[str, Any]:
    """The last ``WRK_JSON`` line a load run printed, with req/s, errors and p50/p99 in ms."""
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("WRK_JSON ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{what} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    out: dict[str, Any] = json.loads(lines[-1].split(" ", 1)[1])
    out["rps"] = out["requests"] / (out["duration_us"] / 1e6)
    out["errors_total"] = sum(out["errors"].values())
    out["p50_ms"] = out["latency_us"]["p50"] / 1000
    out["p99_ms"] = out["latency_us"]["p99"] / 1000
    return out


def _choose_body(port: int, route: Route, expected: Any) -> dict[str, Any]:
    """Try the route's bodies in order; the first answered 200 is used. A 404 on all of them
    means the server has no such route (it is skipped)."""
    statuses = {}
    for label, body in route.bodies:
        status, data = post(port, route.path, body)
        statuses[label] = status
        if status == 200:
            route.chosen = label
            got = None
            if route.answer is not None:
                try:
                    got = route.answer(json.loads(data))
                except (ValueError, KeyError, IndexError, TypeError):
                    got = f"unparsed: {data[:200]!r}"
            info: dict[str, Any] = {"body": label, "answer": got}
            if route.answer is not None and got != expected:
                info["mismatch"] = f"answered {got!r}, expected {expected!r}"
            return info
    if set(statuses.values()) == {404}:
        return {"skipped": f"{route.path} answers 404"}
    return {"error": f"no body accepted on {route.path}: {statuses}; last answer {data[:300]!r}"}


def bench_server(
    name: str,
    server: ServerProcess,
    port: int,
    routes: list[Route],
    expected: Any,
    args: argparse.Namespace,
    scratch: Path,
) -> dict[str, Any]:
    """Start one server, time its first prediction, load each route at each concurrency."""
    res: dict[str, Any] = {"cmd": shlex.join(server.cmd), "routes": {}}
    log(f"{name}: starting {res['cmd']}")
    try:
        if args.idle_wait:
            res["idle_before_start"] = wait_idle(args.idle_wait)
        server.launch()
        assert server.proc is not None
        res["startup_seconds"] = server.wait_first_prediction(port, routes[0], args.start_timeout)
        res["pid"] = server.proc.pid
        res["rss_idle"] = tree_rss(server.proc.pid)
        res["model_info"] = get_json(port, "/model/info")
        log(f"{name}: first prediction after {res['startup_seconds']:.2f} s")
        for route in routes:
            rr: dict[str, Any] = _choose_body(port, route, expected)
            res["routes"][route.name] = rr
            if "skipped" in rr or "error" in rr:
                log(f"{name} {route.path}: {rr.get('skipped') or rr.get('error')}")
                continue
            body_file = scratch / f"body-{name.replace('/', '-')}-{route.name}.json"
            body_file.write_bytes(dict(route.bodies)[route.chosen])
            for conc in args.concurrency:
                idle = wait_idle(args.idle_wait) if args.idle_wait else None
                if args.warmup:
                    run_load(args.client, port, route.path, body_file, conc, args.warmup)
                before = _cpu_sample(server.proc.pid)
                load = run_load(args.client, port, route.path, body_file, conc, args.seconds)
                load.update(_cpu_shares(before, _cpu_sample(server.proc.pid)))
                load["idle_before"] = idle
                load["rss"] = tree_rss(server.proc.pid)
                rr[f"c{conc}"] = load
                log(
                    f"{name} {route.path} c={conc}: {load['rps']:,.0f} req/s, "
                    f"p50 {load['p50_ms']:.2f} ms, p99 {load['p99_ms']:.2f} ms, "
                    f"RSS {load['rss']['total_mb']:.0f} MB, errors {load['errors_total']}, "
                    f"CPU server {load['server_cpu']:.2f} other {load['other_cpu']:.2f}"
                )
    except Exception as exc:  # report it and go on with the other targets
        res["error"] = f"{type(exc).__name__}: {exc}"
        log(f"{name}: FAILED: {res['error']}")
    finally:
        server.stop()
        res["log_tail"] = tail(server.log_path)
    return res


def _loopml_cmd() -> list[str]:
    script = Path(sys.executable).parent / "loopml"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from loopml.cli import main; sys.exit(main())"]


def _bodies(row: dict[str, float]) -> dict[str, list[tuple[str, bytes]]]:
    """The request body of each protocol for one row."""
    enc = json.dumps
    v2_columns = {
        "inputs": [
            {"name": c, "shape": [1], "datatype": "FP64", "data": [v]} for c, v in row.items()
        ]
    }
    v2_tensor = {
        "inputs": [
            {
                "name": "input-0",
                "shape": [1, len(row)],
                "datatype": "FP64",
                "data": list(row.values()),
            }
        ]
    }
    return {
        "native": [("object", enc(row).encode())],
        "v2": [("columns", enc(v2_columns).encode()), ("tensor", enc(v2_tensor).encode())],
        "mlflow": [("dataframe_records", enc({"dataframe_records": [row]}).encode())],
    }


def _v2_answer(body: Any) -> Any:
    return body["outputs"][0]["data"][0]


def bench_model(
    key: str,
    prep: dict[str, Any],
    prep_mlflow: dict[str, Any] | None,
    args: argparse.Namespace,
    scratch: Path,
) -> dict[str, Any]:
    """All HTTP targets for one model, one server at a time."""
    entry = prep["models"][key]
    bodies = _bodies(prep["row"])
    expected = entry["expected"]
    out: dict[str, Any] = {}
    extra = shlex.split(args.loopml_args)
    for target in args.only:
        if target == "compute":
            continue
        port = free_port()
        log_path = scratch / f"{key}-{target}.log"
        native = Route("native", "/predict", bodies["native"], lambda b: b["prediction"])
        if target == "floor":
            cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "floor"]
            cmd += ["--port", str(port)]
            env = clean_env({})
            routes = [Route("native", "/predict", bodies["native"], None)]
        elif target in ("loopml", "loopml-native"):
            runtime = "native" if target == "loopml-native" else args.loopml_runtime
            cmd = [*_loopml_cmd(), "serve", entry["uri"], "--host", "127.0.0.1"]
            cmd += ["--port", str(port), "--runtime", runtime, *extra]
            env = clean_env({"LOOPML_HOME": prep["home"]})
            v2 = Route(
                "v2", f"/v2/models/{entry['registered_name']}/infer", bodies["v2"], _v2_answer
            )
            routes = [native, v2] if target == "loopml" else [native]
        else:
            if prep_mlflow is None:
                out[target] = {"error": "skipped: run `bash benchmarks/setup_mlflow.sh` first"}
                continue
            mlflow_bin = MLFLOW_VENV / "bin"
            cmd = [str(mlflow_bin / "mlflow"), "models", "serve", "-m"]
            cmd += [prep_mlflow["models"][key]["path"], "--env-manager", "local"]
            cmd += ["-h", "127.0.0.1", "-p", str(port), "-w", "1"]
            # `mlflow models serve` runs `uvicorn` from PATH: the venv's, not this interpreter's.
            env = clean_env({"PATH": f"{mlflow_bin}{os.pathsep}{os.environ.get('PATH', '')}"})
            routes = [
                Route(
                    "invocations", "/invocations", bodies["mlflow"], lambda b: b["predictions"][0]
                )
            ]
        server = ServerProcess(cmd, env, log_path)
        out[target] = bench_server(
            f"{key}/{target}", server, port, routes, expected, args, scratch
        )
    return out


def _run_worker(
    python: str, worker: str, scratch: Path, env: dict[str, str], models: list[str], repeats: int
) -> Any:
    out = scratch / f"{worker}.json"
    cmd = [python, str(Path(__file__).resolve()), "--worker", worker, "--out", str(out)]
    cmd += ["--dir", str(scratch), "--models", ",".join(models), "--repeats", str(repeats)]
    proc = subprocess.run(cmd, env=env, cwd=scratch, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"{worker} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(out.read_text())


# -- the report --------------------------------------------------------------------------------
def _load_of(res: dict[str, Any], target: str, route: str, conc: int) -> dict[str, Any] | None:
    return res.get(target, {}).get("routes", {}).get(route, {}).get(f"c{conc}")


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else spec.format(value)


ROWS = (  # (target, route, label)
    ("loopml", "native", "loopml /predict"),
    ("loopml", "v2", "loopml /v2/.../infer"),
    ("loopml-native", "native", "loopml --runtime native /predict"),
    ("mlflow", "invocations", "mlflow models serve /invocations"),
    ("floor", "native", "HTTP floor (Starlette)"),
)
PATHS = {"native": "/predict", "v2": "/v2 infer", "invocations": "/invocations"}


def _ratio(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.1f}" if value >= 10 else f"{value:.2f}" if value >= 0.1 else f"{value:.3f}"


def build_table(
    results: dict[str, Any], concurrency: list[int]
) -> tuple[list[str], list[list[str]]]:
    header = [
        "model / target",
        "conc",
        "req/s",
        "p50 ms",
        "p99 ms",
        "x MLflow",
        "x floor",
        "server CPU",
        "other CPU",
        "RSS MB",
        "start s",
        "errors",
    ]
    table: list[list[str]] = []
    for key, res in results["models"].items():
        for target, route, label in ROWS:
            tres = res.get(target)
            if tres is None:
                continue
            rres = tres.get("routes", {}).get(route)
            if "error" in tres and not rres:
                table.append([f"{key}: {label}", "", "error"] + [""] * (len(header) - 3))
                continue
            if rres is None:
                continue
            if "skipped" in rres or "error" in rres:
                why = "skipped (404)" if "skipped" in rres else "error"
                table.append([f"{key}: {label}", "", why] + [""] * (len(header) - 3))
                continue
            for conc in concurrency:
                load = rres.get(f"c{conc}")
                if load is None:
                    continue
                ml = _load_of(res, "mlflow", "invocations", conc)
                fl = _load_of(res, "floor", "native", conc)
                table.append(
                    [
                        f"{key}: {label}",
                        str(conc),
                        f"{load['rps']:,.0f}",
                        f"{load['p50_ms']:.2f}",
                        f"{load['p99_ms']:.2f}",
                        _ratio(load["rps"] / ml["rps"] if ml else None),
                        _ratio(load["rps"] / fl["rps"] if fl else None),
                        f"{load['server_cpu'] * 100:.0f}%",
                        f"{load['other_cpu'] * 100:.0f}%",
                        f"{load['rss']['total_mb']:.0f}",
                        _fmt(tres.get("startup_seconds"), "{:.2f}"),
                        str(load["errors_total"]),
                    ]
                )
    return header, table


def compute_table(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    header = ["model", "in-process predict, 1 row", "median ms", "p99 ms"]
    labels = {
        "sklearn_frame": "scikit-learn, 1-row DataFrame",
        "sklearn_array": "scikit-learn, 1x20 ndarray",
        "onnxruntime": "ONNX Runtime session (loopml's model.onnx)",
        "loopml_wrapper_native": "loopml.load_model(runtime=native).predict",
        "loopml_wrapper_onnx": "loopml.load_model(runtime=onnx).predict",
    }
    table = []
    for key, entry in results.get("prepare", {}).get("models", {}).items():
        for k, label in labels.items():
            t = entry.get("compute", {}).get(k)
            if t:
                table.append([key, label, f"{t['median_ms']:.4f}", f"{t['p99_ms']:.4f}"])
    return header, table


def checks(results: dict[str, Any], concurrency: list[int]) -> list[tuple[bool | None, str]]:
    """The issue's targets, one worker: (passed, description); None = could not be judged."""
    out: list[tuple[bool | None, str]] = []
    models = results["models"]
    hi, lo = max(concurrency), min(concurrency)

    def vs(key: str, target: str, route: str, ref: str, ref_route: str, want: float) -> None:
        a = _load_of(models.get(key, {}), target, route, hi)
        b = _load_of(models.get(key, {}), ref, ref_route, hi)
        what = f"{key} c={hi}: {target} {PATHS[route]} vs {ref}"
        if a is None or b is None:
            out.append((None, f"{what}: not measured"))
            return
        ratio = a["rps"] / b["rps"]
        text = (
            f"{what}: {a['rps']:,.0f} / {b['rps']:,.0f} req/s = {ratio:.2f}x (target >= {want:g}x)"
        )
        out.append((ratio >= want, text))

    for route in ("native", "v2"):
        vs("rf", "loopml", route, "mlflow", "invocations", 20)
        for key in models:
            vs(key, "loopml", route, "floor", "native", 0.6)
    vs("rf", "loopml-native", "native", "mlflow", "invocations", 5)
    prep = results.get("prepare", {}).get("models", {})
    for key, res in models.items():
        for target in ("loopml", "loopml-native"):
            tres = res.get(target)
            if not tres or "startup_seconds" not in tres:
                continue
            runtime = (tres.get("model_info") or {}).get("runtime", "?")
            name = f"{key}: {target} ({runtime} runtime)"
            # the compute floor of the runtime the server reports it uses
            compute_key = "onnxruntime" if runtime == "onnx" else "sklearn_frame"
            compute = prep.get(key, {}).get("compute", {}).get(compute_key)
            load, floor = _load_of(res, target, "native", lo), _load_of(res, "floor", "native", lo)
            if load and floor and compute:
                bound = floor["p99_ms"] + compute["median_ms"] + 1.0
                text = (
                    f"{name} c={lo} p99 {load['p99_ms']:.2f} ms (target <= floor p99 "
                    f"{floor['p99_ms']:.2f} + compute {compute['median_ms']:.3f} "
                    f"({compute_key} median) + 1 = {bound:.2f} ms)"
                )
                out.append((load["p99_ms"] <= bound, text))
            start = tres["startup_seconds"]
            out.append((start < 2.0, f"{name}: launch to first prediction {start:.2f} s (< 2 s)"))
            routes = tres.get("routes", {}).values()
            rss = [v["rss"]["total_mb"] for r in routes for v in r.values() if isinstance(v, dict)]
            if rss:
                text = f"{name}: resident memory after load {max(rss):.0f} MB (< 150 MB)"
                out.append((max(rss) < 150, text))
    return out


def report(results: dict[str, Any], args: argparse.Namespace) -> list[str]:
    """Print the tables and the targets; return the problems found."""
    meta = results["meta"]
    title = (
        f"loopml {meta.get('loopml_version') or '-'} vs MLflow {meta.get('mlflow_version') or '-'}"
        f" | {meta['date']} | nproc={meta['nproc']} | {meta['mem_gib']} GiB"
        f" | Python {meta['python']} | load: {meta['client']} | {args.seconds} s per run"
        f"{' | QUICK' if args.quick else ''}"
    )
    caption = (
        "one row per request, one server worker; x MLflow / x floor = req/s ratio at the same "
        "concurrency; server CPU = CPU time of the server's processes / wall time (1 core = "
        "100%); other CPU = CPU used meanwhile by other processes (not the server, the load "
        "generator or interrupts): noise; RSS = VmRSS of the server and its children after "
        "the run; start = launch to first successful prediction"
    )
    render_table(title, *build_table(results, args.concurrency), caption)
    header, table = compute_table(results)
    if table:
        render_table("compute floor: in-process predict on one row", header, table, "")
    problems = []
    mine = results.get("prepare", {}).get("models", {})
    for key, ml in results.get("prepare_mlflow", {}).get("models", {}).items():
        if ml["expected"] != mine.get(key, {}).get("expected") or not ml["pyfunc_agrees"]:
            problems.append(f"MISMATCH: {key} trained in MLflow's venv predicts differently")
    for name, res in results["models"].items():
        for target, tres in res.items():
            if "error" in tres:
                problems.append(f"{name}/{target}: {tres['error']}")
            for route, rres in tres.get("routes", {}).items():
                for k in ("error", "mismatch"):
                    if k in rres:
                        problems.append(f"{name}/{target} {route}: {rres[k]}")
                for k, v in rres.items():
                    if k.startswith("c") and isinstance(v, dict) and v["errors_total"]:
                        problems.append(f"{name}/{target} {route} {k}: errors {v['errors']}")
    noisy = [
        f"{name}/{target} {PATHS[route]} c{k[1:]}: {v['other_cpu']:.2f}"
        for name, res in results["models"].items()
        for target, tres in res.items()
        for route, rres in tres.get("routes", {}).items()
        for k, v in rres.items()
        if isinstance(v, dict) and v.get("other_cpu", 0) > NOISY_CORES
    ]
    if noisy:
        print(f"NOTE: other processes used over {NOISY_CORES} cores during: " + ", ".join(noisy))
    print("\ntargets (one worker):")
    for ok, text in checks(results, args.concurrency):
        print(f"  {'PASS' if ok else 'FAIL' if ok is False else 'n/a '}  {text}")
    for p in problems:
        print(f"WARNING: {p}")
    return problems


def _client(choice: str) -> str:
    if choice == "auto":
        return "wrk" if shutil.which("wrk") else "python"
    if choice == "wrk" and not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: `apt-get install -y wrk`, or use --client python")
    return choice


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or, with --worker, one helper process of it)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 s per run, fewer in-process repeats")
    ap.add_argument("--seconds", type=int, default=None, help="load per run (default 15)")
    ap.add_argument("--warmup", type=int, default=None, help="unmeasured load before each run")
    ap.add_argument("--concurrency", default="1,32", help="comma-separated connection counts")
    ap.add_argument("--only", default=",".join(TARGETS), help=f"subset of {','.join(TARGETS)}")
    ap.add_argument("--models", default="rf,lr", help="subset of rf,lr")
    ap.add_argument(
        "--client",
        choices=["auto", "wrk", "python"],
        default="auto",
        help="load generator: wrk if installed (auto), or aiohttp in its own process",
    )
    ap.add_argument(
        "--loopml-runtime",
        default="auto",
        choices=["auto", "onnx", "native"],
        help="--runtime for the `loopml` target (`loopml-native` is always native)",
    )
    ap.add_argument("--loopml-args", default="", help="extra `loopml serve` flags, one string")
    ap.add_argument(
        "--idle-wait",
        type=float,
        default=None,
        help="before each start-up and each load run, wait up to this many seconds for the "
        "machine to be idle (default 60, quick 10; 0: do not wait)",
    )
    ap.add_argument("--start-timeout", type=float, default=120.0)
    ap.add_argument("--repeats", type=int, default=None, help="in-process predict calls")
    ap.add_argument("--json", type=Path, help="write every raw number here")
    ap.add_argument("--keep", action="store_true", help="keep the scratch dir (logs, models)")
    # helper processes
    ap.add_argument(
        "--worker",
        choices=["prepare-loopml", "prepare-mlflow", "floor", "load"],
        help=argparse.SUPPRESS,
    )
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--body-file", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--conc", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker == "floor":
        serve_floor("127.0.0.1", args.port)
        return 0
    if args.worker == "load":
        summary = python_load(args.url, args.body_file, args.conc, args.seconds)
        print("WRK_JSON " + json.dumps(summary))
        return 0
    if args.worker in ("prepare-loopml", "prepare-mlflow"):
        fn = prepare_loopml if args.worker == "prepare-loopml" else prepare_mlflow
        args.out.write_text(json.dumps(fn(args.dir, args.models.split(","), args.repeats)))
        return 0

    args.seconds = args.seconds or (2 if args.quick else 15)
    args.warmup = args.warmup if args.warmup is not None else 1
    if args.idle_wait is None:
        args.idle_wait = 10.0 if args.quick else 60.0
    args.concurrency = [int(c) for c in args.concurrency.split(",") if c.strip()]
    args.only = [t.strip() for t in args.only.split(",") if t.strip()]
    if unknown := set(args.only) - set(TARGETS):
        ap.error(f"unknown targets {sorted(unknown)}; choose from {','.join(TARGETS)}")
    args.only = [t for t in TARGETS if t in args.only]
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if not models or set(models) - set(MODELS):
        ap.error("--models takes rf and/or lr")
    args.client = _client(args.client)
    repeats = args.repeats if args.repeats is not None else 300 if args.quick else 3000
    if "compute" not in args.only:
        repeats = 0

    scratch = Path(tempfile.mkdtemp(prefix="loopml-bench-serving-"))
    t0 = time.perf_counter()
    results: dict[str, Any] = {"models": {}}
    load_before = None
    try:
        home = scratch / "home"
        log(f"training and registering {models} with loopml (LOOPML_HOME={home})")
        prep = _run_worker(
            sys.executable,
            "prepare-loopml",
            scratch,
            clean_env({"LOOPML_HOME": str(home)}),
            models,
            repeats,
        )
        prep["home"] = str(home)
        results["prepare"] = prep
        prep_mlflow = None
        if "mlflow" in args.only:
            if not (MLFLOW_VENV / "bin" / "python").exists():
                log("mlflow: skipped: run `bash benchmarks/setup_mlflow.sh` first")
            else:
                log("training and saving the same models with MLflow")
                prep_mlflow = _run_worker(
                    str(MLFLOW_VENV / "bin" / "python"),
                    "prepare-mlflow",
                    scratch,
                    clean_env({}),
                    models,
                    repeats,
                )
                results["prepare_mlflow"] = prep_mlflow
        load_before = os.getloadavg()
        for key in models:
            results["models"][key] = bench_model(key, prep, prep_mlflow, args, scratch)
    finally:
        results["meta"] = {
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "loopml_version": results.get("prepare", {}).get("loopml_version"),
            "mlflow_version": results.get("prepare_mlflow", {}).get("mlflow_version"),
            "nproc": os.cpu_count(),
            "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "python": platform.python_version(),
            "platform": f"{platform.system()} {platform.machine()}",
            "client": args.client,
            "client_version": _wrk_version() if args.client == "wrk" else "aiohttp",
            "seconds": args.seconds,
            "warmup_seconds": args.warmup,
            "concurrency": args.concurrency,
            "argv": sys.argv[1:],
            "loadavg_before": load_before,
            "loadavg_after": os.getloadavg(),
            "total_wall_seconds": time.perf_counter() - t0,
            "scratch": str(scratch),
        }
    problems = report(results, args)
    failed = bool(problems)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, default=str))
        print(f"raw numbers written to {args.json}")
    if args.keep or failed:
        print(f"scratch kept in {scratch}")
    else:
        shutil.rmtree(scratch, ignore_errors=True)
    return 1 if failed else 0


def _wrk_version() -> str:
    proc = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    return (proc.stdout or proc.stderr).splitlines()[0] if (proc.stdout or proc.stderr) else "?"


if __name__ == "__main__":
    sys.exit(main())
