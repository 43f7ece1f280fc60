"""The image input type: decoding every format and mode, resizing, the content-keyed cache, augmentation, bad
files, and ``lamina init`` → train → predict from real digit PNGs on disk (a folder, and a CSV of relative paths)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import lamina.inputs.image_decode as image_decode
from lamina.data.read import read_table
from lamina.errors import LaminaError
from lamina.inputs import INPUT_TYPES
from conftest import assert_ok, assert_user_error, read_yaml, run_cli, write_yaml


def image_type(name: str = "image", **options) -> object:
    cls = INPUT_TYPES["image"]
    return cls(name, cls.Options(**options))


def gradient(width: int = 12, height: int = 8) -> np.ndarray:
    """An RGB test picture: red grows left to right, green top to bottom, blue constant."""
    x = np.linspace(0, 255, width, dtype=np.float64)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height, dtype=np.float64)[:, None].repeat(width, 1)
    return np.stack([x, y, np.full_like(x, 100)], axis=2).astype(np.uint8)


@pytest.fixture(scope="module")
def real_digits() -> tuple[np.ndarray, np.ndarray]:
    """80 real 8×8 handwritten digits from scikit-learn (8 per class), as 0-255 uint8."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rows = np.concatenate([np.flatnonzero(digits.target == d)[:8] for d in range(10)])
    return np.round(digits.images[rows] * 255 / 16).astype(np.uint8), digits.target[rows]


# --- decoding ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix, options", [
    (".png", {}), (".jpg", {"quality": 95, "subsampling": 0}), (".bmp", {}), (".tif", {}), (".webp", {"lossless": True}),
])
def test_every_format_decodes_to_the_same_picture(tmp_path: Path, suffix: str, options: dict) -> None:
    picture = gradient()
    path = tmp_path / f"g{suffix}"
    Image.fromarray(picture).save(path, **options)
    t = image_type(size=(8, 12))
    t.fit(pd.Series([str(path)]))
    x = t.transform(pd.Series([str(path)]))
    assert x.dtype == torch.uint8 and x.shape == (1, 3, 8, 12)
    tolerance = 16 if suffix == ".jpg" else 0  # lossy
    assert np.abs(x[0].numpy().transpose(1, 2, 0).astype(int) - picture).max() <= tolerance
    assert t.state["channels"] == 3 and (t.state["height"], t.state["width"]) == (8, 12)
    assert len(t.state["mean"]) == len(t.state["std"]) == 3


def test_gif_first_frame(tmp_path: Path) -> None:
    path = tmp_path / "anim.gif"
    frames = [Image.new("L", (6, 6), 200), Image.new("L", (6, 6), 20)]
    frames[0].save(path, save_all=True, append_images=frames[1:])
    t = image_type(channels=1)
    t.fit(pd.Series([str(path)]))
    assert int(t.transform(pd.Series([str(path)])).float().mean()) == 200


def test_modes_grayscale_16_bit_palette_rgba(tmp_path: Path) -> None:
    gray, sixteen, rgba, palette = (tmp_path / f"{n}.png" for n in ("gray", "sixteen", "rgba", "palette"))
    Image.new("L", (4, 4), 128).save(gray)
    Image.fromarray(np.full((4, 4), 65535, np.uint16)).save(sixteen)  # mode I;16: scaled, not clipped to 255
    Image.new("RGBA", (4, 4), (10, 20, 30, 0)).save(rgba)  # transparent: the colour is kept, alpha dropped
    Image.new("RGB", (4, 4), (200, 0, 0)).convert("P", palette=Image.Palette.ADAPTIVE).save(palette)
    assert Image.open(sixteen).mode.startswith("I")

    grays = image_type(name="g")
    grays.fit(pd.Series([str(gray), str(sixteen)]))
    assert grays.state["channels"] == 1  # auto: every image is grayscale
    x = grays.transform(pd.Series([str(gray), str(sixteen)]))
    assert x.shape == (2, 1, 4, 4) and int(x[0].max()) == 128 and int(x[1].min()) == 255

    mixed = image_type(name="m")
    paths = pd.Series([str(gray), str(rgba), str(palette)])
    mixed.fit(paths)
    assert mixed.state["channels"] == 3  # one colour image makes the column colour; grayscale is converted
    x = mixed.transform(paths)
    assert x.shape == (3, 3, 4, 4)
    assert x[0, :, 0, 0].tolist() == [128, 128, 128]
    assert x[1, :, 0, 0].tolist() == [10, 20, 30]
    assert x[2, :, 0, 0].tolist() == [200, 0, 0]

    # Wrong channel counts are converted, not rejected: a colour image through a grayscale column.
    assert grays.transform(pd.Series([str(palette)])).shape == (1, 1, 4, 4)


