"""The HTTP service, tested for real: ``python -m lamina.serve`` runs in a subprocess on a free loopback port and the
tests talk to it with httpx (and, in the slow tests, headless Chromium and a bounded load test)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import httpx
import numpy as np
import pandas as pd
import pytest

from conftest import ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve_command(model: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "lamina.serve", str(model), *args]


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


class Server:
    """``python -m lamina.serve MODEL --port P`` in a subprocess, stopped (by its own pid) at the end."""

    def __init__(self, model: Path, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(serve_command(model, "--port", str(self.port), *args), env=environment(),
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 300  # a readiness wait, not a timing: a loaded machine starts slowly
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited with {self.process.returncode}:\n{self.process.stderr.read()}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        self.stop()
        raise AssertionError("the server did not answer /health within 300 s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextmanager
def page_of(server: Server) -> Iterator[tuple[Any, list[str]]]:
    """The served page in headless chromium with its form built: the page and the JavaScript errors it raises."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server.url + "/")
            page.wait_for_selector("#predict-form[data-ready=true]", timeout=15000)
            yield page, errors
        finally:
            browser.close()


def row_of(frame: pd.DataFrame, i: int, columns: list[str]) -> dict[str, Any]:
    return {c: (None if pd.isna(v) else (v.item() if hasattr(v, "item") else v)) for c, v in frame.iloc[i][columns].items()}


