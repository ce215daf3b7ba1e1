"""`h2r data peek --config CONFIG`: one batch of the input pipeline, as the trainer would get it.

Prints every key's shape, dtype and range, decodes the first samples' text, and draws their
views (head and wrist) with instruction and subtask captions into a PNG.
"""
from __future__ import annotations


import numpy as np

from h2r.files import atomic_write

SAMPLES = 4


def describe(batch: dict) -> str:
    lines = [f"{'key':20s} {'shape':18s} {'dtype':8s} {'min':>9s} {'max':>9s}"]
    for key in sorted(batch):
        value = np.asarray(batch[key])
        lines.append(f"{key:20s} {str(value.shape):18s} {value.dtype.name:8s} "
                     f"{float(value.min()):9.3f} {float(value.max()):9.3f}")
    return "\n".join(lines)


def draw(batch: dict, tok, path: str, samples: int = SAMPLES) -> None:
    import matplotlib  # noqa: PLC0415
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    n = min(samples, len(batch["image"]))
    fig, axes = plt.subplots(n, 2, figsize=(5, 2.4 * n), squeeze=False)
    for i in range(n):
        for j, key in enumerate(("image", "wrist_image")):
            axes[i, j].imshow(batch[key][i])
            axes[i, j].axis("off")
        axes[i, 0].set_title(tok.decode(batch["instruction"][i])[:40], fontsize=7, loc="left")
        axes[i, 1].set_title(f"[{tok.decode(batch['subtask'][i])[:28]}] emb {int(batch['embodiment_id'][i])}",
                             fontsize=7, loc="left")
    fig.tight_layout()
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)


def first_batch(config) -> tuple[dict, object]:
    """(one batch of the training input pipeline of `config`, the data's tokenizer)."""
    from h2r.data import pipeline  # noqa: PLC0415

    batch = next(pipeline.make_iterator(config, process_index=0, process_count=1))
    return batch, pipeline.load_tokenizer(config.data.dir)


def sample_lines(batch: dict, tok, samples: int = SAMPLES) -> list[str]:
    """The first samples' embodiment, decoded text, valid steps and action dims, one line each."""
    return [f"sample {i}: embodiment {int(batch['embodiment_id'][i])}, "
            f"instruction {tok.decode(batch['instruction'][i])!r}, subtask {tok.decode(batch['subtask'][i])!r}, "
            f"valid steps {int(batch['action_valid'][i].sum())}, action dims {int(batch['action_dim_mask'][i].sum())}"
            for i in range(min(samples, len(batch["image"])))]
