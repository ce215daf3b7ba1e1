"""`h2r data show DIR --out sheet.png`: a contact sheet of the generated datasets.

One row per episode: a few frames spread over the episode, each as the head view next to the
wrist view, labelled with the embodiment, setting and scene, and captioned with the instruction
(and each frame's subtask), so a person can check what the world draws.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from h2r.errors import DataError
from h2r.files import atomic_write


def dataset_dirs(root: str | Path) -> list[Path]:
    """`root/h2r_*/<version>` directories, robots first, the human last (catalogue order if known)."""
    root = Path(root)
    found = sorted(p for p in root.glob("h2r_*/*") if (p / "dataset_info.json").exists())
    if not found:
        raise DataError(f"{root} holds no h2r datasets (expected {root}/h2r_<embodiment>/1.0.0/); "
                        "write some with `h2r data generate`")
    return sorted(found, key=lambda p: (p.parent.name == "h2r_human", p.parent.name))


def _spread(n: int, k: int) -> list[int]:
    """k indices spread evenly over range(n), first and last included."""
    return sorted({int(round(i)) for i in np.linspace(0, n - 1, num=min(k, n))})


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _rows(directory: Path, episodes: int, frames: int) -> list[dict]:
    import tensorflow_datasets as tfds  # noqa: PLC0415

    source = tfds.builder_from_directory(str(directory)).as_data_source("train")
    rows = []
    for index in _spread(len(source), episodes):
        record = source[index]
        steps = record["steps"]
        meta = {k: _text(v) for k, v in record["episode_metadata"].items()}
        picked = [steps[t] for t in _spread(len(steps), frames)]
        rows.append({
            "label": f"{meta['embodiment']}\n{meta['setting']}{'/' + meta['target'] if meta['target'] else ''}"
                     f"\n{meta['scene']}",
            "instruction": _text(picked[0]["language_instruction"]),
            "frames": [(s["observation"]["image"], s["observation"]["wrist_image"],
                        _text(s["subtask_instruction"])) for s in picked],
        })
    return rows


def draw_contact_sheet(root: str | Path, out: str | Path, *, episodes: int = 2, frames: int = 4) -> Path:
    import matplotlib  # noqa: PLC0415
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    rows = [row for directory in dataset_dirs(root) for row in _rows(directory, episodes, frames)]
    columns = 2 * max(len(r["frames"]) for r in rows)
    panel = 1.25  # inches per image
    fig, axes = plt.subplots(len(rows), columns, figsize=(panel * columns + 1.6, (panel + 0.75) * len(rows)),
                             squeeze=False)
    for row, axes_row in zip(rows, axes):
        for ax in axes_row:
            ax.axis("off")
        for i, (image, wrist, subtask) in enumerate(row["frames"]):
            for j, (picture, view) in enumerate(((image, "head"), (wrist, "wrist"))):
                ax = axes_row[2 * i + j]
                ax.imshow(picture, interpolation="nearest")
                ax.set_title(f"{view}" + (f": {textwrap.shorten(subtask, 26)}" if j == 0 else ""),
                             fontsize=6.5, loc="left")
        axes_row[0].text(-0.15, 0.5, row["label"], transform=axes_row[0].transAxes, ha="right",
                         va="center", fontsize=7.5, fontweight="bold")
        axes_row[0].text(0.0, -0.12, row["instruction"], transform=axes_row[0].transAxes, ha="left",
                         va="top", fontsize=8, style="italic")
    fig.subplots_adjust(left=1.5 / (panel * columns + 1.6), right=0.99, top=0.98, bottom=0.02,
                        wspace=0.06, hspace=0.55)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out, "wb") as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)
    return out
