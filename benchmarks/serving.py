"""Serving: prediction latency and throughput in-process (PyTorch eager vs ONNX Runtime) and over HTTP on loopback.

    .venv/bin/python benchmarks/serving.py [--seconds 20] [--clients 8] [--repeats 1000] [--threads 1] [--no-image]

Models (nothing is downloaded; trained once into build/bench_serving/, reused afterwards; ``--retrain`` redoes it):
* table: scikit-learn's breast cancer (569 rows, 30 numbers → benign/malignant), Lamina's default network;
* image (when the image input type exists): a small CNN on 500 of scikit-learn's real 8×8 handwritten digits,
  written as PNG files.
Each is exported with ``lamina.export.export_onnx`` (the export checks itself against PyTorch).

Figures:
* single row, in-process: ``Predictor.predict`` of a one-row frame, the whole path a served request takes
  (raw values → the preprocessor's tensors → the network → decoded labels and probabilities), median and p99 over
  ``--repeats`` calls, the two runtimes alternating in blocks of 50; and the network call alone (median);
* batch of 1,000 rows, in-process: rows/s of ``Predictor.predict`` (median of 7);
* HTTP on 127.0.0.1: ``python -m lamina.serve`` in a subprocess; one client sending single-row requests one after
  another (p50/p99), then ``--clients`` concurrent clients for ``--seconds`` (p50/p99, requests/s, 5xx count).
  Image requests upload the PNG as multipart/form-data.

``--threads`` (default 1) sets PyTorch's and ONNX Runtime's threads in-process and in the servers: one thread gives
the steadiest latency for these small models on a shared machine. Medians and percentiles are reported because the
machine may be shared with other work: the table printed says how loaded it was (load average) when the run ended.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build" / "bench_serving"

import lamina  # noqa: E402
from lamina.export import ONNX_FILE, export_onnx, load  # noqa: E402
from lamina.inputs import INPUT_TYPES  # noqa: E402
from lamina.predictor import run_network  # noqa: E402


# --- models ---------------------------------------------------------------------------------------------------------


def table_model(retrain: bool) -> tuple[Path, pd.DataFrame]:
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    frame["diagnosis"] = frame.pop("target").map({0: "malignant", 1: "benign"})
    model = BUILD / "breast_cancer"
    if retrain or not (model / ONNX_FILE).is_file():
        from lamina.infer import init_config

        BUILD.mkdir(parents=True, exist_ok=True)
        frame.to_csv(BUILD / "breast_cancer.csv", index=False)
        init_config(BUILD / "breast_cancer.csv", ["diagnosis"], BUILD / "breast_cancer.yaml", force=True)
        lamina.train(BUILD / "breast_cancer.yaml", output=model, verbose=False)
        export_onnx(model, frame.drop(columns="diagnosis"))
    return model, frame.drop(columns="diagnosis")


def image_model(retrain: bool) -> tuple[Path, pd.DataFrame]:
    from PIL import Image
    from sklearn.datasets import load_digits

    folder, model = BUILD / "digits", BUILD / "digits_model"
    digits = load_digits()
    paths = []
    for n, (image, label) in enumerate(zip(digits.images[:500], digits.target[:500])):
        path = folder / str(label) / f"{n:04d}.png"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.round(image * 255 / 16).astype(np.uint8), "L").save(path)
        paths.append(str(path))
    rows = pd.DataFrame({"image": paths})
    if retrain or not (model / ONNX_FILE).is_file():
        config = {
            "name": "digits",
            "data": {"path": str(folder), "split": {"method": "stratified", "fractions": [0.8, 0.1, 0.1], "seed": 0}},
            "inputs": [{"name": "image", "type": "image",
                        "options": {"encoder": "cnn", "widths": [16, 32], "augment": False, "workers": 1}}],
            "outputs": [{"name": "label", "type": "category"}],
            "hidden": {"depth": 1, "width": 64},
            "trainer": {"epochs": 5, "batch_size": 64, "learning_rate": 0.003},
        }
        lamina.train(config, output=model, verbose=False)
        export_onnx(model, rows.head(64))
    return model, rows


# --- in-process -----------------------------------------------------------------------------------------------------


def alternate(calls: dict[str, Callable[[], Any]], repeats: int, block: int = 50) -> dict[str, np.ndarray]:
    """Seconds per call of each function, run in alternating blocks so both see the same machine load."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for fn in calls.values():
        for _ in range(20):
            fn()
    for _ in range(max(1, repeats // block)):
        for name, fn in calls.items():
            for _ in range(block):
                started = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - started)
    return {name: np.array(t) for name, t in times.items()}


def in_process(model: Path, rows: pd.DataFrame, repeats: int, threads: int) -> dict[str, dict[str, float]]:
    predictors = {runtime: load(model, runtime, threads) for runtime in ("torch", "onnx")}
    one = rows.iloc[[3]].reset_index(drop=True)
    whole = alternate({r: (lambda p=p: p.predict(one)) for r, p in predictors.items()}, repeats)
    batch = {r: p.preprocessor.inputs_to_tensors(one) for r, p in predictors.items()}
    network = alternate({r: (lambda p=p, b=batch[r]: run_network(p.network, b)) for r, p in predictors.items()},
                        repeats)
    thousand = pd.concat([rows] * (1000 // len(rows) + 1), ignore_index=True).iloc[:1000]
    big = alternate({r: (lambda p=p: p.predict(thousand)) for r, p in predictors.items()}, 7, block=1)
    return {r: {"row_p50_ms": float(np.median(whole[r]) * 1e3), "row_p99_ms": float(np.percentile(whole[r], 99) * 1e3),
                "network_p50_ms": float(np.median(network[r]) * 1e3),
                "batch_rows_per_s": float(1000 / np.median(big[r]))} for r in predictors}


# --- HTTP -----------------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(model: Path, runtime: str, threads: int) -> tuple[subprocess.Popen[bytes], str]:
    import httpx

    port = free_port()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p))
    process = subprocess.Popen([sys.executable, "-m", "lamina.serve", str(model), "--port", str(port),
                                "--runtime", runtime, "--threads", str(threads)], env=env)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        if process.poll() is not None:
            raise SystemExit(f"the server for {model} exited with {process.returncode}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.2)
    process.terminate()
    raise SystemExit(f"the server for {model} did not start")


def http(model: Path, runtime: str, threads: int, request: dict[str, Any], clients: int, seconds: float
         ) -> dict[str, float]:
    import httpx

    process, url = start_server(model, runtime, threads)
    try:
        with httpx.Client(timeout=30) as client:
            for _ in range(20):
                client.post(url + "/predict", **request)
            single = []
            for _ in range(300):
                started = time.perf_counter()
                client.post(url + "/predict", **request).raise_for_status()
                single.append(time.perf_counter() - started)
        latencies: list[float] = []
        errors = [0]
        lock = threading.Lock()
        stop = time.monotonic() + seconds

        def run() -> None:
            with httpx.Client(timeout=30) as session:
                while time.monotonic() < stop:
                    started = time.perf_counter()
                    status = session.post(url + "/predict", **request).status_code
                    elapsed = time.perf_counter() - started
                    with lock:
                        latencies.append(elapsed)
                        errors[0] += status >= 500

        began = time.monotonic()
        workers = [threading.Thread(target=run) for _ in range(clients)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        wall = time.monotonic() - began
    finally:
        process.terminate()
        process.wait(10)
    ms = np.array(latencies) * 1e3
    return {"one_p50_ms": float(np.median(single) * 1e3), "one_p99_ms": float(np.percentile(single, 99) * 1e3),
            "p50_ms": float(np.median(ms)), "p99_ms": float(np.percentile(ms, 99)),
            "requests_per_s": len(ms) / wall, "requests": len(ms), "errors_5xx": errors[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-image", action="store_true")
    parser.add_argument("--retrain", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    import logging

    logging.getLogger("lamina").setLevel(logging.ERROR)
    models = [("table (breast cancer, 30 numbers)", *table_model(args.retrain), "json")]
    if "image" in INPUT_TYPES and not args.no_image:
        models.append(("image (8×8 digits PNG, CNN)", *image_model(args.retrain), "multipart"))

    results = []
    for name, model, rows, kind in models:
        print(f"{name}: in-process …", file=sys.stderr)
        local = in_process(model, rows, args.repeats, args.threads)
        if kind == "json":
            row = {k: (None if pd.isna(v) else float(v)) for k, v in rows.iloc[3].items()}
            request: dict[str, Any] = {"json": {"rows": [row]}}
        else:
            request = {"files": {"image": ("digit.png", Path(rows["image"].iloc[3]).read_bytes(), "image/png")}}
        for runtime in ("torch", "onnx"):
            print(f"{name}: HTTP, {runtime} …", file=sys.stderr)
            results.append((name, runtime, local[runtime],
                            http(model, runtime, args.threads, request, args.clients, args.seconds)))

    print(f"\nPython {platform.python_version()}, torch {torch.__version__}, {os.cpu_count()} CPUs, threads "
          f"{args.threads}, load average at the end {os.getloadavg()[0]:.1f}; HTTP load: {args.clients} clients × "
          f"{args.seconds:g} s on 127.0.0.1\n")
    print("| model | runtime | 1 row in-process p50 / p99 (ms) | network alone p50 (ms) | 1,000 rows in-process "
          "(rows/s) | HTTP 1 client p50 / p99 (ms) | HTTP " + f"{args.clients} clients p50 / p99 (ms) | HTTP requests/s | 5xx |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, runtime, local, remote in results:
        print(f"| {name} | {runtime} | {local['row_p50_ms']:.3f} / {local['row_p99_ms']:.3f} | "
              f"{local['network_p50_ms']:.3f} | {local['batch_rows_per_s']:,.0f} | "
              f"{remote['one_p50_ms']:.2f} / {remote['one_p99_ms']:.2f} | {remote['p50_ms']:.1f} / {remote['p99_ms']:.1f} | "
              f"{remote['requests_per_s']:.0f} | {remote['errors_5xx']} |")


if __name__ == "__main__":
    main()