def test_exif_orientation_is_honoured(tmp_path: Path) -> None:
    picture = np.zeros((2, 4), np.uint8)
    picture[0, 0] = 255  # top-left as stored
    image = Image.fromarray(picture)
    exif = image.getexif()
    exif[274] = 6  # "rotate 90° clockwise to display"
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif, quality=100)
    t = image_type(channels=1)
    t.fit(pd.Series([str(path)]))
    assert (t.state["height"], t.state["width"]) == (4, 2)  # upright: taller than wide
    x = t.transform(pd.Series([str(path)]))[0, 0].numpy()
    assert x.shape == (4, 2) and x[0, 1] > 128  # the stored top-left pixel is now top-right


def test_pad_keeps_everything_crop_fills_the_frame(tmp_path: Path) -> None:
    path = tmp_path / "wide.png"
    Image.new("L", (8, 4), 255).save(path)  # twice as wide as high
    padded, cropped = image_type(size=4, resize="pad"), image_type(size=4, resize="crop")
    for t in (padded, cropped):
        t.fit(pd.Series([str(path)]))
    p = padded.transform(pd.Series([str(path)]))[0, 0]
    c = cropped.transform(pd.Series([str(path)]))[0, 0]
    assert p[0].max() == 0 and p[-1].max() == 0 and p[1:3].min() == 255  # black bars above and below
    assert c.min() == 255


# --- the cache -----------------------------------------------------------------------------------------------------


def test_second_transform_reads_the_cache_without_decoding(tmp_path: Path, real_digits, monkeypatch) -> None:
    images, _ = real_digits
    folder = tmp_path / "imgs"
    folder.mkdir()
    paths = []
    for i, image in enumerate(images[:20]):
        Image.fromarray(image).save(folder / f"{i}.png")
        paths.append(str(folder / f"{i}.png"))
    t = image_type()
    t.cache_dir = tmp_path / "cache"
    calls = []
    real_decode = image_decode.decode
    monkeypatch.setattr(image_decode, "decode", lambda *a: calls.append(1) or real_decode(*a))
    t.fit(pd.Series(paths))
    assert len(calls) == 20
    first = t.transform(pd.Series(paths))
    assert len(calls) == 20  # the transform after fit is a cache hit already
    again = INPUT_TYPES["image"]("image", t.options, dict(t.state))  # as a model loaded from its directory
    again.cache_dir = tmp_path / "cache"
    second = again.transform(pd.Series(paths))
    assert len(calls) == 20 and torch.equal(first, second) and first.dtype == torch.uint8
    assert torch.equal(first[0, 0], torch.from_numpy(images[0]))  # 8×8 in, 8×8 out: exact pixels
    assert len(list((tmp_path / "cache").glob("*.u8"))) == 1
    # A changed file is a different key: decoded again.
    Image.fromarray(255 - images[0]).save(paths[0])
    again.transform(pd.Series(paths))
    assert len(calls) == 40


# --- the encoder ---------------------------------------------------------------------------------------------------


def test_augmentation_only_in_training_mode(tmp_path: Path, real_digits) -> None:
    images, _ = real_digits
    path = tmp_path / "d.png"
    Image.fromarray(images[5]).save(path)
    t = image_type(size=8)
    t.fit(pd.Series([str(path)] * 4))
    encoder = t.encoder()
    calls = []
    encoder.augment.register_forward_hook(lambda *a: calls.append(1))
    x = t.transform(pd.Series([str(path)] * 4))
    encoder.eval()
    with torch.no_grad():
        a, b = encoder(x), encoder(x)
    assert calls == [] and torch.equal(a, b) and a.shape == (4, encoder.out_dim)
    encoder.train()
    encoder(x)
    assert calls == [1]
    torch.manual_seed(0)
    shifted = encoder.augment(x.float() / 255)
    assert shifted.shape == x.shape and not torch.allclose(shifted, x.float() / 255)
    torch.manual_seed(0)
    assert torch.equal(shifted, encoder.augment(x.float() / 255))  # the global RNG: seeded runs repeat


