"""The mask output type: reading masks (binary, multi-class, bad files), the U-Net head on every encoder's maps, the
Dice + cross-entropy loss, masks moving with their pixels, the metrics on known cases, the random-forest
counterpart and the written mask files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image, ImageOps

from lamina.config import HiddenConfig
from lamina.errors import LaminaError
from lamina.inputs.image import ImageInput, ImageOptions
from lamina.model import Network
from lamina.outputs import OUTPUT_TYPES
from lamina.outputs.mask_forest import SIGMAS, filter_bank, fit_forest, forest_raw
from lamina.outputs.mask_metrics import hausdorff95, lesions, mask_metrics
from lamina.training.moves import moves_for


def disks(folder: Path, n: int, size: int = 24, value: int = 255, seed: int = 0) -> pd.DataFrame:
    """Noisy pictures with bright disks, and their exact masks (``value`` inside a disk)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    rows = []
    for i in range(n):
        picture, mask = rng.normal(60, 15, (size, size)), np.zeros((size, size), np.uint8)
        for _ in range(1 + i % 2):
            cy, cx, r = *rng.integers(5, size - 5, 2), rng.integers(2, 5)
            inside = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
            picture[inside] += 90
            mask[inside] = value
        Image.fromarray(np.clip(picture, 0, 255).astype(np.uint8)).save(folder / f"{i}.png")
        Image.fromarray(mask).save(folder / f"{i}_mask.png")
        rows.append({"image": str(folder / f"{i}.png"), "mask": str(folder / f"{i}_mask.png")})
    return pd.DataFrame(rows)


def mask_type(**options):
    cls = OUTPUT_TYPES["mask"]
    return cls("mask", cls.Options(**options))


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    return disks(tmp_path_factory.mktemp("disks"), 12)


def test_masks_are_class_indices_of_their_values(toy: pd.DataFrame, tmp_path: Path) -> None:
    t = mask_type()
    t.fit(toy["mask"])
    assert t.state["values"] == [0, 255] and t.state["classes"] == ["background", "255"]
    y = t.transform(toy["mask"])
    assert y.dtype == torch.uint8 and y.shape == (12, 24, 24) and set(np.unique(y.numpy())) == {0, 1}
    multi = np.zeros((10, 10), np.uint8)
    multi[:3], multi[5:] = 1, 2
    Image.fromarray(multi).save(tmp_path / "multi.png")
    m = mask_type(size=5, class_names=["none", "edema", "tumour"])
    m.fit(pd.Series([str(tmp_path / "multi.png")]))
    assert m.state["classes"] == ["none", "edema", "tumour"] and m.transform(pd.Series([str(tmp_path / "multi.png")])
                                                                           ).shape == (1, 5, 5)
    Image.fromarray(np.full((10, 10), 7, np.uint8)).save(tmp_path / "seven.png")
    with pytest.raises(LaminaError, match=r"row 1: .*seven.png: mask value 7 never occurs"):
        m.transform(pd.Series([str(tmp_path / "seven.png")]))
    with pytest.raises(LaminaError, match=r"row 1: .*nothing.png: no such file"):
        t.transform(pd.Series([str(tmp_path / "nothing.png")]))


@pytest.mark.parametrize("encoder, size", [("cnn", 24), ("resnet", 72)])
def test_the_head_gives_logits_at_the_images_size_from_every_encoder(tmp_path: Path, encoder: str, size: int) -> None:
    frame = disks(tmp_path, 2, size=size)
    image = ImageInput("image", ImageOptions(widths=[8, 16], encoder=encoder))
    image.fit(frame["image"])
    mask = mask_type()
    mask.fit(frame["mask"])
    net = Network([image], [mask], HiddenConfig()).eval()
    with torch.no_grad():
        raw = net({"image": image.transform(frame["image"])})["mask"]
    assert raw.shape == (2, 2, size, size)
    if encoder == "resnet":  # a strided stem: the head upsamples to full size itself
        assert net.heads[0].stride > 1


