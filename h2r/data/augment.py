"""Image transforms as grain transforms: resize to the model's size, and training augmentation
(random crop then resize back, brightness and contrast jitter).

`Augment` is a `grain.transforms.RandomMap`: grain hands it a numpy Generator seeded from the
pipeline seed and the element's index, so the same seed gives the same augmented samples
whatever the number of worker processes or hosts. Both views get the same crop box and the
same photometric jitter (one camera rig, one lighting).
"""
from __future__ import annotations

import dataclasses

import grain
import numpy as np
from PIL import Image


def resize(image: np.ndarray, size: int) -> np.ndarray:
    """uint8 [H, W, 3] -> uint8 [size, size, 3] (bilinear); unchanged if already that size."""
    if image.shape[0] == size and image.shape[1] == size:
        return image
    return np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))


def crop_resize(image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """Crops the fractional box (top, left, height, width) and resizes back to the input size."""
    h, w = image.shape[:2]
    top, left = int(round(box[0] * h)), int(round(box[1] * w))
    ch, cw = max(1, int(round(box[2] * h))), max(1, int(round(box[3] * w)))
    crop = image[top:top + ch, left:left + cw]
    return np.asarray(Image.fromarray(crop).resize((w, h), Image.BILINEAR))


def adjust(image: np.ndarray, brightness: float, contrast: float) -> np.ndarray:
    """Adds `brightness` (in [0, 1] units) and scales contrast about the image mean."""
    x = image.astype(np.float32) / 255.0
    x = (x - x.mean()) * contrast + x.mean() + brightness
    return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


@dataclasses.dataclass(frozen=True)
class Augment(grain.transforms.RandomMap):
    """Random crop (area fraction in [min_area, 1], aspect kept) + brightness/contrast jitter."""
    min_area: float = 0.81
    brightness: float = 0.1
    contrast: float = 0.2
    keys: tuple[str, ...] = ("image", "wrist_image")

    def random_map(self, sample: dict, rng: np.random.Generator) -> dict:
        side = np.sqrt(rng.uniform(self.min_area, 1.0))
        box = (rng.uniform(0.0, 1.0 - side), rng.uniform(0.0, 1.0 - side), side, side)
        brightness = rng.uniform(-self.brightness, self.brightness)
        contrast = rng.uniform(1.0 - self.contrast, 1.0 + self.contrast)
        out = dict(sample)
        for key in self.keys:
            out[key] = adjust(crop_resize(sample[key], box), brightness, contrast)
        return out