def test_encoders_cnn_and_resnet(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    Image.fromarray(gradient(48, 40)).save(path)
    big = image_type()
    big.fit(pd.Series([str(path)]))
    assert big._architecture() == "resnet"  # auto: over 32 px
    cnn = image_type(encoder="cnn", widths=[8, 16], depths=[2, 1], dropout=0.1, pool="avg", batch_norm=False)
    cnn.fit(pd.Series([str(path)]))
    for t in (big, cnn):
        out = t.encoder().eval()(t.transform(pd.Series([str(path)] * 2)))
        assert out.shape == (2, t.width)


# --- bad files -----------------------------------------------------------------------------------------------------


@pytest.fixture()
def bad_files(tmp_path: Path) -> dict[str, Path]:
    good = tmp_path / "good.png"
    Image.fromarray(gradient()).save(good)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:60])
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    text = tmp_path / "notes.jpg"
    text.write_text("not an image at all", encoding="utf-8")
    return {"good": good, "missing": tmp_path / "missing.png", "truncated": truncated, "empty": empty, "text": text}


@pytest.mark.parametrize("case, says", [
    ("missing", "no such file"), ("truncated", "truncated"), ("empty", "not an image"), ("text", "not an image"),
])
def test_bad_file_names_the_file_row_and_fix(bad_files: dict[str, Path], case: str, says: str) -> None:
    t = image_type(name="scan")
    values = pd.Series([str(bad_files["good"]), str(bad_files[case])])
    with pytest.raises(LaminaError) as error:
        t.fit(values)
    message = str(error.value)
    assert "\n" not in message
    for part in ("column 'scan' row 2", bad_files[case].name, says, "on_bad_input: skip"):
        assert part in message, message


def test_skip_leaves_bad_rows_out_and_names_them(bad_files: dict[str, Path], caplog) -> None:
    from lamina.config import Config
    from lamina.preprocessor import Preprocessor

    config = Config.model_validate({
        "inputs": [{"name": "scan", "type": "image", "options": {"on_bad_input": "skip"}}],
        "outputs": [{"name": "y", "type": "binary"}],
    })
    order = ["good", "missing", "good", "truncated", "empty", "text"]
    frame = pd.DataFrame({"scan": [str(bad_files[k]) for k in order], "y": [0, 1, 1, 0, 1, 0]})
    prep = Preprocessor(config).fit(frame)
    with caplog.at_level(logging.WARNING, logger="lamina"):
        kept = prep.drop_bad_inputs(frame, "data.csv")
    assert kept.index.tolist() == [0, 2]
    assert "4 unreadable image(s) left out" in caplog.text
    for name in ("missing.png", "truncated.png", "empty.png", "notes.jpg"):
        assert name in caplog.text
    assert prep.inputs_to_tensors(kept)["scan"].shape == (2, 3, 8, 12)


# --- folders and end to end ----------------------------------------------------------------------------------------


def write_digits(folder: Path, images: np.ndarray, labels: np.ndarray) -> list[str]:
    paths = []
    for i, (image, label) in enumerate(zip(images, labels)):
        path = folder / str(label) / f"{i:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(path)
        paths.append(path.relative_to(folder).as_posix())
    return paths


def test_folder_reads_as_image_and_label(tmp_path: Path, real_digits) -> None:
    images, labels = real_digits
    write_digits(tmp_path / "photos", images[:12], labels[:12])
    frame = read_table(tmp_path / "photos")
    assert list(frame.columns) == ["image", "label"] and len(frame) == 12
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in frame["image"])
    assert sorted(frame["label"].unique()) == ["0", "1"]
    flat = read_table(tmp_path / "photos" / "0")
    assert list(flat.columns) == ["image"] and len(flat) == 8
    (tmp_path / "nothing").mkdir()
    with pytest.raises(LaminaError, match="no image files"):
        read_table(tmp_path / "nothing")


