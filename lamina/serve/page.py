"""The web page at ``/``: plain HTML and JavaScript, no build step, nothing fetched from elsewhere.

The page reads ``GET /model`` and builds its form from the inputs: a number field per number, a dropdown per
category or binary (a text field with suggestions for a large vocabulary), a text area for text, a file upload for a
file input (image, audio). It posts to ``/predict`` (JSON, or multipart when the model has a file input), shows each
output's prediction and its class probabilities as bars (a boxes output: drawn on the uploaded picture), and the
explanation when the server has one.
"""

from __future__ import annotations

import html

SELECT_MAX = 100  # a category with more values than this gets a text field with suggestions instead of a dropdown

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Lamina · __NAME__</title>
<style>
  body { font: 15px/1.45 system-ui, sans-serif; max-width: 860px; margin: 2em auto; padding: 0 1em; color: #1d2430; }
  h1 { font-size: 1.4em; margin-bottom: .2em; } .sub { color: #667; margin-top: 0; }
  form { display: grid; grid-template-columns: minmax(10em, max-content) 1fr; gap: .45em 1em; align-items: center; }
  label { font-weight: 600; overflow-wrap: anywhere; } .kind { font-weight: normal; color: #889; font-size: .85em; }
  input, select, textarea { font: inherit; padding: .25em .4em; border: 1px solid #bbc; border-radius: 4px; }
  .actions { grid-column: 1 / -1; } button { font: inherit; padding: .45em 1.4em; border-radius: 4px;
  border: 0; background: #2f5fd0; color: white; cursor: pointer; } button:disabled { background: #99a; }
  section { margin-top: 1.5em; } .error { color: #b00020; white-space: pre-wrap; }
  .output h2 { font-size: 1.1em; margin: .8em 0 .3em; } .prediction { font-size: 1.6em; font-weight: 700; }
  .bar-row { display: grid; grid-template-columns: minmax(7em, max-content) 1fr 4.5em; gap: .6em; align-items: center; }
  .bar-track { background: #eef; border-radius: 3px; height: 1em; } .bar { background: #2f5fd0; height: 100%;
  border-radius: 3px; } .bar.neg { background: #d0502f; } .value { text-align: right; font-variant-numeric: tabular-nums; }
  .meta { color: #667; font-size: .85em; }
  .overlay { position: relative; width: 320px; height: 320px; background: #111; margin-top: .5em; overflow: hidden; }
  .overlay img { position: absolute; inset: 0; width: 100%; height: 100%; object-fit: contain; image-rendering: pixelated; }
  .overlay img.mask { object-fit: fill; }
  canvas.boxes { max-width: 100%; border: 1px solid #ccd; }
</style>
</head>
<body>
<h1>Lamina model <code id="model-name">__NAME__</code></h1>
<p class="sub" id="model-sub">loading the model's inputs…</p>
<form id="predict-form" autocomplete="off"></form>
<section id="result" aria-live="polite"></section>
<section id="explanation"></section>
<script>
"use strict";
const SELECT_MAX = __SELECT_MAX__;
let MODEL = null;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v; else if (v !== null && v !== undefined) node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

function field(input, i) {
  const id = "in" + i;
  let control;
  if (input.field === "number") {
    const start = input.default === null || input.default === undefined ? "" : Number(input.default.toPrecision(4));
    control = el("input", {type: "number", step: "any", value: start});
  } else if (input.field === "category" && input.values.length <= SELECT_MAX) {
    control = el("select");
    for (const v of input.values) control.append(el("option", {value: v, text: v}));
    control.append(el("option", {value: "", text: "(missing)"}));
  } else if (input.field === "category") {
    control = el("input", {type: "text", list: id + "-values", value: input.values[0] || ""});
    const list = el("datalist", {id: id + "-values"});
    for (const v of input.values) list.append(el("option", {value: v}));
    document.body.append(list);
  } else if (input.field === "file") {
    control = el("input", {type: "file", accept: input.accept || null});
  } else {
    control = el("textarea", {rows: 3});
  }
  control.id = id;
  control.name = input.name;
  control.dataset.field = input.field;
  return [el("label", {for: id}, input.name + " ", el("span", {class: "kind", text: input.type})), control];
}

function rowFromForm() {
  const row = {};
  MODEL.inputs.forEach((input, i) => {
    if (input.file) return;
    const v = document.getElementById("in" + i).value;
    // A number field sends a number; anything else it holds goes as typed, so the server can name the field.
    row[input.name] = v === "" ? null : (input.field === "number" && !isNaN(Number(v)) ? Number(v) : v);
  });
  return row;
}

function showError(where, message) {
  where.replaceChildren(el("p", {class: "error", text: message}));
}

function errorText(body, status) {
  if (body && Array.isArray(body.detail)) {
    return body.detail.map(d => (d.loc || []).filter(x => x !== "body").join(" › ") + ": " + d.msg).join("\\n");
  }
  return (body && body.detail) ? String(body.detail) : "HTTP " + status;
}

function bars(entries, signed) {
  const box = el("div", {class: "bars"});
  const top = Math.max(1e-12, ...entries.map(([, v]) => Math.abs(v)));
  for (const [name, v] of entries) {
    const width = signed ? Math.abs(v) / top * 100 : Math.max(0, Math.min(1, v)) * 100;
    box.append(el("div", {class: "bar-row"}, el("span", {text: name}),
      el("div", {class: "bar-track"}, el("div", {class: "bar" + (v < 0 ? " neg" : ""), style: "width:" + width.toFixed(1) + "%"})),
      el("span", {class: "value", text: signed ? v.toPrecision(3) : (v * 100).toFixed(1) + " %"})));
  }
  return box;
}

function maskOverlay(uri, output) {
  // The uploaded image (when the browser can draw it: not DICOM) under the predicted mask. The box has the mask's
  // own shape (the model's height and width), the mask fills it, and the upload is fitted into it as the model
  // fitted the image (pad: contain; crop: cover), so the red lies on the pixels it was predicted for whatever the
  // shapes of the model and the upload.
  const [height, width] = output.mask_size || [1, 1];
  const side = 320 / Math.max(height, width);
  const box = el("div", {class: "overlay", style: "width:" + Math.round(width * side) + "px;height:" +
                         Math.round(height * side) + "px"});
  const upload = MODEL.inputs.map((input, i) => input.file && document.getElementById("in" + i)).find(c => c && c.files.length);
  if (upload) {
    box.append(el("img", {src: URL.createObjectURL(upload.files[0]), alt: "the image", class: "picture",
                          style: "object-fit:" + (output.mask_resize === "crop" ? "cover" : "contain")}));
  }
  box.append(el("img", {src: uri, alt: "predicted mask", class: "mask"}));
  return box;
}
// Boxes outputs: the uploaded picture with each box scoring at least BOX_SHOWN drawn on it, and the boxes listed.
const BOX_SHOWN = 0.3;
function drawBoxes(box, found) {
  const upload = MODEL.inputs.findIndex(input => input.file);
  const control = upload >= 0 ? document.getElementById("in" + upload) : null;
  const shown = found.filter(b => b.score >= BOX_SHOWN);
  box.append(el("div", {class: "prediction", text: shown.length + " object" + (shown.length === 1 ? "" : "s")}));
  const canvas = el("canvas", {class: "boxes", "data-boxes": String(shown.length)});
  box.append(canvas);
  const list = el("ul", {class: "box-list"});
  for (const b of shown) {
    list.append(el("li", {text: b.label + " " + (b.score * 100).toFixed(0) + " % at [" + b.box.map(v => v.toFixed(0)).join(", ") + "]"}));
  }
  box.append(list);
  if (!control || !control.files.length) return;
  const picture = new Image();
  picture.onload = () => {
    const scale = Math.min(1, 640 / picture.naturalWidth);
    canvas.width = Math.round(picture.naturalWidth * scale);
    canvas.height = Math.round(picture.naturalHeight * scale);
    const g = canvas.getContext("2d");
    g.drawImage(picture, 0, 0, canvas.width, canvas.height);
    g.lineWidth = 2; g.font = "12px system-ui, sans-serif";
    for (const b of shown) {
      const [x0, y0, x1, y1] = b.box.map(v => v * scale);
      g.strokeStyle = "#ff2d55"; g.strokeRect(x0, y0, x1 - x0, y1 - y0);
      g.fillStyle = "#ff2d55"; g.fillText(b.label + " " + b.score.toFixed(2), x0 + 2, Math.max(12, y0 - 3));
    }
    canvas.dataset.drawn = "true";
  };
  picture.src = URL.createObjectURL(control.files[0]);
}

function showPrediction(body) {
  const result = document.getElementById("result");
  result.replaceChildren();
  const row = body.predictions[0];
  for (const output of MODEL.outputs) {
    const p = row[output.name];
    const box = el("div", {class: "output", "data-output": output.name});
    if (output.widget === "boxes") {
      box.append(el("h2", {text: output.name}));
      drawBoxes(box, p.prediction || []);
      result.append(box);
      continue;
    }
    const value = typeof p.prediction === "number" ? Number(p.prediction.toPrecision(6)) : p.prediction;
    box.append(el("h2", {text: output.name}), el("div", {class: "prediction", text: String(value)}));
    if (p.probabilities) {
      const entries = Object.entries(p.probabilities).sort((a, b) => b[1] - a[1]);
      box.append(bars(entries, false));
    }
    if (p.mask) box.append(maskOverlay(p.mask, output));
    result.append(box);
  }
  result.append(el("p", {class: "meta", text: body.runtime + " runtime, " + body.milliseconds + " ms"}));
}

function showExplanation(body) {
  const box = document.getElementById("explanation");
  box.replaceChildren(el("h2", {text: "Why"}));
  const first = (body.explanations || [body])[0] || {};
  const scores = first.attributions || first;
  const entries = Object.entries(scores).filter(([, v]) => typeof v === "number").sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]));
  box.append(entries.length ? bars(entries, true) : el("pre", {text: JSON.stringify(body, null, 2)}));
}

async function submit(event) {
  event.preventDefault();
  const button = document.getElementById("submit");
  const result = document.getElementById("result");
  button.disabled = true;
  result.replaceChildren(el("p", {class: "meta", text: "predicting…"}));
  document.getElementById("explanation").replaceChildren();
  try {
    let request;
    const row = rowFromForm();
    if (MODEL.request === "multipart") {
      const data = new FormData();
      MODEL.inputs.forEach((input, i) => {
        const control = document.getElementById("in" + i);
        if (input.file) { if (control.files.length) data.append(input.name, control.files[0]); }
        else if (row[input.name] !== null) data.append(input.name, row[input.name]);
      });
      request = {method: "POST", body: data};
    } else {
      request = {method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify({rows: [row]})};
    }
    const response = await fetch("predict", request);
    const body = await response.json().catch(() => null);
    if (!response.ok) return showError(result, errorText(body, response.status));
    showPrediction(body);
    if (MODEL.explain && MODEL.request === "json") {
      const explained = await fetch("explain", {method: "POST", headers: {"content-type": "application/json"},
                                                body: JSON.stringify({rows: [row]})});
      const detail = await explained.json().catch(() => null);
      if (explained.ok) showExplanation(detail);
      else showError(document.getElementById("explanation"), errorText(detail, explained.status));
    }
  } catch (e) {
    showError(result, String(e));
  } finally {
    button.disabled = false;
  }
}

async function start() {
  const response = await fetch("model");
  MODEL = await response.json();
  const form = document.getElementById("predict-form");
  MODEL.inputs.forEach((input, i) => form.append(...field(input, i)));
  form.append(el("div", {class: "actions"}, el("button", {id: "submit", type: "submit", text: "Predict"})));
  form.addEventListener("submit", submit);
  const outputs = MODEL.outputs.map(o => o.name + " (" + o.type + ")").join(", ");
  document.getElementById("model-sub").textContent =
    "predicts " + outputs + " from " + MODEL.inputs.length + " inputs · " + MODEL.runtime + " runtime · API docs at /docs";
  form.dataset.ready = "true";
}

start().catch(e => showError(document.getElementById("result"), "could not read /model: " + e));
</script>
</body>
</html>
"""


def page_html(name: str) -> str:
    return PAGE.replace("__NAME__", html.escape(name)).replace("__SELECT_MAX__", str(SELECT_MAX))