def test_the_loss_prefers_the_true_mask_and_training_lowers_it(toy: pd.DataFrame) -> None:
    image = ImageInput("image", ImageOptions(widths=[8, 16], shift=0.1, rotation=15, flip=True))
    image.fit(toy["image"])
    mask = mask_type()
    mask.fit(toy["mask"])
    y = mask.transform(toy["mask"])
    loss = mask.loss()
    right = torch.nn.functional.one_hot(y.long(), 2).permute(0, 3, 1, 2).float() * 20 - 10
    assert loss(right, y) < 0.05 < loss(-right, y)
    torch.manual_seed(0)
    net = Network([image], [mask], HiddenConfig())
    moves, x = moves_for([image], [mask]), image.transform(toy["image"])
    optimiser = torch.optim.AdamW(net.parameters(), 1e-2)
    first = None
    for _ in range(12):
        inputs, targets = moves({"image": x}, {"mask": y})
        value = loss(net(inputs)["mask"], targets["mask"])
        optimiser.zero_grad()
        value.backward()
        optimiser.step()
        first = float(value.detach()) if first is None else first
    assert float(value.detach()) < first


def test_a_mask_moves_with_its_pixels(toy: pd.DataFrame) -> None:
    image = ImageInput("image", ImageOptions(widths=[8], shift=0.2, rotation=30, scale=0.2, flip=True))
    image.fit(toy["image"])
    mask = mask_type()
    mask.fit(toy["mask"])
    x, y = image.transform(toy["image"]), mask.transform(toy["mask"])
    torch.manual_seed(3)
    inputs, targets = moves_for([image], [mask])({"image": x}, {"mask": y})
    moved = targets["mask"]
    assert moved.dtype == y.dtype and not torch.equal(moved, y)
    bright = inputs["image"][:, 0] > 110  # pixel units; the disks are ~150 on a ~60 background
    assert (bright == moved.bool()).float().mean() > 0.95
    cropping = ImageInput("image", ImageOptions(widths=[8], shift=0, rotation=0, scale=0, crop=0.5))
    cropping.fit(toy["image"])
    inputs, targets = moves_for([cropping], [mask])({"image": x}, {"mask": y})
    bright = inputs["image"][:, 0] > 110
    assert (bright == targets["mask"].bool()).float().mean() > 0.95
    assert targets["mask"].float().mean() > y.float().mean()  # a crop zooms in: the disks cover more of the picture


def test_metrics_on_known_cases() -> None:
    truth = np.zeros((3, 20, 20), np.int64)
    truth[0, 2:8, 2:8] = 1  # one lesion, found exactly
    truth[1, 10:16, 10:16] = 1  # one lesion, missed; a false positive elsewhere
    pred = truth.copy()
    pred[1] = 0
    pred[1, 0:3, 0:3] = 1
    raw = np.stack([(pred == 0) * 10.0, (pred == 1) * 10.0], axis=1)  # logits
    m = mask_metrics(raw, truth, ["background", "lesion"])
    # image 0: Dice 1; image 1: Dice 0; image 2: both empty, not counted
    assert m["dice"] == pytest.approx(0.5) and m["iou"] == pytest.approx(0.5) and m["dice_lesion"] == m["dice"]
    assert m["lesions"] == 2 and m["lesion_sensitivity"] == 0.5 and m["lesion_fp_per_image"] == pytest.approx(1 / 3)
    # images 0 (masks equal: 0 px) and 1 (the false positive against the missed lesion) have both masks
    assert m["hausdorff95"] == pytest.approx(hausdorff95(pred[1] == 1, truth[1] == 1) / 2) and m["hausdorff95"] > 0
    assert np.isfinite(m["abnormality_roc_auc"])
    square, shifted = np.zeros((30, 30), bool), np.zeros((30, 30), bool)
    square[5:15, 5:15], shifted[5:15, 8:18] = True, True
    assert hausdorff95(square, shifted) == pytest.approx(3.0)
    tiny = np.zeros((30, 30), bool)
    tiny[5, 5] = True  # Dice with the square: 2/101 < 0.1: not found, so the tiny region is a false positive
    assert lesions(tiny, square) == (1, 0, 1)


def test_the_random_forest_counterpart_outlines_the_disks(toy: pd.DataFrame) -> None:
    image = ImageInput("image", ImageOptions())
    image.fit(toy["image"])
    mask = mask_type()
    mask.fit(toy["mask"])
    x, y = image.transform(toy["image"]).numpy(), mask.transform(toy["mask"]).numpy()
    assert filter_bank(x[0, 0].astype(np.float32)).shape == (24, 24, 1 + 7 * len(SIGMAS))
    forest = fit_forest(x[:8], y[:8])
    raw = forest_raw(forest, x[8:], 2)
    assert raw.shape == (4, 2, 24, 24)
    everywhere = np.stack([np.zeros_like(raw[:, 0]), np.ones_like(raw[:, 0])], axis=1)  # all lesion: the floor
    dice, floor = (mask.metrics(toy["mask"][8:], r)["dice"] for r in (raw, everywhere))
    assert dice > 0.6 and dice > 3 * floor, (dice, floor)


