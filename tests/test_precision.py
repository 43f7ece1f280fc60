"""trainer.precision and trainer.compile in the one training loop: bf16 autocast on the CPU trains the breast cancer
model to the metrics fp32 gives, fp16 on a CPU is a one-line error that points to bf16, torch.compile trains (or
falls back to eager with one warning) to the same metrics, and fp16's gradient scaler unscales before clipping and
is saved in the checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import lamina
from conftest import assert_user_error, generated_config, read_yaml, run_cli, write_yaml
from lamina.checkpoint import STATE
from lamina.training import update
from lamina.training.state import LoopState, save_state

EPOCHS = 12


def cancer_config(folder: Path, cancer_csv: Path, **trainer: object) -> Path:
    config = generated_config(cancer_csv, ["diagnosis"], folder / "config.yaml", epochs=EPOCHS, patience=0,
                              batch_size=32, name="precision")
    raw = read_yaml(config)
    raw["trainer"].update(device="cpu", **trainer)
    return write_yaml(raw, config)


def scores(model: lamina.Predictor) -> dict[str, float]:
    return model.metrics["test"]["diagnosis"]


@pytest.fixture(scope="module")
def fp32(tmp_path_factory: pytest.TempPathFactory, cancer_csv: Path) -> dict[str, float]:
    folder = tmp_path_factory.mktemp("fp32")
    model = lamina.train(cancer_config(folder, cancer_csv), output=folder / "model", verbose=False, report=False)
    return scores(model)


def assert_close(metrics: dict[str, float], reference: dict[str, float]) -> None:
    assert metrics["rows"] == reference["rows"]
    assert metrics["roc_auc"] > 0.97, metrics
    assert abs(metrics["roc_auc"] - reference["roc_auc"]) < 0.02, (metrics, reference)
    assert abs(metrics["accuracy"] - reference["accuracy"]) < 0.05, (metrics, reference)


def test_bf16_on_the_cpu_trains_to_the_fp32_metrics(fp32: dict[str, float], cancer_csv: Path, tmp_path: Path) -> None:
    config = cancer_config(tmp_path, cancer_csv, precision="bf16")
    model = lamina.train(config, output=tmp_path / "model", verbose=False, report=False)
    metrics = scores(model)
    assert_close(metrics, fp32)
    # Trained in bf16, not fp32 again: the numbers differ in their low digits.
    assert metrics != fp32
    # The weights stay fp32 (autocast only lowers the matmuls), so the model directory is an ordinary one.
    assert all(p.dtype == torch.float32 for p in model.network.parameters())


def test_fp16_on_a_cpu_is_a_clear_error(cancer_csv: Path, tmp_path: Path) -> None:
    cancer_config(tmp_path, cancer_csv, precision="fp16")
    result = run_cli("train", "config.yaml", "-q", cwd=tmp_path)
    assert_user_error(result, "trainer.precision 'fp16'", "CUDA", "bf16")
    assert not (tmp_path / "runs" / "precision").exists()


def test_compile_trains_to_the_eager_metrics(fp32: dict[str, float], cancer_csv: Path, tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    config = cancer_config(tmp_path, cancer_csv, compile=True)
    with caplog.at_level("WARNING", logger="lamina"):
        model = lamina.train(config, output=tmp_path / "model", verbose=False, report=False)
    fallback = [r for r in caplog.records if "torch.compile" in r.getMessage()]
    assert len(fallback) <= 1, "at most one warning when compilation fails"
    assert_close(scores(model), fp32)


def test_a_failing_compiler_falls_back_to_eager_with_one_warning(fp32: dict[str, float], cancer_csv: Path,
                                                                 tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    class Broken(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, batch):
            raise RuntimeError("InductorError: no working C++ compiler found\nmore detail")

    monkeypatch.setattr(torch, "compile", lambda module: Broken(module))
    config = cancer_config(tmp_path, cancer_csv, compile=True)
    with caplog.at_level("WARNING", logger="lamina"):
        model = lamina.train(config, output=tmp_path / "model", verbose=False, report=False)
    warnings = [r.getMessage() for r in caplog.records if "torch.compile" in r.getMessage()]
    assert len(warnings) == 1 and "\n" not in warnings[0] and "training without it" in warnings[0], warnings
    # The failed trial left no trace: the run is the eager one, number for number.
    assert scores(model) == fp32


def test_the_grad_scaler_unscales_before_clipping_and_is_checkpointed(tmp_path: Path) -> None:
    """fp16's path, run on the CPU with the CPU scaler: a scaled step equals the plain step (the scale is a power of
    two), which holds only if the gradients are unscaled before clipping cuts them."""

    def step(scaler: torch.amp.GradScaler | None) -> torch.nn.Module:
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
        optimizer = torch.optim.AdamW(net.parameters(), lr=0.1)
        x, y = torch.randn(16, 4), torch.randn(16, 1)
        for _ in range(3):
            update(net, optimizer, torch.nn.functional.mse_loss(net(x), y) * 100, 0.01, scaler)
        return net

    plain, scaled = step(None), step(torch.amp.GradScaler("cpu", init_scale=2.0**12))
    for a, b in zip(plain.parameters(), scaled.parameters()):
        assert torch.allclose(a, b, atol=1e-6)

    from lamina.config import validate_config
    from lamina.preprocessor import Preprocessor

    import pandas as pd

    config = validate_config({"inputs": [{"name": "x", "type": "number"}], "outputs": [{"name": "y", "type": "number"}]})
    prep = Preprocessor(config).fit(pd.DataFrame({"x": [1.0, 2.0], "y": [0.0, 1.0]}))
    net = prep.network()
    optimizer = torch.optim.AdamW(net.parameters())
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**9)
    save_state(tmp_path, net, LoopState({}, [], 0.0, 1, 0, 1), optimizer, torch.Generator(), scaler,
               {"preprocessor": prep.state(), "config": prep.config.model_dump(mode="json")})
    saved = json.loads((tmp_path / STATE).read_text())["scaler"]
    restored = torch.amp.GradScaler("cpu")
    restored.load_state_dict(saved)
    assert restored.get_scale() == 2.0**9
