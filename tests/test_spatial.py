"""The spatial contract that box and mask outputs build on: an image input's feature maps reach a spatial head, the
pooled vector is the plain encoder's, and training's geometric augmentation moves a spatial target with its pixels.

The spatial output here is a toy (a mask of the digit's ink), defined in the test: the real ones are output types.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from sklearn.datasets import load_digits
from torch import nn

from lamina.config import HiddenConfig
from lamina.errors import LaminaError
from lamina.inputs.image import ImageInput, ImageOptions
from lamina.inputs.number import NumberInput
from lamina.model import Network
from lamina.outputs.base import OutputOptions, OutputType
from lamina.training.moves import moves_for


class InkHead(nn.Module):
    def __init__(self, shapes: list[tuple[int, int]]) -> None:
        super().__init__()
        self.shapes = shapes
        self.conv = nn.Conv2d(shapes[0][0], 1, 1)

    def forward(self, h: torch.Tensor, maps: list[torch.Tensor]) -> torch.Tensor:
        self.seen = [tuple(m.shape) for m in maps]
        return self.conv(maps[0])[:, 0]


class InkOutput(OutputType):
    """Which pixels are ink: a mask (n, H, W) the size of the image."""

    kind = "ink"
    spatial = True

    def head(self, in_dim: int, shapes: list[tuple[int, int]]) -> nn.Module:
        return InkHead(shapes)

    def follow(self, target: torch.Tensor, theta: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        grid = F.affine_grid(theta, [target.shape[0], 1, *size], align_corners=False)
        return F.grid_sample(target[:, None].float(), grid, mode="nearest", align_corners=False)[:, 0]


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> pd.Series:
    folder = tmp_path_factory.mktemp("digits")
    data = load_digits()
    paths = []
    for n in range(16):
        path = folder / f"{n}.png"
        Image.fromarray(np.round(data.images[n] * 255 / 16).astype(np.uint8), "L").resize((32, 32)).save(path)
        paths.append(str(path))
    return pd.Series(paths, name="image")


def image_input(digits: pd.Series, **options) -> ImageInput:
    t = ImageInput("image", ImageOptions(widths=[8, 16, 32], **options))
    t.fit(digits)
    return t


def test_a_spatial_head_reads_every_feature_map_and_the_vector_is_the_plain_encoders(digits: pd.Series) -> None:
    image = image_input(digits, augment=False)
    ink = InkOutput("ink", OutputOptions())
    torch.manual_seed(0)
    net = Network([image], [ink], HiddenConfig()).eval()
    x = image.transform(digits)
    out = net({"image": x})
    head = net.heads[0]
    assert head.shapes == [(8, 1), (16, 2), (32, 4), (32, 8)]
    assert head.seen == [(16, 8, 32, 32), (16, 16, 16, 16), (16, 32, 8, 8), (16, 32, 4, 4)]
    assert out["ink"].shape == (16, 32, 32)
    # The pooled last map is exactly what the encoder alone gives the hidden layers.
    encoder = net.encoders[0]
    maps: list[torch.Tensor] = []
    with torch.no_grad():
        pooled = net.encode({"image": x}, maps=maps)
        assert torch.allclose(pooled, encoder(x), atol=1e-6)


def test_training_moves_the_target_with_the_pixels(digits: pd.Series) -> None:
    image = image_input(digits, shift=0.2, rotation=30, scale=0.2, flip=True)
    ink = InkOutput("ink", OutputOptions())
    moves = moves_for([image], [ink])
    x = image.transform(digits)
    target = (x[:, 0] > 128).float()
    torch.manual_seed(1)
    inputs, targets = moves({"image": x}, {"ink": target})
    moved_ink = inputs["image"][:, 0] > 128
    agree = (moved_ink == targets["ink"].bool()).float().mean()
    assert not torch.equal(targets["ink"], target)  # it did move
    assert agree > 0.97, agree  # and the mask still lies on the ink (bilinear vs nearest differ at the edges)
    # The network's encoder leaves geometry to training: its own augmentation is photometric only.
    net = Network([image], [ink], HiddenConfig())
    assert not net.encoders[0].augment.moves


def test_a_spatial_output_without_an_image_input_is_one_line() -> None:
    number = NumberInput("x", NumberInput.Options(), {"mean": 0.0, "std": 1.0})
    with pytest.raises(LaminaError, match="output 'ink' .* exactly one image input, and the inputs have none"):
        Network([number], [InkOutput("ink", OutputOptions())], HiddenConfig())
