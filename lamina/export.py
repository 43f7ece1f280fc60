"""Export a model directory's network to ONNX, and run it with ONNX Runtime behind the same Predictor.

Only the network is exported. Preprocessing (raw frame → tensors) and decoding (raw head outputs → labels and
probabilities) stay in Lamina's own code, so a prediction through ONNX Runtime goes through exactly the same
transform and decode as one through PyTorch; only the matrix arithmetic in the middle changes hands.

``model.onnx`` has one named input per batch key (``dense`` for the passthrough columns, one per other input, e.g.
a category's indices), one output per head named after its output column, and a dynamic batch axis. It records the
SHA-256 of ``weights.safetensors`` it was exported from, so a stale export is refused rather than silently used.

>>> path = export_onnx("runs/breast_cancer")                 # doctest: +SKIP
>>> lamina.export.load("runs/breast_cancer", runtime="onnx")  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from lamina.errors import LaminaError
from lamina.logs import quiet
from lamina.model import DENSE, Network
from lamina.predictor import PREDICT_BATCH, Predictor, run_network
from lamina.store import WEIGHTS
from lamina.store import load as load_torch

ONNX_FILE = "model.onnx"
RUNTIMES = ("torch", "onnx")
TOLERANCE = 1e-4  # the largest absolute difference between PyTorch's and ONNX Runtime's raw outputs we accept
CHECK_ROWS = 256


def weights_digest(folder: Path) -> str:
    return hashlib.sha256((folder / WEIGHTS).read_bytes()).hexdigest()


class _Positional(nn.Module):
    """The network with positional tensor inputs and a tuple of outputs, which is what the ONNX exporter wants."""

    def __init__(self, network: Network, keys: list[str]) -> None:
        super().__init__()
        self.network, self.keys = network, keys

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.network(dict(zip(self.keys, tensors)))
        return tuple(out[name] for name in self.network.output_names)


class OnnxNetwork:
    """An ONNX Runtime session that stands in for a ``Network`` in ``lamina.predictor.run_network``:
    the same batch dict in, the same raw head outputs (float32 arrays, one per output) out."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.log_severity_level = 3
        # No busy-waiting between calls: on a shared machine a spinning worker takes a core from everyone else.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types for unreadable files
            raise LaminaError(f"{path}: not a readable ONNX model ({type(e).__name__}: {e}); "
                              "export it again with `lamina export MODEL_DIR --format onnx`") from None
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        self.training = False

    def eval(self) -> OnnxNetwork:
        return self

    def run(self, inputs: dict[str, torch.Tensor], batch_size: int = PREDICT_BATCH) -> dict[str, np.ndarray]:
        missing = [k for k in self.input_names if k not in inputs]
        if missing:
            raise LaminaError(f"model.onnx wants input {missing[0]!r} that the preprocessor did not produce; "
                              "export the model again")
        arrays = {k: inputs[k].numpy() for k in self.input_names}
        n = len(next(iter(arrays.values())))
        chunks: dict[str, list[np.ndarray]] = {name: [] for name in self.output_names}
        for start in range(0, n, batch_size):
            feed = {k: v[start:start + batch_size] for k, v in arrays.items()}
            for name, raw in zip(self.output_names, self.session.run(None, feed)):
                chunks[name].append(raw.astype(np.float32, copy=False))
        return {name: np.concatenate(parts) if parts else np.zeros((0, 1), np.float32) for name, parts in chunks.items()}


def example_rows(predictor: Predictor, n: int = CHECK_ROWS, seed: int = 0) -> pd.DataFrame:
    """Raw rows drawn from each input's fitted state (numbers around their training mean, categories from their
    vocabulary, binaries from their two labels, with some missing values), for checking an export without data."""
    rng = np.random.default_rng(seed)
    columns: dict[str, Any] = {}
    for t in predictor.preprocessor.inputs:
        values = t.example_values(rng, n)  # each type draws from its own fitted state (or says it cannot)
        values = pd.Series(values, dtype=object)
        values[rng.random(n) < 0.05] = None
        columns[t.name] = values
    return pd.DataFrame(columns)