@pytest.fixture(scope="module")
def default_server(default_category_model: Path) -> Iterator[Server]:
    """The Default model (``student`` a category, two numbers) served with PyTorch."""
    server = Server(default_category_model)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def cancer_onnx_model(cancer_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from lamina.export import export_onnx

    model = Path(shutil.copytree(cancer_model, tmp_path_factory.mktemp("served") / "breast_cancer"))
    export_onnx(model)
    return model


@pytest.fixture(scope="module")
def cancer_server(cancer_onnx_model: Path) -> Iterator[Server]:
    """The breast cancer model (30 numbers) served with ONNX Runtime."""
    server = Server(cancer_onnx_model, "--runtime", "onnx")
    yield server
    server.stop()


INPUTS = ["student", "balance", "income"]


def test_health_and_model_description(default_server: Server, default_category_model: Path) -> None:
    assert httpx.get(default_server.url + "/health").json() == {"status": "ok", "model": "default_category",
                                                                 "runtime": "torch"}
    info = httpx.get(default_server.url + "/model").json()
    assert [i["name"] for i in info["inputs"]] == INPUTS
    student = info["inputs"][0]
    assert student["type"] == "category" and student["field"] == "category" and student["values"] == ["No", "Yes"]
    assert info["inputs"][1]["field"] == "number"
    assert info["outputs"] == [{"name": "default", "type": "binary", "classes": ["No", "Yes"],
                                "threshold": pytest.approx(info["outputs"][0]["threshold"])}]
    assert info["metrics"]["test"]["default"]["roc_auc"] > 0.8
    assert info["version"]["lamina"] and info["version"]["format_version"] == 1
    assert info["request"] == "json" and info["runtime"] == "torch" and info["explain"] in (True, False)


def test_openapi_schema_shows_the_models_fields(default_server: Server) -> None:
    schema = httpx.get(default_server.url + "/openapi.json").json()
    row = schema["components"]["schemas"]["Row"]
    assert list(row["properties"]) == INPUTS and row["required"] == INPUTS
    assert row["properties"]["student"]["enum"] == ["No", "Yes", None]
    assert {"type": "number"} in row["properties"]["balance"]["anyOf"]
    body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"].endswith("/PredictRequest")
    assert "/health" in schema["paths"] and "/model" in schema["paths"] and "/explain" in schema["paths"]


def test_predictions_match_the_python_api(default_server: Server, default_category_model: Path,
                                          default_frame: pd.DataFrame) -> None:
    import lamina

    rows = [row_of(default_frame, i, INPUTS) for i in range(0, 400, 20)]
    rows[0]["income"] = None  # a missing number is filled and flagged, as in training
    response = httpx.post(default_server.url + "/predict", json={"rows": rows})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["runtime"] == "torch" and body["milliseconds"] > 0
    expected = lamina.load(default_category_model).predict(pd.DataFrame(rows))
    assert len(body["predictions"]) == len(rows)
    for got, (_, want) in zip(body["predictions"], expected.iterrows()):
        assert got["default"]["prediction"] == want["default"]
        assert got["default"]["probabilities"]["Yes"] == pytest.approx(want["default_proba_Yes"], abs=1e-6)
        assert sum(got["default"]["probabilities"].values()) == pytest.approx(1)
    # A category never seen in training is not an error: it uses the unknown-category embedding.
    unseen = httpx.post(default_server.url + "/predict", json={"rows": [{**rows[1], "student": "Maybe"}]})
    assert unseen.status_code == 200, unseen.text
    # JSON booleans, numbers as strings and extra columns (an id) are fine.
    lenient = httpx.post(default_server.url + "/predict",
                         json={"rows": [{**rows[1], "balance": str(rows[1]["balance"]), "id": 7}]})
    assert lenient.status_code == 200, lenient.text


def test_bad_requests_get_422_naming_the_field(default_server: Server, default_frame: pd.DataFrame) -> None:
    url = default_server.url + "/predict"
    row = row_of(default_frame, 0, INPUTS)
    wrong = httpx.post(url, json={"rows": [row, {**row, "balance": "lots"}]})
    assert wrong.status_code == 422
    assert wrong.json()["detail"][0]["loc"] == ["body", "rows", 1, "balance"]
    missing = httpx.post(url, json={"rows": [{k: v for k, v in row.items() if k != "income"}]})
    assert missing.status_code == 422 and missing.json()["detail"][0]["loc"][-1] == "income"
    malformed = httpx.post(url, content=b'{"rows": [', headers={"content-type": "application/json"})
    assert malformed.status_code == 422 and malformed.json()["detail"][0]["type"] == "json_invalid"
    assert httpx.post(url, json={"rows": []}).status_code == 422
    assert httpx.post(url, json=[row]).status_code == 422


def test_limits_answer_413(default_server: Server, default_frame: pd.DataFrame) -> None:
    url = default_server.url + "/predict"
    huge = b'{"rows": [' + b" " * (2 << 20) + b"]}"
    too_large = httpx.post(url, content=huge, headers={"content-type": "application/json"})
    assert too_large.status_code == 413 and "larger than" in too_large.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the server counts the bytes as they come
        yield b'{"rows": ['
        for _ in range(40):
            yield b" " * 65536
        yield b"]}"

    streamed = httpx.post(url, content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413
    row = row_of(default_frame, 0, INPUTS)
    many = httpx.post(url, json={"rows": [row] * 1001})
    assert many.status_code == 413 and "1000" in many.json()["detail"]


def test_explain_and_page(default_server: Server, default_frame: pd.DataFrame) -> None:
    row = row_of(default_frame, 0, INPUTS)
    explained = httpx.post(default_server.url + "/explain", json={"rows": [row]}, timeout=120)  # gradients: slow on a loaded machine
    assert httpx.get(default_server.url + "/model").json()["explain"] is True
    assert explained.status_code == 200, explained.text
    attributions = explained.json()["explanations"][0]["attributions"]
    assert set(attributions) == set(INPUTS)
    page = httpx.get(default_server.url + "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'id="predict-form"' in page.text and "fetch(\"model\")" in page.text


def test_onnx_runtime_server_matches_pytorch(cancer_server: Server, cancer_onnx_model: Path,
                                             cancer_frame: pd.DataFrame) -> None:
    import lamina

    info = httpx.get(cancer_server.url + "/model").json()
    assert info["runtime"] == "onnx" and len(info["inputs"]) == 30
    columns = [i["name"] for i in info["inputs"]]
    rows = [row_of(cancer_frame, i, columns) for i in range(0, 569, 7)]
    body = httpx.post(cancer_server.url + "/predict", json={"rows": rows}).json()
    assert body["runtime"] == "onnx"
    expected = lamina.load(cancer_onnx_model).predict(pd.DataFrame(rows))
    got = np.array([p["diagnosis"]["probabilities"]["malignant"] for p in body["predictions"]])
    assert np.abs(got - expected["diagnosis_proba_malignant"].to_numpy()).max() <= 1e-4
    # Attributions need gradients: an ONNX-served model explains through its PyTorch twin.
    explained = httpx.post(cancer_server.url + "/explain", json={"rows": rows[:2]}, timeout=120)
    assert explained.status_code == 200, explained.text
    assert set(explained.json()["explanations"][1]["attributions"]) == set(columns)


def test_bad_model_path_exits_2_and_a_missing_export_is_named(tmp_path: Path, default_category_model: Path) -> None:
    result = subprocess.run(serve_command(tmp_path / "nowhere", "--port", str(free_port())), capture_output=True,
                            text=True, timeout=120, env=environment())
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "nowhere: no such model directory" in lines[0]

    from lamina.errors import LaminaError
    from lamina.serve import load_app

    with pytest.raises(LaminaError, match="lamina export"):
        load_app(default_category_model, "onnx")


def test_serve_refuses_a_busy_port(default_server: Server, default_category_model: Path) -> None:
    from lamina.errors import LaminaError
    from lamina.serve import check_port, serve

    with pytest.raises(LaminaError, match="already in use"):
        check_port("127.0.0.1", default_server.port)
    import inspect

    assert inspect.signature(serve).parameters["host"].default == "127.0.0.1"


# --- a file input: images uploaded as multipart/form-data ----------------------------------------------------------


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small CNN on 200 of scikit-learn's real 8x8 handwritten digits, written as PNG files (one epoch: the
    service is under test, not the accuracy)."""
    import lamina
    from PIL import Image
    from sklearn.datasets import load_digits

    folder = tmp_path_factory.mktemp("digits")
    digits = load_digits()
    for n, (image, label) in enumerate(zip(digits.images[:200], digits.target[:200])):
        path = folder / "digits" / str(label) / f"{n:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.round(image * 255 / 16).astype(np.uint8), "L").save(path)
    config = {
        "name": "digits",
        "data": {"path": str(folder / "digits"), "split": {"method": "stratified", "fractions": [0.8, 0.1, 0.1]}},
        "inputs": [{"name": "image", "type": "image",
                    "options": {"encoder": "cnn", "widths": [8, 16], "augment": False, "workers": 1}}],
        "outputs": [{"name": "label", "type": "category"}],
        "hidden": {"depth": 1, "width": 32},
        "trainer": {"epochs": 1, "batch_size": 64},
    }
    return Path(lamina.train(config, output=folder / "model", verbose=False).info["run_dir"])


def test_image_upload(digits_model: Path) -> None:
    import lamina

    server = Server(digits_model)
    try:
        info = httpx.get(server.url + "/model").json()
        assert info["request"] == "multipart"
        accept = "image/*,.dcm,.dicom,application/dicom"  # the page's file picker: pictures and DICOM scans
        assert info["inputs"] == [{"name": "image", "type": "image", "file": True, "field": "file", "accept": accept}]
        schema = httpx.get(server.url + "/openapi.json").json()
        content = schema["paths"]["/predict"]["post"]["requestBody"]["content"]
        assert list(content) == ["multipart/form-data"]
        body = schema["components"]["schemas"][content["multipart/form-data"]["schema"]["$ref"].split("/")[-1]]
        assert list(body["properties"]) == ["image"] and body["required"] == ["image"]

        image = next((digits_model.parent / "digits" / "3").glob("*.png"))
        response = httpx.post(server.url + "/predict", files={"image": ("three.png", image.read_bytes(), "image/png")})
        assert response.status_code == 200, response.text
        got = response.json()["predictions"][0]["label"]
        expected = lamina.load(digits_model).predict(pd.DataFrame({"image": [str(image)]}))
        assert got["prediction"] == expected["label"].iloc[0]
        assert list(got["probabilities"]) == [str(d) for d in range(10)]
        assert got["probabilities"]["3"] == pytest.approx(expected["label_proba_3"].iloc[0], abs=1e-6)

        broken = httpx.post(server.url + "/predict", files={"image": ("broken.png", b"not a png", "image/png")})
        assert broken.status_code == 422 and "uploaded file 'broken.png'" in broken.json()["detail"], broken.text
        assert "lamina-upload" not in broken.text  # where the server kept the file is not the client's business
        missing = httpx.post(server.url + "/predict", data={"other": "x"})
        assert missing.status_code == 422 and missing.json()["detail"][0]["loc"] == ["body", "image"]
        huge = httpx.post(server.url + "/predict", files={"image": ("big.png", b"0" * (18 << 20), "image/png")})
        assert huge.status_code == 413
    finally:
        server.stop()


# --- slow: a real browser, and a bounded load test ------------------------------------------------------------------


@pytest.mark.slow
def test_browser_fills_the_form_and_sees_the_prediction(default_server: Server) -> None:
    assert Path(CHROMIUM).exists(), (f"{CHROMIUM} not found: the browser test needs Debian's chromium "
                                     "(apt-get install chromium)")
    with page_of(default_server) as (page, errors):
        assert page.locator("select[name=student] option").all_inner_texts()[:2] == ["No", "Yes"]
        page.select_option("select[name=student]", "Yes")
        page.fill("input[name=balance]", "2200")
        page.fill("input[name=income]", "15000")
        page.click("#submit")
        page.wait_for_selector("#result .prediction", timeout=15000)
        prediction = page.inner_text("#result .output[data-output=default] .prediction")
        assert prediction in ("No", "Yes")
        bars = page.locator("#result .bar-row")
        assert bars.count() == 2
        assert "%" in bars.first.inner_text()
        expected = httpx.post(default_server.url + "/predict", json={
            "rows": [{"student": "Yes", "balance": 2200, "income": 15000}]}).json()
        assert prediction == expected["predictions"][0]["default"]["prediction"]
        # A wrong value is shown as the server's message, naming the field.
        page.fill("input[name=balance]", "")
        page.evaluate("document.querySelector('input[name=income]').type = 'text'")
        page.fill("input[name=income]", "many")
        page.click("#submit")
        page.wait_for_selector("#result .error", timeout=15000)
        assert "income" in page.inner_text("#result .error")
        assert not errors, errors


def load_test(url: str, body: dict[str, Any], clients: int, seconds: float) -> dict[str, float]:
    """``clients`` threads posting ``body`` for ``seconds``: latency percentiles (ms), requests/s, status counts."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client() -> None:
        with httpx.Client(timeout=30) as session:
            while time.monotonic() < stop:
                started = time.perf_counter()
                status = session.post(url, json=body).status_code
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)
                    statuses[status] = statuses.get(status, 0) + 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - began
    ms = np.array(latencies) * 1000
    return {"requests": len(ms), "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "requests_per_s": len(ms) / wall, "statuses": statuses}


@pytest.mark.slow
def test_load_eight_clients_no_server_errors(cancer_server: Server, cancer_frame: pd.DataFrame) -> None:
    columns = [i["name"] for i in httpx.get(cancer_server.url + "/model").json()["inputs"]]
    result = load_test(cancer_server.url + "/predict", {"rows": [row_of(cancer_frame, 3, columns)]}, 8, 10)
    print(f"\nload test, 8 clients x 10 s, ONNX Runtime: {result['requests']} requests, "
          f"p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, {result['requests_per_s']:.0f} requests/s")
    assert result["requests"] > 50
    assert not any(status >= 500 for status in result["statuses"]), result["statuses"]
    assert set(result["statuses"]) == {200}, result["statuses"]
