"""The HTTP app: a FastAPI application around one loaded model.

Routes: ``POST /predict`` (JSON rows in; or, for a model with a file input such as an image, one row as
``multipart/form-data`` with the file uploaded), ``POST /explain``, ``GET /health``, ``GET /model`` (input schema,
output classes, metrics, version) and ``GET /`` (a web page to try the model). The request schema is generated from
the model's input types, so ``/docs`` and ``/openapi.json`` show the model's real fields.

Predictions go through ``Predictor.predict``: the same preprocessing and decoding as ``lamina predict``.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the endpoints' annotations at runtime, and some are
# classes created inside ``create_app``.
import importlib.util
import inspect
import logging
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, Optional

import pandas as pd
import torch
from fastapi import FastAPI, File, Form, HTTPException, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from lamina.errors import LaminaError
from lamina.predictor import Predictor
from lamina.serve.identity import add_identity_routes
from lamina.serve.fields import NUMBER, clean as _clean, validation_errors
from lamina.serve.limits import BodyLimit, Limits

log = logging.getLogger("lamina.serve")

# Requests of up to this many table rows are predicted on the event loop itself (about a millisecond); larger ones,
# and file inputs, in a worker thread so the server keeps answering while they run.
INLINE_ROWS = 8


# --- the request schema, from the model's input types ---------------------------------------------------------------

def _field_type(t: Any) -> tuple[Any, dict[str, Any]]:
    """The JSON type of one input's field and extra schema keywords: the input type's own."""
    return t.serve_field()


def _json_inputs(predictor: Predictor) -> list[Any]:
    return [t for t in predictor.preprocessor.inputs if not getattr(t, "holds_paths", False)]


def _file_inputs(predictor: Predictor) -> list[Any]:
    return [t for t in predictor.preprocessor.inputs if getattr(t, "holds_paths", False)]


def row_model(predictor: Predictor) -> type[BaseModel]:
    """A pydantic model of one row: one required (nullable) field per input, named after its column."""
    fields: dict[str, Any] = {}
    for i, t in enumerate(_json_inputs(predictor)):
        annotation, extra = _field_type(t)
        fields[f"f{i}"] = (annotation, Field(..., alias=t.name, title=t.name, **extra))
    return create_model("Row", __config__=ConfigDict(extra="ignore", populate_by_name=False), **fields)


def _row_frame(predictor: Predictor, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The validated rows as the frame ``Predictor.predict`` takes; one NumPy array per column (a column at a time
    through pandas costs more than the network does for one row)."""
    columns: dict[str, Any] = {}
    for t in predictor.preprocessor.inputs:
        columns[t.name] = t.request_values([row.get(t.name) for row in rows])  # the input type's own column
    return pd.DataFrame(columns, copy=False)


def predictions_json(predictor: Predictor, decoded: pd.DataFrame, raw: dict[str, Any]) -> list[dict[str, Any]]:
    """Per row, per output: what the output type answers (the prediction, its class probabilities, a mask)."""
    records = decoded.to_dict("records")
    return [{t.name: _clean(t.serve_entry(record, raw[t.name][i])) for t in predictor.preprocessor.outputs}
            for i, record in enumerate(records)]


def describe(predictor: Predictor, runtime: str, limits: Limits) -> dict[str, Any]:
    """What GET /model answers: the inputs (with their values), the outputs (with their classes), metrics, version."""
    import lamina

    inputs = []
    for t in predictor.preprocessor.inputs:
        entry: dict[str, Any] = {"name": t.name, "type": t.kind, "file": bool(getattr(t, "holds_paths", False)),
                                 **t.page_widget()}  # the input type's own widget
        inputs.append(entry)
    outputs = [{"name": t.name, "type": t.kind, "classes": t.state.get("classes"),
                **({"threshold": t.state["threshold"]} if "threshold" in t.state else {}), **t.page_widget()}
               for t in predictor.preprocessor.outputs]
    info = predictor.info
    return _clean({
        "name": predictor.config.name if getattr(predictor.config, "name", None) else Path(info.get("run_dir", "model")).name,
        "version": {"lamina": lamina.__version__, "format_version": info.get("format_version"),
                    "created": info.get("created"), "versions": info.get("versions", {})},
        "runtime": runtime,
        "request": "multipart" if _file_inputs(predictor) else "json",
        "inputs": inputs,
        "outputs": outputs,
        "metrics": predictor.metrics,
        "explain": explain_available(),
        "limits": asdict(limits),
    })


