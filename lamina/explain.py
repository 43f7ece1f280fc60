"""Why the model said what it said: Integrated Gradients (Captum) per row, permutation importance for the whole
set, and a deletion check of faithfulness -- in the unit the user thinks in (columns for tables, pixels for images).

Attributions are computed in *attribution space*: one float tensor per part of the network's input --

* ``dense``: the passthrough columns (numbers, binaries), each type's ``width`` columns summed back to one column;
* an encoder's *output* for embedded types (category, set, and text when it comes): gradients cannot flow through an
  index, so the embedding vector is attributed and its dimensions summed to the column;
* an encoder's *input* for pixel types (image): per-pixel saliency, summed over channels, and over the image for the
  column's total.

The baseline (what "this column says nothing" means) is per type, in ``BASELINES`` below, with an optional hook: an
input type may define ``explain_baseline(self) -> list[float]`` for its transformed columns. The explained score is
a probability -- P(positive class) for a binary output, P(predicted class) for a category output -- or the
standardised value for a number output; by completeness the attributions of a row sum to score(row) −
score(baseline).

``explain_rows(predictor, frame)`` is the contract ``lamina serve``'s ``POST /explain`` uses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch
from torch import nn

from lamina.errors import LaminaError
from lamina.model import DENSE
from lamina.predictor import Predictor

STEPS = 64  # Integrated Gradients' integration steps (Gauss-Legendre): completeness holds to ~1e-3 at 64
INTERNAL_BATCH = 512  # rows × steps evaluated at once: bounds memory whatever the number of rows
ROW_CHUNK = 256  # rows attributed per call
PIXEL_KINDS = {"image"}  # attributed at the encoder's input (pixels); every other encoder at its output
TOKEN_KINDS = {"text"}  # attributed at the embedding output (per token); the encoder is pool(keep, embed(ids))
MAX_JSON_PIXELS = 64 * 64  # saliency maps up to this size go into explain_rows' JSON


# --- baselines: what "no information in this column" is, per type --------------------------------------------------

def _number_baseline(t: Any) -> list[float]:
    s = t.state  # the training mean, scaled as transform scales it; not missing
    return [(s["fill"] - s["shift"]) / s["scale"], 0.0]


def _binary_baseline(t: Any) -> list[float]:
    return [0.5, 0.0]  # halfway between the two values, not flagged missing


BASELINES: dict[str, Callable[[Any], list[float]]] = {"number": _number_baseline, "binary": _binary_baseline}


def dense_baseline(t: Any) -> list[float]:
    hook = getattr(t, "explain_baseline", None)
    if hook is not None:
        return list(hook())
    if t.kind in BASELINES:
        return BASELINES[t.kind](t)
    return [0.0] * t.width


def encoded_baseline(encoder: nn.Module) -> torch.Tensor:
    """The mean embedding of the known values (rows 0 and 1 are the reserved unknown/missing or padding rows)."""
    members = getattr(encoder, "members", None)
    if members is not None:  # an ensemble's encoder: its members' outputs side by side (lamina.ensemble)
        return torch.cat([encoded_baseline(e) for e in members])
    for module in encoder.modules():
        if isinstance(module, (nn.Embedding, nn.EmbeddingBag)) and module.weight.shape[0] > 2:
            return module.weight[2:].detach().mean(0)
    return torch.zeros(encoder.out_dim)


# --- the attribution space ------------------------------------------------------------------------------------------

@dataclass
class Part:
    key: str  # DENSE or an input name
    mode: str  # "dense" | "encoded" | "pixels"
    columns: list[str]
    slices: list[slice] = field(default_factory=list)  # dense: each column's slice of the dense tensor
    baseline: torch.Tensor | None = None  # one row (broadcast)


class Space:
    """The network seen as a function of attribution-space tensors."""

    def __init__(self, predictor: Predictor, output: str | None = None) -> None:
        self.predictor, self.net = predictor, predictor.network.eval()
        outputs = predictor.preprocessor.outputs
        names = [t.name for t in outputs]
        if output is not None and output not in names:
            raise LaminaError(f"output {output!r} not in the model; it has {', '.join(names)}")
        self.output = next(t for t in outputs if t.name == (output or names[0]))
        if self.output.sequence:
            raise LaminaError(f"output '{self.output.name}' is text (generated token by token): explanations cover "
                              "class and number outputs only; pick another output with --output")
        self.head = self.net.heads[names.index(self.output.name)]
        self.parts: list[Part] = []
        inputs = predictor.preprocessor.inputs
        dense = [t for t in inputs if t.passthrough]
        if dense:
            part, start = Part(DENSE, "dense", []), 0
            values: list[float] = []
            for t in dense:
                part.columns.append(t.name)
                part.slices.append(slice(start, start + t.width))
                values += dense_baseline(t)
                start += t.width
            part.baseline = torch.tensor(values, dtype=torch.float32)
            self.parts.append(part)
        kinds = {t.name: t.kind for t in inputs}
        for name, encoder in zip(self.net.input_names, self.net.encoders):
            if kinds[name] in PIXEL_KINDS:
                self.parts.append(Part(name, "pixels", [name], baseline=torch.zeros(1)))  # black
            elif kinds[name] in TOKEN_KINDS and hasattr(encoder, "embed"):
                self.parts.append(Part(name, "tokens", [name]))  # every token at the [PAD] embedding (zeros)
            else:  # also a frozen pretrained text encoder (MiniLM): its precomputed sentence vector has no token to
                # vary, so the vector is attributed whole, against the zero vector (encoded_baseline finds no embedding)
                self.parts.append(Part(name, "encoded", [name], baseline=encoded_baseline(encoder)))
        self.encoders = dict(zip(self.net.input_names, self.net.encoders))
        self.columns = [c for p in self.parts for c in p.columns]
        self.kind = self.output.kind

    def tensors(self, batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        out = []
        with torch.no_grad():
            for p in self.parts:
                x = batch[p.key]
                if p.mode == "encoded":
                    x = self.encoders[p.key](x)
                elif p.mode == "tokens":  # (n, L, dim + 1): the embeddings, then the padding mask (never varied)
                    keep = (x != 0).unsqueeze(-1)
                    x = torch.cat([self.encoders[p.key].embed(x), keep.to(torch.float32)], dim=-1)
                out.append(x.float())
        return out

    def baselines(self, tensors: list[torch.Tensor]) -> list[torch.Tensor]:
        return [torch.cat([torch.zeros_like(x[..., :-1]), x[..., -1:]], dim=-1) if p.mode == "tokens" else
                p.baseline.to(x.dtype).expand_as(x).clone() if p.mode != "pixels" else torch.zeros_like(x)
                for p, x in zip(self.parts, tensors)]

    def raw(self, *tensors: torch.Tensor) -> torch.Tensor:
        """The output head's raw values (logit, class logits, standardised number) from attribution-space tensors."""
        parts = []
        for p, x in zip(self.parts, tensors):
            if p.mode == "tokens":
                parts.append(self.encoders[p.key].pool(x[..., -1] > 0.5, x[..., :-1]))
            else:
                parts.append(self.encoders[p.key](x) if p.mode == "pixels" else x)
        encoded = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
        return self.head(self.net.hidden(encoded))

    def score(self, *tensors: torch.Tensor) -> torch.Tensor:
        raw = self.raw(*tensors)
        if self.kind == "binary":
            return torch.sigmoid(raw[:, 0])
        if self.kind == "category":
            return torch.softmax(raw, dim=1)
        return raw[:, 0]

    def run_raw(self, tensors: list[torch.Tensor], batch_size: int = 1024) -> np.ndarray:
        chunks = []
        with torch.no_grad():
            for start in range(0, len(tensors[0]), batch_size):
                chunks.append(self.raw(*[x[start:start + batch_size] for x in tensors]).numpy())
        return np.concatenate(chunks)

    def score_name(self) -> str:
        if self.kind == "binary":
            return f"P({self.output.name} = {self.output.state['classes'][1]})"
        if self.kind == "category":
            return f"P(predicted {self.output.name})"
        return f"{self.output.name} (standardised)"

    def targets(self, raw: np.ndarray) -> np.ndarray | None:
        return raw.argmax(1) if self.kind == "category" else None

    def per_column(self, attributions: list[torch.Tensor]) -> np.ndarray:
        """(rows, columns) attributions: each column's features summed."""
        columns = []
        for p, a in zip(self.parts, attributions):
            if p.mode == "dense":
                columns += [a[:, s].sum(1) for s in p.slices]
            else:
                columns.append(a.reshape(len(a), -1).sum(1))
        return torch.stack(columns, dim=1).numpy()


