"""What ``lamina init --task identity``, ``enroll``, ``identify`` and ``verify`` do; lamina/cli only parses arguments."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from lamina.data.folders import LABEL_COLUMN
from lamina.errors import LaminaError
from lamina.identity import gallery as g


def init_identity_config(data: Path, target: str, output: Path, force: bool = False, name: str | None = None
                         ) -> tuple[Path, str, list[str]]:
    """The prediction config ``lamina init`` infers, with ``target`` an identity output split by person."""
    from lamina.config import validate_config
    from lamina.data.read import read_table
    from lamina.infer import init_config

    notes = []
    if data.is_dir() and target != LABEL_COLUMN and target not in read_table(data).columns:
        notes.append(f"a folder's people are its subfolders: the identity column is {LABEL_COLUMN!r} (not {target!r})")
        target = LABEL_COLUMN
    path, inferred = init_config(data, [target], output, force=force, name=name)
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config["outputs"] = [{"name": target, "type": "identity", "options": {"embedding_dim": 128, "target_far": 1e-3}}]
    config["data"]["split"] = {"method": "group", "column": target, "fractions": [0.7, 0.15, 0.15], "seed": 42}
    trainer = config.setdefault("trainer", {})
    trainer["folds"] = 1
    trainer["early_stopping"] = {**(trainer.get("early_stopping") or {}), "metric": f"{target}.eer"}
    validate_config(config, source="generated config")
    header = (f"# Lamina identity config written by `lamina init --task identity` from {data}.\n"
              f"# The split is by person ({target}): validation and test people are never seen in training.\n")
    path.write_text(header + yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path, target, notes + [f"inputs: {', '.join(c for c, _ in inferred.inputs)}"] + inferred.notes


def enroll(model_dir: Path, folder: Path, output: Path) -> str:
    m = g.matcher(model_dir)
    gallery = g.enrol(m, folder)
    path = g.write_gallery(gallery, output)
    files = sum(p["files"] for p in gallery["people"])
    return f"wrote {path}: {len(gallery['people'])} people from {files} files (model {m.model_hash[:12]})"


def identify(model_dir: Path, gallery_path: Path, query: Path, threshold: float | None = None) -> Any:
    m = g.matcher(model_dir)
    names, templates = g.read_gallery(gallery_path, m)
    result = g.identify(m, names, templates, query, threshold)
    base = query if query.is_dir() else query.parent
    result["file"] = [os.path.relpath(f, base) for f in result["file"]]
    return result


def verify(model_dir: Path, a: Path, b: Path, threshold: float | None = None) -> str:
    if threshold is not None and not -1 <= threshold <= 1:
        raise LaminaError(f"--threshold {threshold}: a cosine threshold is between -1 and 1")
    result = g.verify(g.matcher(model_dir), a, b, threshold)
    verdict = "same person" if result["same"] else "different people"
    return f"{verdict}: score {result['score']:.4f}, threshold {result['threshold']:.4f}"
