"""Write a writer-identification corpus rendered from real handwriting fonts: one person per font.

The second modality of the identity output (issue 18), made by a real program: FreeType (through Pillow) renders
words in the handwriting fonts that Debian packages (``fonts-dkg-handwriting``, ``fonts-bwht``, ``fonts-breip``,
``fonts-dancingscript``, ``fonts-kristi``, ...; ``make fonts`` installs them). Each font is one "writer"; each image is
a random word of 3-5 letters in it, at a random size, slant, position and ink, on paper with noise: the letters
differ from image to image, only the hand stays — text-independent writer identification.

- ``glyphs/<font>/<n>.png``: the images, one subfolder per writer (``lamina init glyphs/ --target writer --task
  identity`` reads it, split by person, so validation and test writers are never seen in training);
- ``config.yaml``: trains on it.

``--small`` uses the fonts matplotlib ships (DejaVu, Computer Modern, STIX: always installed with Lamina's
``explain`` extra) instead of the Debian packages, and a few images each: a tiny set for tests.

Run ``python examples/glyphs/make_data.py`` (writes beside this file; nothing is downloaded).
"""

from __future__ import annotations

import argparse
import os
import re
import string
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

HERE = Path(__file__).resolve().parent
SIZE = (40, 112)  # height, width of each image
PACKAGES = ("fonts-dkg-handwriting", "fonts-breip", "fonts-bwht", "fonts-dancingscript", "fonts-ecolier-court",
            "fonts-femkeklaver", "fonts-humor-sans", "fonts-joscelyn", "fonts-kaushanscript", "fonts-klee",
            "fonts-kristi", "fonts-leckerli-one", "fonts-lobster", "fonts-rufscript", "fonts-sjfonts",
            "fonts-comic-neue", "fonts-havana", "fonts-levien-typoscript", "fonts-opendyslexic")
CONFIG = """\
# Writer identification on handwriting fonts rendered by FreeType: run `python examples/glyphs/make_data.py` first,
# then `lamina train examples/glyphs/config.yaml`. The split is by person (font): validation and test writers are
# never seen in training; the metrics (EER, TAR at FAR, rank-1 from templates of 3 images) are on them.
name: glyphs
data:
  path: glyphs
  split: {method: group, column: label, fractions: [0.6, 0.2, 0.2], seed: 0}
inputs:
  - name: image
    type: image
    options: {size: [40, 112], channels: 1, widths: [16, 32, 64], depths: [2, 2, 1], rotation: 3, shift: 0.05,
              scale: 0.1}
outputs:
  - name: label
    type: identity
    options: {embedding_dim: 128, margin_loss: cosface, margin: 0.2, scale: 30, target_far: 0.001}
hidden:
  depth: 1
  width: 256
  dropout: 0.1
trainer:
  epochs: 20
  batch_size: 32
  learning_rate: 0.003
  schedule: onecycle
  folds: 1
  early_stopping: {patience: 20, metric: label.eer}
  seed: 0
"""


def package_fonts(packages: tuple[str, ...] = PACKAGES) -> list[Path]:
    """The TrueType/OpenType files of the installed Debian font packages (``dpkg -L``); none where dpkg is not."""
    files: list[Path] = []
    for package in packages:
        try:
            listed = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True, check=False).stdout
        except OSError:
            return []
        files += [Path(line) for line in listed.splitlines() if line.lower().endswith((".ttf", ".otf"))]
    return sorted({f.resolve() for f in files if f.is_file()})


def matplotlib_fonts() -> list[Path]:
    import matplotlib

    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    # cmex and cmsy put math symbols at the letters' code points: no letter check can tell
    return sorted(p for p in folder.glob("*.ttf") if not p.name.startswith(("cmex", "cmsy")))


def draws_letters(path: Path) -> bool:
    """Whether the font has real Latin letters: distinct shapes for a-z, not one 'missing glyph' box for all."""
    try:
        font = ImageFont.truetype(str(path), 24)
        shapes = {bytes(font.getmask(c)) for c in "aegkmqsxz"}
    except OSError:
        return False
    return len(shapes) >= 8


def writer_name(path: Path) -> str:
    """A folder name for the font: its family and style ("Kristi Regular" → kristi-regular)."""
    family, style = ImageFont.truetype(str(path), 12).getname()
    return re.sub(r"[^a-z0-9]+", "-", f"{family} {style}".lower()).strip("-")


def render(font_path: Path, rng: np.random.Generator) -> Image.Image:
    """One random word in the font, at a random size, slant, position and ink, on noisy paper."""
    h, w = SIZE
    word = "".join(rng.choice(list(string.ascii_lowercase), size=int(rng.integers(3, 6))))
    if rng.random() < 0.3:
        word = word.capitalize()
    font = ImageFont.truetype(str(font_path), int(rng.integers(20, 29)))
    canvas = Image.new("L", (w * 2, h * 2), 255)
    ImageDraw.Draw(canvas).text((w // 2, h // 2), word, font=font, fill=int(rng.integers(0, 70)))
    canvas = canvas.rotate(float(rng.uniform(-4, 4)), resample=Image.BILINEAR, fillcolor=255)
    box = canvas.point(lambda v: 255 - v).getbbox() or (0, 0, w, h)
    cx, cy = (box[0] + box[2]) // 2 + int(rng.integers(-6, 7)), (box[1] + box[3]) // 2 + int(rng.integers(-3, 4))
    crop = canvas.crop((cx - w // 2, cy - h // 2, cx - w // 2 + w, cy - h // 2 + h))
    pixels = np.asarray(crop, dtype=np.float32) * rng.uniform(0.85, 1.0) + rng.normal(0, rng.uniform(2, 10), (h, w))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def make(out: Path, fonts: list[Path], images: int, seed: int) -> dict[str, int]:
    """Write ``images`` images per font that draws letters under ``out/glyphs/<writer>/`` and ``out/config.yaml``;
    the writers written and their image counts."""
    rng = np.random.default_rng(seed)
    writers: dict[str, Path] = {}
    for path in fonts:
        if draws_letters(path):
            writers.setdefault(writer_name(path), path)  # one file a writer (a .ttf and its .otf twin: the first)
    for name, path in sorted(writers.items()):
        folder = out / "glyphs" / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(images):
            render(path, rng).save(folder / f"{i:03d}.png")
    (out / "config.yaml").write_text(CONFIG, encoding="utf-8")
    return {name: images for name in writers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--images", type=int, default=40, help="images per writer")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--small", action="store_true", help="matplotlib's fonts, 8 images each (for tests)")
    args = parser.parse_args()
    fonts = matplotlib_fonts() if args.small else package_fonts()
    if not fonts:
        raise SystemExit("no handwriting fonts installed: run `make fonts` (Debian's fonts-* packages, as root) "
                         "or pass --small for matplotlib's fonts")
    written = make(args.out, fonts, 8 if args.small else args.images, args.seed)
    print(f"{len(written)} writers, {sum(written.values())} images in {os.path.relpath(args.out / 'glyphs')}/ "
          "and config.yaml")


if __name__ == "__main__":
    main()