def test_written_masks_are_at_the_images_own_size(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((10, 20), np.uint8)).save(tmp_path / "wide.png")
    mask = mask_type(size=20)
    mask.state = {"values": [0, 255], "classes": ["background", "lesion"], "height": 20, "width": 20}
    labels = np.zeros((1, 20, 20), np.int64)
    labels[0, 8:12, 2:6] = 1  # inside the picture, which the padding put in rows 5-14
    raw = np.stack([(labels == 0) * 5.0, (labels == 1) * 5.0], axis=1)
    image = ImageInput("image", ImageOptions(size=20))
    frame = pd.DataFrame({"image": [str(tmp_path / "wide.png")]})
    rows = mask.write_predictions(raw, frame, [image], tmp_path / "out")
    written = np.asarray(Image.open(tmp_path / "out" / "mask" / rows["mask"].iloc[0]))
    assert written.shape == (10, 20) and set(np.unique(written)) == {0, 255}
    assert len(rows) == 1 and rows["area_px"].iloc[0] == 16 and rows["class"].iloc[0] == "lesion"


class Threshold(torch.nn.Module):
    """A stand-in for a trained network: a pixel brighter than 110 is lesion (the disks are ~150 on ~60); it
    records the tile sizes it was given."""

    output_names = ["mask"]

    def __init__(self) -> None:
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))
        self.seen: set[tuple[int, int]] = set()

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x = batch["image"].float()[:, :1]
        self.seen.add(tuple(x.shape[-2:]))
        return {"mask": torch.cat([110 - x, x - 110], dim=1) / 10}


def test_the_sliding_window_stitches_a_picture_larger_than_the_training_size(toy: pd.DataFrame,
                                                                               tmp_path: Path) -> None:
    from lamina.config import Config
    from lamina.outputs.tiles import gaussian, sliding_window, starts
    from lamina.predictor import Predictor
    from lamina.preprocessor import Preprocessor

    assert starts(24, 24) == [0] and starts(70, 24) == [0, 12, 23, 34, 46]  # 12 px apart at most, ends flush
    weights = gaussian((24, 16))
    assert weights.shape == (24, 16) and 0 < weights.min() < weights.max() == pytest.approx(1.0)
    # Blending undoes its own weights: a network that reads one pixel at a time stitches to itself exactly.
    picture = torch.rand(1, 70, 53) * 255
    local = lambda x: torch.cat([110 - x, x - 110], dim=1)  # noqa: E731
    assert torch.allclose(sliding_window(local, picture, (24, 24)), local(picture[None])[0], atol=1e-4)
    # End to end: a 70 x 53 picture of disks, four times the 24 x 24 training size, written at its own size.
    rng, (yy, xx) = np.random.default_rng(5), np.mgrid[:70, :53]
    picture, truth = rng.normal(60, 15, (70, 53)), np.zeros((70, 53), np.uint8)
    for cy, cx, r in ((10, 10, 4), (23, 30, 5), (45, 12, 3), (60, 45, 5), (35, 47, 4)):  # across tile borders
        inside = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
        picture[inside] += 90
        truth[inside] = 255
    wide = tmp_path / "wide.png"
    Image.fromarray(np.clip(picture, 0, 255).astype(np.uint8)).save(wide)
    config = Config.model_validate({"inputs": [{"name": "image", "type": "image", "options": {"widths": [8]}}],
                                    "outputs": [{"name": "mask", "type": "mask"}]})
    prep = Preprocessor(config).fit(toy)
    assert prep.outputs[0].tile_scale() == 1.0
    network, frame = Threshold(), pd.DataFrame({"image": [str(wide), toy["image"][0]]})
    predictor = Predictor(prep, network)
    tiled = predictor.tiled_raw(frame)["mask"]
    assert list(tiled) == [0] and tiled[0].shape == (2, 70, 53) and network.seen == {(24, 24)}  # row 1 fits
    predictor.predict_files(frame, tmp_path / "out")
    written = np.asarray(Image.open(sorted((tmp_path / "out" / "mask").glob("*.png"))[0]))
    assert written.shape == (70, 53) and (truth > 0).sum() > 200
    assert ((written > 0) == (truth > 0)).mean() > 0.995  # a few noise pixels above the threshold at most