def short_training(config: Path, epochs: int = 4) -> None:
    data = read_yaml(config)
    data["trainer"].update({"epochs": epochs, "batch_size": 32, "learning_rate": 0.003})
    data["data"]["split"]["fractions"] = [0.6, 0.2, 0.2]
    write_yaml(data, config)


@pytest.mark.slow
def test_init_train_predict_from_a_folder_of_real_digits(tmp_path: Path, real_digits) -> None:
    images, labels = real_digits
    write_digits(tmp_path / "photos", images, labels)
    assert_ok(run_cli("init", "photos/", "--target", "label", cwd=tmp_path))
    config = read_yaml(tmp_path / "config.yaml")
    assert config["inputs"] == [{"name": "image", "type": "image"}]
    assert config["outputs"] == [{"name": "label", "type": "category"}]
    short_training(tmp_path / "config.yaml")
    assert_ok(run_cli("train", "config.yaml", cwd=tmp_path))
    model = tmp_path / "runs" / "photos"
    info = read_yaml(model / "config.yaml")
    assert info["inputs"][0]["type"] == "image" and not (model / "cache").exists()
    new = tmp_path / "new_photos"
    new.mkdir()
    for i in range(6):
        Image.fromarray(images[i * 8]).save(new / f"n{i}.png")
    assert_ok(run_cli("predict", "runs/photos", "new_photos/", "-o", "preds.csv", cwd=tmp_path))
    predictions = pd.read_csv(tmp_path / "preds.csv")
    assert len(predictions) == 6 and "label" in predictions.columns
    (new / "zero.png").write_bytes(b"")  # the model's on_bad_input is error: one line naming the file, exit 2
    assert_user_error(run_cli("predict", "runs/photos", "new_photos/", cwd=tmp_path), "zero.png", "on_bad_input")


@pytest.mark.slow
def test_init_train_predict_from_a_csv_of_relative_paths(tmp_path: Path, real_digits) -> None:
    images, labels = real_digits
    project = tmp_path / "project"
    paths = write_digits(project / "scans", images, labels)
    bad = project / "scans" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n broken")
    table = pd.DataFrame({"scan": [f"scans/{p}" for p in paths] + ["scans/broken.png"],
                          "ink": np.r_[(images > 64).mean(axis=(1, 2)), 0.5],
                          "digit": np.r_[labels, 3]})
    table.to_csv(project / "digits.csv", index=False)
    assert_ok(run_cli("init", "project/digits.csv", "--target", "digit", "-o", "project/config.yaml", cwd=tmp_path))
    config = read_yaml(project / "config.yaml")
    assert {s["name"]: s["type"] for s in config["inputs"]} == {"scan": "image", "ink": "number"}
    short_training(project / "config.yaml", epochs=3)
    config = read_yaml(project / "config.yaml")
    config["inputs"][0]["options"] = {"on_bad_input": "skip"}
    write_yaml(config, project / "config.yaml")
    # Trained from another folder: the paths are relative to the CSV, not to where the command runs.
    result = assert_ok(run_cli("train", "project/config.yaml", "--output-dir", "runs", cwd=tmp_path))
    assert "broken.png" in result.stderr
    log = (tmp_path / "runs" / "digits" / "train.log").read_text(encoding="utf-8")
    assert "1 unreadable image(s) left out" in log and "broken.png" in log
    assert_ok(run_cli("predict", "runs/digits", "project/digits.csv", "-o", "preds.csv", cwd=tmp_path))
    assert len(pd.read_csv(tmp_path / "preds.csv")) == len(table) - 1


def test_parallel_decoding_matches_in_process(tmp_path: Path, real_digits) -> None:
    images, _ = real_digits
    paths = []
    for i in range(image_decode.PARALLEL_FROM + 20):
        path = tmp_path / f"{i}.png"
        Image.fromarray(images[i % len(images)]).save(path)
        paths.append(str(path))
    geometry = image_decode.Geometry(8, 8, 1, "pad")
    serial, failed_serial = image_decode.load_images(paths, geometry, None, workers=1)
    parallel, failed_parallel = image_decode.load_images(paths + [str(tmp_path / "gone.png")], geometry,
                                                         tmp_path / "cache", workers=2)
    assert np.array_equal(serial, parallel[:-1]) and failed_serial == {}
    assert list(failed_parallel) == [len(paths)]
