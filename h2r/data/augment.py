"""Training augmentation (random crop then resize back, brightness and contrast jitter); the
resize to the model's size is h2r.data.transforms.resize (shared with the served policy).

The pipeline applies `jitter` inside its grain batch transform (pipeline.ReadBatch) with a
numpy Generator seeded by (seed, the sample's global position), so the same seed gives the same
augmented samples whatever the number of worker processes or hosts. Both views get the same
crop box and the same photometric jitter (one camera rig, one lighting).
"""
from __future__ import annotations

import numpy as np
from PIL import Image


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


def jitter(views, rng: np.random.Generator, min_area: float = 0.81, brightness: float = 0.1,
           contrast: float = 0.2):
    """Random crop (area fraction in [min_area, 1], square) resized back, plus brightness and
    contrast jitter; the same draw for every view in `views`."""
    side = np.sqrt(rng.uniform(min_area, 1.0))
    box = (rng.uniform(0.0, 1.0 - side), rng.uniform(0.0, 1.0 - side), side, side)
    shift = rng.uniform(-brightness, brightness)
    scale = rng.uniform(1.0 - contrast, 1.0 + contrast)
    return tuple(adjust(crop_resize(v, box), shift, scale) for v in views)