@dataclass
class Attribution:
    columns: list[str]
    values: np.ndarray  # (rows, columns)
    score: np.ndarray  # (rows,) the explained score
    baseline_score: np.ndarray  # (rows,)
    delta: np.ndarray  # (rows,) completeness error: sum(values) - (score - baseline_score)
    raw: np.ndarray  # the head's raw outputs
    target: np.ndarray | None  # the explained class per row (category outputs)
    pixels: dict[str, np.ndarray] = field(default_factory=dict)  # image column → (rows, H, W) signed saliency
    score_name: str = ""
    tokens: dict[str, list[np.ndarray]] = field(default_factory=dict)  # text column → per row, one value per token


def attribute(space: Space, tensors: list[torch.Tensor], steps: int = STEPS,
              internal_batch_size: int = INTERNAL_BATCH) -> Attribution:
    """Integrated Gradients of the explained score for every row, ``ROW_CHUNK`` rows at a time."""
    from captum.attr import IntegratedGradients

    ig = IntegratedGradients(space.score)
    raw = space.run_raw(tensors)
    target = space.targets(raw)
    values, scores, base_scores = [], [], []
    pixels: dict[str, list[np.ndarray]] = {p.key: [] for p in space.parts if p.mode == "pixels"}
    tokens: dict[str, list[np.ndarray]] = {p.key: [] for p in space.parts if p.mode == "tokens"}
    for start in range(0, len(tensors[0]), ROW_CHUNK):
        x = tuple(t[start:start + ROW_CHUNK].clone().requires_grad_(True) for t in tensors)
        b = tuple(space.baselines(list(x)))
        tgt = None if target is None else torch.as_tensor(target[start:start + ROW_CHUNK])
        attributions = ig.attribute(x, baselines=b, target=tgt, n_steps=steps,
                                    internal_batch_size=internal_batch_size)
        attributions = [a.detach() for a in attributions]
        values.append(space.per_column(attributions))
        with torch.no_grad():
            s, sb = space.score(*x), space.score(*b)
            if tgt is not None:
                s, sb = s.gather(1, tgt[:, None])[:, 0], sb.gather(1, tgt[:, None])[:, 0]
        scores.append(s.numpy())
        base_scores.append(sb.numpy())
        for j, (p, a) in enumerate(zip(space.parts, attributions)):
            if p.mode == "pixels":
                pixels[p.key].append(a.sum(1).numpy())
            if p.mode == "tokens":  # summed over the embedding; padding positions left out
                per_token, kept = a.sum(-1).numpy(), (x[j][..., -1] > 0.5).detach().numpy()
                tokens[p.key] += [row[k] for row, k in zip(per_token, kept)]
    values_ = np.concatenate(values).astype(np.float64)
    score, base = np.concatenate(scores).astype(np.float64), np.concatenate(base_scores).astype(np.float64)
    return Attribution(space.columns, values_, score, base, values_.sum(1) - (score - base), raw, target,
                       {k: np.concatenate(v) for k, v in pixels.items()}, space.score_name(), tokens)


