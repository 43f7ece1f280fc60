"""A trained model in memory: the fitted preprocessor and the network, with scikit-learn-like ``predict``.

>>> model = lamina.load("runs/breast_cancer")          # doctest: +SKIP
>>> model.predict(frame).head()                         # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from lamina.data.paths import resolve_paths
from lamina.data.read import read_table
from lamina.config import validate_config
from lamina.ensemble import Ensemble
from lamina.errors import LaminaError, row_name, where
from lamina.model import Network, spatial_source
from lamina.outputs.tiles import sliding_window
from lamina.preprocessor import Preprocessor
from lamina.schema import check as check_state

PREDICT_BATCH = 4096


def run_network(net: Network, inputs: dict[str, torch.Tensor], batch_size: int = PREDICT_BATCH) -> dict[str, np.ndarray]:
    """Raw head outputs for every row, in eval mode and without gradients, in batches to bound memory.

    ``net`` may also be another runtime with the same inputs and outputs (``lamina.export.OnnxNetwork``)."""
    if not isinstance(net, torch.nn.Module):
        return net.run(inputs, batch_size)
    n = len(next(iter(inputs.values())))
    device = next(net.parameters()).device
    was_training = net.training
    net.eval()
    chunks: dict[str, list[np.ndarray]] = {name: [] for name in net.output_names}
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            batch = {k: v[start:start + batch_size].to(device) for k, v in inputs.items()}
            for name, raw in net(batch).items():
                chunks[name].append(raw.float().cpu().numpy())
    net.train(was_training)
    return {name: np.concatenate(parts) if parts else np.zeros((0, 1), np.float32) for name, parts in chunks.items()}


def _network(preprocessor: Preprocessor, members: int) -> Network | Ensemble:
    if members:
        return Ensemble([preprocessor.network() for _ in range(members)], preprocessor.outputs)
    return preprocessor.network()


def _planned(preprocessor: Preprocessor, members: int) -> dict[str, torch.Tensor] | None:
    """The tensors the fitted states imply, on the meta device (shapes only); None for a network that cannot be
    built there (a type that loads files as it builds: checked once built instead)."""
    try:
        with torch.device("meta"):
            return dict(_network(preprocessor, members).state_dict())
    except Exception:  # noqa: BLE001
        return None


class Predictor:
    task = "prediction"
    reports = True  # lamina train writes its report.html
    report_title = "ROC, PR and calibration"

    def __init__(self, preprocessor: Preprocessor, network: Network, info: dict[str, Any] | None = None) -> None:
        self.preprocessor = preprocessor
        self.network = network.eval()
        self.info = info or {}  # metrics, versions, run directory: what lamina.json says beside the weights

    @property
    def config(self):
        return self.preprocessor.config

    @property
    def metrics(self) -> dict[str, Any]:
        return self.info.get("metrics", {})

    def model_files(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """What ``lamina.json`` holds of this model (written by ``lamina.store``), and its tensors."""
        info = {"config": self.config.model_dump(mode="json"), "preprocessor": self.preprocessor.state(),
                **{k: v for k, v in self.info.items() if k != "run_dir"}}
        return info, dict(self.network.state_dict())

    @classmethod
    def from_files(cls, source: str, info: dict[str, Any], tensors: dict[str, torch.Tensor],
                   check: Callable[..., None]) -> Predictor:
        """The model ``model_files`` wrote. ``check(weights, expected)`` refuses tensors that do not fit the
        network ``info`` describes; KeyError, TypeError or ValueError mean ``info`` is incomplete."""
        config = validate_config(info["config"], source=source)
        preprocessor = Preprocessor(config, info["preprocessor"])
        unfitted = [t.name for t in [*preprocessor.inputs, *preprocessor.outputs] if not t.state]
        if unfitted:
            raise LaminaError(f"{source}: no fitted state for column {unfitted[0]!r}; the file is incomplete, "
                              "retrain or restore the model directory")
        for side, types in (("inputs", preprocessor.inputs), ("outputs", preprocessor.outputs)):
            for t in types:
                if t.state_schema is not None:
                    check_state(t.state_schema, t.state, Path(source), f"preprocessor.{side}.{t.name}.")
        members = int(info["folds"]["k"]) if info.get("folds") else 0  # cross-fitted: k networks averaged
        planned = _planned(preprocessor, members)
        if planned is not None:  # sizes checked before anything is allocated: a file may declare a huge one
            check(tensors, planned)
        network = _network(preprocessor, members)
        check(tensors, network.state_dict())
        network.load_state_dict(tensors)
        return cls(preprocessor, network, {k: v for k, v in info.items() if k not in ("config", "preprocessor")})

    @property
    def input_types(self) -> list[Any]:
        return self.preprocessor.inputs

    def report_section(self, test: pd.DataFrame) -> str | None:
        """The report's section on labelled test rows: each output type's own (ROC and PR curves with the chosen
        threshold, calibration, predicted against true...); None: no output draws one."""
        prep = self.preprocessor
        test = prep.drop_bad_inputs(prep.drop_missing_targets(test, "test"), "test")
        raw = self.predict_raw(test)
        parts = [t.report_section(prep.inputs, test, raw[t.name]) for t in prep.outputs]
        return "".join(p for p in parts if p) or None

    def compared(self, frames: dict[str, pd.DataFrame], sources: dict[str, str], train_seconds: float) -> None:
        """A model's own rows for ``lamina compare`` (an anomaly detector brings its detectors); None: the usual
        classical counterparts of the inputs and outputs."""
        return None

    def _frame(self, data: pd.DataFrame | str, source: str | None) -> tuple[pd.DataFrame, str | None]:
        """The rows to predict; file paths in them (images) are relative to the file or folder they were read from."""
        if isinstance(data, pd.DataFrame):
            frame, base = data, source  # a frame read from the file ``source`` names (as the CLI does)
        else:
            frame, base, source = read_table(data), str(data), source or str(data)
        columns = [t.name for t in [*self.preprocessor.inputs, *self.preprocessor.outputs]
                   if getattr(t, "holds_paths", False) and t.name in frame.columns]
        if columns and base and Path(base).exists():
            frame = resolve_paths(frame, columns, base if Path(base).is_dir() else Path(base).parent)
        return frame, source

    def predict_raw(self, data: pd.DataFrame | str, source: str | None = None) -> dict[str, np.ndarray]:
        frame, source = self._frame(data, source)
        if len(frame) == 0:
            raise LaminaError(where(source, "no rows to predict"))
        return run_network(self.network, self.preprocessor.inputs_to_tensors(frame, source))

    def predict(self, data: pd.DataFrame | str, source: str | None = None) -> pd.DataFrame:
        """One row per input row: each output's prediction, then its class probabilities where it has classes."""
        return self.predict_with_raw(data, source)[0]

    def predict_with_raw(self, data: pd.DataFrame | str, source: str | None = None
                         ) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
        """``predict``'s frame and the raw outputs it decoded (what serving also answers from: a mask's pixels)."""
        frame, source = self._frame(data, source)
        frame = self.preprocessor.drop_bad_inputs(frame, source)
        raw = self.predict_raw(frame, source)
        for name, values in raw.items():  # never a NaN probability: a row the network cannot score is an error
            if not np.issubdtype(values.dtype, np.floating) or len(values) == 0:
                continue
            finite = np.isfinite(values.reshape(len(values), -1)).all(axis=1)
            if not finite.all():
                row = row_name(frame.index[int(np.argmin(finite))])
                raise LaminaError(where(source, f"row {row}: the network gives no finite output for '{name}' from "
                                                "this row's values; check them (an extreme number?) or retrain the model"))
        inputs = self.preprocessor.inputs
        parts = [t.locate(t.decode(raw[t.name]), frame, inputs) for t in self.preprocessor.outputs]
        result = pd.concat(parts, axis=1) if len(parts) > 1 else parts[0]
        result.index = frame.index
        return result, raw

    def predict_files(self, data: pd.DataFrame | str, folder: Path, source: str | None = None) -> list[Path]:
        """``predict`` into ``folder``: ``predictions.csv`` and what each output writes itself (a mask PNG per
        image and ``<output>_lesions.csv``); the files written."""
        frame, source = self._frame(data, source)
        frame = self.preprocessor.drop_bad_inputs(frame, source)
        raw = self.predict_raw(frame, source)
        folder.mkdir(parents=True, exist_ok=True)
        parts = [t.decode(raw[t.name]) for t in self.preprocessor.outputs]
        predictions = pd.concat(parts, axis=1) if len(parts) > 1 else parts[0]
        paths = [t.name for t in self.preprocessor.inputs if t.holds_paths]
        predictions = pd.concat([frame[paths].reset_index(drop=True), predictions], axis=1)
        written = [folder / "predictions.csv"]
        predictions.to_csv(written[0], index=False)
        tiled = self.tiled_raw(frame)
        for t in self.preprocessor.outputs:
            table = t.write_predictions(raw[t.name], frame, self.preprocessor.inputs, folder, tiled.get(t.name))
            if table is not None:
                written.append(folder / f"{t.name}_lesions.csv")
                table.to_csv(written[-1], index=False)
        return written

    def tiled_raw(self, frame: pd.DataFrame) -> dict[str, dict[int, np.ndarray]]:
        """Per output that tiles (``tile_scale``): the raw maps, by row position, of the rows whose picture (at the
        training's pixel scale) is larger than the training size, predicted by a blended sliding window."""
        outputs = [t for t in self.preprocessor.outputs if t.tile_scale() is not None]
        source = spatial_source([t for t in self.preprocessor.inputs if not t.passthrough], outputs)
        if source is None:
            return {}
        tile = source.canvas()[:2]
        large = {t.name: {row: picture for row, picture in
                          enumerate(source.at_own_size(frame[source.name], t.tile_scale(), tile))
                          if picture is not None} for t in outputs}
        if not any(large.values()):
            return {}
        tensors = self.preprocessor.inputs_to_tensors(frame)  # the other inputs, repeated for each tile of a row

        def forward(tiles: torch.Tensor, row: int, name: str) -> torch.Tensor:
            batch = {k: v[row:row + 1].expand(len(tiles), *v.shape[1:]).contiguous() for k, v in tensors.items()}
            return torch.from_numpy(run_network(self.network, {**batch, source.name: tiles})[name])

        return {name: {row: sliding_window(lambda x, r=row, n=name: forward(x, r, n), picture, tile).numpy()
                       for row, picture in pictures.items()} for name, pictures in large.items()}

    def evaluate(self, data: pd.DataFrame | str, source: str | None = None) -> dict[str, dict[str, Any]]:
        """Metrics per output on a labelled frame or file."""
        frame, source = self._frame(data, source)
        self.preprocessor.check_columns(frame, source, targets=True)
        frame = self.preprocessor.drop_missing_targets(frame, source)
        frame = self.preprocessor.drop_bad_inputs(frame, source)
        frame = self.preprocessor.drop_unseen_classes(frame, source)  # counted in a warning, not scored silently
        if len(frame) == 0:
            raise LaminaError(where(source, "no rows to score"))
        return self.score(frame, self.preprocessor.inputs_to_tensors(frame, source))

    def score(self, frame: pd.DataFrame, inputs: dict[str, torch.Tensor], intervals: bool = False
              ) -> dict[str, dict[str, Any]]:
        """Metrics per output of labelled rows whose inputs are already tensors (training reuses its own); with
        ``intervals`` also each output's bootstrap intervals (the test split's)."""
        raw = run_network(self.network, inputs)
        return {t.name: {"rows": len(frame), **t.metrics(frame[t.name], raw[t.name]),
                         **(t.metric_intervals(frame[t.name], raw[t.name]) if intervals else {})}
                for t in self.preprocessor.outputs}
