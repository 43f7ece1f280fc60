"""``POST /verify`` and ``POST /identify`` for a model with an identity output and one file input: two uploaded
files → their score and the decision at the calibrated threshold; a file and a gallery (``lamina enroll``'s JSON)
→ the person, or "unknown", with the score. The same code as ``lamina verify`` / ``lamina identify``."""

# No ``from __future__ import annotations``: FastAPI reads the endpoints' annotations at runtime.
import shutil
import tempfile
from pathlib import Path
from typing import Any, Optional

from fastapi import FastAPI, File, Form, HTTPException, UploadFile
from fastapi.concurrency import run_in_threadpool

from lamina.errors import LaminaError
from lamina.identity import gallery as g
from lamina.serve.limits import Limits


def identity_matcher(predictor: Any) -> Optional[g.Matcher]:
    """The matcher of a served identity model, or None when the model has no identity output or not one file input."""
    prep = predictor.preprocessor
    outputs = [t for t in prep.outputs if t.embeds]
    files = [t for t in prep.inputs if t.holds_paths]
    run_dir = predictor.info.get("run_dir")
    if not outputs or len(prep.inputs) != 1 or not files or not run_dir:
        return None
    return g.Matcher(predictor, files[0].name, outputs[0], g.model_hash(Path(run_dir)))


async def _saved(upload: UploadFile, folder: Path, name: str, limits: Limits) -> Path:
    if upload.size is not None and upload.size > limits.upload_bytes:
        raise HTTPException(413, detail=f"{name}: file larger than {limits.upload_bytes} bytes")
    target = folder / f"{name}{Path(upload.filename or '').suffix[:16]}"
    with target.open("wb") as handle:
        await run_in_threadpool(shutil.copyfileobj, upload.file, handle)
    return target


def _unprocessable(e: LaminaError, folder: Path) -> HTTPException:
    return HTTPException(422, detail=str(e).replace(str(folder) + "/", "uploaded "))


def add_identity_routes(app: FastAPI, predictor: Any, limits: Limits) -> None:
    """Add the two routes when the model is an identity model; otherwise nothing."""
    m = identity_matcher(predictor)
    if m is None:
        return

    @app.post("/verify", summary="Are two uploaded files the same person? Score and decision")
    async def verify(a: UploadFile = File(..., description="one file"), b: UploadFile = File(..., description="the other"),
                     threshold: Optional[float] = Form(None, description="default: the calibrated threshold")) -> Any:
        folder = Path(tempfile.mkdtemp(prefix="lamina-verify-"))
        try:
            first, second = await _saved(a, folder, "a", limits), await _saved(b, folder, "b", limits)
            try:
                return await run_in_threadpool(g.verify, m, first, second, threshold)
            except LaminaError as e:
                raise _unprocessable(e, folder) from None
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    @app.post("/identify", summary="Who is in an uploaded file: the nearest enrolled person, or unknown")
    async def identify(file: UploadFile = File(..., description="the query"),
                       gallery: UploadFile = File(..., description="a gallery from lamina enroll (JSON)"),
                       threshold: Optional[float] = Form(None, description="default: the calibrated threshold")) -> Any:
        folder = Path(tempfile.mkdtemp(prefix="lamina-identify-"))
        try:
            query, people = await _saved(file, folder, "query", limits), await _saved(gallery, folder, "gallery", limits)
            try:
                names, templates = g.read_gallery(people, m)
                found = await run_in_threadpool(g.identify, m, names, templates, query, threshold)
            except LaminaError as e:
                raise _unprocessable(e, folder) from None
            row = found.iloc[0]
            return {"person": row["person"], "score": float(row["score"]), "nearest": row["nearest"],
                    "threshold": round(m.threshold if threshold is None else threshold, 4)}
        finally:
            shutil.rmtree(folder, ignore_errors=True)