def max_difference(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    return max(float(np.max(np.abs(a[k].astype(np.float64) - b[k].astype(np.float64)), initial=0.0)) for k in a)


def _export(network: Network, batch: dict[str, torch.Tensor], path: Path, axes: dict[str, list[int]]) -> None:
    """``axes``: each batch key's dynamic axes (0: the batch; 1: a length that varies from call to call)."""
    keys = list(batch)
    wrapper = _Positional(network, keys).eval()
    args = tuple(batch[k] for k in keys)
    names = list(network.output_names)
    torch_log = logging.getLogger("torch")
    level = torch_log.level
    torch_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            try:  # the torch.export-based exporter, PyTorch's default since 2.9
                batch_dim = torch.export.Dim("batch", min=1)
                shapes = tuple({0: batch_dim, 1: torch.export.Dim(f"length_{i}", min=1)} if 1 in axes[k]
                               else {0: batch_dim} for i, k in enumerate(keys))
                torch.onnx.export(wrapper, args, str(path), input_names=keys, output_names=names,
                                  dynamic_shapes=shapes, dynamo=True, external_data=False, verbose=False)
            except Exception:  # the TorchScript exporter handles some modules the new one does not
                dynamic = {k: {0: "batch", **({1: f"length_{k}"} if 1 in axes.get(k, [0]) else {})}
                           for k in [*keys, *names]}
                torch.onnx.export(wrapper, args, str(path), input_names=keys, output_names=names,
                                  dynamic_axes=dynamic, dynamo=False, opset_version=17)
    finally:
        torch_log.setLevel(level)


def needs_onnx() -> None:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as e:
        raise LaminaError(f"ONNX export and the onnx runtime need {e.name}: pip install 'lamina[onnx]'") from None


def export_onnx(model_dir: str | os.PathLike, rows: pd.DataFrame | str | os.PathLike | None = None,
                tolerance: float = TOLERANCE) -> Path:
    """Export the network of ``model_dir`` to ``model_dir/model.onnx`` (written atomically) and check that ONNX
    Runtime's raw outputs match PyTorch's within ``tolerance`` on ``rows`` (a frame or a data file; default: rows
    drawn from the fitted input states, which needs number, category and binary inputs only). Raises
    ``LaminaError`` if they do not match; the old ``model.onnx``, if any, is then left alone."""
    needs_onnx()
    import onnx

    folder = Path(model_dir)
    predictor = load_torch(folder)
    text = [t.name for t in predictor.preprocessor.outputs if t.sequence]
    if text:
        raise LaminaError(f"{folder}: output '{text[0]}' generates text (a search loop over the decoder), which ONNX "
                          "export does not cover yet; serve it with the PyTorch runtime")
    network = predictor.network.cpu().eval()
    if rows is None:
        frame = example_rows(predictor)
    elif isinstance(rows, pd.DataFrame):
        frame = rows
    else:  # a file: read as `lamina predict` reads it (image paths relative to the file)
        frame, _ = predictor._frame(str(rows), None)
    if len(frame) == 0:
        raise LaminaError(f"{rows}: no rows to check the export with")
    if len(frame) < 2:  # a batch of one would let the exporter specialise the batch axis
        frame = pd.concat([frame, frame], ignore_index=True)
    with quiet():  # unseen categories in the check rows are expected, not news
        batch = predictor.preprocessor.inputs_to_tensors(frame, "export check rows")
    batch = {k: batch[k] for k in sorted(batch, key=lambda k: k != DENSE)}  # 'dense' first, then the inputs in order
    types = {t.name: t for t in predictor.preprocessor.inputs}
    axes = {k: types[k].onnx_axes(v) if k in types else [0] for k, v in batch.items()}  # each type's ONNX input
    staging = folder / f".{ONNX_FILE}.partial"
    try:
        _export(network, {k: v[:2] for k, v in batch.items()}, staging, axes)
        proto = onnx.load(str(staging))
        onnx.checker.check_model(proto)
        for key, value in {"lamina_weights_sha256": weights_digest(folder), "lamina_model": folder.name}.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(proto, str(staging))
        expected = run_network(network, batch)
        got = OnnxNetwork(staging).run(batch)
        difference = max_difference(expected, got)
        if not difference <= tolerance:
            raise LaminaError(f"{folder}: ONNX Runtime's outputs differ from PyTorch's by up to {difference:.2e} "
                              f"(allowed {tolerance:.0e}); model.onnx not written")
        os.replace(staging, folder / ONNX_FILE)
        logging.getLogger("lamina").info("wrote %s: ONNX Runtime matches PyTorch within %.1e (largest difference "
                                         "%.1e on %d rows)", folder / ONNX_FILE, tolerance, difference, len(frame))
    finally:
        staging.unlink(missing_ok=True)
    return folder / ONNX_FILE


def onnx_network(folder: Path, threads: int | None = None) -> OnnxNetwork:
    path = folder / ONNX_FILE
    if not path.is_file():
        raise LaminaError(f"{folder}: no {ONNX_FILE}; export it first with `lamina export {folder} --format onnx`")
    network = OnnxNetwork(path, threads)
    if network.metadata.get("lamina_weights_sha256") != weights_digest(folder):
        raise LaminaError(f"{path}: exported from other weights than {folder / WEIGHTS} (the model was retrained or "
                          f"replaced); export it again with `lamina export {folder} --format onnx`")
    return network


def load(model_dir: str | os.PathLike, runtime: str = "torch", threads: int | None = None) -> Predictor:
    """``lamina.load`` with a choice of runtime: ``torch`` (PyTorch eager) or ``onnx`` (ONNX Runtime on the model
    directory's ``model.onnx``). Preprocessing and decoding are Lamina's either way. ``threads``: ONNX Runtime's
    intra-op threads (default: its own choice); for PyTorch use ``torch.set_num_threads``."""
    if runtime not in RUNTIMES:
        raise LaminaError(f"runtime {runtime!r}: use one of {', '.join(RUNTIMES)}")
    if runtime == "onnx":
        needs_onnx()
    predictor = load_torch(model_dir)
    if runtime == "onnx":
        predictor.network = onnx_network(Path(model_dir), threads)
    predictor.info["runtime"] = runtime
    return predictor