def _prepare(predictor: Predictor, frame: pd.DataFrame, labelled: bool = False) -> tuple[pd.DataFrame, dict]:
    prep = predictor.preprocessor
    if labelled:
        prep.check_columns(frame, None, targets=True)
        frame = prep.drop_missing_targets(frame, None)
    frame = prep.drop_bad_inputs(frame, None)
    if len(frame) == 0:
        raise LaminaError("no rows to explain")
    return frame, prep.inputs_to_tensors(frame)


def explain_rows(predictor: Predictor, frame: pd.DataFrame, output: str | None = None, steps: int = STEPS
                 ) -> dict[str, Any]:
    """Integrated Gradients for each row: ``{"explanations": [{"attributions": {column: score}, ...}], ...}``.

    JSON-able. Each row also has its prediction, the explained score, the baseline's score and the completeness
    error; image columns add a ``saliency`` map (H × W, summed over channels) when it is at most 64 × 64."""
    frame, inputs = _prepare(predictor, frame)
    space = Space(predictor, output)
    result = attribute(space, space.tensors(inputs), steps)
    decoded = space.output.decode(result.raw)
    texts = {t.name: t.tokens(inputs[t.name]) for t in predictor.preprocessor.inputs if t.name in result.tokens}
    rows = []
    for i in range(len(frame)):
        row: dict[str, Any] = {
            "row": i,
            "prediction": _plain(decoded.iloc[i, 0]),
            "score": round(float(result.score[i]), 6),
            "baseline_score": round(float(result.baseline_score[i]), 6),
            "completeness_error": round(float(result.delta[i]), 6),
            "attributions": {c: round(float(v), 6) for c, v in zip(result.columns, result.values[i])},
        }
        small = {k: v[i] for k, v in result.pixels.items() if v[i].size <= MAX_JSON_PIXELS}
        if small:
            row["saliency"] = {k: np.round(v, 6).tolist() for k, v in small.items()}
        if result.tokens:  # text columns: each token and its attribution (they sum to the column's)
            row["tokens"] = {k: {"tokens": texts[k][i], "attributions": np.round(v[i], 6).tolist()}
                             for k, v in result.tokens.items()}
        if result.target is not None:
            row["explained_class"] = space.output.state["classes"][int(result.target[i])]
        rows.append(row)
    return {"method": "integrated_gradients", "steps": steps, "output": space.output.name,
            "score": result.score_name, "baseline": "per type: numbers at their training mean, binaries halfway, "
            "categories at the mean embedding, images black, texts as [PAD] embeddings (frozen pretrained "
            "text encoders: the zero sentence vector)", "explanations": rows}


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


