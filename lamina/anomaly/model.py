"""A trained anomaly detector: the fitted input types, the features' scaling, the network and its threshold.
``predict`` gives each row's score and whether it is above the threshold; ``evaluate`` scores a labelled file."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import torch

from lamina.anomaly.evaluation import anomaly_truth, score_metrics
from lamina.anomaly.features import raw_features, scaled
from lamina.anomaly.networks import build, scores
from lamina.config import ColumnsConfig, Config, validate_config
from lamina.errors import LaminaError, where
from lamina.preprocessor import Preprocessor


def columns(config: Config) -> ColumnsConfig:
    return ColumnsConfig(inputs=config.inputs, hidden=config.hidden)


def network_for(config: Config, width: int) -> torch.nn.Module:
    assert config.anomaly is not None
    return build(config.anomaly.method, width, [config.hidden.width] * config.hidden.depth, config.anomaly.code_dim)


class AnomalyModel:
    task = "anomaly"
    reports = True  # lamina train writes its report.html
    report_title = "Scores, PR and cost curves"

    def __init__(self, config: Config, prep: Preprocessor, scaling: dict[str, list[float]], network: torch.nn.Module,
                 threshold: float, info: dict[str, Any] | None = None) -> None:
        self.config, self.prep, self.scaling, self.network = config, prep, scaling, network
        self.threshold, self.info = float(threshold), info or {}

    @property
    def metrics(self) -> dict[str, Any]:
        return self.info.get("metrics", {})

    @property
    def preprocessor(self) -> Preprocessor:
        # what the prediction faces (export, serve, explain, layers) read first: one line, not a traceback
        raise LaminaError("this is an anomaly model (task: anomaly): `lamina predict`, `lamina evaluate`, "
                          "`lamina compare` and the report cover it; export, serve, explain and layers do not yet")

    @property
    def input_types(self) -> list[Any]:
        return self.prep.inputs

    def report_section(self, test: pd.DataFrame) -> str:
        """The report's section on the test rows: scores of normal and anomalous rows, PR and cost curves."""
        from lamina.anomaly.report import anomaly_section

        return anomaly_section(self, test)

    def compared(self, frames: dict[str, pd.DataFrame], sources: dict[str, str], train_seconds: float
                 ) -> dict[str, Any]:
        """``lamina compare``'s rows: the network beside Isolation Forest, LOF and kNN on the same split."""
        from lamina.anomaly.comparison import comparison

        return comparison(self, frames, sources, train_seconds)

    def features(self, frame: pd.DataFrame, source: str | None) -> np.ndarray:
        self.prep.check_columns(frame, source, targets=False)
        return scaled(raw_features(self.prep.inputs, frame, source), self.scaling)

    def scores(self, frame: pd.DataFrame, source: str | None = None) -> np.ndarray:
        return scores(self.network, torch.from_numpy(self.features(frame, source))).numpy().astype(np.float64)

    def predict(self, data: pd.DataFrame | str, source: str | None = None) -> pd.DataFrame:
        """``anomaly_score`` (higher: more unusual) and ``anomaly`` (above the threshold) for every row."""
        frame, source = self._frame(data, source)
        s = self.scores(frame, source)
        return pd.DataFrame({"anomaly_score": s, "anomaly": s > self.threshold})

    def evaluate(self, data: pd.DataFrame | str, source: str | None = None) -> dict[str, Any]:
        frame, source = self._frame(data, source)
        anomaly = self.config.anomaly
        assert anomaly is not None
        if not anomaly.label or anomaly.label not in frame.columns:
            raise LaminaError(where(source, f"no label column {anomaly.label!r} to evaluate against (anomaly.label)"))
        truth, _ = anomaly_truth(frame[anomaly.label], self.info.get("positive"), source, anomaly.label)
        return {"score": score_metrics(self.scores(frame, source), self.threshold, truth, anomaly.costs)}

    def _frame(self, data: pd.DataFrame | str, source: str | None) -> tuple[pd.DataFrame, str | None]:
        from lamina.data.read import read_table

        if isinstance(data, pd.DataFrame):
            return read_table(data), source
        return read_table(data), source or str(data)

    # --- the model directory (written and read by lamina.store) ------------------------------------------------

    def model_files(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        info = {"config": self.config.model_dump(mode="json"), "preprocessor": self.prep.state(),
                "scaling": self.scaling, "threshold": self.threshold,
                **{k: v for k, v in self.info.items() if k != "run_dir"}}
        return info, {f"model.{k}": v for k, v in self.network.state_dict().items()}

    @classmethod
    def from_files(cls, source: str, info: dict[str, Any], tensors: dict[str, torch.Tensor],
                   check: Callable[..., None]) -> AnomalyModel:
        config = validate_config(info["config"], source=source)
        prep = Preprocessor(columns(config), info["preprocessor"])
        scaling = {"mean": [float(v) for v in info["scaling"]["mean"]],
                   "scale": [float(v) for v in info["scaling"]["scale"]]}
        network = network_for(config, len(scaling["mean"]))
        weights = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
        check(weights, network.state_dict(), len(scaling["scale"]) == len(scaling["mean"]))
        network.load_state_dict(weights)
        network.eval()
        meta = {k: v for k, v in info.items() if k not in ("config", "preprocessor", "scaling", "threshold")}
        return cls(config, prep, scaling, network, float(info["threshold"]), meta)