def _explainer(app: FastAPI, predictor: Predictor) -> Predictor:
    """The predictor attributions run through: gradients need PyTorch, so an ONNX-served model gets its PyTorch
    twin from the same model directory, loaded once on the first explanation."""
    if isinstance(predictor.network, torch.nn.Module):
        return predictor
    if getattr(app.state, "explainer", None) is None:
        from lamina.store import load

        app.state.explainer = load(predictor.info["run_dir"])
    return app.state.explainer


def explain_available() -> bool:
    """Whether ``lamina.explain`` offers ``explain_rows(predictor, frame)``, the contract ``POST /explain`` uses: it
    returns a JSON-able result, e.g. ``{"explanations": [{"attributions": {column: score}}]}`` (the page draws the
    ``attributions`` of the first row as bars)."""
    try:
        return importlib.util.find_spec("lamina.explain") is not None and hasattr(
            importlib.import_module("lamina.explain"), "explain_rows")
    except Exception:  # a module that does not import is not available
        return False


# --- the app --------------------------------------------------------------------------------------------------------


def create_app(predictor: Predictor, runtime: str = "torch", limits: Limits | None = None) -> FastAPI:
    """A FastAPI app serving ``predictor`` (already loaded: the model loads once, at start)."""
    from lamina.serve.page import page_html

    limits = limits or Limits()
    files = _file_inputs(predictor)
    model_info = describe(predictor, runtime, limits)
    Row = row_model(predictor)
    name = model_info["name"]
    app = FastAPI(title=f"Lamina model: {name}", version=str(model_info["version"]["lamina"]),
                  description=f"Predictions of the Lamina model `{name}` ({runtime} runtime). "
                              "The request fields are the model's inputs.")
    app.add_middleware(BodyLimit, limits=limits, files=len(files))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Any, error: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": validation_errors(error.errors())}, status_code=422)
    app.state.predictor, app.state.runtime, app.state.limits = predictor, runtime, limits

    class Prediction(BaseModel):
        prediction: Any = Field(description="the predicted label or value")
        probabilities: Optional[dict[str, float]] = Field(None, description="per class, where the output has classes")

    class SpatialPrediction(Prediction):
        mask: Optional[str] = Field(None, description="the predicted mask as a PNG data URI (red, transparent "
                                                      "elsewhere) to lay over the image")

    output_fields = {f"o{i}": (SpatialPrediction if t.spatial else Prediction, Field(..., alias=t.name))
                     for i, t in enumerate(predictor.preprocessor.outputs)}
    OutputRow = create_model("OutputRow", **output_fields)
    PredictResponse = create_model("PredictResponse", predictions=(list[OutputRow], ...), runtime=(str, ...),
                                   milliseconds=(float, Field(..., description="time spent predicting")))

    def run_predict(rows: list[dict[str, Any]]) -> dict[str, Any]:
        started = time.perf_counter()
        frame = _row_frame(predictor, rows)
        try:
            decoded, raw = predictor.predict_with_raw(frame)
        except LaminaError as e:
            raise HTTPException(422, detail=str(e)) from None
        return {"predictions": predictions_json(predictor, decoded, raw), "runtime": runtime,
                "milliseconds": round((time.perf_counter() - started) * 1000, 3)}

    if not files:
        PredictRequest = create_model("PredictRequest", __config__=ConfigDict(extra="forbid"),
                                      rows=(list[Row], Field(..., min_length=1, description="rows to predict")))

        @app.post("/predict", response_model=PredictResponse, response_model_by_alias=True,
                  summary="Predict for rows of the model's inputs",
                  responses={413: {"description": "too large a body or too many rows"},
                             422: {"description": "malformed JSON or a field of the wrong type (named in loc)"}})
        async def predict(request: PredictRequest) -> Any:  # type: ignore[valid-type]
            if len(request.rows) > limits.rows:
                raise HTTPException(413, detail=f"{len(request.rows)} rows; at most {limits.rows} per request")
            rows = [r.model_dump(by_alias=True) for r in request.rows]
            if len(rows) <= INLINE_ROWS:  # about a millisecond: a hop to a worker thread would cost more than it
                return run_predict(rows)
            return await run_in_threadpool(run_predict, rows)
    else:
        predict = _multipart_endpoint(predictor, Row, files, limits, run_predict)
        app.post("/predict", response_model=PredictResponse, response_model_by_alias=True,
                 summary="Predict for one row: the model's inputs as form fields, its files uploaded",
                 responses={413: {"description": "too large an upload"},
                            422: {"description": "a missing or wrong field (named in loc)"}})(predict)

    @app.post("/explain", summary="Explain a prediction (attributions per input)",
              responses={501: {"description": "explanations are not available in this installation"}})
    async def explain(request: dict[str, Any]) -> Any:
        if not explain_available():
            raise HTTPException(501, detail="explanations are not available: this Lamina has no lamina.explain "
                                            "module yet; /predict works")
        module = importlib.import_module("lamina.explain")
        rows = request.get("rows") if isinstance(request, dict) else None
        if not isinstance(rows, list) or not rows:
            raise HTTPException(422, detail=[{"loc": ["body", "rows"], "msg": "a non-empty list of rows is required",
                                              "type": "missing"}])
        if len(rows) > limits.rows:
            raise HTTPException(413, detail=f"{len(rows)} rows; at most {limits.rows} per request")
        validated = []
        for i, r in enumerate(rows):
            try:
                validated.append(Row.model_validate(r).model_dump(by_alias=True))
            except ValidationError as e:
                raise HTTPException(422, detail=validation_errors(
                    {**error, "loc": ["body", "rows", i, *error["loc"]]} for error in e.errors())) from None
        try:
            result = await run_in_threadpool(module.explain_rows, _explainer(app, predictor),
                                             _row_frame(predictor, validated))
        except LaminaError as e:
            raise HTTPException(422, detail=str(e)) from None
        return JSONResponse(_clean(result))

    @app.get("/health", summary="Liveness: the model is loaded")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "model": name, "runtime": runtime}

    @app.get("/model", summary="The model: inputs, outputs and classes, metrics, version")
    async def model() -> dict[str, Any]:
        return model_info

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(page_html(name))

    add_identity_routes(app, predictor, limits)  # /verify, /identify: for an identity model only
    return app


