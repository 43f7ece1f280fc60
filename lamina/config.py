"""The typed config: what ``config.yaml`` may say, with defaults, validated with errors that name the key.

>>> cfg = Config.model_validate({"inputs": [{"name": "age", "type": "number"}],
...                              "outputs": [{"name": "sick", "type": "binary"}], "data": {"path": "x.csv"}})
>>> cfg.trainer.epochs
100
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal, get_args, get_origin

import yaml
from pydantic import BaseModel, Field, ValidationError, ValidationInfo, field_validator, model_validator

from lamina.budget import parse_duration
from lamina.errors import LaminaError
from lamina.inputs import INPUT_TYPES
from lamina.inputs.base import Options
from lamina.outputs import OUTPUT_TYPES
from lamina.outputs.alerts import Costs


class ColumnSpec(Options):
    """One column of the config: its name, its type (a key of the type registry) and the type's options."""

    registry: ClassVar[dict[str, Any]]
    name: str
    type: str
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in cls.registry:
            side = "input" if cls is InputSpec else "output"
            raise ValueError(f"unknown {side} type {value!r}; allowed: {', '.join(cls.registry)}")
        return value

    @field_validator("options")
    @classmethod
    def _options(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        kind = info.data.get("type")
        if kind not in cls.registry:
            return value  # the type's own error is reported
        model = cls.registry[kind].Options
        unknown = set(value or {}) - set(model.model_fields)
        if unknown:
            allowed = ", ".join(model.model_fields) or "none"
            raise ValueError(f"unknown option {sorted(unknown)[0]!r} for type {kind}; allowed options: {allowed}")
        return model.model_validate(value or {}).model_dump()


class InputSpec(ColumnSpec):
    registry: ClassVar[dict[str, Any]] = INPUT_TYPES


class OutputSpec(ColumnSpec):
    registry: ClassVar[dict[str, Any]] = OUTPUT_TYPES


class SplitConfig(Options):
    method: Literal["auto", "random", "stratified", "column", "group", "time"] = Field(
        "auto", description="auto: by identity (group) for an identity target, stratified on the first class target, "
                            "else random; group: by fractions of the values of data.split.column (every row of a "
                            "person in one split); time: train on the earliest rows of time_column, validate on the "
                            "next, test on the latest"
    )
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    column: str | None = Field(None, description="for method 'column': holds train / validation / test per row; "
                                                 "for 'group': the column whose values are kept together")
    time_column: str | None = Field(None, description="for method 'time': numbers or dates that order the rows")
    seed: int = 42


class DataConfig(Options):
    path: str | None = Field(None, description="one file, split by data.split; relative to the config file")
    train: str | None = Field(None, description="or separate files: train, validation, test")
    validation: str | None = None
    test: str | None = None
    format: Literal["auto", "csv", "tsv", "parquet", "jsonl"] = "auto"
    split: SplitConfig = Field(default_factory=SplitConfig)
    streaming: bool = Field(False, description="read data.train (Parquet) a few row groups at a time instead of whole: "
                                               "for training files larger than memory")
    fit_rows: int = Field(100_000, ge=1, description="with streaming: rows, spread over the row groups, that the "
                                                     "preprocessing is fitted on (and train metrics are scored on)")
    shuffle_row_groups: int = Field(4, ge=1, description="with streaming: row groups read and shuffled together; "
                                                         "memory grows with it, and so does the shuffle's quality")

    @model_validator(mode="after")
    def _one_source(self) -> DataConfig:
        if self.path and self.train:
            raise ValueError("give either data.path (one file to split) or data.train (separate files), not both")
        if self.streaming and not self.train:
            # Splitting needs every row in memory, which is what streaming avoids.
            raise ValueError("data.streaming reads separate files: give data.train (Parquet) and data.validation / "
                             "data.test instead of data.path")
        if self.split.method == "column" and not self.split.column:
            raise ValueError("data.split.method is 'column' but data.split.column is not set")
        if self.split.method == "time" and not self.split.time_column:
            raise ValueError("data.split.method is 'time' but data.split.time_column is not set")
        return self


class HiddenConfig(Options):
    depth: int = Field(2, ge=0, le=64)
    width: int = Field(128, ge=1, le=65536)
    dropout: float = Field(0.1, ge=0, lt=1)
    norm: Literal["layer", "batch", "none"] = "layer"
    residual: bool = True
    activation: Literal["relu", "gelu", "silu"] = "relu"


class EarlyStoppingConfig(Options):
    patience: int = Field(10, ge=0, description="epochs without improvement before stopping; 0 never stops early")
    metric: str = Field("loss", description="'loss' (validation loss) or '<output>.<metric>', e.g. 'default.pr_auc'")


# trainer.folds: auto cross-fits AUTO_FOLDS networks when the training + validation rows are fewer than AUTO_FOLD_ROWS
# (lamina.folds; the measurements behind the rule are in docs/benchmarks.md, section 'Small tables').
AUTO_FOLD_ROWS, AUTO_FOLDS = 3000, 5


class TrainerConfig(Options):
    epochs: int = Field(100, ge=1)
    batch_size: int = Field(64, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    schedule: Literal["cosine", "onecycle", "constant"] = "cosine"
    grad_clip: float | None = Field(1.0, gt=0)
    early_stopping: EarlyStoppingConfig = Field(default_factory=EarlyStoppingConfig)
    seed: int = 42
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int | None = Field(None, ge=1, description="CPU threads for training; default: torch's (all cores)")
    precision: Literal["fp32", "bf16", "fp16"] = Field(
        "fp32", description="bf16: autocast on CPU and CUDA; fp16: autocast with loss scaling, CUDA only")
    compile: bool = Field(False, description="torch.compile the network for training; eager with a warning if it fails")
    time_limit: float | None = Field(None, description="training time budget: seconds or e.g. '90s', '10m', '1h'; "
                                                       "the schedule ends and training stops when it is spent")

    @field_validator("time_limit", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float | None:
        return None if value is None else parse_duration(value)

    # 1 by default so a hand-written config trains as it always did; `lamina init` writes auto.
    folds: Literal["auto"] | int = Field(
        1, description="cross-fitting (lamina.folds): N networks, each early-stopped on its own fold of the "
                       "training and validation rows, predicting with their average; 1: one network and the "
                       "validation split; auto: 5 under 3,000 training + validation rows (inputs read "
                       "from files: 1), else 1")

    @field_validator("folds")
    @classmethod
    def _folds(cls, value: Literal["auto"] | int) -> Literal["auto"] | int:
        if value != "auto" and not 1 <= value <= 20:
            raise ValueError("use 'auto', 1 (no cross-fitting) or a number of folds from 2 to 20")
        return value


class RecommendationConfig(Options):
    """``task: recommendation``: a log of user–item interactions → a two-tower ranking model (lamina.recommend)."""

    user: str = Field(description="column of user IDs")
    item: str = Field(description="column of item IDs")
    rating: str | None = Field(None, description="explicit rating column; with min_rating, thresholded to positives")
    min_rating: float | None = Field(None, description="interactions rated at least this are positives")
    time: str | None = Field(None, description="timestamp column: temporal leave-last-out split, else random per user")
    title: str | None = Field(None, description="item column shown beside item IDs in recommendations")
    user_features: list[InputSpec] = Field(default_factory=list, description="columns describing the user")
    item_features: list[InputSpec] = Field(default_factory=list, description="columns describing the item")
    history: bool = Field(True, description="user tower also sees the mean embedding of the user's training items")
    recent: int = Field(10, ge=0, le=1000, description="user tower also sees the mean of its last N items (0: off)")
    embedding_dim: int = Field(64, ge=2, le=4096)
    loss: Literal["softmax", "bpr"] = Field("softmax", description="in-batch softmax with popularity correction | BPR")
    popularity_correction: bool = Field(True, description="for softmax: subtract log(item frequency) from logits")
    temperature: float = Field(0.05, gt=0, description="for softmax: scores are cosines divided by this")
    k: int = Field(10, ge=1, description="cut-off of Recall@k, NDCG@k, HitRate@k")
    baselines: list[Literal["popularity", "ease"]] = Field(default_factory=lambda: ["popularity", "ease"])
    ease_lambda: float = Field(500.0, gt=0, description="L2 strength of the EASE baseline")

    @model_validator(mode="after")
    def _columns(self) -> RecommendationConfig:
        roles = {"user": self.user, "item": self.item, "rating": self.rating, "time": self.time}
        taken = [c for c in roles.values() if c]
        if len(set(taken)) < len(taken):
            raise ValueError("user, item, rating and time must name different columns")
        features = [s.name for s in [*self.user_features, *self.item_features]]
        for name in features:
            if name in taken or features.count(name) > 1:
                raise ValueError(f"column {name!r} is listed twice (a feature is one column, not the user, item, "
                                 "rating or time column)")
        if self.min_rating is not None and not self.rating:
            raise ValueError("min_rating needs rating (the column it thresholds)")
        return self


class AnomalyConfig(Options):
    """``task: anomaly``: rows assumed mostly normal, no target; a network learns them and scores how unusual each
    row is (lamina.anomaly). A label column, when given, is used only to evaluate the scores."""

    method: Literal["autoencoder", "deep_svdd"] = Field(
        "autoencoder", description="autoencoder: reconstruction error of the inputs' features; deep_svdd: distance "
                                   "to the centre of the rows' learned representation")
    code_dim: int = Field(8, ge=1, le=4096, description="autoencoder bottleneck / Deep SVDD representation width")
    threshold: Literal["budget", "quantile", "pot"] = Field(
        "budget", description="budget: flag the top alert_budget of validation scores; quantile: above that quantile "
                              "of validation scores; pot: an extreme-value (generalised Pareto) fit of the tail")
    alert_budget: float = Field(0.01, gt=0, lt=1, description="share of rows flagged, for threshold budget")
    quantile: float = Field(0.99, gt=0, lt=1, description="of validation scores, for threshold quantile")
    pot_level: float = Field(0.98, gt=0, lt=1, description="pot: the quantile above which the tail is fitted")
    pot_risk: float = Field(1e-3, gt=0, lt=1, description="pot: the probability of a normal row above the threshold")
    label: str | None = Field(None, description="a column saying which rows are anomalies: evaluation only")
    positive: str | None = Field(None, description="the label value of an anomaly; default: the rarer value")
    train_on: Literal["all", "normal"] = Field(
        "all", description="normal: leave the labelled anomalies out of training (the label must be given)")
    baselines: list[Literal["isolation_forest", "lof", "knn"]] = Field(
        default_factory=lambda: ["isolation_forest", "lof", "knn"],
        description="classical detectors fitted on the same training rows and features")
    neighbours: int = Field(10, ge=1, description="k of LOF and of the kNN distance")
    costs: Costs | None = Field(None, description="a cost matrix, e.g. {missed: 100, false_alarm: 1}: the labelled "
                                "rows' expected cost per row at the threshold, and the report's cost curve")

    @model_validator(mode="after")
    def _label(self) -> AnomalyConfig:
        if self.train_on == "normal" and not self.label:
            raise ValueError("train_on 'normal' needs label (the column saying which rows are anomalies)")
        return self


class ColumnsConfig(Options):
    """The part of a config a ``Preprocessor`` reads: its input and output columns and the hidden layers. A
    recommender's towers each have one (its ID and side columns, no outputs), derived from ``recommendation``."""

    inputs: list[InputSpec] = Field(default_factory=list)
    outputs: list[OutputSpec] = Field(default_factory=list)
    hidden: HiddenConfig = Field(default_factory=HiddenConfig)


class TuneParam(Options):
    """One key of ``tune.space``: a range (``low``/``high``, ``log``; ``integer`` for whole numbers), ``choices``, or a
    ``fixed`` value that is set without searching."""

    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    choices: list[Any] | None = Field(None, min_length=1)
    fixed: Any = None

    @model_validator(mode="after")
    def _one_kind(self) -> TuneParam:
        ranged = self.low is not None or self.high is not None
        if sum((ranged, self.choices is not None, self.fixed is not None)) != 1:
            raise ValueError("give low and high (a range), choices (a list) or fixed (a value), one of them")
        if ranged and (self.low is None or self.high is None or not self.low < self.high):
            raise ValueError(f"a range needs low < high (got low {self.low}, high {self.high})")
        if self.log and ranged and self.low <= 0:  # type: ignore[operator]
            raise ValueError(f"a log range needs low > 0 (got low {self.low})")
        return self


class TuneConfig(Options):
    """``lamina tune``'s search space: config keys (``hidden.width``, ``trainer.learning_rate``,
    ``inputs[color].options.embedding_dim``) to what each may be; ``lamina tune`` writes the defaults."""

    space: dict[str, TuneParam] = Field(default_factory=dict)


class Config(Options):
    name: str | None = Field(None, description="run name; default: the config file's name")
    task: Literal["prediction", "recommendation", "anomaly"] = "prediction"
    data: DataConfig = Field(default_factory=DataConfig)
    inputs: list[InputSpec] = Field(default_factory=list)
    outputs: list[OutputSpec] = Field(default_factory=list)
    recommendation: RecommendationConfig | None = None
    anomaly: AnomalyConfig | None = None
    hidden: HiddenConfig = Field(default_factory=HiddenConfig)
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)
    tune: TuneConfig | None = Field(None, description="lamina tune's search space (written by lamina tune)")

    @model_validator(mode="before")
    @classmethod
    def _task_sections(cls, raw: Any) -> Any:
        # A prediction needs inputs and outputs; a recommendation needs its own section and neither of them.
        if not isinstance(raw, dict):
            return raw
        if raw.get("task", "prediction") == "recommendation":
            if raw.get("recommendation") is None:
                raise ValueError("recommendation: required but missing (task is 'recommendation'); give user and item")
            if raw.get("inputs") or raw.get("outputs"):
                raise ValueError("inputs/outputs are not used with task 'recommendation'; list side columns in "
                                 "recommendation.user_features / recommendation.item_features")
            return raw
        if raw.get("recommendation") is not None:
            raise ValueError("recommendation: only used with 'task: recommendation'")
        if raw.get("task") == "anomaly":
            if raw.get("outputs"):
                raise ValueError("outputs are not used with task 'anomaly' (no target: every row gets a score); a "
                                 "label column for evaluation goes in anomaly.label")
            if not raw.get("inputs"):
                raise ValueError("inputs: required but missing (task 'anomaly' scores rows from their inputs)")
            return {**raw, "anomaly": raw.get("anomaly") or {}}
        if raw.get("anomaly") is not None:
            raise ValueError("anomaly: only used with 'task: anomaly'")
        for key in ("inputs", "outputs"):
            if key not in raw:
                raise ValueError(f"{key}: required but missing")
            if isinstance(raw[key], list) and not raw[key]:
                raise ValueError(f"{key}: give at least one column")
        return raw

    @model_validator(mode="after")
    def _consistent(self) -> Config:
        names = [s.name for s in self.inputs] + [s.name for s in self.outputs]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"column {twice[0]!r} is listed twice in inputs/outputs; a column is an input or an output, once")
        metric = self.trainer.early_stopping.metric
        if metric != "loss":
            output, _, name = metric.partition(".")
            spec = next((s for s in self.outputs if s.name == output), None)
            if spec is None:
                raise ValueError(f"trainer.early_stopping.metric {metric!r}: no output named {output!r}; use 'loss' or '<output>.<metric>'")
            kind = OUTPUT_TYPES[spec.type]
            allowed = tuple(dict.fromkeys((kind.primary_metric, *kind.metric_names)))
            if OUTPUT_TYPES[spec.type].sequence:
                raise ValueError(f"trainer.early_stopping.metric {metric!r}: text outputs stop early on the validation "
                                 "loss (generating every epoch would cost more than training); use 'loss'")
            if name not in allowed:
                raise ValueError(f"trainer.early_stopping.metric {metric!r}: allowed metrics for {output!r}: {', '.join(allowed)}")
        return self


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys the schema allows at ``loc``'s parent, to tell the user what they could have meant."""
    model: Any = Config
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or part not in model.model_fields:
            return []
        model = model.model_fields[part].annotation
        while get_origin(model) is not None and not (isinstance(model, type) and issubclass(model, BaseModel)):
            args = [a for a in get_args(model) if isinstance(a, type) and issubclass(a, BaseModel)]
            model = args[0] if args else None
    return list(model.model_fields) if isinstance(model, type) and issubclass(model, BaseModel) else []


def describe(error: ValidationError, raw: dict[str, Any] | None = None) -> str:
    """The first problem of a validation error as one line: key, bad value, what is allowed."""
    first = error.errors()[0]
    loc = tuple(first["loc"])
    key = ".".join(str(p) for p in loc) or "config"
    if raw is not None:
        # Name list items by their column name: 'inputs[age]' reads better than 'inputs.3'.
        parts, node = [], raw
        for p in loc:
            if isinstance(p, int) and isinstance(node, list) and p < len(node) and isinstance(node[p], dict) and "name" in node[p]:
                parts[-1] = f"{parts[-1]}[{node[p]['name']}]"
            else:
                parts.append(str(p))
            node = node[p] if isinstance(node, (dict, list)) and (isinstance(p, int) or p in node) else None
        key = ".".join(parts) or "config"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        allowed = _allowed_keys(loc)
        return f"{key}: unknown key; allowed keys here: {', '.join(allowed)}" if allowed else f"{key}: unknown key"
    if first["type"] == "missing":
        return f"{key}: required but missing"
    value = first.get("input")
    shown = "" if isinstance(value, (dict, list)) or value is None else f" (got {value!r})"
    return f"{key}: {message}{shown}" if loc else f"{message}{shown}"


def load_config(path: str | Path) -> Config:
    """Read and validate a YAML config; every problem is a one-line ``LaminaError`` naming the file and key."""
    path = Path(path)
    if not path.is_file():
        raise LaminaError(f"{path}: no such config file; create one with `lamina init DATA --target COLUMN`")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise LaminaError(f"{path}: not valid YAML{at} ({getattr(e, 'problem', e)})") from None
    except UnicodeDecodeError:
        raise LaminaError(f"{path}: not a UTF-8 text file; a config is YAML text") from None
    if raw is None:
        raise LaminaError(f"{path}: the config is empty; create one with `lamina init DATA --target COLUMN`")
    if not isinstance(raw, dict):
        raise LaminaError(f"{path}: a config is a YAML mapping with keys data, inputs, outputs, hidden, trainer")
    return validate_config(raw, source=str(path))


def validate_config(raw: dict[str, Any], source: str = "config") -> Config:
    try:
        return Config.model_validate(raw)
    except ValidationError as e:
        raise LaminaError(f"{source}: {describe(e, raw)}") from None


def dump_config(config: Config) -> str:
    """YAML text of a config, leaving out what equals the defaults of sections a user rarely touches."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
