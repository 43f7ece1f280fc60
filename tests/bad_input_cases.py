"""The bad inputs of tests/test_bad_input_corpus.py that go through the CLI: configs, data files of every type, model
directories, checkpoints and output paths. Each case builds its files in the test's folder and returns the command;
its mentions are what the one-line error must name."""

from __future__ import annotations

import io
import json
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
from PIL import Image
from safetensors.torch import load_file, save_file

from conftest import write_yaml

COLUMNS = ["mean radius", "mean texture", "size", "diagnosis"]


@dataclass(frozen=True)
class Tiny:
    """What the cases start from: the data, a valid config, a trained model and an interrupted run."""

    folder: Path
    data: Path
    config: dict[str, Any]
    model: Path
    interrupted: Path  # runs/tiny.incomplete after one epoch: the checkpoint ``--resume`` reads


def base_config(data: Path) -> dict[str, Any]:
    return {"name": "tiny", "data": {"path": str(data), "split": {"method": "random", "seed": 0}},
            "inputs": [{"name": "mean radius", "type": "number"}, {"name": "mean texture", "type": "number"},
                       {"name": "size", "type": "category"}],
            "outputs": [{"name": "diagnosis", "type": "category"}],
            "hidden": {"depth": 1, "width": 16},
            "trainer": {"epochs": 2, "batch_size": 64, "device": "cpu", "early_stopping": {"patience": 0}}}


@dataclass(frozen=True)
class Case:
    """``make`` builds the case's files in its folder and returns the command's arguments."""

    id: str
    make: Callable[[Path, Tiny], list[Any]]
    mentions: tuple[str, ...]


# --- configs ----------------------------------------------------------------------------------------------------------


def config_text(text: str) -> Callable[[Path, Tiny], list[Any]]:
    def make(folder: Path, tiny: Tiny) -> list[Any]:
        (folder / "config.yaml").write_text(text, encoding="utf-8")
        return ["train", "config.yaml", "-q"]
    return make


def config_edit(edit: Callable[[dict[str, Any]], None]) -> Callable[[Path, Tiny], list[Any]]:
    def make(folder: Path, tiny: Tiny) -> list[Any]:
        config = json.loads(json.dumps(tiny.config))
        edit(config)
        write_yaml(config, folder / "config.yaml")
        return ["train", "config.yaml", "-q"]
    return make