def test_report_plots_draw_16_bit_pictures_scaled(toy: pd.DataFrame) -> None:
    from lamina import plots
    from lamina.outputs.boxes_classical import _gray

    deep = (np.arange(24 * 24, dtype=np.uint16).reshape(1, 24, 24) * 40 + 2000)  # 2,000-25,000 of 65,535
    shown = plots.for_display(deep)
    assert shown.shape == (24, 24) and shown.min() == 0 and shown.max() == 1
    assert plots.for_display(np.full((3, 2, 2), 51, np.uint8)).shape == (2, 2, 3)
    assert plots.for_display(np.full((1, 2, 2), 51, np.uint8)).max() == pytest.approx(0.2)  # 8 bits keep scale
    assert _gray(deep[None]).max() < 0.4  # HOG's input in [0, 1] from 16 bits, not 100 times white
    image = ImageInput("image", ImageOptions(bits=16))
    image.fit(toy["image"])
    mask = mask_type()
    mask.fit(toy["mask"])
    raw = np.stack([np.zeros((4, 24, 24)), np.ones((4, 24, 24))], axis=1)
    assert image.transform(toy["image"][:1]).dtype == torch.uint16
    assert "<img" in mask.report_section([image], toy.iloc[:4], raw)


@pytest.mark.slow
def test_the_page_lays_the_mask_on_a_non_square_upload_of_a_non_square_model(toy: pd.DataFrame,
                                                                               tmp_path: Path) -> None:
    """A wide model (24 x 40) and a tall upload (30 x 60): the picture must sit in the overlay where the model's
    padding put it in the mask, which a square box with both images fitted separately gets wrong."""
    from test_serve import Server, page_of

    from lamina.config import Config
    from lamina.predictor import Predictor
    from lamina.preprocessor import Preprocessor
    from lamina.store import save

    size = [24, 40]
    config = Config.model_validate({
        "name": "wide", "inputs": [{"name": "image", "type": "image", "options": {"size": size, "widths": [8]}}],
        "outputs": [{"name": "mask", "type": "mask", "options": {"size": size}}]})
    prep = Preprocessor(config).fit(toy)
    torch.manual_seed(0)
    save(Predictor(prep, prep.network()), tmp_path / "run")  # untrained: the test is about where the mask lies
    Image.fromarray(np.full((60, 30), 200, np.uint8)).save(tmp_path / "tall.png")
    server = Server(tmp_path / "run")
    try:
        with page_of(server) as (page, errors):
            accept = page.get_attribute("input[name=image]", "accept")
            assert {"image/*", ".dcm", "application/dicom"} <= set(accept.split(",")), accept
            page.set_input_files("input[name=image]", str(tmp_path / "tall.png"))
            page.click("#submit")
            page.wait_for_function("""() => [...document.querySelectorAll('#result .overlay img')]
                .filter(i => i.complete && i.naturalWidth > 0).length == 2""", timeout=15000)
            found = page.evaluate("""() => {
                const box = document.querySelector('#result .overlay').getBoundingClientRect();
                const mask = document.querySelector('#result .overlay img.mask');
                const pic = document.querySelector('#result .overlay img.picture');
                const m = mask.getBoundingClientRect(), r = pic.getBoundingClientRect();
                // object-fit: contain draws the picture centred at the largest scale that fits its element
                const s = Math.min(r.width / pic.naturalWidth, r.height / pic.naturalHeight);
                const w = pic.naturalWidth * s, h = pic.naturalHeight * s;
                return {box: [box.width, box.height], mask: [m.left - box.left, m.top - box.top, m.width, m.height,
                        mask.naturalWidth, mask.naturalHeight],
                        picture: [r.left - box.left + (r.width - w) / 2, r.top - box.top + (r.height - h) / 2, w, h]};
            }""")
            assert not errors, errors
    finally:
        server.stop()
    width, height = found["box"]
    assert width / height == pytest.approx(size[1] / size[0], rel=0.02)  # the box has the model's shape
    assert found["mask"] == pytest.approx([0, 0, width, height, size[1], size[0]], abs=0.6)
    inner = ImageOps.contain(Image.new("L", (30, 60)), (size[1], size[0])).size  # Pillow's pad, as the model saw it
    scale = width / size[1]
    expected = [(size[1] - inner[0]) // 2 * scale, (size[0] - inner[1]) // 2 * scale, inner[0] * scale,
                inner[1] * scale]
    assert found["picture"] == pytest.approx(expected, abs=scale * 0.6), (found, expected)
