"""Street-like scenes rendered with pybullet, as a COCO detection set: cars, pedestrians and traffic lights.

Each scene is a fresh pybullet world: a ground plane, a grey road, buildings (boxes) along it, and 2-7 objects on
and beside the road -- cars (pybullet_data's racecar and husky, scaled), pedestrians (its humanoid, upright) and
traffic lights (a pole and a lamp head built from primitives). A camera at driver height looks down the road from a
random position, heading, pitch and field of view, under a random light. The boxes come from pybullet's exact
per-object segmentation mask: real perspective and real occlusion (a box is the visible part; an object with fewer
than MIN_PIXELS visible pixels is not labelled).

    python examples/driving/make_data.py scenes            # 600 training scenes → scenes/annotations.json
    python examples/driving/make_data.py heldout --poses heldout --images 150 --seed 1
    python examples/driving/make_data.py small --small     # 24 scenes, for tests

``--poses heldout`` draws the camera from heights, pitches and headings disjoint from the training poses.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
from PIL import Image

CATEGORIES = ["car", "pedestrian", "traffic light"]
MIN_PIXELS = 25
WIDTH, HEIGHT = 160, 120
POSES = {  # camera height (m), pitch (degrees, negative: down), heading off the road's axis (degrees)
    "train": {"height": (1.1, 1.6), "pitch": (-14, -6), "heading": (-18, 18)},
    "heldout": {"height": (1.6, 1.9), "pitch": (-18, -14), "heading": (18, 26)},
}


def _traffic_light(p, x: float, y: float, rng: np.random.Generator) -> int:
    pole = p.createVisualShape(p.GEOM_CYLINDER, radius=0.06, length=3.0, rgbaColor=[0.25, 0.25, 0.25, 1])
    head = p.createVisualShape(p.GEOM_BOX, halfExtents=[0.15, 0.15, 0.45], rgbaColor=[0.1, 0.1, 0.1, 1])
    lit = [[1, 0, 0, 1], [1, 0.8, 0, 1], [0, 1, 0.2, 1]][int(rng.integers(3))]
    lamp = p.createVisualShape(p.GEOM_SPHERE, radius=0.11, rgbaColor=lit)
    return p.createMultiBody(baseMass=0, baseVisualShapeIndex=pole, basePosition=[x, y, 1.5],
                             linkMasses=[0, 0], linkCollisionShapeIndices=[-1, -1], linkVisualShapeIndices=[head, lamp],
                             linkPositions=[[0, 0, 1.7], [-0.16, 0, 1.9]], linkOrientations=[[0, 0, 0, 1]] * 2,
                             linkInertialFramePositions=[[0, 0, 0]] * 2, linkInertialFrameOrientations=[[0, 0, 0, 1]] * 2,
                             linkParentIndices=[0, 0], linkJointTypes=[p.JOINT_FIXED] * 2,
                             linkJointAxis=[[0, 0, 1]] * 2)


def _place(p, data: str, kind: str, x: float, y: float, rng: np.random.Generator) -> int:
    turn = p.getQuaternionFromEuler([0, 0, float(rng.uniform(-math.pi, math.pi))])
    if kind == "car":
        if rng.random() < 0.6:
            return p.loadURDF(f"{data}/racecar/racecar.urdf", [x, y, 0.0], turn, globalScaling=float(rng.uniform(3.5, 4.5)))
        return p.loadURDF(f"{data}/husky/husky.urdf", [x, y, 0.1], turn, globalScaling=float(rng.uniform(1.6, 2.0)))
    if kind == "pedestrian":
        upright = p.getQuaternionFromEuler([math.pi / 2, 0, float(rng.uniform(-math.pi, math.pi))])
        return p.loadURDF(f"{data}/humanoid/humanoid.urdf", [x, y, 0.9], upright, globalScaling=0.3,
                          flags=p.URDF_USE_SELF_COLLISION * 0)
    return _traffic_light(p, x, y, rng)


def _scene(p, data: str, rng: np.random.Generator) -> dict[int, str]:
    """A fresh world; its labelled bodies (id → category)."""
    p.resetSimulation()
    p.loadURDF(f"{data}/plane.urdf")
    road = p.createVisualShape(p.GEOM_BOX, halfExtents=[60, 4, 0.01], rgbaColor=[0.3, 0.3, 0.32, 1])
    p.createMultiBody(baseMass=0, baseVisualShapeIndex=road, basePosition=[30, 0, 0.01])
    for _ in range(int(rng.integers(4, 9))):  # buildings along both sides
        half = [float(rng.uniform(2, 5)), float(rng.uniform(2, 4)), float(rng.uniform(2, 6))]
        colour = [*rng.uniform(0.35, 0.9, 3).tolist(), 1]
        side = 1 if rng.random() < 0.5 else -1
        shape = p.createVisualShape(p.GEOM_BOX, halfExtents=half, rgbaColor=colour)
        p.createMultiBody(baseMass=0, baseVisualShapeIndex=shape,
                          basePosition=[float(rng.uniform(5, 50)), side * (9 + half[1]), half[2]])
    bodies = {}
    for _ in range(int(rng.integers(2, 8))):
        kind = CATEGORIES[int(rng.choice(3, p=[0.45, 0.35, 0.2]))]
        x = float(rng.uniform(4, 16))
        y = float(rng.uniform(-3, 3)) if kind == "car" else float(rng.choice([-1, 1]) * rng.uniform(4.5, 7))
        bodies[_place(p, data, kind, x, y, rng)] = kind
    return bodies


def _render(p, rng: np.random.Generator, poses: dict) -> tuple[np.ndarray, np.ndarray]:
    height, pitch, heading = (float(rng.uniform(*poses[k])) for k in ("height", "pitch", "heading"))
    heading *= 1 if rng.random() < 0.5 else -1
    eye = [0.0, float(rng.uniform(-2.5, 2.5)), height]
    direction = [math.cos(math.radians(heading)) * math.cos(math.radians(pitch)),
                 math.sin(math.radians(heading)) * math.cos(math.radians(pitch)), math.sin(math.radians(pitch))]
    view = p.computeViewMatrix(eye, [e + d for e, d in zip(eye, direction)], [0, 0, 1])
    projection = p.computeProjectionMatrixFOV(float(rng.uniform(55, 75)), WIDTH / HEIGHT, 0.1, 120)
    light = [float(rng.uniform(-1, 1)), float(rng.uniform(-1, 1)), float(rng.uniform(0.5, 1.5))]
    _, _, rgb, _, seg = p.getCameraImage(WIDTH, HEIGHT, view, projection, lightDirection=light,
                                         lightColor=rng.uniform(0.8, 1.0, 3).tolist(), shadow=1,
                                         renderer=p.ER_TINY_RENDERER)
    rgb = np.reshape(np.asarray(rgb, np.uint8), (HEIGHT, WIDTH, 4))[:, :, :3]
    return rgb, np.reshape(np.asarray(seg), (HEIGHT, WIDTH))


def make(out: Path, images: int, seed: int, poses: str) -> Path:
    import pybullet as p
    import pybullet_data

    rng = np.random.default_rng(seed)
    data = pybullet_data.getDataPath()
    (out / "images").mkdir(parents=True, exist_ok=True)
    coco: dict = {"images": [], "annotations": [],
                  "categories": [{"id": i + 1, "name": c} for i, c in enumerate(CATEGORIES)]}
    client = p.connect(p.DIRECT)
    try:
        n = 0
        while n < images:
            bodies = _scene(p, data, rng)
            rgb, seg = _render(p, rng, POSES[poses])
            found = []
            for body, kind in bodies.items():
                ys, xs = np.nonzero(seg == body)
                if len(xs) >= MIN_PIXELS:
                    x0, y0 = int(xs.min()), int(ys.min())
                    found.append((kind, [x0, y0, int(xs.max()) + 1 - x0, int(ys.max()) + 1 - y0], len(xs)))
            if not found:
                continue  # a scene with nothing visible teaches nothing; draw another
            name = f"images/{n:04d}.png"
            Image.fromarray(rgb).save(out / name)
            coco["images"].append({"id": n + 1, "file_name": name, "width": WIDTH, "height": HEIGHT})
            for kind, box, pixels in found:
                coco["annotations"].append({"id": len(coco["annotations"]) + 1, "image_id": n + 1,
                                            "category_id": CATEGORIES.index(kind) + 1, "bbox": box,
                                            "area": box[2] * box[3], "visible_pixels": pixels, "iscrowd": 0})
            n += 1
    finally:
        p.disconnect(client)
    path = out / "annotations.json"
    path.write_text(json.dumps(coco), encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--images", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--poses", choices=sorted(POSES), default="train")
    parser.add_argument("--small", action="store_true", help="24 scenes, for tests")
    args = parser.parse_args()
    path = make(args.out, 24 if args.small else args.images, args.seed, args.poses)
    coco = json.loads(path.read_text())
    print(f"wrote {path}: {len(coco['images'])} images, {len(coco['annotations'])} boxes")


if __name__ == "__main__":
    main()