# --- global views: permutation importance and the deletion check ----------------------------------------------------

def _metric(space: Space, values: pd.Series, raw: np.ndarray, name: str) -> float:
    return float(space.output.metrics(values, raw).get(name, float("nan")))


def _split_columns(space: Space, tensors: list[torch.Tensor]) -> list[tuple[int, slice | None]]:
    """For each column: which tensor, and which slice of it (None: the whole tensor)."""
    found = []
    for i, p in enumerate(space.parts):
        if p.mode == "dense":
            found += [(i, s) for s in p.slices]
        else:
            found.append((i, None))
    return found


def permutation_importance(predictor: Predictor, frame: pd.DataFrame, output: str | None = None,
                           repeats: int = 3, seed: int = 0) -> dict[str, Any]:
    """How much the output's primary metric drops when one column's values are shuffled across rows."""
    frame, inputs = _prepare(predictor, frame, labelled=True)
    space = Space(predictor, output)
    tensors = space.tensors(inputs)
    values = frame[space.output.name]
    metric = space.output.primary_metric if space.kind != "category" else "accuracy"
    sign = 1.0 if space.output.higher_is_better or metric == "accuracy" else -1.0
    base = _metric(space, values, space.run_raw(tensors), metric)
    rng = np.random.default_rng(seed)
    drops: dict[str, list[float]] = {}
    for column, (i, s) in zip(space.columns, _split_columns(space, tensors)):
        for _ in range(repeats):
            order = torch.as_tensor(rng.permutation(len(frame)))
            shuffled = list(tensors)
            x = tensors[i].clone()
            if s is None:
                x = x[order]
            else:
                x[:, s] = x[order][:, s]
            shuffled[i] = x
            drops.setdefault(column, []).append(sign * (base - _metric(space, values, space.run_raw(shuffled), metric)))
    return {"metric": metric, "baseline_value": base, "rows": len(frame),
            "importance": {c: float(np.mean(v)) for c, v in drops.items()},
            "std": {c: float(np.std(v)) for c, v in drops.items()}}