def _multipart_endpoint(predictor: Predictor, Row: type[BaseModel], files: list[Any], limits: Limits,
                        run_predict: Any) -> Any:
    """An endpoint whose parameters are the row's fields as form fields and one upload per file input, so
    FastAPI validates them (422 naming the field) and the OpenAPI schema lists them."""
    json_inputs = _json_inputs(predictor)
    parameters = []
    for i, t in enumerate(json_inputs):
        annotation, extra = _field_type(t)
        if annotation is not NUMBER:
            annotation = Optional[str]  # a form field is text: categories, binaries, sets arrive as strings
        extra.pop("json_schema_extra", None)
        parameters.append(inspect.Parameter(f"f{i}", inspect.Parameter.KEYWORD_ONLY,
                                            annotation=Annotated[annotation, Form(alias=t.name, **extra)], default=None))
    for i, t in enumerate(files):
        parameters.append(inspect.Parameter(f"u{i}", inspect.Parameter.KEYWORD_ONLY,
                                            annotation=Annotated[UploadFile, File(alias=t.name,
                                                                                  description=f"the {t.kind} file")]))

    async def predict(**values: Any) -> Any:
        row = {t.name: values.get(f"f{i}") for i, t in enumerate(json_inputs)}
        folder = Path(tempfile.mkdtemp(prefix="lamina-upload-"))
        names: dict[str, str] = {}
        try:
            for i, t in enumerate(files):
                upload: UploadFile = values[f"u{i}"]
                if upload.size is not None and upload.size > limits.upload_bytes:
                    raise HTTPException(413, detail=f"{t.name}: file larger than {limits.upload_bytes} bytes")
                suffix = Path(upload.filename or "").suffix[:16]
                target = folder / f"{i}{suffix}"
                with target.open("wb") as handle:
                    await run_in_threadpool(shutil.copyfileobj, upload.file, handle)
                row[t.name] = str(target)
                names[str(target)] = upload.filename or t.name
            try:
                return await run_in_threadpool(run_predict, [row])
            except HTTPException as e:  # name the uploaded file, not where the server kept it
                if isinstance(e.detail, str):
                    for path, filename in names.items():
                        e.detail = e.detail.replace(path, f"uploaded file {filename!r}")
                raise
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    predict.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    return predict

