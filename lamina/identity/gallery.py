"""Enrolment and matching with an identity model: a gallery is one template (the L2-normalised mean embedding of a
person's files) per person, kept as JSON with the hash of the model that made it; a query is the nearest template,
or "unknown" below the threshold calibrated on the validation people."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lamina.data.folders import read_folder
from lamina.errors import LaminaError
from lamina.outputs.identity_metrics import normalise
from lamina.store import INFO, WEIGHTS, load

FORMAT, VERSION, UNKNOWN = "lamina-gallery", 1, "unknown"


@dataclass
class Matcher:
    """An identity model's embedding side: the predictor, its file input, its identity output and its hash."""

    predictor: Any
    column: str
    output: Any
    model_hash: str

    @property
    def threshold(self) -> float:
        value = self.output.state.get("threshold")
        if value is None:
            raise LaminaError(f"output '{self.output.name}' has no calibrated threshold (no validation people in "
                              "training); pass --threshold")
        return float(value)

    def embed(self, paths: list[str]) -> np.ndarray:
        raw = self.predictor.predict_raw(pd.DataFrame({self.column: paths}))
        return self.output.embedding(raw[self.output.name])


def model_hash(folder: Path) -> str:
    """SHA-256 of the model's weights and its JSON state: another training (or a retrained one) differs."""
    digest = hashlib.sha256()
    for name in (WEIGHTS, INFO):
        digest.update((folder / name).read_bytes())
    return digest.hexdigest()


def matcher(model_dir: str | os.PathLike) -> Matcher:
    folder = Path(model_dir)
    predictor = load(folder)
    prep = getattr(predictor, "preprocessor", None)
    outputs = [t for t in getattr(prep, "outputs", []) if t.embeds]
    if not outputs:
        raise LaminaError(f"{folder}: this model has no identity output to enrol or match people with; train one "
                          "with lamina init DATA --target PERSON --task identity")
    files = [t.name for t in prep.inputs if t.holds_paths]
    if len(prep.inputs) != 1 or not files:
        raise LaminaError(f"{folder}: enrol and match read one file per person's sample; this model's inputs are "
                          f"{', '.join(t.name for t in prep.inputs)} (it needs exactly one image or audio input)")
    return Matcher(predictor, files[0], outputs[0], model_hash(folder))


def files_of(path: str | os.PathLike) -> pd.DataFrame:
    """A file, or a folder of files (flat, or in per-person subfolders): columns ``file`` and ``label``."""
    path = Path(path)
    if not path.exists():
        raise LaminaError(f"{path}: no such file or folder")
    if path.is_file():
        return pd.DataFrame({"file": [str(path.resolve())], "label": [None]})
    frame = read_folder(path)
    return pd.DataFrame({"file": frame.iloc[:, 0], "label": frame["label"] if "label" in frame else None})


def enrol(m: Matcher, folder: str | os.PathLike) -> dict[str, Any]:
    """The gallery of ``folder/<person>/*``: one template per person."""
    files = files_of(folder)
    if files["label"].isna().any():
        loose = Path(files["file"][files["label"].isna()].iloc[0]).name
        raise LaminaError(f"{folder}: {loose} is not in a person's subfolder; enrol from {folder}/<name>/<files>")
    emb = m.embed(files["file"].tolist())
    people = []
    for name, rows in files.groupby("label", sort=True).indices.items():
        people.append({"name": str(name), "files": int(len(rows)),
                       "template": normalise(emb[rows].mean(0, keepdims=True))[0].round(7).tolist()})
    return {"format": FORMAT, "version": VERSION, "model_hash": m.model_hash, "output": m.output.name,
            "embedding_dim": int(emb.shape[1]), "people": people}


def write_gallery(gallery: dict[str, Any], path: str | os.PathLike) -> Path:
    """Written whole or not at all: a temporary file renamed over the destination."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(gallery), encoding="utf-8")
    os.replace(partial, path)
    return path


def read_gallery(path: str | os.PathLike, m: Matcher) -> tuple[list[str], np.ndarray]:
    """The names and templates of a gallery made with ``m``'s model; any other gallery is refused."""
    path = Path(path)
    try:
        gallery = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise LaminaError(f"{path}: not a readable gallery ({type(e).__name__}); make one with lamina enroll") from None
    if not isinstance(gallery, dict) or gallery.get("format") != FORMAT or not isinstance(gallery.get("people"), list):
        raise LaminaError(f"{path}: not a Lamina gallery (no format {FORMAT!r}); make one with lamina enroll")
    if gallery.get("model_hash") != m.model_hash:
        raise LaminaError(f"{path}: enrolled with another model (hash {str(gallery.get('model_hash'))[:12]}, this "
                          f"one is {m.model_hash[:12]}); enrol again with this model: lamina enroll MODEL PEOPLE/ -o "
                          f"{path.name}")
    try:
        names = [str(p["name"]) for p in gallery["people"]]
        templates = np.asarray([p["template"] for p in gallery["people"]], dtype=np.float64).reshape(len(names), -1)
    except (KeyError, TypeError, ValueError):
        raise LaminaError(f"{path}: a person's entry has no name or template; enrol again") from None
    if not names:
        raise LaminaError(f"{path}: the gallery has no people; enrol some with lamina enroll")
    return names, normalise(templates)


def identify(m: Matcher, names: list[str], templates: np.ndarray, query: str | os.PathLike,
             threshold: float | None = None) -> pd.DataFrame:
    """Per query file: the nearest enrolled person, or "unknown" when the score is below the threshold."""
    files = files_of(query)
    t = m.threshold if threshold is None else threshold
    scores = m.embed(files["file"].tolist()) @ templates.T
    best = scores.argmax(1)
    score = scores[np.arange(len(best)), best]
    person = np.where(score >= t, np.asarray(names, dtype=object)[best], UNKNOWN)
    return pd.DataFrame({"file": files["file"], "person": person, "score": score.round(4),
                         "nearest": np.asarray(names, dtype=object)[best]})


def verify(m: Matcher, a: str | os.PathLike, b: str | os.PathLike, threshold: float | None = None
           ) -> dict[str, Any]:
    """Whether two files are of the same person: their cosine score against the threshold."""
    for path in (a, b):
        if not Path(path).is_file():
            raise LaminaError(f"{path}: no such file")
    emb = m.embed([str(Path(a).resolve()), str(Path(b).resolve())])
    t = m.threshold if threshold is None else threshold
    score = float(emb[0] @ emb[1])
    return {"same": score >= t, "score": round(score, 4), "threshold": round(t, 4)}