def _accuracy(space: Space, values: pd.Series, raw: np.ndarray) -> float:
    if space.kind == "number":
        return _metric(space, values, raw, "r2")
    return _metric(space, values, raw, "accuracy")


def faithfulness(predictor: Predictor, frame: pd.DataFrame, fraction: float = 0.1, output: str | None = None,
                 seed: int = 0, steps: int = STEPS) -> dict[str, Any]:
    """The deletion check: replace with the baseline the top-attributed ``fraction`` of each row's table columns
    (or of each image's pixels) and, separately, a random ``fraction``; faithful attributions hurt accuracy more
    when their top features go. Supporting evidence is attribution toward the predicted class."""
    frame, inputs = _prepare(predictor, frame, labelled=True)
    space = Space(predictor, output)
    tensors = space.tensors(inputs)
    result = attribute(space, tensors, steps)
    values = frame[space.output.name]
    rng = np.random.default_rng(seed)
    n = len(frame)
    base = space.baselines(tensors)
    if result.pixels:  # images: delete pixels of the (first) image column
        key = next(iter(result.pixels))
        i = next(j for j, p in enumerate(space.parts) if p.key == key)
        support = result.pixels[key] * _direction(space, result)[:, None, None]
        flat = support.reshape(n, -1)
        k = max(1, int(round(fraction * flat.shape[1])))
        top = np.argsort(-flat, axis=1)[:, :k]
        random = np.stack([rng.choice(flat.shape[1], k, replace=False) for _ in range(n)])
        unit, what = "pixels", f"{k} of {flat.shape[1]} pixels of '{key}'"

        def delete(chosen: np.ndarray) -> list[torch.Tensor]:
            mask = np.zeros_like(flat, dtype=bool)
            np.put_along_axis(mask, chosen, True, axis=1)
            m = torch.as_tensor(mask.reshape(support.shape))[:, None].expand_as(tensors[i])
            out = list(tensors)
            out[i] = torch.where(m, base[i], tensors[i])
            return out
    else:  # tables: delete columns
        support = result.values * _direction(space, result)[:, None]
        k = max(1, int(round(fraction * support.shape[1])))
        top = np.argsort(-support, axis=1)[:, :k]
        random = np.stack([rng.choice(support.shape[1], k, replace=False) for _ in range(n)])
        where = _split_columns(space, tensors)
        unit, what = "columns", f"{k} of {support.shape[1]} columns"

        def delete(chosen: np.ndarray) -> list[torch.Tensor]:
            out = [t.clone() for t in tensors]
            for c, (i, s) in enumerate(where):
                rows = torch.as_tensor(np.flatnonzero((chosen == c).any(1)))
                if len(rows):
                    if s is None:
                        out[i][rows] = base[i][rows]
                    else:
                        out[i][rows, s] = base[i][rows][:, s]
            return out

    original = _accuracy(space, values, result.raw)
    top_acc = _accuracy(space, values, space.run_raw(delete(top)))
    random_acc = _accuracy(space, values, space.run_raw(delete(random)))
    return {"rows": n, "fraction": fraction, "unit": unit, "deleted": what,
            "metric": "r2" if space.kind == "number" else "accuracy",
            "original": original, "top_deleted": top_acc, "random_deleted": random_acc,
            "faithful": bool(top_acc < random_acc)}


def _direction(space: Space, result: Attribution) -> np.ndarray:
    """+1 where a higher explained score supports the prediction, −1 where it opposes it (binary: predicted 0)."""
    if space.kind == "binary":
        predicted = space.output.decode(result.raw).iloc[:, 0].to_numpy()
        return np.where(predicted == space.output.state["classes"][1], 1.0, -1.0)
    return np.ones(len(result.score))


