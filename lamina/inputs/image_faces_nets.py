"""MTCNN's three networks (P-, R- and O-Net; Zhang et al. 2016) in plain torch, filled with the pretrained weights
that the ``facenet-pytorch`` wheel ships.

The package is never installed or imported: its wheel is a zip holding ``pnet.pt``, ``rnet.pt`` and ``onet.pt``,
plain state dicts. They are read once with ``torch.load(..., weights_only=True)`` (tensors only, nothing
unpickled that could run code) and written as safetensors next to the wheel, with the wheel's SHA-256, so later
runs read safetensors only.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from collections import OrderedDict
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from lamina.errors import LaminaError

WHEELS = Path("~/.cache/lamina/wheels")  # where `pip download` leaves the wheel; LAMINA_WHEELS overrides
NETS = ("pnet", "rnet", "onet")
FETCH = "pip download --no-deps facenet-pytorch==2.6.0 -d ~/.cache/lamina/wheels"


def _stack(channels: list[int], kernels: list[int], pools: list[tuple[int, int] | None]) -> nn.Sequential:
    """Convolution + PReLU (+ ceil-mode max pool) per stage, named as the reference names its layers."""
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    for i, (cin, cout, k, pool) in enumerate(zip(channels, channels[1:], kernels, pools), start=1):
        layers[f"conv{i}"] = nn.Conv2d(cin, cout, kernel_size=k)
        layers[f"prelu{i}"] = nn.PReLU(cout)
        if pool is not None:
            layers[f"pool{i}"] = nn.MaxPool2d(pool[0], pool[1], ceil_mode=True)
    return nn.Sequential(layers)


class PNet(nn.Module):
    """Fully convolutional proposal net: a 12×12 window every 2 pixels → face probability and box offsets."""

    def __init__(self) -> None:
        super().__init__()
        self.body = _stack([3, 10, 16, 32], [3, 3, 3], [(2, 2), None, None])
        self.conv4_1 = nn.Conv2d(32, 2, kernel_size=1)
        self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.body(x)
        return self.conv4_2(x), self.conv4_1(x).softmax(1)


class RNet(nn.Module):
    """Refinement net on 24×24 crops: face probability and box offsets."""

    def __init__(self) -> None:
        super().__init__()
        self.body = _stack([3, 28, 48, 64], [3, 3, 2], [(3, 2), (3, 2), None])
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # The weights were converted from Caffe/TF: the dense layer reads the map as (width, height, channel).
        x = self.body(x).permute(0, 3, 2, 1).flatten(1)
        x = self.prelu4(self.dense4(x))
        return self.dense5_2(x), self.dense5_1(x).softmax(1)


class ONet(nn.Module):
    """Output net on 48×48 crops: face probability, box offsets and five landmarks (x1..x5, y1..y5 in the box)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = _stack([3, 32, 64, 64, 128], [3, 3, 3, 2], [(3, 2), (3, 2), (2, 2), None])
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.body(x).permute(0, 3, 2, 1).flatten(1)
        x = self.prelu5(self.dense5(x))
        return self.dense6_2(x), self.dense6_3(x), self.dense6_1(x).softmax(1)


NET_TYPES: dict[str, type[nn.Module]] = {"pnet": PNet, "rnet": RNet, "onet": ONet}


def wheels_dir() -> Path:
    return Path(os.environ.get("LAMINA_WHEELS", str(WHEELS))).expanduser()


def find_wheel() -> Path:
    found = sorted(wheels_dir().glob("facenet_pytorch-*.whl"))
    if not found:
        raise LaminaError(f"face detection needs MTCNN's weights: no facenet_pytorch wheel in {wheels_dir()}; run "
                          f"`{FETCH}` (the weights are read from it; the package is never installed)")
    return found[-1]


def _ours(net: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The reference's layer names → ours (its convolution stages live in ``body`` here)."""
    body = set(net.state_dict())
    return {(f"body.{k}" if f"body.{k}" in body else k): v.contiguous() for k, v in state.items()}


def convert(wheel: Path, out: Path) -> None:
    """The wheel's three state dicts as safetensors in ``out`` (tensors only: ``weights_only=True``)."""
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    out.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(wheel) as archive:
            states = {n: torch.load(io.BytesIO(archive.read(f"facenet_pytorch/data/{n}.pt")), weights_only=True)
                      for n in NETS}
    except (KeyError, zipfile.BadZipFile, RuntimeError) as error:
        raise LaminaError(f"{wheel}: not a facenet-pytorch wheel with MTCNN weights ({error}); "
                          f"delete it and run `{FETCH}`") from None
    for name, state in states.items():
        tmp = out / f".{name}.safetensors.tmp"
        save_file(_ours(NET_TYPES[name](), state), str(tmp))
        os.replace(tmp, out / f"{name}.safetensors")
    (out / "source.json").write_text(json.dumps({"wheel": wheel.name, "sha256": digest}), encoding="utf-8")


def load_nets() -> tuple[PNet, RNet, ONet]:
    """The three nets in eval mode, from the safetensors cache (made from the wheel on first use)."""
    wheel = find_wheel()
    cache = wheels_dir() / "mtcnn"
    source = cache / "source.json"
    if not source.is_file() or json.loads(source.read_text(encoding="utf-8")).get("wheel") != wheel.name:
        convert(wheel, cache)
    nets = tuple(NET_TYPES[name]() for name in NETS)
    for name, net in zip(NETS, nets):
        net.load_state_dict(load_file(str(cache / f"{name}.safetensors")))
        net.eval().requires_grad_(False)
    return nets  # type: ignore[return-value]
