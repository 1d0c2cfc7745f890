"""`make bench`'s serving figures: `tfpersist serve` against MLflow's model server on the same
ONNX export and machine, driven by wrk (1 thread, 8 connections, one 64-feature row a
request), the servers interleaved.

MLflow runs the way its documentation serves a model — `mlflow models serve -m DIR
--env-manager local` (uvicorn + FastAPI) — from a scratch virtual environment this bench makes
once (.venv/bench-mlflow): it is not a project dependency.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

MLFLOW = "mlflow==3.17.*"
LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("{body}", "r")
wrk.body = f:read("*a")
f:close()
"""
SAVE = """
import sys, mlflow, numpy as np, onnx, onnxruntime as ort
from mlflow.models import infer_signature
session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
x = np.zeros([1] + [d if isinstance(d, int) else 1 for d in session.get_inputs()[0].shape[1:]],
             np.float32)
out = session.run(None, {session.get_inputs()[0].name: x})
signature = infer_signature(x, {o.name: v for o, v in zip(session.get_outputs(), out)})
mlflow.onnx.save_model(onnx.load(sys.argv[1]), sys.argv[2], signature=signature)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url: str, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"bench: {url} did not come up")


def _mlflow_venv(root: Path) -> Path:
    venv = root / ".venv" / "bench-mlflow"
    if not (venv / "bin" / "mlflow").exists():
        print(f"  (installing {MLFLOW} into {venv}, once)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", MLFLOW, "onnx", "onnxruntime"],
            check=True,
        )
    return venv


def wrk(url: str, lua: Path, seconds: int = 5, connections: int = 8) -> dict:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(lua), "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def millis(label: str) -> float:
        value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)\b", out).groups()
        return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": millis("50%"),
        "p99": millis("99%"),
        "errors": int(errors.group(1)) if errors else 0,
    }


def _start_mlflow(root: Path, tmp: Path, onnx_model: Path, servers: list) -> str:
    """MLflow's server on the ONNX export (its venv made on the first run); its URL."""
    venv = _mlflow_venv(root)
    saved = tmp / "mlflow-model"
    subprocess.run(
        [str(venv / "bin" / "python"), "-c", SAVE, str(onnx_model), str(saved)], check=True
    )
    port = _free_port()
    mlflow_env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    servers.append(
        subprocess.Popen(
            [
                *(str(venv / "bin" / "mlflow"), "models", "serve", "-m", str(saved)),
                *("--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)),
            ],
            env=mlflow_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    )
    _wait(f"http://127.0.0.1:{port}/ping")
    return f"http://127.0.0.1:{port}/invocations"


def bench_serving(root: Path, tmp: Path, repeats: int, row, median, env, peer: bool = True) -> None:
    """``peer=False`` (``--quick``): tfpersist's servers alone, MLflow neither installed nor
    run — figures printed without a ratio."""
    if shutil.which("wrk") is None:
        print("  wrk not found (apt-get install wrk): serving figures skipped", flush=True)
        return
    onnx_model = root / "models" / "export" / "model.onnx"
    frozen = root / "models" / "frozen" / "model.pb"
    with open(root / "data" / "prepared" / "test.csv") as f:
        reader = csv.reader(f)
        header, first = next(reader), next(reader)
    features = [float(v) for name, v in zip(header, first, strict=True) if name != "label"]
    body = tmp / "body.json"
    body.write_text(json.dumps({"instances": [features]}))
    lua = tmp / "post.lua"
    lua.write_text(LUA.format(body=body))

    servers, urls = [], {}
    try:
        for label, model in (("onnx", onnx_model), ("pb", frozen)):
            port = _free_port()
            servers.append(
                subprocess.Popen(
                    [
                        str(Path(sys.executable).parent / "tfpersist"),
                        "serve",
                        str(model),
                        "--name",
                        "digits",
                        "--port",
                        str(port),
                        "--grpc-port",
                        "-1",
                    ],
                    env=env(),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
            urls[label] = f"http://127.0.0.1:{port}/v1/models/digits:predict"
            _wait(f"http://127.0.0.1:{port}/readyz")
        if peer:
            urls["mlflow"] = _start_mlflow(root, tmp, onnx_model, servers)
        for url in urls.values():  # warm every server up
            wrk(url, lua, seconds=1)
        runs = {label: [] for label in urls}
        for _ in range(repeats):
            for label, url in urls.items():
                runs[label].append(wrk(url, lua))
        one = {label: wrk(url, lua, seconds=3, connections=1) for label, url in urls.items()}
    finally:
        for server in servers:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=60)
    summary = {
        label: {k: median(r[k] for r in rs) for k in ("rps", "p50", "p99")}
        for label, rs in runs.items()
    }
    if any(r["errors"] for rs in runs.values() for r in rs):
        raise SystemExit(f"bench: a server answered errors under load: {runs}")

    def shown(s: dict, single: dict) -> str:
        return (
            f"{s['rps']:,.0f} req/s, p50 {s['p50']:.2f} ms, p99 {s['p99']:.2f} ms "
            f"(1 connection: p50 {single['p50']:.2f} ms)"
        )

    if not peer:
        for label in ("onnx", "pb"):
            print(f"  serve {label}: {shown(summary[label], one[label])} (--quick: no peer)")
        return
    peer = summary["mlflow"]

    for label, what, target in (
        ("onnx", "serve the ONNX export (wrk -t1 -c8, one 64-feature row)", "≥ 10×"),
        ("pb", "serve the frozen .pb (same requests)", "≥ 5×"),
    ):
        row(
            what,
            shown(summary[label], one[label]),
            f"MLflow 3.17 models serve on the ONNX export: {shown(peer, one['mlflow'])}",
            summary[label]["rps"] / peer["rps"],
            target,
        )