# --- files: JSON numbers, PNG charts, one HTML page -----------------------------------------------------------------

def global_attributions(explained: dict[str, Any]) -> dict[str, float]:
    """Mean absolute attribution per column over the explained rows."""
    rows = explained["explanations"]
    columns = list(rows[0]["attributions"]) if rows else []
    return {c: float(np.mean([abs(r["attributions"][c]) for r in rows])) for c in columns}


def charts(predictor: Predictor, frame: pd.DataFrame, explained: dict[str, Any],
           importance: dict[str, Any] | None = None) -> dict[str, bytes]:
    """PNG charts: the ranked columns (mean |IG|), the first row's attributions, permutation importance, and for
    image columns a saliency heat-map over the first images."""
    from lamina import plots

    found: dict[str, bytes] = {}
    mean = global_attributions(explained)
    if len(mean) < 2:  # one column (an image alone): its saliency map says more than one bar
        importance = None
    else:
        found["attributions.png"] = plots.bars(
            list(mean), list(mean.values()),
            f"Integrated Gradients: mean |attribution| over {len(explained['explanations'])} rows",
            f"mean |Δ {explained['score']}|")
        first = explained["explanations"][0]
        found["row0.png"] = plots.bars(list(first["attributions"]), list(first["attributions"].values()),
                                       f"row 0: predicted {first['prediction']} ({explained['score']} = "
                                       f"{first['score']:.3f}, baseline {first['baseline_score']:.3f})", "attribution")
    if importance:
        imp = importance["importance"]
        found["permutation.png"] = plots.bars(list(imp), list(imp.values()),
                                              f"permutation importance: drop in {importance['metric']}",
                                              f"{importance['metric']} drop", errors=list(importance["std"].values()))
    images = [t for t in predictor.preprocessor.inputs if t.kind in PIXEL_KINDS]
    if images:
        t = images[0]
        shown = frame.iloc[:8]
        pixels = t.transform(shown[t.name]).numpy()
        space = Space(predictor, explained["output"])
        inputs = predictor.preprocessor.inputs_to_tensors(shown)
        result = attribute(space, space.tensors(inputs), explained.get("steps", STEPS))
        titles = [f"{r['prediction']} ({r['score']:.2f})" for r in explained["explanations"][:8]]
        found["saliency.png"] = plots.saliency_grid(pixels, result.pixels[t.name], titles,
                                                    f"'{t.name}': Integrated Gradients saliency (red: for the prediction)")
    return found


def html_page(title: str, sections: list[tuple[str, str]]) -> str:
    """A self-contained page: ``sections`` are (heading, HTML body)."""
    import html

    body = "\n".join(f'<section id="{html.escape(h.lower().replace(" ", "-"))}"><h2>{html.escape(h)}</h2>{b}</section>'
                     for h, b in sections)
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>" + html.escape(title) +
            "</title><link rel=\"icon\" href=\"data:,\"><style>body{font-family:system-ui,sans-serif;max-width:1100px;"
            "margin:2em auto;padding:0 1em;color:#222}table{border-collapse:collapse;margin:.5em 0}td,th{border:1px "
            "solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:"
            "left}img{max-width:100%;display:block;margin:.5em 0}section{margin-bottom:2em}</style></head><body><h1>" +
            html.escape(title) + "</h1>\n" + body + "\n</body></html>")


