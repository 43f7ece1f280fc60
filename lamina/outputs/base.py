"""What every output type is: fit on the training targets, a head, a loss, metrics and decoding.

Mirrors ``lamina.inputs.base``: the fitted state is a JSON-able dict stored in the model directory.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field
from torch import nn

from lamina.errors import LaminaError
from lamina.inputs.base import ColumnType, Options


class OutputOptions(Options):
    """What every output's options hold (a type's own ``Options`` subclass adds its knobs)."""

    loss_weight: float = Field(1.0, gt=0, description="this output's share of the total loss")


class OutputType(ColumnType):
    """One target of the output layer.

    ``transform`` turns raw target values into the tensor the loss wants; ``decode`` turns the head's raw outputs
    (a float array) into user-facing columns; ``metrics`` scores decoded predictions against raw targets.
    ``primary_metric`` is what early stopping watches by default and what compare's verdict is about, with
    ``higher_is_better``; ``lower_is_better`` names the other metrics that are better lower.

    A type also owns its faces (the hooks below, each with a default): what a classical model predicts for it
    (``task``, ``classical_raw``), the score explanations attribute, the probe readout, its report section.
    """

    Options: ClassVar[type[Options]] = OutputOptions
    primary_metric: ClassVar[str]
    higher_is_better: ClassVar[bool]
    metric_names: ClassVar[tuple[str, ...]]
    lower_is_better: ClassVar[frozenset[str]] = frozenset()
    # What a classical model (compare) and a linear probe predict for this output: classes (``transform`` gives
    # class indices) or a value (``transform`` gives what the head's first column regresses); None: neither.
    task: ClassVar[Literal["classification", "regression"] | None] = None
    # Sequence outputs (text) are generated token by token: their head also takes the inputs' token states and,
    # in training, the target itself (``lamina.model``).
    sequence: ClassVar[bool] = False
    # Spatial outputs (boxes, masks) read the image input's feature maps: ``head(in_dim, shapes)`` gets their
    # ``(channels, stride)``, finest first, and the head is called ``head(h, maps)``. In training the pixels move
    # (shift, rotation, zoom, flip) and ``follow`` moves the target with them.
    spatial: ClassVar[bool] = False
    # Identity outputs: the split is by this target's value (its people), never by row, so held-out rows are of
    # people never trained on; and their loss cannot score such rows, so early stopping on "loss" watches
    # ``primary_metric`` instead.
    split_by_value: ClassVar[bool] = False
    scores_held_out_loss: ClassVar[bool] = True
    # Whether ``embedding`` gives a vector per row that people are enrolled and matched by (lamina enroll).
    embeds: ClassVar[bool] = False
    # Rows the report explains at most when this output is explained (None: the inputs' ``explain_rows`` decide).
    explain_rows: ClassVar[int | None] = None

    def head(self, in_dim: int) -> nn.Module:
        raise NotImplementedError

    def loss(self) -> nn.Module:
        """A module ``loss(raw_output, target) -> scalar``."""
        raise NotImplementedError

    def held_out_loss(self, raw: np.ndarray, values: pd.Series) -> float | None:
        """The validation loss where the training loss cannot score held-out rows (``scores_held_out_loss``
        False); None: the training loss on the validation targets is it."""
        return None

    def bind(self, inputs: list[Any]) -> None:
        """Called with the fitted input types just before ``fit`` (a boxes output learns the image input's picture
        size). Default: nothing."""

    def follow(self, target: torch.Tensor, theta: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """A spatial target (``transform``'s rows) moved as ``theta`` (``F.affine_grid``'s maps, output → input in
        [-1, 1]) moved images of ``size`` (height, width)."""
        raise NotImplementedError(f"output type {self.kind} is not spatial")

    def known(self, values: pd.Series) -> np.ndarray:
        """Which target values the fitted output can score (class outputs: classes seen in training)."""
        return np.ones(len(values), dtype=bool)

    def calibrate(self, raw: np.ndarray, values: pd.Series) -> None:
        """Tune decoding on the validation split (e.g. a decision threshold). Default: nothing to tune."""

    def average(self, raws: torch.Tensor) -> torch.Tensor:
        """The raw output of an ensemble from its members' ``(members, rows, width)`` raw outputs (lamina.ensemble).
        Default: their mean (numbers: the mean prediction). Class outputs average probabilities instead."""
        return raws.mean(0)

    def embedding(self, raw: np.ndarray) -> np.ndarray:
        """The L2-normalised embeddings in raw head outputs (``embeds`` types only)."""
        raise LaminaError(f"output '{self.name}' (type {self.kind}) gives no embeddings to enrol or match people by; "
                          "train a model with an identity output (lamina init DATA --target PERSON --task identity)")

    def decode(self, raw: np.ndarray) -> pd.DataFrame:
        """Raw head outputs → a frame whose first column (named after the output) is the prediction."""
        raise NotImplementedError

    def locate(self, decoded: pd.DataFrame, frame: pd.DataFrame, inputs: list[Any]) -> pd.DataFrame:
        """Decoded predictions placed in the rows' own coordinates (boxes in each image file's pixels, not the
        network's resized picture's). Default: as decoded."""
        return decoded

    def metrics(self, values: pd.Series, raw: np.ndarray) -> dict[str, Any]:
        """Scores of raw head outputs against raw target values (rows with a missing target already removed)."""
        raise NotImplementedError

    def metric_intervals(self, values: pd.Series, raw: np.ndarray) -> dict[str, float]:
        """``<metric>_low`` / ``<metric>_high``: bootstrap intervals of the metrics on the test rows (the binary
        output's alert metrics). Default: none."""
        return {}

    def is_higher_better(self, metric: str) -> bool:
        """Whether a higher value of ``metric`` (one of ``metric_names``) is better."""
        if metric == self.primary_metric:
            return self.higher_is_better
        return metric not in self.lower_is_better

    # --- compare: the classical counterpart's predictions ---------------------------------------------------------

    def classical_raw(self, model: Any, x: Any) -> np.ndarray:
        """A fitted scikit-learn model's predictions as this output's raw head values."""
        if self.task == "regression":
            return np.asarray(model.predict(x), dtype=np.float64)[:, None]
        if self.task == "classification":
            proba = np.full((x.shape[0], len(self.state["classes"])), 1e-7)
            proba[:, np.asarray(model.classes_, dtype=int)] = model.predict_proba(x)
            return self.raw_from_proba(np.clip(proba, 1e-7, 1 - 1e-7))
        raise LaminaError(f"output '{self.name}' (type {self.kind}): no classical counterpart for this output type")

    def classical_rare(self, y: np.ndarray) -> bool:
        """Whether the training targets ``y`` (``transform``'s) are a rare class that classical models need their
        imbalance settings for (``lamina.inputs.classical.Model.rare``). Default: no."""
        return False

    def raw_from_proba(self, proba: np.ndarray) -> np.ndarray:
        """Class probabilities ``(n, classes)`` as raw head values: log-probabilities (softmax heads)."""
        return np.log(proba / proba.sum(1, keepdims=True))

    def classical_counterparts(self, inputs: list[Any], split: dict[str, pd.DataFrame]) -> list[dict[str, Any]] | None:
        """Rows of counterparts this output brings itself (a text output: copying, a translation memory), or None
        for the usual ones: the inputs' classical features and models of ``task``."""
        return None

    # --- explain and probes ---------------------------------------------------------------------------------------

    @property
    def readout_metric(self) -> str:
        """What a linear probe of a layer (and the deletion check) reports: accuracy for classes, R² for values."""
        return "accuracy" if self.task == "classification" else "r2"

    def explained_score(self, raw: torch.Tensor) -> torch.Tensor:
        """The score Integrated Gradients attributes, from raw head outputs: ``(n,)``, or ``(n, classes)`` with
        ``explained_class`` picking one per row. Default: the head's first value (a standardised number)."""
        return raw[:, 0]

    def explained_score_name(self) -> str:
        return f"{self.name} (standardised)"

    def explained_class(self, raw: np.ndarray) -> np.ndarray | None:
        """The class explained per row when ``explained_score`` gives one score per class; None otherwise."""
        return None

    def explained_label(self, index: int) -> str:
        """What ``explained_class``'s ``index`` names (a class; for boxes, the box)."""
        return str(self.state["classes"][index])

    def explained_direction(self, raw: np.ndarray) -> np.ndarray:
        """+1 where a higher explained score supports the prediction, −1 where it opposes it."""
        return np.ones(len(raw))

    # --- serving: what POST /predict answers for this output ------------------------------------------------------

    def serve_entry(self, record: dict[str, Any], raw: np.ndarray) -> dict[str, Any]:
        """One row's answer from its ``decode`` record and raw output: the prediction, and the class probabilities
        where the output has classes (a mask adds its overlay)."""
        entry: dict[str, Any] = {"prediction": record[self.name]}
        classes = self.state.get("classes")
        if classes:
            entry["probabilities"] = {str(c): record[f"{self.name}_proba_{c}"] for c in classes}
        return entry

    # --- prediction into a folder (lamina predict ... -o FOLDER) ---------------------------------------------------

    def tile_scale(self) -> float | None:
        """The scale (of a picture's own size) at which this output's raw maps are predicted by tiles of the
        training size when the picture is larger (sliding-window inference, ``write_predictions``'s ``tiled``);
        None: never (raw outputs only at the fitted size)."""
        return None

    def write_predictions(self, raw: np.ndarray, frame: pd.DataFrame, inputs: list[Any], folder: Any,
                          tiled: dict[int, np.ndarray] | None = None) -> pd.DataFrame | None:
        """Files of this output's predictions for the rows of ``frame`` written into ``folder`` (a mask PNG per
        image), and a table about them (one row per lesion); None: this output writes no files. ``tiled``: raw
        maps at the pictures' own size (``tile_scale``) for the rows (positions) larger than the training size."""
        return None

    def page_widget(self) -> dict[str, Any]:
        """Extra keys of this output in ``GET /model`` that tell the page how to show it (boxes: drawn on the
        uploaded picture). Default: none (the prediction as text, probabilities as bars)."""
        return {}

    # --- the report -----------------------------------------------------------------------------------------------

    def report_section(self, inputs: list[Any], test: pd.DataFrame, raw: np.ndarray) -> str | None:
        """HTML (plots embedded) about this output's predictions on the test rows; None: nothing to draw."""
        return None