def set_in(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(config: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = config
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[int(last) if isinstance(node, list) else last] = value
    return edit


CONFIG_CASES = [
    Case("yaml-syntax", config_text("inputs: [unclosed\n"), ("config.yaml",)),
    Case("not-a-mapping", config_text("- inputs\n- outputs\n"), ("config.yaml",)),
    Case("empty-file", config_text(""), ("config.yaml", "empty")),
    Case("python-tag", config_text("name: !!python/object/apply:os.system ['touch pwned']\n"), ("config.yaml",)),
    Case("unknown-key", config_edit(set_in("trainr", {"epochs": 1})), ("config.yaml", "trainr")),
    Case("unknown-type", config_edit(set_in("inputs.0.type", "nmber")), ("config.yaml", "nmber")),
    Case("unknown-option", config_edit(set_in("inputs.0.options", {"normalisation": "zscore"})),
         ("config.yaml", "normalisation")),
    Case("epochs-zero", config_edit(set_in("trainer.epochs", 0)), ("config.yaml", "epochs")),
    Case("batch-size-word", config_edit(set_in("trainer.batch_size", "many")), ("config.yaml", "batch_size")),
    Case("learning-rate-negative", config_edit(set_in("trainer.learning_rate", -1)), ("config.yaml", "learning_rate")),
    Case("width-absurd", config_edit(set_in("hidden.width", 10**9)), ("config.yaml", "width")),
    Case("no-outputs", config_edit(set_in("outputs", [])), ("config.yaml", "outputs")),
    Case("input-not-in-data", config_edit(set_in("inputs.0.name", "mean radios")), ("data.csv", "mean radios")),
    Case("target-not-in-data", config_edit(set_in("outputs.0.name", "diagnosys")), ("data.csv", "diagnosys")),
    Case("missing-config", lambda folder, tiny: ["train", "nope.yaml"], ("nope.yaml",)),
]


# --- data files of every type -----------------------------------------------------------------------------------------


def with_data(write: Callable[[Path, Tiny], Path], edit: Callable[[dict[str, Any]], None] | None = None,
              command: str = "train") -> Callable[[Path, Tiny], list[Any]]:
    """A config (or, for predict, the trained model) reading the file ``write`` makes."""
    def make(folder: Path, tiny: Tiny) -> list[Any]:
        data = write(folder, tiny)
        if command == "predict":
            return ["predict", tiny.model, data]
        config = json.loads(json.dumps(tiny.config))
        config["data"]["path"] = str(data)
        if edit:
            edit(config)
        write_yaml(config, folder / "config.yaml")
        return ["train", "config.yaml", "-q"]
    return make


def csv_with(row: int, column: str, value: Any, name: str = "bad.csv") -> Callable[[Path, Tiny], Path]:
    def write(folder: Path, tiny: Tiny) -> Path:
        frame = pd.read_csv(tiny.data).astype({column: object})
        frame.loc[row, column] = value
        frame.to_csv(folder / name, index=False)
        return folder / name
    return write


def raw_file(name: str, content: bytes) -> Callable[[Path, Tiny], Path]:
    def write(folder: Path, tiny: Tiny) -> Path:
        (folder / name).write_bytes(content)
        return folder / name
    return write


def truncated_parquet(folder: Path, tiny: Tiny) -> Path:
    whole = io.BytesIO()
    pd.read_csv(tiny.data).to_parquet(whole)
    (folder / "cut.parquet").write_bytes(whole.getvalue()[: len(whole.getvalue()) // 2])
    return folder / "cut.parquet"


def jsonl_lines(lines: list[str]) -> Callable[[Path, Tiny], Path]:
    def write(folder: Path, tiny: Tiny) -> Path:
        good = pd.read_csv(tiny.data).head(40).to_json(orient="records", lines=True).splitlines()
        (folder / "bad.jsonl").write_text("\n".join(good[:10] + lines + good[10:]) + "\n", encoding="utf-8")
        return folder / "bad.jsonl"
    return write


def images(bad: str) -> Callable[[Path, Tiny], Path]:
    """A table of 30 real digit images (scikit-learn's) and their labels; row 6's file is ``bad``."""
    def write(folder: Path, tiny: Tiny) -> Path:
        from sklearn.datasets import load_digits

        digits = load_digits()
        (folder / "img").mkdir()
        rows = []
        for i in range(30):
            path = folder / "img" / f"{i}.png"
            Image.fromarray((digits.images[i] * 16).astype(np.uint8)).save(path)
            rows.append({"image": f"img/{i}.png", "label": str(digits.target[i])})
        bad_path = folder / "img" / "5.png"
        if bad == "missing":
            bad_path.unlink()
        elif bad == "empty":
            bad_path.write_bytes(b"")
        else:
            bad_path.write_text("not an image, whatever the name says", encoding="utf-8")
        pd.DataFrame(rows).to_csv(folder / "images.csv", index=False)
        return folder / "images.csv"
    return write


def file_config(kind: str, column: str, extra: dict[str, Any] | None = None) -> Callable[[dict[str, Any]], None]:
    def edit(config: dict[str, Any]) -> None:
        config["inputs"] = [{"name": column, "type": kind, **({"options": extra} if extra else {})}]
        config["outputs"] = [{"name": "label", "type": "category"}]
        config["trainer"]["epochs"] = 1
    return edit


def sounds(bad: str) -> Callable[[Path, Tiny], Path]:
    """24 tones made by a program (two pitches), row 6's file is ``bad``."""
    def write(folder: Path, tiny: Tiny) -> Path:
        import soundfile as sf

        (folder / "clips").mkdir()
        rows = []
        for i in range(24):
            freq = 300 if i % 2 else 900
            path = folder / "clips" / f"{i}.wav"
            sf.write(path, (0.5 * np.sin(2 * np.pi * freq * np.arange(4000) / 16000)).astype(np.float32), 16000)
            rows.append({"sound": f"clips/{i}.wav", "label": "low" if i % 2 else "high"})
        bad_path = folder / "clips" / "5.wav"
        if bad == "empty":
            bad_path.write_bytes(b"")
        else:
            bad_path.write_text("this is not audio\n", encoding="utf-8")
        pd.DataFrame(rows).to_csv(folder / "sounds.csv", index=False)
        return folder / "sounds.csv"
    return write


def series(bad: Any) -> Callable[[Path, Tiny], Path]:
    """24 two-channel series in Parquet; row 6 holds ``bad``."""
    def write(folder: Path, tiny: Tiny) -> Path:
        rng = np.random.default_rng(0)
        signal: list[Any] = [[list(rng.normal(size=10)) for _ in range(2)] for _ in range(24)]
        signal[5] = bad
        pd.DataFrame({"signal": signal, "label": ["a", "b"] * 12}).to_parquet(folder / "series.parquet")
        return folder / "series.parquet"
    return write


def texts(values: list[Any]) -> Callable[[Path, Tiny], Path]:
    def write(folder: Path, tiny: Tiny) -> Path:
        pd.DataFrame({"review": values, "label": ["a", "b"] * (len(values) // 2)}).to_csv(folder / "texts.csv",
                                                                                          index=False)
        return folder / "texts.csv"
    return write


ROW = 18  # 0-based index 17 of the frame: "row 18" in messages
HUGE_TEXT = "x" * 1_000_000

DATA_CASES = [
    Case("csv-empty", with_data(raw_file("empty.csv", b"")), ("empty.csv", "empty")),
    Case("csv-header-only", with_data(raw_file("header.csv", ",".join(COLUMNS).encode() + b"\n")), ("header.csv",)),
    Case("csv-unclosed-quote", with_data(raw_file("quote.csv", b'mean radius,mean texture,size,diagnosis\n"1,2,a,b\n')),
         ("quote.csv",)),
    Case("csv-binary-garbage", with_data(raw_file("garbage.csv", bytes(range(256)) * 8)), ("garbage.csv",)),
    Case("csv-word-in-number", with_data(csv_with(ROW - 1, "mean radius", "abc")),
         ("bad.csv", "'mean radius'", f"row {ROW}", "'abc'")),
    Case("csv-huge-word-in-number", with_data(csv_with(ROW - 1, "mean radius", HUGE_TEXT)),
         ("bad.csv", "'mean radius'", f"row {ROW}", "characters")),
    Case("csv-inf-at-training", with_data(csv_with(ROW - 1, "mean radius", "inf")),
         ("bad.csv", "'mean radius'", f"row {ROW}", "inf")),
    Case("csv-1e308-at-training", with_data(csv_with(ROW - 1, "mean texture", "1e308")),
         ("bad.csv", "'mean texture'", f"row {ROW}", "1e+308")),
    Case("csv-minus-1e308-at-training", with_data(csv_with(ROW - 1, "mean texture", "-1e308")),
         ("bad.csv", "'mean texture'", f"row {ROW}", "-1e+308")),
    Case("csv-1e308-at-prediction", with_data(csv_with(ROW - 1, "mean radius", "1e308"), command="predict"),
         ("bad.csv", "'mean radius'", f"row {ROW}", "1e+308")),
    Case("csv-inf-at-prediction", with_data(csv_with(ROW - 1, "mean radius", "-inf"), command="predict"),
         ("bad.csv", "'mean radius'", f"row {ROW}", "-inf")),
    Case("csv-word-at-prediction", with_data(csv_with(ROW - 1, "mean texture", "n/a?"), command="predict"),
         ("bad.csv", "'mean texture'", f"row {ROW}")),
    Case("parquet-garbage", with_data(raw_file("bad.parquet", b"PAR1 this is not parquet PAR1")), ("bad.parquet",)),
    Case("parquet-truncated", with_data(truncated_parquet), ("cut.parquet",)),
    Case("jsonl-broken-line", with_data(jsonl_lines(['{"mean radius": 1.0, "mean texture": '])), ("bad.jsonl",)),
    Case("jsonl-not-objects", with_data(jsonl_lines(["[1, 2, 3]"])), ("bad.jsonl",)),
    Case("image-missing-file", with_data(images("missing"), file_config("image", "image")),
         ("column 'image'", "5.png")),
    Case("image-empty-file", with_data(images("empty"), file_config("image", "image")), ("column 'image'", "5.png")),
    Case("image-text-file", with_data(images("text"), file_config("image", "image")), ("column 'image'", "5.png")),
    Case("audio-empty-file", with_data(sounds("empty"), file_config("audio", "sound", {"duration": 0.25})),
         ("column 'sound'", "5.wav")),
    Case("audio-text-file", with_data(sounds("text"), file_config("audio", "sound", {"duration": 0.25})),
         ("column 'sound'", "5.wav")),
    Case("timeseries-nan-reading", with_data(series([[1.0, float("nan"), 3.0]] * 2), file_config("timeseries", "signal")),
         ("series.parquet", "column 'signal'", "row 6")),
    Case("timeseries-ragged", with_data(series([[1.0, 2.0], [3.0]]), file_config("timeseries", "signal")),
         ("series.parquet", "column 'signal'", "row 6")),
    Case("timeseries-empty", with_data(series([]), file_config("timeseries", "signal")),
         ("series.parquet", "column 'signal'", "row 6")),
    Case("text-all-empty", with_data(texts([""] * 20), file_config("text", "review")), ("review",)),
]


# --- model directories ------------------------------------------------------------------------------------------------


def damaged_model(damage: Callable[[Path], None]) -> Callable[[Path, Tiny], list[Any]]:
    def make(folder: Path, tiny: Tiny) -> list[Any]:
        model = folder / "model"
        shutil.copytree(tiny.model, model)
        damage(model)
        return ["predict", model, tiny.data]
    return make


def edit_info(edit: Callable[[dict[str, Any]], Any]) -> Callable[[Path], None]:
    def damage(model: Path) -> None:
        info = json.loads((model / "lamina.json").read_text(encoding="utf-8"))
        info = edit(info) or info
        (model / "lamina.json").write_text(json.dumps(info), encoding="utf-8")
    return damage


def put(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(info: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        node = info
        for key in parents:
            node = node[key]
        node[last] = value
    return edit


def cut_file(name: str, keep: float) -> Callable[[Path], None]:
    def damage(model: Path) -> None:
        content = (model / name).read_bytes()
        (model / name).write_bytes(content[: int(len(content) * keep)])
    return damage


def pickle_in_place(name: str) -> Callable[[Path], None]:
    def damage(model: Path) -> None:
        (model / name).write_bytes(pickle.dumps({"weights": [1.0, 2.0]}))
    return damage


def drop_tensor(prefix: str, name: str) -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        tensors = load_file(str(folder / name))
        save_file({k: v for k, v in tensors.items() if not k.startswith(prefix)}, str(folder / name))
    return damage


def nan_weights(model: Path) -> None:
    tensors = load_file(str(model / "weights.safetensors"))
    save_file({k: v.fill_(float("nan")) if k.startswith("heads.") else v for k, v in tensors.items()},
              str(model / "weights.safetensors"))


MODEL_CASES = [
    Case("model-missing", lambda folder, tiny: ["predict", folder / "nope", tiny.data], ("nope", "no such model")),
    Case("model-is-a-file", lambda folder, tiny: ["predict", tiny.data, tiny.data], ("data.csv", "not a directory")),
    Case("model-no-lamina-json", damaged_model(lambda m: (m / "lamina.json").unlink()), ("lamina.json", "missing")),
    Case("lamina-json-truncated", damaged_model(cut_file("lamina.json", 0.5)), ("lamina.json", "corrupted")),
    Case("lamina-json-a-list", damaged_model(edit_info(lambda info: [info])), ("lamina.json",)),
    Case("lamina-json-wrong-format", damaged_model(edit_info(put("format", "onnx"))), ("lamina.json", "format")),
    Case("lamina-json-newer-version", damaged_model(edit_info(put("format_version", 99))), ("newer Lamina",)),
    Case("lamina-json-version-a-word", damaged_model(edit_info(put("format_version", "one"))),
         ("lamina.json", "format_version")),
    Case("fitted-shift-a-word", damaged_model(edit_info(put("preprocessor/inputs/mean radius/shift", "abc"))),
         ("lamina.json", "preprocessor.inputs.mean radius.shift")),
    Case("fitted-scale-zero", damaged_model(edit_info(put("preprocessor/inputs/mean texture/scale", 0))),
         ("lamina.json", "preprocessor.inputs.mean texture.scale")),
    Case("fitted-vocabulary-numbers", damaged_model(edit_info(put("preprocessor/inputs/size/vocabulary", [1, 2]))),
         ("lamina.json", "preprocessor.inputs.size.vocabulary")),
    Case("fitted-classes-not-a-list", damaged_model(edit_info(put("preprocessor/outputs/diagnosis/classes", "ab"))),
         ("lamina.json", "preprocessor.outputs.diagnosis.classes")),
    Case("fitted-state-missing", damaged_model(edit_info(put("preprocessor/inputs", {}))),
         ("lamina.json", "mean radius")),
    Case("preprocessor-a-list", damaged_model(edit_info(put("preprocessor", []))), ("lamina.json", "preprocessor")),
    Case("config-width-absurd", damaged_model(edit_info(put("config/hidden/width", 10**9))),
         ("lamina.json", "width")),
    Case("declared-network-huge", damaged_model(edit_info(put("config/hidden", {"depth": 64, "width": 65536}))),
         ("weights.safetensors", "tensor", "65536")),
    Case("declared-vocabulary-huge",
         damaged_model(edit_info(put("preprocessor/inputs/size/vocabulary", [str(i) for i in range(200_000)]))),
         ("weights.safetensors", "tensor")),
    Case("weights-missing", damaged_model(lambda m: (m / "weights.safetensors").unlink()),
         ("weights.safetensors", "missing")),
    Case("weights-truncated", damaged_model(cut_file("weights.safetensors", 0.5)), ("weights.safetensors",)),
    Case("weights-a-pickle", damaged_model(pickle_in_place("weights.safetensors")), ("weights.safetensors",)),
    Case("weights-tensor-missing", damaged_model(drop_tensor("heads.", "weights.safetensors")),
         ("weights.safetensors", "heads.")),
    Case("weights-nan-no-nan-probability", damaged_model(nan_weights), ("data.csv", "row 1", "'diagnosis'")),
]


# --- checkpoints (lamina train --resume) ------------------------------------------------------------------------------


def damaged_checkpoint(damage: Callable[[Path], None]) -> Callable[[Path, Tiny], list[Any]]:
    def make(folder: Path, tiny: Tiny) -> list[Any]:
        shutil.copytree(tiny.interrupted, folder / "runs" / "tiny.incomplete")
        damage(folder / "runs" / "tiny.incomplete")
        write_yaml(tiny.config, folder / "config.yaml")
        return ["train", "config.yaml", "--resume", "-q"]
    return make


def edit_state(edit: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        state = json.loads((run / "checkpoint.json").read_text(encoding="utf-8"))
        edit(state)
        (run / "checkpoint.json").write_text(json.dumps(state), encoding="utf-8")
    return damage


CHECKPOINT_CASES = [
    Case("checkpoint-json-cut-in-half", damaged_checkpoint(cut_file("checkpoint.json", 0.5)),
         ("checkpoint.json", "corrupted")),
    Case("checkpoint-tensors-a-pickle", damaged_checkpoint(pickle_in_place("checkpoint.safetensors")),
         ("checkpoint.safetensors",)),
    Case("checkpoint-tensors-truncated", damaged_checkpoint(cut_file("checkpoint.safetensors", 0.5)),
         ("checkpoint.safetensors",)),
    Case("checkpoint-epoch-a-word", damaged_checkpoint(edit_state(lambda s: s.update(epoch="one"))),
         ("checkpoint.json", "epoch")),
    Case("checkpoint-history-missing", damaged_checkpoint(edit_state(lambda s: s.pop("history"))),
         ("checkpoint.json", "history")),
    Case("checkpoint-rng-missing", damaged_checkpoint(drop_tensor("rng.torch", "checkpoint.safetensors")),
         ("checkpoint.safetensors", "rng.torch")),
]


# --- output paths -----------------------------------------------------------------------------------------------------


def predict_to(make_target: Callable[[Path], Path]) -> Callable[[Path, Tiny], list[Any]]:
    def make(folder: Path, tiny: Tiny) -> list[Any]:
        return ["predict", tiny.model, tiny.data, "-o", make_target(folder)]
    return make


def a_folder(name: str) -> Callable[[Path], Path]:
    def target(folder: Path) -> Path:
        (folder / name).mkdir()
        return folder / name
    return target


def under_a_file(folder: Path) -> Path:
    (folder / "file").write_text("not a folder", encoding="utf-8")
    return folder / "file" / "preds.csv"


def train_to(option: str) -> Callable[[Path, Tiny], list[Any]]:
    def make(folder: Path, tiny: Tiny) -> list[Any]:
        write_yaml(tiny.config, folder / "config.yaml")
        (folder / "out").write_text("a file where the model should go", encoding="utf-8")
        return ["train", "config.yaml", option, "out"]
    return make


OUTPUT_CASES = [
    Case("predict-output-is-a-folder", predict_to(a_folder("preds.csv")), ("preds.csv", "directory")),
    Case("predict-output-under-a-file", predict_to(under_a_file), ("preds.csv", "file")),
    Case("predict-output-unknown-format", predict_to(lambda folder: folder / "preds.xlsx"), ("preds.xlsx", ".xlsx")),
    Case("evaluate-json-is-a-folder",
         lambda folder, tiny: ["evaluate", tiny.model, tiny.data, "--json", a_folder("m.json")(folder)],
         ("m.json", "directory")),
    Case("train-output-is-a-file", train_to("-o"), ("out", "is a file")),
    Case("train-output-dir-is-a-file", train_to("--output-dir"), ("out", "is a file")),
]

CLI_CASES = [*CONFIG_CASES, *DATA_CASES, *MODEL_CASES, *CHECKPOINT_CASES, *OUTPUT_CASES]