def table_html(header: list[str], rows: list[list[Any]]) -> str:
    import html

    def cell(v: Any) -> str:
        return html.escape(f"{v:.4f}" if isinstance(v, float) else str(v))

    return ("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>" +
            "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in r) + "</tr>" for r in rows) + "</table>")


def explain(model_dir: str | Path, data: str | Path | pd.DataFrame, out_dir: str | Path | None = None,
            output: str | None = None, max_rows: int = 1000, verbose: bool = True) -> dict[str, Path]:
    """``lamina explain``: attributions of the rows in ``data`` (a file, folder or frame) → JSON, PNGs and an HTML
    page in ``out_dir`` (default ``<model_dir>/explain``). With labels, also permutation importance and the
    deletion check. Returns the written paths."""
    from lamina import plots
    from lamina.store import load

    predictor = load(model_dir)
    frame, _ = predictor._frame(data, None if isinstance(data, pd.DataFrame) else str(data))
    if len(frame) > max_rows:
        frame = frame.sample(max_rows, random_state=0)
    out = Path(out_dir) if out_dir else Path(model_dir) / "explain"
    out.mkdir(parents=True, exist_ok=True)
    explained = explain_rows(predictor, frame, output)
    labelled = all(t.name in frame.columns for t in predictor.preprocessor.outputs)
    importance = permutation_importance(predictor, frame, output) if labelled else None
    check = faithfulness(predictor, frame, output=output) if labelled else None
    numbers = {"global": global_attributions(explained), "permutation": importance, "faithfulness": check,
               **explained}
    paths = {"json": out / "explanations.json"}
    paths["json"].write_text(json.dumps(numbers, indent=1, default=float), encoding="utf-8")
    images = charts(predictor, frame, explained, importance)
    for name, data_ in images.items():
        paths[name.removesuffix(".png")] = plots.save(data_, out / name)
    sections = [(name.removesuffix(".png").replace("row0", "first row"),
                 f'<img alt="{name}" src="{plots.data_uri(d)}">') for name, d in images.items()]
    if any("tokens" in r for r in explained["explanations"]):
        sections.append(("Tokens", tokens_html(explained)))
    if check:
        sections.append(("Faithfulness", faithfulness_html(check)))
    paths["html"] = out / "explain.html"
    paths["html"].write_text(html_page(f"Explanations: {Path(model_dir).name}", sections), encoding="utf-8")
    if verbose:
        print_explanations(numbers)
    return paths


def tokens_html(explained: dict[str, Any], rows: int = 20) -> str:
    """The first rows' text columns, each token shaded by its attribution (red: raises the score, blue: lowers)."""
    import html

    out = [f"<p>Integrated Gradients per token of {html.escape(explained['score'])}: red raises it, blue lowers "
           "it.</p>"]
    for r in explained["explanations"][:rows]:
        for column, found in r.get("tokens", {}).items():
            values = found["attributions"]
            top = max((abs(v) for v in values), default=0.0) or 1.0
            spans = "".join(
                f'<span title="{v:+.4f}" style="background:rgba({"220,50,47" if v > 0 else "38,139,210"},'
                f'{abs(v) / top:.2f});padding:0 2px;margin:1px">{html.escape(tok)}</span> '
                for tok, v in zip(found["tokens"], values))
            out.append(f"<p><b>row {r['row']}</b>, {html.escape(column)}: predicted "
                       f"{html.escape(str(r['prediction']))} ({r['score']:.3f})<br>{spans}</p>")
    return "\n".join(out)


def faithfulness_html(check: dict[str, Any]) -> str:
    return table_html([check["metric"], "value"], [
        ["original", check["original"]], [f"top-attributed {check['deleted']} deleted", check["top_deleted"]],
        [f"random {check['deleted']} deleted", check["random_deleted"]]])


def print_explanations(numbers: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 100))
    table = Table(title=f"mean |attribution| of {numbers['score']} ({len(numbers['explanations'])} rows)",
                  title_justify="left")
    table.add_column("column")
    table.add_column("mean |IG|", justify="right")
    if numbers.get("permutation"):
        table.add_column(f"permutation ({numbers['permutation']['metric']} drop)", justify="right")
    for column, value in sorted(numbers["global"].items(), key=lambda kv: -kv[1])[:20]:
        extra = [f"{numbers['permutation']['importance'][column]:.4f}"] if numbers.get("permutation") else []
        table.add_row(column, f"{value:.4f}", *extra)
    console.print(table)
    check = numbers.get("faithfulness")
    if check:
        console.print(f"deletion check ({check['deleted']}): {check['metric']} {check['original']:.4f} → "
                      f"{check['top_deleted']:.4f} top-attributed deleted, {check['random_deleted']:.4f} random deleted")
